using System.Net;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using NSubstitute;

namespace Berth.Tests.HostAgent.Reconcile;

/// <summary>Recovery and reconcile decisions as tables: a real store, evidence and clocks the test sets.</summary>
public sealed class ReconcileTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-2") { SinceBoot = TimeSpan.FromHours(1) };
    private readonly FakeNetnsProbe _netns = new();
    private readonly FakeProcesses _processes = new();
    private readonly ISandboxSource _runtime = Substitute.For<ISandboxSource>();
    private readonly SqliteLeaseStore _store;
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);

    public ReconcileTests()
    {
        _store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(_clock, TimeProvider.System));
        Runtime(ready: []);
    }

    private void Runtime(string[] ready) => _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(new SandboxList(true, ready.ToHashSet()));

    private void RuntimeDown() => _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(SandboxList.Unknown("socket down"));

    /// <summary>A lease as an ADD made it: in a boot, some time after that boot started, for a netns.</summary>
    private Lease Lease(string address, string boot = "boot-2", TimeSpan? madeAt = null, string netns = "", ulong? inode = null)
    {
        var lease = new Lease("net1", IPAddress.Parse(address), 0, "10.0.0.0/24", "c" + address.Split('.')[^1], "eth0", netns, inode, null, null, null,
            boot, madeAt ?? TimeSpan.FromMinutes(1), DateTimeOffset.UnixEpoch, Reasons.CniAdd);
        _store.Write(tx => { tx.Add(lease, new Change(Reasons.CniAdd, "test")); return 0; });
        return lease;
    }

    private Reconciler Reconciler() => new(_store, _clock, _netns, _processes, _runtime, Grace, "berth-agent", TimeProvider.System);

    private ReconcileReport Pass(bool dryRun = false) => Reconciler().PassAsync(dryRun, CancellationToken.None).GetAwaiter().GetResult();

    private bool Held(string address) => _store.Read(tx => tx.Holder("net1", IPAddress.Parse(address))) is not null;

    private long History(string reason) => _store.Scalar($"SELECT count(*) FROM history WHERE action = 'release' AND reason = '{reason}'");

    [Fact]
    public void Recovery_releases_earlier_boot_leases_whose_netns_is_gone_and_keeps_the_rest()
    {
        Lease("10.0.0.2", boot: "boot-1", netns: "/run/netns/gone", inode: 1);
        Lease("10.0.0.3", boot: "boot-1", netns: "/run/netns/same", inode: 2);
        Lease("10.0.0.4", boot: "boot-1", netns: "/run/netns/other", inode: 3);
        Lease("10.0.0.5", boot: "boot-2", netns: "/run/netns/gone", inode: 4);
        _netns.Namespaces["/run/netns/same"] = 2;
        _netns.Namespaces["/run/netns/other"] = 99;

        var result = Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent");

        Assert.Equal(2, result.Released);
        Assert.Equal([false, true, false, true], new[] { "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5" }.Select(Held));
        Assert.Equal(2, History(Reasons.BootRecovery));
    }

    [Fact]
    public void Recovery_records_the_evidence_it_had_unknown_since_no_runtime_was_asked_not_none()
    {
        Lease("10.0.0.2", boot: "boot-1", netns: "/run/netns/gone", inode: 1);
        Lease("10.0.0.3", boot: "boot-1", netns: "/run/netns/same", inode: 2);
        _netns.Namespaces["/run/netns/same"] = 2;

        var result = Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent");

        Assert.Equal([("10.0.0.2", Verdict.Release, EvidenceKind.Unknown), ("10.0.0.3", Verdict.Keep, EvidenceKind.Netns)],
            result.Decisions.Select(d => (d.Lease.Address.ToString(), d.Verdict, d.Evidence)).OrderBy(d => d.Item1));
    }

    [Fact]
    public void Recovery_runs_once_per_boot()
    {
        Lease("10.0.0.2", boot: "boot-1");
        var first = Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent");
        Lease("10.0.0.3", boot: "boot-1");

        var second = Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent");

        Assert.Null(first.AlreadyDoneAt);
        Assert.NotNull(second.AlreadyDoneAt);
        Assert.Equal(0, second.Released);
        Assert.True(Held("10.0.0.3"));
        _clock.BootId = "boot-3";
        Assert.Equal(1, Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent").Released);
    }

    [Fact]
    public void Recovery_dry_run_changes_nothing_and_does_not_count_as_done()
    {
        Lease("10.0.0.2", boot: "boot-1");

        var dry = Recovery.Run(_store, _clock, _netns, dryRun: true, "berth-agent");

        Assert.Equal(1, dry.Released);
        Assert.True(Held("10.0.0.2"));
        Assert.Equal(1, Recovery.Run(_store, _clock, _netns, dryRun: false, "berth-agent").Released);
    }

    /// <summary>The attachment deleted and added again at the same address, as a runtime may do while a pass runs.</summary>
    private void AddedAgain(string address)
    {
        _store.Write(tx =>
        {
            var old = tx.Holder("net1", IPAddress.Parse(address))!;
            tx.Release(old, new Change(Reasons.CniDel, "test"));
            tx.Add(old with { SinceBoot = _clock.SinceBoot }, new Change(Reasons.CniAdd, "test"));
            return 0;
        });
    }

    /// <summary>The runtime's answer, with <paramref name="meanwhile"/> done on the <paramref name="call"/>th question (1-based).</summary>
    private void RuntimeMeanwhile(int call, Action meanwhile)
    {
        var calls = 0;
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(_ =>
        {
            if (++calls == call) meanwhile();
            return new SandboxList(true, new HashSet<string>());
        });
    }

    [Fact]
    public void A_strike_counts_only_for_the_lease_the_pass_judged_not_for_one_added_again_at_its_address_meanwhile()
    {
        Lease("10.0.0.2", netns: "/run/netns/gone", inode: 7);
        // While the first pass gathers its evidence, the attachment is deleted and added again at the same address:
        // the new lease is younger than the grace period.
        RuntimeMeanwhile(1, () => AddedAgain("10.0.0.2"));

        var first = Pass();
        _clock.SinceBoot += Grace + TimeSpan.FromMinutes(1);
        var second = Pass();

        Assert.Equal(Verdict.Young, Assert.Single(first.Decisions).Verdict);
        // Its first pass without evidence past the grace period: one strike, not two.
        Assert.Equal(Verdict.Strike, Assert.Single(second.Decisions).Verdict);
        Assert.True(Held("10.0.0.2"));
    }

    [Fact]
    public void A_lease_added_again_at_the_address_of_a_candidate_before_its_release_is_not_released_in_its_place()
    {
        Lease("10.0.0.2", netns: "/run/netns/gone", inode: 7);
        // Pass 1 asks the runtime once (a strike); pass 2 asks once to judge and once more just before it releases.
        RuntimeMeanwhile(3, () => AddedAgain("10.0.0.2"));

        Pass();
        var second = Pass();

        Assert.DoesNotContain(second.Decisions, d => d.Verdict == Verdict.Release);
        Assert.True(Held("10.0.0.2"));
        Assert.Equal(0, History(Reasons.Reconcile));
    }

    [Fact]
    public void A_current_lease_without_evidence_goes_on_the_second_pass_after_the_grace_period()
    {
        Lease("10.0.0.2", netns: "/run/netns/gone", inode: 7);

        var first = Pass();
        var second = Pass();

        Assert.Equal(Verdict.Strike, Assert.Single(first.Decisions).Verdict);
        Assert.Equal(Verdict.Release, Assert.Single(second.Decisions).Verdict);
        Assert.False(Held("10.0.0.2"));
        Assert.Equal(1, History(Reasons.Reconcile));
    }

    [Fact]
    public void A_lease_younger_than_the_grace_period_is_never_struck()
    {
        Lease("10.0.0.2", madeAt: _clock.SinceBoot - TimeSpan.FromMinutes(4));

        Pass();
        var second = Pass();

        Assert.Equal(Verdict.Young, Assert.Single(second.Decisions).Verdict);
        Assert.True(Held("10.0.0.2"));
    }

    [Fact]
    public void The_grace_period_is_measured_on_the_boot_clock_not_the_wall_clock()
    {
        // Made a long time ago by the wall clock (CreatedAt is the epoch) but 2 minutes ago on the boot clock.
        Lease("10.0.0.2", madeAt: _clock.SinceBoot - TimeSpan.FromMinutes(2));

        Pass();

        Assert.Equal(Verdict.Young, Assert.Single(Pass().Decisions).Verdict);
    }

    [Theory]
    [InlineData("netns")]
    [InlineData("process")]
    [InlineData("runtime")]
    public void Any_live_evidence_keeps_a_lease_and_clears_its_strikes(string source)
    {
        Lease("10.0.0.2", netns: "/run/netns/p", inode: 42);
        Pass();
        switch (source)
        {
            case "netns": _netns.Namespaces["/run/netns/p"] = 42; break;
            case "process": _processes.Inodes = [42]; break;
            default: Runtime(["c2"]); break;
        }

        var kept = Assert.Single(Pass().Decisions);
        _netns.Namespaces.Clear();
        _processes.Inodes = [];
        Runtime([]);
        var afterwards = Assert.Single(Pass().Decisions);

        Assert.Equal(Verdict.Keep, kept.Verdict);
        Assert.Equal(source, kept.Evidence.ToString().ToLowerInvariant());
        Assert.Equal((Verdict.Strike, 1), (afterwards.Verdict, afterwards.Strikes));
    }

    [Fact]
    public void Unknown_evidence_never_releases_and_does_not_count_as_a_strike()
    {
        Lease("10.0.0.2");
        RuntimeDown();

        Pass();
        var second = Pass();
        Runtime([]);
        var third = Pass();

        Assert.Equal(Verdict.Unknown, Assert.Single(second.Decisions).Verdict);
        Assert.True(Held("10.0.0.2"));
        Assert.Equal(Verdict.Strike, Assert.Single(third.Decisions).Verdict);
    }

    [Fact]
    public void Unreadable_processes_are_unknown_too()
    {
        Lease("10.0.0.2", netns: "/run/netns/gone", inode: 5);
        _processes.Inodes = null;

        Pass();

        Assert.Equal(Verdict.Unknown, Assert.Single(Pass().Decisions).Verdict);
    }

    [Fact]
    public void The_re_check_just_before_release_can_save_a_lease()
    {
        Lease("10.0.0.2");
        Pass();
        // The first look in the next pass finds nothing; by the re-check the sandbox is ready.
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(
            new SandboxList(true, new HashSet<string>()), new SandboxList(true, new HashSet<string> { "c2" }));

        var decision = Assert.Single(Pass().Decisions);

        Assert.Equal((Verdict.Keep, EvidenceKind.Runtime), (decision.Verdict, decision.Evidence));
        Assert.StartsWith("re-checked", decision.Detail);
        Assert.True(Held("10.0.0.2"));
    }

    [Fact]
    public void An_earlier_boot_lease_goes_at_once_unless_its_netns_or_the_runtime_vouches()
    {
        Lease("10.0.0.2", boot: "boot-1", netns: "/run/netns/gone", inode: 5);
        Lease("10.0.0.3", boot: "boot-1", netns: "/run/netns/alive", inode: 6);
        Lease("10.0.0.4", boot: "boot-1", inode: 7);
        Lease("10.0.0.5", boot: "boot-1", inode: 8);
        _netns.Namespaces["/run/netns/alive"] = 6;
        _processes.Inodes = [7];
        Runtime(["c5"]);

        Pass();

        // .4: a process in a namespace with the same inode number proves nothing across a reboot.
        Assert.Equal([false, true, false, true], new[] { "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5" }.Select(Held));
    }

    [Fact]
    public void An_unreachable_runtime_does_not_keep_an_earlier_boot_lease()
    {
        Lease("10.0.0.2", boot: "boot-1");
        RuntimeDown();

        Pass();

        Assert.False(Held("10.0.0.2"));
    }

    [Fact]
    public void A_dry_run_decides_but_changes_nothing()
    {
        Lease("10.0.0.3");
        Lease("10.0.0.4");
        Pass();
        Lease("10.0.0.2", boot: "boot-1");
        var before = File.ReadAllBytes(_dir.File("berth.db-wal"));

        var report = Pass(dryRun: true);

        // What a real pass would do: .2 (earlier boot) and .3, .4 (second strike) go.
        Assert.Equal([Verdict.Release, Verdict.Release, Verdict.Release], report.Decisions.Select(d => d.Verdict));
        Assert.Equal(before, File.ReadAllBytes(_dir.File("berth.db-wal")));
        Assert.True(Held("10.0.0.2") && Held("10.0.0.3") && Held("10.0.0.4"));
        Assert.Equal(3, Pass().Released);
    }

    [Fact]
    public void A_lease_released_by_a_del_between_the_passes_is_not_released_twice()
    {
        var lease = Lease("10.0.0.2");
        Pass();
        _store.Write(tx => tx.Release(lease, new Change(Reasons.CniDel, "test")));

        var report = Pass();

        Assert.Empty(report.Decisions);
        Assert.Equal(0, History(Reasons.Reconcile));
    }

    [Fact]
    public void A_new_owner_of_the_same_address_starts_with_no_strikes()
    {
        var old = Lease("10.0.0.2");
        Pass();
        _store.Write(tx => tx.Release(old, new Change(Reasons.CniDel, "test")));
        _store.Write(tx =>
        {
            tx.Add(old with { ContainerId = "newer" }, new Change(Reasons.CniAdd, "test"));
            return 0;
        });

        var decision = Assert.Single(Pass().Decisions);

        Assert.Equal((Verdict.Strike, 1), (decision.Verdict, decision.Strikes));
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }
}
