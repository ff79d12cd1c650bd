using SQLitePCL;

namespace Berth.Shared.Leases;

/// <summary>
/// One SQLite connection through SQLitePCLRaw, without an ADO.NET layer on top: the plugin is a short-lived
/// process, and every millisecond of start-up counts (Microsoft.Data.Sqlite cost each ADD about 3 ms).
/// </summary>
internal sealed class SqliteDb : IDisposable
{
    private readonly sqlite3 _db;

    static SqliteDb() => raw.SetProvider(new SQLite3Provider_e_sqlite3());

    private SqliteDb(sqlite3 db) => _db = db;

    public static SqliteDb Open(string path, bool create = false) =>
        Open(path, raw.SQLITE_OPEN_READWRITE | raw.SQLITE_OPEN_NOMUTEX | (create ? raw.SQLITE_OPEN_CREATE : 0));

    /// <summary>
    /// Opens a store on a read-only filesystem. SQLite reads a WAL database there while its -wal and -shm files
    /// exist (berth's processes leave them: no checkpoint on close); with no -wal file every committed page is in
    /// the database file itself, and "immutable" tells SQLite not to look for the others.
    /// </summary>
    public static SqliteDb OpenReadOnly(string path)
    {
        var uri = "file:" + Uri.EscapeDataString(path).Replace("%2F", "/", StringComparison.Ordinal) + (File.Exists(path + "-wal") ? "?mode=ro" : "?mode=ro&immutable=1");
        return Open(uri, raw.SQLITE_OPEN_READONLY | raw.SQLITE_OPEN_NOMUTEX | raw.SQLITE_OPEN_URI);
    }

    private static SqliteDb Open(string path, int flags)
    {
        var rc = raw.sqlite3_open_v2(path, out var db, flags, null);
        if (rc != raw.SQLITE_OK)
        {
            var message = db is null ? raw.sqlite3_errstr(rc).utf8_to_string() : raw.sqlite3_errmsg(db).utf8_to_string();
            db?.Dispose();
            throw new SqliteError(rc, message);
        }
        raw.sqlite3_extended_result_codes(db, 1);
        return new SqliteDb(db);
    }

    public sqlite3 Handle => _db;

    /// <summary>Runs one or more statements that return nothing.</summary>
    public void Execute(string sql) => Check(raw.sqlite3_exec(_db, sql));

    /// <summary>The first column of the first row, as a long (0 when there is no row).</summary>
    public long Scalar(string sql)
    {
        using var statement = Prepare(sql);
        return statement.Step() ? statement.Int64(0) : 0;
    }

    /// <summary>The first column of the first row, as text (null when there is no row).</summary>
    public string? Text(string sql)
    {
        using var statement = Prepare(sql);
        return statement.Step() ? statement.Text(0) : null;
    }

    public SqliteStatement Prepare(string sql)
    {
        Check(raw.sqlite3_prepare_v2(_db, sql, out var statement));
        return new SqliteStatement(this, statement);
    }

    public void Check(int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE)) throw new SqliteError(rc, raw.sqlite3_errmsg(_db).utf8_to_string());
    }

    public void Dispose() => _db.Dispose();
}
