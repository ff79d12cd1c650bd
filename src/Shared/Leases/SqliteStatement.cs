using SQLitePCL;

namespace Berth.Shared.Leases;

/// <summary>A prepared statement: bind by name ($n), step through the rows, reset to run it again.</summary>
internal sealed class SqliteStatement(SqliteDb db, sqlite3_stmt statement) : IDisposable
{
    /// <summary>Clears the previous run and binds these values (null binds SQL NULL).</summary>
    public SqliteStatement With(params (string Name, object? Value)[] parameters)
    {
        raw.sqlite3_reset(statement);
        raw.sqlite3_clear_bindings(statement);
        foreach (var (name, value) in parameters)
        {
            var index = raw.sqlite3_bind_parameter_index(statement, name);
            if (index == 0) throw new ArgumentException($"no parameter {name} in {raw.sqlite3_sql(statement).utf8_to_string()}");
            db.Check(value switch
            {
                null => raw.sqlite3_bind_null(statement, index),
                string s => raw.sqlite3_bind_text(statement, index, s),
                byte[] b => raw.sqlite3_bind_blob(statement, index, b),
                int i => raw.sqlite3_bind_int64(statement, index, i),
                long l => raw.sqlite3_bind_int64(statement, index, l),
                _ => throw new ArgumentException($"cannot bind a {value.GetType().Name}"),
            });
        }
        return this;
    }

    /// <summary>Advances to the next row; false when there is none. SQLITE_BUSY past the wait limit throws.</summary>
    public bool Step()
    {
        var rc = raw.sqlite3_step(statement);
        if (rc == raw.SQLITE_ROW) return true;
        if (rc == raw.SQLITE_DONE) return false;
        raw.sqlite3_reset(statement);
        db.Check(rc);
        return false;
    }

    /// <summary>Runs a statement that returns no rows; returns the rows it changed.</summary>
    public int Run()
    {
        while (Step()) { }
        return raw.sqlite3_changes(db.Handle);
    }

    public bool IsNull(int column) => raw.sqlite3_column_type(statement, column) == raw.SQLITE_NULL;

    public long Int64(int column) => raw.sqlite3_column_int64(statement, column);

    public string Text(int column) => raw.sqlite3_column_text(statement, column).utf8_to_string();

    public string? TextOrNull(int column) => IsNull(column) ? null : Text(column);

    public byte[] Blob(int column) => raw.sqlite3_column_blob(statement, column).ToArray();

    /// <summary>Ends the run, so that the statement holds no read snapshot open between transactions.</summary>
    public void Reset() => raw.sqlite3_reset(statement);

    public void Dispose() => raw.sqlite3_finalize(statement);
}
