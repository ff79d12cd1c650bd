using Berth.Shared.Cni;
using SQLitePCL;

namespace Berth.Shared.Leases;

/// <summary>
/// The lease store: one SQLite database in WAL mode with synchronous=FULL, so a committed transaction is on
/// disk before the caller prints its result. Writers first line up for <see cref="WriterLock"/> (a flock on
/// berth.db.lock, fair where SQLite's busy handler is not), then take SQLite's lock at BEGIN IMMEDIATE; they
/// give up when the line has not moved for <see cref="StoreOptions.LockTimeout"/>. A process killed at any
/// point leaves only what SQLite rolls back on the next open: the kernel drops its flock, and there is no
/// half-made lease.
/// </summary>
public sealed partial class SqliteLeaseStore : ILeaseStore<IAgentTransaction>
{
    private const int DbConfigNoCheckpointOnClose = 1006;
    private static readonly UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private static readonly UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly SqliteDb _db;

    /// <summary>
    /// One connection, and a transaction belongs to it, not to a thread: the agent's metrics page reads while a
    /// reconcile pass writes, so transactions on it take turns here (after a writer has its flock, so a reader never
    /// waits for the writers' line).
    /// </summary>
    private readonly Lock _turn = new();

    private SqliteLeaseStore(string path, SqliteDb db, StoreOptions options)
    {
        Path = path;
        _db = db;
        Options = options;
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _skipped = new();

    /// <summary>A row that was skipped because berth did not write it so (see <see cref="TakeSkipped"/>).</summary>
    internal void Skip(string why)
    {
        // Bounded: a store full of bad rows must not grow the agent's memory between two passes.
        if (_skipped.Count < 1000) _skipped.Enqueue($"store {Path}: {why}; skipped");
    }

    /// <summary>
    /// The rows skipped since the last call, each with why: the agent logs and counts them
    /// (<c>berth_skipped_entries_total{source="store"}</c>); the plugin has nobody to tell and goes on.
    /// </summary>
    public IReadOnlyList<string> TakeSkipped()
    {
        var result = new List<string>();
        while (_skipped.TryDequeue(out var why)) result.Add(why);
        return result;
    }

    internal StoreOptions Options { get; }

    internal SqliteDb Db => _db;

    /// <summary>
    /// Opens (and if allowed, creates) the store at <paramref name="path"/>, migrating its schema forward.
    /// Throws <see cref="CniException"/> with code 5 or 11 when it cannot.
    /// </summary>
    public static SqliteLeaseStore Open(string path, StoreOptions options)
    {
        SqliteDb? db = null;
        try
        {
            if (options.Create && !options.ReadOnly) CreateFile(path);
            else if (!File.Exists(path)) throw new CniException(ErrorCodes.IoFailure, $"no store at {path}: nothing has been leased there yet, or the path is wrong");
            RefuseEmptyFileWithLog(path);
            if (options.ReadOnly && StoreErrors.OnReadOnlyFilesystem(path))
            {
                db = SqliteDb.OpenReadOnly(path);
                if (db.Scalar("PRAGMA user_version") is var version && version != SchemaVersion)
                {
                    throw new CniException(ErrorCodes.IoFailure,
                        $"store {path} has schema version {version}, this berth-agent reads {SchemaVersion}, and it is on a read-only filesystem: read it with the berth-agent that wrote it, or mount it writable");
                }
                return new SqliteLeaseStore(path, db, options);
            }
            db = SqliteDb.Open(path);
            raw.sqlite3_busy_timeout(db.Handle, (int)options.LockTimeout.TotalMilliseconds);
            // The WAL is checkpointed by committers once it grows (KeepWalShort), not by every short-lived
            // plugin process on exit, which would cost each ADD two more fsyncs.
            raw.sqlite3_db_config(db.Handle, DbConfigNoCheckpointOnClose, 1, out _);
            db.Execute($"PRAGMA synchronous = {Synchronous()}; PRAGMA wal_autocheckpoint = 1000;");
            Migrate(db, path, options);
            return new SqliteLeaseStore(path, db, options);
        }
        catch (SqliteError e)
        {
            db?.Dispose();
            throw StoreErrors.From(e, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            db?.Dispose();
            throw StoreErrors.From(e, path);
        }
    }

    /// <summary>
    /// FULL. OFF only in the build the power-cut torture's negative control makes (-p:BerthUnsafeNoSync=true,
    /// torture/guest/build.sh), to show that the torture catches acknowledged writes lost without fsync; no
    /// setting of a shipped berth can turn it off.
    /// </summary>
#if BERTH_UNSAFE_NO_SYNC
    private static string Synchronous() => "OFF";
#else
    private static string Synchronous() => "FULL";
#endif

    /// <summary>
    /// A zero-byte store is a new one: berth creates the file before SQLite writes its first page, and a process
    /// killed in between leaves it empty. But SQLite writes the first page to the file itself before any WAL
    /// exists, so an empty file beside a WAL that holds anything lost its pages to damage (a truncation, a
    /// copy of the file alone). SQLite would take it for a new database and overwrite that WAL: refuse instead.
    /// </summary>
    private static void RefuseEmptyFileWithLog(string path)
    {
        var file = new FileInfo(path);
        var wal = new FileInfo(path + "-wal");
        if (file.Exists && file.Length == 0 && wal.Exists && wal.Length > 0)
        {
            throw new CniException(ErrorCodes.IoFailure,
                $"store {path} is damaged (the file is empty but its write-ahead log {wal.FullName} holds {wal.Length} bytes): berth will not reset it; stop berth-agent, move both files aside, or restore them from a backup");
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
    public T Write<T>(Func<IAgentTransaction, T> work)
    {
        T result;
        using (var writer = WriterLock.Acquire(LockPath(Path), Options.LockTimeout, Options.Time))
        {
            result = Run(work, "BEGIN IMMEDIATE", commit: true, writer);
        }
        // After letting the next writer in: the checkpoint overlaps its transaction instead of delaying it.
        KeepWalShort();
        return result;
    }

    /// <inheritdoc />
    public T Read<T>(Func<IAgentTransaction, T> work) => Run(work, "BEGIN", commit: false);

    /// <summary>Runs read-only queries on a consistent snapshot.</summary>
    public T Query<T>(Func<IStoreQueries, T> work) => Run(tx => work((SqliteLeaseTransaction)tx), "BEGIN", commit: false);

    /// <inheritdoc />
    public T Rehearse<T>(Func<IAgentTransaction, T> work)
    {
        using var writer = WriterLock.Acquire(LockPath(Path), Options.LockTimeout, Options.Time);
        return Run(work, "BEGIN IMMEDIATE", commit: false, writer);
    }

    /// <summary>The file writers flock before they write (see <see cref="WriterLock"/>).</summary>
    internal static string LockPath(string storePath) => storePath + ".lock";

    /// <summary>
    /// One transaction. A writer's (<paramref name="writer"/> given) hand-over is marked done when it ends cleanly: after
    /// its commit, or after a rollback that came before any commit began (a refusal from the verbs). A commit that
    /// failed may have left frames in the WAL, so then the next writer seals.
    /// </summary>
    private T Run<T>(Func<IAgentTransaction, T> work, string begin, bool commit, WriterLock? writer = null)
    {
        using var turn = _turn.EnterScope();
        try
        {
            Statement(begin).With().Run();
            var ending = false;
            try
            {
                // The writer before died holding the lock (see WriterLock): write page 1 again, the same schema version,
                // so that this commit overwrites whatever frames it left in the WAL beyond the shared index.
                if (writer is { PreviousHolderDied: true } && commit) _db.Execute($"PRAGMA user_version = {SchemaVersion}");
                T result;
                using (var session = new SqliteLeaseTransaction(this))
                {
                    result = work(session);
                }
                ending = true;
                Statement(commit ? "COMMIT" : "ROLLBACK").With().Run();
                writer?.Done(committed: commit);
                return result;
            }
            catch
            {
                // Also when the commit itself failed: leave no transaction open behind an exception.
                if (raw.sqlite3_get_autocommit(_db.Handle) == 0) raw.sqlite3_exec(_db.Handle, "ROLLBACK");
                if (!ending) writer?.Done(committed: false);
                throw;
            }
        }
        catch (SqliteError e)
        {
            throw StoreErrors.From(e, Path);
        }
    }

    /// <summary>
    /// Each plugin process is usually the store's only connection, so SQLite rebuilds its WAL index on open and
    /// cannot know which frames were already copied back: left alone, the WAL would never restart, and every
    /// process would read, and re-checkpoint, all of it. So a committer truncates the WAL once it passes a few
    /// transactions' worth (<see cref="StoreOptions.WalTruncateBytes"/>). It never waits for that (the busy timeout is
    /// lifted for the call): under load the next committer does it.
    /// </summary>
    private void KeepWalShort()
    {
        try
        {
            if (new FileInfo(Path + "-wal").Length < Options.WalTruncateBytes) return;
        }
        catch (IOException)
        {
            return;
        }
        using var turn = _turn.EnterScope();
        raw.sqlite3_busy_timeout(_db.Handle, 0);
        // Deliberately ignored: a busy result means readers are active; the commit itself is already durable.
        _ = raw.sqlite3_wal_checkpoint_v2(_db.Handle, null, raw.SQLITE_CHECKPOINT_TRUNCATE, out _, out _);
        raw.sqlite3_busy_timeout(_db.Handle, (int)Options.LockTimeout.TotalMilliseconds);
    }

    /// <summary>
    /// Prepared statements kept for the connection's life, by their text: preparing is a good part of a short
    /// transaction's CPU, which berth-agent, serving many calls on one connection, pays once. A transaction resets the
    /// ones it ran when it ends. Used only inside a transaction, so under <see cref="_turn"/>.
    /// </summary>
    private readonly Dictionary<string, SqliteStatement> _statements = new(StringComparer.Ordinal);

    internal SqliteStatement Statement(string sql)
    {
        if (!_statements.TryGetValue(sql, out var statement))
        {
            statement = _db.Prepare(sql);
            _statements[sql] = statement;
        }
        return statement;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var statement in _statements.Values) statement.Dispose();
        _statements.Clear();
        _db.Dispose();
    }
}
