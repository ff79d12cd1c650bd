using Berth.Shared.Cni;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Berth.Shared.Leases;

/// <summary>
/// The lease store: one SQLite database in WAL mode with synchronous=FULL, so a committed transaction is on
/// disk before the caller prints its result. Writers take the lock at BEGIN (IMMEDIATE) and wait for it at
/// most <see cref="StoreOptions.LockTimeout"/>. A process killed at any point leaves only what SQLite rolls
/// back on the next open: no lock files, no half-made lease.
/// </summary>
public sealed partial class SqliteLeaseStore : ILeaseStore
{
    private const int DbConfigNoCheckpointOnClose = 1006;
    private static readonly UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private static readonly UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly SqliteConnection _connection;

    static SqliteLeaseStore() => raw.SetProvider(new SQLite3Provider_e_sqlite3());

    private SqliteLeaseStore(string path, SqliteConnection connection, StoreOptions options)
    {
        Path = path;
        _connection = connection;
        Options = options;
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    internal StoreOptions Options { get; }

    internal SqliteConnection Connection => _connection;

    /// <summary>
    /// Opens (and if allowed, creates) the store at <paramref name="path"/>, migrating its schema forward.
    /// Throws <see cref="CniException"/> with code 5 or 11 when it cannot.
    /// </summary>
    public static SqliteLeaseStore Open(string path, StoreOptions options)
    {
        SqliteConnection? connection = null;
        try
        {
            if (options.Create) CreateFile(path);
            else if (!File.Exists(path)) throw new CniException(ErrorCodes.IoFailure, $"store {path} does not exist: nothing has been leased yet, or --store names the wrong file");
            connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = path,
                Mode = SqliteOpenMode.ReadWrite,
                Pooling = false,
                DefaultTimeout = (int)Math.Ceiling(options.LockTimeout.TotalSeconds),
            }.ToString());
            connection.Open();
            // The WAL is checkpointed by commits (wal_autocheckpoint), not by every short-lived plugin
            // process on exit, which would cost each ADD a second fsync.
            raw.sqlite3_db_config(connection.Handle, DbConfigNoCheckpointOnClose, 1, out _);
            Execute(connection, $"PRAGMA busy_timeout = {(int)options.LockTimeout.TotalMilliseconds}; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 200;");
            Migrate(connection, path);
            return new SqliteLeaseStore(path, connection, options);
        }
        catch (SqliteException e)
        {
            connection?.Dispose();
            throw StoreErrors.From(e, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            connection?.Dispose();
            throw StoreErrors.From(e, path);
        }
    }

    private static void CreateFile(string path)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory)) Directory.CreateDirectory(directory, DirectoryMode);
        if (File.Exists(path)) return;
        try
        {
            // Created here so that it is 0600 from the first byte; SQLite gives its -wal and -shm files the same mode.
            using var _ = new FileStream(path, new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode });
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first: fine.
        }
    }

    /// <inheritdoc />
    public T Write<T>(Func<ILeaseTransaction, T> work) => Run(work, deferred: false, commit: true);

    /// <inheritdoc />
    public T Read<T>(Func<ILeaseTransaction, T> work) => Run(work, deferred: true, commit: false);

    /// <summary>Runs read-only queries on a consistent snapshot.</summary>
    public T Query<T>(Func<IStoreQueries, T> work) => Run(tx => work((SqliteLeaseTransaction)tx), deferred: true, commit: false);

    /// <inheritdoc />
    public T Rehearse<T>(Func<ILeaseTransaction, T> work) => Run(work, deferred: false, commit: false);

    private T Run<T>(Func<ILeaseTransaction, T> work, bool deferred, bool commit)
    {
        try
        {
            using var transaction = _connection.BeginTransaction(deferred);
            using var session = new SqliteLeaseTransaction(this, transaction);
            var result = work(session);
            if (commit) transaction.Commit();
            else transaction.Rollback();
            return result;
        }
        catch (SqliteException e)
        {
            throw StoreErrors.From(e, Path);
        }
    }

    internal static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    internal static long Scalar(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public void Dispose() => _connection.Dispose();
}
