using Berth.Shared.Cni;

namespace Berth.Shared.Leases;

public sealed partial class SqliteLeaseStore
{
    /// <summary>The schema version this build writes (PRAGMA user_version).</summary>
    public const int SchemaVersion = 5;

    /// <summary>
    /// Forward migrations, one per version. Each runs in the same transaction as the version bump, so a
    /// process killed during a migration leaves the previous version whole. None may drop a row.
    /// </summary>
    internal static readonly Action<SqliteDb>[] Migrations =
    [
        // 1: the ledger. A lease is keyed by (network, address): the store itself makes a second lease of an
        // address impossible, and (network, container, ifname, range set) allows one address per range set.
        db => db.Execute("""
            CREATE TABLE networks (
                name TEXT PRIMARY KEY,
                ranges TEXT NOT NULL,
                updated_at TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE leases (
                network TEXT NOT NULL,
                address_key BLOB NOT NULL,
                address TEXT NOT NULL,
                range_set INTEGER NOT NULL,
                subnet TEXT NOT NULL,
                container_id TEXT NOT NULL,
                ifname TEXT NOT NULL,
                netns TEXT NOT NULL,
                netns_inode INTEGER,
                pod_namespace TEXT,
                pod_name TEXT,
                pod_uid TEXT,
                boot_id TEXT NOT NULL,
                since_boot_ns INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                origin TEXT NOT NULL,
                PRIMARY KEY (network, address_key),
                UNIQUE (network, container_id, ifname, range_set)
            ) WITHOUT ROWID;
            CREATE INDEX leases_by_boot ON leases (boot_id);
            CREATE TABLE cursors (
                network TEXT NOT NULL,
                range_set INTEGER NOT NULL,
                address TEXT NOT NULL,
                PRIMARY KEY (network, range_set)
            ) WITHOUT ROWID;
            CREATE TABLE history (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                boot_id TEXT NOT NULL,
                since_boot_ns INTEGER NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('allocate', 'release')),
                reason TEXT NOT NULL,
                actor TEXT NOT NULL,
                network TEXT NOT NULL,
                address TEXT NOT NULL,
                container_id TEXT NOT NULL,
                ifname TEXT NOT NULL,
                pod_namespace TEXT,
                pod_name TEXT,
                pod_uid TEXT,
                detail TEXT
            );
            CREATE INDEX history_by_address ON history (network, address);
            CREATE TABLE boots (
                boot_id TEXT PRIMARY KEY,
                recovered_at TEXT,
                released INTEGER
            ) WITHOUT ROWID;
            """),
        // 2: runs of consecutive leased addresses, so the next free address is found with two index
        // look-ups however many leases there are. Built from the leases already present.
        db =>
        {
            db.Execute("""
                CREATE TABLE runs (
                    network TEXT NOT NULL,
                    first BLOB NOT NULL,
                    last BLOB NOT NULL,
                    PRIMARY KEY (network, first)
                ) WITHOUT ROWID;
                """);
            RebuildRuns(db);
        },
        // 3: the agent's strikes: consecutive reconcile passes that found a lease without evidence, kept in
        // the store so that neither an agent restart nor a one-shot `reconcile` loses count.
        db => db.Execute("""
            CREATE TABLE strikes (
                network TEXT NOT NULL,
                address_key BLOB NOT NULL,
                container_id TEXT NOT NULL,
                ifname TEXT NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (network, address_key)
            ) WITHOUT ROWID;
            """),
        // 4: the guardian's ledger of host-local's files: when each was first seen (boot and boot clock) and
        // its strikes; and which store a history row's lease lived in (NULL: berth's own).
        db => db.Execute("""
            CREATE TABLE guarded_files (
                dir TEXT NOT NULL,
                network TEXT NOT NULL,
                address TEXT NOT NULL,
                container_id TEXT NOT NULL,
                ifname TEXT NOT NULL,
                boot_id TEXT NOT NULL,
                since_boot_ns INTEGER NOT NULL,
                seen_at TEXT NOT NULL,
                strikes INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (dir, network, address)
            ) WITHOUT ROWID;
            ALTER TABLE history ADD COLUMN store TEXT;
            """),
        // 5: what each boot's recovery swept: berth's own leases ("berth") and each guarded host-local directory
        // ("host-local:DIR") marked apart, so that a run with a narrower config (the guardian off, other dirs) does
        // not stand for a sweep it did not make. A mark of the old kind only ever vouches for berth's own leases.
        db => db.Execute("""
            CREATE TABLE recoveries (
                boot_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                recovered_at TEXT NOT NULL,
                released INTEGER NOT NULL,
                PRIMARY KEY (boot_id, scope)
            ) WITHOUT ROWID;
            INSERT INTO recoveries (boot_id, scope, recovered_at, released)
                SELECT boot_id, 'berth', recovered_at, coalesce(released, 0) FROM boots WHERE recovered_at IS NOT NULL;
            """),
    ];

