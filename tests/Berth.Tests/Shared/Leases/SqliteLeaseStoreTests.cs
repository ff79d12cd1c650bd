using System.Net;
using Berth.Shared.Cni;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Berth.Tests.Shared.Leases;

public sealed class SqliteLeaseStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-a");

    private string DataDir => Path.Combine(_dir.Path, "data");
    private string StorePath => Path.Combine(DataDir, "berth.db");

    private SqliteLeaseStore Open(TimeSpan? lockTimeout = null) =>
        SqliteLeaseStore.Open(StorePath, new StoreOptions(_clock, TimeProvider.System) { LockTimeout = lockTimeout ?? TimeSpan.FromSeconds(10) });

    private static Lease LeaseOf(string address, string container = "c1", int rangeSet = 0, string network = "net1") =>
        new(network, IPAddress.Parse(address), rangeSet, "10.0.0.0/24", container, "eth0", "/var/run/netns/x", 4026532000, "default", "pod-" + container,
            "uid-" + container, "boot-a", TimeSpan.FromSeconds(42), DateTimeOffset.Parse("2026-11-22T10:00:00Z"), Reasons.CniAdd);

    private static readonly Change Added = new(Reasons.CniAdd, "test");

    [Fact]
    public void A_new_store_is_private_and_in_wal_mode_with_full_sync()
    {
        using var store = Open();

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(DataDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(StorePath));
        Assert.Equal(2L, store.Scalar("PRAGMA synchronous"));
        Assert.Equal("wal", store.Db.Text("PRAGMA journal_mode"));
        Assert.Equal(SqliteLeaseStore.SchemaVersion, store.Scalar("PRAGMA user_version"));
    }

    [Fact]
    public void A_lease_keeps_everything_it_was_given()
    {
        using (var store = Open()) store.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); return 0; });

        using var reopened = Open();
        var lease = reopened.Read(tx => tx.Holder("net1", IPAddress.Parse("10.0.0.9")));

        Assert.Equal(LeaseOf("10.0.0.9"), lease);
    }

    [Fact]
    public void The_store_itself_refuses_a_second_lease_of_an_address()
    {
        using var store = Open();
        store.Write(tx => { tx.Add(LeaseOf("10.0.0.9", "c1"), Added); return 0; });

        var e = Assert.Throws<CniException>(() => store.Write(tx => { tx.Add(LeaseOf("10.0.0.9", "c2"), Added); return 0; }));

        Assert.Equal(ErrorCodes.IoFailure, e.Code);
        Assert.Contains("twice", e.Message);
        Assert.Equal("c1", store.Read(tx => tx.Holder("net1", IPAddress.Parse("10.0.0.9")))!.ContainerId);
    }

    [Fact]
    public void The_store_itself_refuses_two_addresses_for_one_attachment_in_one_range_set()
    {
        using var store = Open();
        store.Write(tx => { tx.Add(LeaseOf("10.0.0.9", "c1"), Added); return 0; });

        Assert.Throws<CniException>(() => store.Write(tx => { tx.Add(LeaseOf("10.0.0.10", "c1"), Added); return 0; }));
        store.Write(tx => { tx.Add(LeaseOf("fd00::9", "c1", rangeSet: 1), Added); return 0; });

        Assert.Equal(2, store.Read(tx => tx.LeasesOf("net1", "c1", "eth0")).Count);
    }

    [Fact]
    public void The_same_address_may_be_leased_in_two_networks()
    {
        using var store = Open();
        store.Write(tx => { tx.Add(LeaseOf("10.0.0.9", network: "a"), Added); tx.Add(LeaseOf("10.0.0.9", network: "b"), Added); return 0; });

        Assert.Single(store.Read(tx => tx.Leases("a")));
        Assert.Single(store.Read(tx => tx.Leases("b")));
    }

    [Fact]
    public void History_is_written_with_the_change_or_not_at_all()
    {
        using var store = Open();
        store.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); tx.Release(LeaseOf("10.0.0.9"), new Change(Reasons.CniDel, "test", "why")); return 0; });

        Assert.Throws<InvalidOperationException>(() => store.Write<int>(tx =>
        {
            tx.Add(LeaseOf("10.0.0.10"), Added);
            throw new InvalidOperationException("killed half way");
        }));

        Assert.Equal(2L, store.Scalar("SELECT count(*) FROM history"));
        Assert.Equal(0L, store.Scalar("SELECT count(*) FROM leases"));
        Assert.Equal(1L, store.Scalar("SELECT count(*) FROM history WHERE action = 'release' AND reason = 'cni-del' AND detail = 'why' AND boot_id = 'boot-a'"));
    }

    [Fact]
    public void Release_of_a_lease_already_gone_reports_false_and_writes_no_history()
    {
        using var store = Open();

        Assert.False(store.Write(tx => tx.Release(LeaseOf("10.0.0.9"), Added)));
        Assert.Equal(0L, store.Scalar("SELECT count(*) FROM history"));
    }

    [Fact]
    public void A_new_lease_at_an_address_starts_without_the_strikes_counted_for_an_earlier_one()
    {
        using var store = Open();
        var first = LeaseOf("10.0.0.9");
        store.Write(tx => { tx.Add(first, Added); return tx.Release(first, new Change(Reasons.CniDel, "test")); });
        // A strike counted after the lease was released, as an agent before this fix did when it struck a lease from
        // a list read before a DEL.
        store.Write(tx => tx.AddStrike(first));

        var again = first with { SinceBoot = TimeSpan.FromSeconds(50) };
        var strikes = store.Write(tx => { tx.Add(again, Added); return tx.AddStrike(again); });

        Assert.Equal(1, strikes);
    }

    /// <summary>
    /// A DEL killed after its commit frame reached the WAL but before it published it in the shared WAL index, with
    /// another connection open (so the index is not rebuilt), made as it would be: the DEL runs, then the index and
    /// the writer lock's clean-release mark are put back as they were before it.
    /// </summary>
    private void DelKilledMidCommit(SqliteLeaseStore store, Lease lease)
    {
        var shm = File.ReadAllBytes(StorePath + "-shm");
        var done = File.ReadAllBytes(StorePath + ".lock")[8..16];
        store.Write(tx => tx.Release(lease, new Change(Reasons.CniDel, "test")));
        foreach (var (file, bytes, offset) in new[] { (StorePath + "-shm", shm, 0L), (StorePath + ".lock", done, 8L) })
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Write);
            RandomAccess.Write(handle, bytes, offset);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_transaction_that_answered_from_the_state_before_a_writer_died_mid_commit_is_not_undone_later(bool writesNothing)
    {
        var lease = LeaseOf("10.0.0.9");
        bool stillHeld;
        using (var store = Open())
        using (var other = Open())
        {
            store.Write(tx => { tx.Add(lease, Added); return 0; });
            DelKilledMidCommit(store, lease);

            // The next writer, an ADD of the same attachment, finds the lease held (the dead DEL is not in the index)
            // and answers with it; it writes nothing, or something unrelated.
            stillHeld = other.Write(tx =>
            {
                if (!writesNothing) tx.RecordRanges("net2", "10.1.0.0/24");
                return tx.Holder("net1", lease.Address) is not null;
            });
        }

        // Every connection closed: the next one rebuilds the index from the WAL, as after the last process exits.
        using var reopened = Open();
        Assert.True(stillHeld, "the simulated crash did not hide the DEL");
        Assert.NotNull(reopened.Read(tx => tx.Holder("net1", lease.Address)));
        Assert.Equal("ok", reopened.Db.Text("PRAGMA integrity_check"));
    }

    [Fact]
    public void A_writer_whose_transaction_is_refused_before_its_commit_leaves_the_lock_clean()
    {
        using var store = Open();
        store.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); return 0; });

        Assert.Throws<CniException>(() => store.Write<int>(_ => throw new CniException(ErrorCodes.AddressUnavailable, "refused")));

        // Nothing was committed, so the next writer need not write a page to seal anything.
        using var next = WriterLock.Acquire(StorePath + ".lock", TimeSpan.FromSeconds(10), TimeProvider.System);
        Assert.False(next.PreviousHolderDied);
    }

    [Fact]
    public void A_connection_kept_open_holds_no_snapshot_between_its_transactions()
    {
        // As berth-agent keeps a store: its prepared statements outlive each transaction, and must not hold it open.
        using var kept = Open();
        kept.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); tx.Add(LeaseOf("10.0.0.10", container: "c2"), Added); return 0; });
        Assert.NotNull(kept.Read(tx => tx.Holder("net1", IPAddress.Parse("10.0.0.9"))));
        Assert.Equal(2, kept.Read(tx => tx.AllLeases()).Count);

        using var other = Open();
        other.Db.Execute("PRAGMA wal_checkpoint(TRUNCATE)");

        Assert.Equal(0, new FileInfo(StorePath + "-wal").Length);
        Assert.Equal(2, kept.Read(tx => tx.AllLeases()).Count);
    }

    [Fact]
    public void A_writer_waits_for_the_lock_at_most_the_limit_then_fails_with_11()
    {
        using var holder = Open();
        using var waiter = Open(TimeSpan.FromMilliseconds(300));
        holder.Execute("BEGIN IMMEDIATE");

        var e = Assert.Throws<CniException>(() => waiter.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); return 0; }));

        Assert.Equal(ErrorCodes.TryAgainLater, e.Code);
        holder.Execute("ROLLBACK");
        waiter.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); return 0; });
    }

    [Fact]
    public void Migration_from_version_1_keeps_every_row_and_builds_the_runs()
    {
        Directory.CreateDirectory(DataDir);
        using (var v1 = SqliteDb.Open(StorePath, create: true))
        {
            v1.Execute("BEGIN");
            SqliteLeaseStore.Migrations[0](v1);
            v1.Execute("""
                INSERT INTO leases VALUES ('net1', x'040a000002', '10.0.0.2', 0, '10.0.0.0/24', 'a', 'eth0', '', NULL, NULL, NULL, NULL, 'boot-0', 0, '2026-01-01T00:00:00.000Z', 'cni-add');
                INSERT INTO leases VALUES ('net1', x'040a000003', '10.0.0.3', 0, '10.0.0.0/24', 'b', 'eth0', '', NULL, NULL, NULL, NULL, 'boot-0', 0, '2026-01-01T00:00:00.000Z', 'cni-add');
                INSERT INTO leases VALUES ('net1', x'040a000005', '10.0.0.5', 0, '10.0.0.0/24', 'c', 'eth0', '', NULL, NULL, NULL, NULL, 'boot-0', 0, '2026-01-01T00:00:00.000Z', 'cni-add');
                INSERT INTO history (at, boot_id, since_boot_ns, action, reason, actor, network, address, container_id, ifname) VALUES ('2026-01-01T00:00:00.000Z', 'boot-0', 0, 'allocate', 'cni-add', 'berth', 'net1', '10.0.0.2', 'a', 'eth0');
                PRAGMA user_version = 1;
                """);
            v1.Execute("COMMIT");
        }

        using var store = Open();

        Assert.Equal(SqliteLeaseStore.SchemaVersion, store.Scalar("PRAGMA user_version"));
        Assert.Equal(3, store.Read(tx => tx.Leases("net1")).Count);
        Assert.Equal(1L, store.Scalar("SELECT count(*) FROM history"));
        Assert.Equal(2L, store.Scalar("SELECT count(*) FROM runs"));
        Assert.Equal("10.0.0.4", store.Read(tx => tx.FirstUnleased("net1", IPAddress.Parse("10.0.0.2"), IPAddress.Parse("10.0.0.9")))!.ToString());
    }

    [Fact]
    public void A_store_from_a_newer_berth_is_refused_and_left_alone()
    {
        using (var store = Open()) store.Execute("PRAGMA user_version = 99");
        var before = File.ReadAllBytes(StorePath);

        var e = Assert.Throws<CniException>(() => Open());

        Assert.Equal(ErrorCodes.IoFailure, e.Code);
        Assert.Contains("newer", e.Message);
        Assert.Equal(before, File.ReadAllBytes(StorePath));
    }

    /// <summary>
    /// The agent's metrics page reads the store from another thread while a reconcile pass writes it: a transaction
    /// belongs to the connection, not the thread, so the two must take turns or one fails ("cannot start a
    /// transaction within a transaction") and may end the other's.
    /// </summary>
    [Fact]
    public async Task Reads_on_one_thread_and_writes_on_another_take_turns_on_the_one_connection()
    {
        using var store = Open();
        const int Rounds = 300;

        var writer = Task.Run(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                store.Write(tx => { tx.Add(LeaseOf("10.0.0.9"), Added); return 0; });
                store.Write(tx => tx.Release(LeaseOf("10.0.0.9"), new Change(Reasons.CniDel, "test")));
            }
        });
        var reader = Task.Run(() =>
        {
            for (var i = 0; i < Rounds * 4; i++) Assert.InRange(store.Query(q => q.LeasesByBoot("boot-a")).Current, 0, 1);
        });
        await Task.WhenAll(writer, reader);

        Assert.Equal((0L, 0L), store.Query(q => q.LeasesByBoot("boot-a")));
        Assert.Equal(Rounds * 2, store.Scalar("SELECT count(*) FROM history"));
    }

    [Fact]
    public void Opening_without_create_does_not_make_a_store()
    {
        var e = Assert.Throws<CniException>(() => SqliteLeaseStore.Open(StorePath, new StoreOptions(_clock, TimeProvider.System) { Create = false }));

        Assert.Equal(ErrorCodes.IoFailure, e.Code);
        Assert.False(Directory.Exists(DataDir));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void The_runs_index_always_agrees_with_a_scan_of_the_leases(int seed)
    {
        var random = new Random(seed);
        using var store = Open();
        var held = new HashSet<int>();
        for (var step = 0; step < 300; step++)
        {
            var host = random.Next(0, 64);
            var address = $"10.0.0.{host}";
            store.Write(tx =>
            {
                if (held.Remove(host)) tx.Release(LeaseOf(address, "c" + host), Added);
                else if (held.Add(host)) tx.Add(LeaseOf(address, "c" + host), Added);
                return 0;
            });
            var from = random.Next(0, 64);
            var to = random.Next(from, 64);
            var expected = Enumerable.Range(from, to - from + 1).Where(h => !held.Contains(h)).Select(h => $"10.0.0.{h}").FirstOrDefault();
            var actual = store.Read(tx => tx.FirstUnleased("net1", IPAddress.Parse($"10.0.0.{from}"), IPAddress.Parse($"10.0.0.{to}")));
            Assert.True(expected == actual?.ToString(), $"seed {seed} step {step}: first free in .{from}-.{to} is {expected}, the store said {actual}");
        }
    }

    [Fact]
    public void Pruning_history_keeps_whichever_is_more_and_never_touches_leases()
    {
        var clock = new FakeBootClock();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));
        using var store = SqliteLeaseStore.Open(_dir.File("prune.db"), new StoreOptions(clock, time));
        Lease L(int i) => new("n", IPAddress.Parse($"10.0.0.{i}"), 0, "10.0.0.0/24", $"c{i}", "eth0", "", null, null, null, null, clock.BootId, TimeSpan.Zero, time.GetUtcNow(), Reasons.CniAdd);
        for (var i = 1; i <= 10; i++) store.Write(tx => { tx.Add(L(i), new Change(Reasons.CniAdd, "t")); return 0; });
        time.Advance(TimeSpan.FromDays(40));
        for (var i = 11; i <= 13; i++) store.Write(tx => { tx.Add(L(i), new Change(Reasons.CniAdd, "t")); return 0; });

        var keepFive = store.Write(tx => tx.PruneHistory(5, time.GetUtcNow() - TimeSpan.FromDays(30)));
        var keepRecent = store.Write(tx => tx.PruneHistory(1, time.GetUtcNow() - TimeSpan.FromDays(30)));

        Assert.Equal(8, keepFive);
        Assert.Equal(2, keepRecent);
        Assert.Equal(13, store.Read(tx => tx.AllLeases().Count));
        Assert.Equal(3, store.Query(q => q.History(new HistoryFilter())).Count);
    }

    public void Dispose() => _dir.Dispose();
}