    private static void Migrate(SqliteDb db, string path, StoreOptions options)
    {
        var version = db.Scalar("PRAGMA user_version");
        if (version == SchemaVersion) return;
        if (version < 0)
        {
            // berth only ever writes 0 to SchemaVersion here: a negative one is a damaged header.
            throw new CniException(ErrorCodes.IoFailure,
                $"store {path} is damaged (schema version {version} in its header): berth will not reset it; stop berth-agent, move the file aside and run 'berth-agent check', or restore it from a backup");
        }
        if (version > SchemaVersion)
        {
            throw new CniException(ErrorCodes.IoFailure,
                $"store {path} has schema version {version}, newer than this berth understands ({SchemaVersion}): install the newer berth again");
        }
        // In line with every other writer: a new store is often opened by many ADDs at once.
        using var writerLock = WriterLock.Acquire(LockPath(path), options.LockTimeout, options.Time);
        // Re-read in line: whoever was ahead may have migrated meanwhile, and then there is nothing to write.
        if (db.Scalar("PRAGMA user_version") == SchemaVersion)
        {
            writerLock.Done(committed: false);
            return;
        }
        if (version == 0)
        {
            // Cannot change inside a transaction; persists in the file once set.
            var mode = db.Text("PRAGMA journal_mode = WAL");
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new CniException(ErrorCodes.IoFailure, $"store {path}: its filesystem does not support SQLite's WAL mode (got \"{mode}\"); put dataDir on a local filesystem");
            }
        }
        db.Execute("BEGIN IMMEDIATE");
        try
        {
            // Re-read under the write lock: a parallel process may have migrated meanwhile.
            version = db.Scalar("PRAGMA user_version");
            for (var v = (int)version; v < SchemaVersion; v++) Migrations[v](db);
            db.Execute($"PRAGMA user_version = {SchemaVersion}; COMMIT;");
            writerLock.Done(committed: true);
        }
        catch
        {
            SQLitePCL.raw.sqlite3_exec(db.Handle, "ROLLBACK");
            throw;
        }
    }

    /// <summary>Computes the runs table from the leases (the migration that adds it).</summary>
    internal static void RebuildRuns(SqliteDb db)
    {
        db.Execute("DELETE FROM runs");
        using var read = db.Prepare("SELECT network, address_key FROM leases ORDER BY network, address_key");
        using var insert = db.Prepare("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)");
        string? network = null;
        byte[]? first = null, last = null;
        void Flush()
        {
            if (first is not null) insert.With(("$n", network), ("$f", first), ("$l", last)).Run();
        }
        while (read.Step())
        {
            var net = read.Text(0);
            var key = read.Blob(1);
            if (net == network && last is not null && AddressKey.Next(last) is { } next && AddressKey.Compare(next, key) == 0)
            {
                last = key;
                continue;
            }
            Flush();
            network = net;
            first = last = key;
        }
        Flush();
    }
}
