using System.Net;
using System.Net.Sockets;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using NSubstitute;

namespace Berth.Tests.HostAgent.HostLocal;

/// <summary>
/// The guardian of host-local's files, in process: the files are written as Debian's host-local writes them
/// (HostLocalFiles; the black-box HostLocalFilesContractTests holds it to the real one) into a directory of the
/// test's, the store is a real SQLite file, the runtime and the clocks are the test's.
/// </summary>
public sealed class HostLocalGuardTests : IDisposable
{
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-1") { SinceBoot = TimeSpan.FromHours(1) };
    private readonly ISandboxSource _runtime = Substitute.For<ISandboxSource>();
    private readonly SqliteLeaseStore _store;

    public HostLocalGuardTests()
    {
        Directory.CreateDirectory(Pins);
        _store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(_clock, TimeProvider.System));
        Runtime(ready: []);
    }

    private string Networks => _dir.File("networks");

    private string Pins => _dir.File("netns");

    private string Socket => _dir.File("runtime.sock");

    private string NetworkDir => Path.Combine(Networks, "cbr0");

    private void Runtime(string[] ready) => _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(new SandboxList(true, ready.ToHashSet()));

    private void RuntimeDown() => _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(SandboxList.Unknown("socket down"));

    private HostLocalGuard Guard() =>
        new([Networks], [Pins], [Socket], TimeSpan.FromSeconds(1), _store, _clock, Grace, "berth-agent", TimeProvider.System, lockTimeout: TimeSpan.FromMilliseconds(200));

    /// <summary>An ADD as Debian's host-local makes it, its files written into the test's directory; returns the address.</summary>
    private string HostLocalAdd(string containerId, string network = "cbr0") => HostLocalFiles.Add(Networks, network, "10.77.0.", containerId);

    private bool FileExists(string address, string network = "cbr0") => File.Exists(Path.Combine(Networks, network, address));

    private Task<EvidenceSnapshot> Gather() => EvidenceSnapshot.GatherAsync(new FakeNetnsProbe(), new FakeProcesses(), _runtime, default);

    private GuardReport Pass(bool dryRun = false) => Guard().PassAsync(Gather().Result, Gather, dryRun).GetAwaiter().GetResult();

    private GuardReport Recover(bool dryRun = false) => Guard().RecoverAsync(Gather, dryRun, default).GetAwaiter().GetResult();

    private IReadOnlyList<HistoryEntry> Releases() => [.. _store.Query(q => q.History(new HistoryFilter())).Where(e => e.Action == "release")];

    private void Reboot()
    {
        _clock.BootId = "boot-" + (int.Parse(_clock.BootId[5..]) + 1);
        _clock.SinceBoot = TimeSpan.FromSeconds(20);
    }

    [Fact]
    public void Recovery_with_no_runtime_in_this_boot_deletes_every_lease_file_and_nothing_else_of_host_locals()
    {
        var a = HostLocalAdd("c1");
        var b = HostLocalAdd("c2");
        Reboot();

        var report = Recover();

        Assert.Equal(2, report.Decisions.Count(d => d.Verdict == Verdict.Release));
        Assert.False(FileExists(a));
        Assert.False(FileExists(b));
        Assert.True(File.Exists(Path.Combine(NetworkDir, "lock")));
        Assert.True(File.Exists(Path.Combine(NetworkDir, "last_reserved_ip.0")));
        var entry = Releases().Single(e => e.Address == a);
        Assert.Equal((Reasons.HostLocalBootRecovery, "cbr0", "c1", "eth0", $"host-local:{Networks}"), (entry.Reason, entry.Network, entry.ContainerId, entry.IfName, entry.Store));
        Assert.Contains(Path.Combine(NetworkDir, a), entry.Detail);
    }

    [Fact]
    public void Recovery_running_late_keeps_files_it_never_saw_and_counts_their_grace_from_now()
    {
        var a = HostLocalAdd("c1");
        File.WriteAllText(Path.Combine(Pins, "cni-1234"), "");

        var report = Recover();

        Assert.True(FileExists(a));
        var decision = Assert.Single(report.Decisions);
        Assert.Equal(Verdict.Young, decision.Verdict);
        Assert.Contains("network namespace pins", decision.Detail);
        var seen = Assert.Single(_store.Read(tx => tx.GuardedFiles()));
        Assert.Equal(("boot-1", _clock.SinceBoot), (seen.BootId, seen.SinceBoot));
    }

    [Fact]
    public void A_file_a_power_cut_left_empty_is_deleted_under_host_locals_lock_also_by_a_late_recovery()
    {
        // The agent saw c1's file in the earlier boot; the cut kept the file (and a new one, c2's, never seen) but
        // not their data: both are empty, and host-local would take both addresses for reserved forever.
        var a = HostLocalAdd("c1");
        Pass();
        var b = HostLocalAdd("c2");
        File.WriteAllText(Path.Combine(NetworkDir, a), "");
        File.WriteAllText(Path.Combine(NetworkDir, b), "");
        Reboot();
        // Late, with a runtime that has run (a pod's pin): no boot proof, as for the agent in a pod. Under host-local's
        // lock an empty file is no write in progress (host-local writes its file whole while holding it), so it goes.
        File.WriteAllText(Path.Combine(Pins, "cni-1234"), "");
        var report = Recover();

        Assert.False(FileExists(a));
        Assert.False(FileExists(b));
        Assert.DoesNotContain(report.Warnings, w => w.Contains("empty", StringComparison.Ordinal));
        Assert.Equal(0, report.Skipped);
        Assert.Equal(2, report.Decisions.Count(d => d.Verdict == Verdict.Release));
        var entry = Releases().Single(e => e.Address == a);
        Assert.Equal((Reasons.HostLocalBootRecovery, "cbr0", "", $"host-local:{Networks}"), (entry.Reason, entry.Network, entry.ContainerId, entry.Store));
        Assert.Contains("empty under host-local's lock", entry.Detail);
        Assert.Empty(_store.Read(tx => tx.GuardedFiles()));
    }

    [Fact]
    public void A_pass_deletes_an_empty_file_only_under_host_locals_lock_and_not_while_host_local_holds_it()
    {
        var a = HostLocalAdd("c1");
        File.WriteAllText(Path.Combine(NetworkDir, a), "");
        Runtime(ready: ["c1"]);

        // host-local holds its lock (an ADD between create and write): the file is left for the next pass.
        using (var held = HostLocalNetwork.Open(Networks, "cbr0"))
        {
            Assert.True(held.Lock(TimeSpan.FromSeconds(1), TimeProvider.System));
            var busy = Pass();
            Assert.True(FileExists(a));
            Assert.Contains(busy.Warnings, w => w.Contains("lock was held", StringComparison.Ordinal));
        }
        var dry = Pass(dryRun: true);
        Assert.True(FileExists(a));
        Assert.Contains(dry.Decisions, d => d.Verdict == Verdict.Release && d.Lease.Address.ToString() == a);

        var report = Pass();

        Assert.False(FileExists(a));
        Assert.Equal(Reasons.HostLocalReconcile, Releases().Single(e => e.Address == a).Reason);
        Assert.Contains(report.Decisions, d => d.Verdict == Verdict.Release && d.Lease.Address.ToString() == a);
    }

    [Fact]
    public void An_empty_file_filled_in_meanwhile_is_not_deleted()
    {
        var a = HostLocalAdd("c1");
        File.WriteAllText(Path.Combine(NetworkDir, a), "");
        using var network = HostLocalNetwork.Open(Networks, "cbr0");
        Assert.True(network.Lock(TimeSpan.FromSeconds(1), TimeProvider.System));
        File.WriteAllText(Path.Combine(NetworkDir, a), "c9\r\neth0");

        Assert.False(network.DeleteIfSame(new HostLocalFile(Networks, "cbr0", IPAddress.Parse(a), "", "")));
        Assert.True(FileExists(a));
        File.WriteAllText(Path.Combine(NetworkDir, a), "");
        Assert.True(network.DeleteIfSame(new HostLocalFile(Networks, "cbr0", IPAddress.Parse(a), "", "")));
        Assert.False(FileExists(a));
    }

    private string? WhyRuntimeMayHaveRun() => BootProof.RuntimeMayHaveRunAsync([Pins], [Socket], TimeSpan.FromSeconds(1), default).GetAwaiter().GetResult();

    [Fact]
    public void The_boot_proof_holds_without_pins_or_an_answering_socket_and_fails_with_either()
    {
        Assert.Null(WhyRuntimeMayHaveRun());
        using (var listener = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            listener.Bind(new UnixDomainSocketEndPoint(Socket));
            listener.Listen();
            Assert.Contains("answers", WhyRuntimeMayHaveRun());
        }
        // A socket file that nobody listens on (a runtime that died): no runtime is up.
        Exec.Must("python3", "-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{Socket}')");
        Assert.True(File.Exists(Socket));
        Assert.Null(WhyRuntimeMayHaveRun());
        File.WriteAllText(Path.Combine(Pins, "cni-1234"), "");
        Assert.Contains("cni-1234", WhyRuntimeMayHaveRun());
    }

    [Fact]
    public void A_file_seen_in_an_earlier_boot_goes_at_recovery_even_while_pods_run_unless_the_runtime_lists_it()
    {
        var a = HostLocalAdd("c1");
        var b = HostLocalAdd("c2");
        Pass();
        Reboot();
        File.WriteAllText(Path.Combine(Pins, "cni-new-pod"), "");
        var c = HostLocalAdd("c3");
        Runtime(ready: ["c2", "c3"]);

        var report = Recover();

        Assert.False(FileExists(a));
        Assert.True(FileExists(b));
        Assert.True(FileExists(c));
        Assert.Equal([a], report.Decisions.Where(d => d.Verdict == Verdict.Release).Select(d => d.Lease.Address.ToString()));
    }

    [Fact]
    public void An_add_in_progress_survives_and_a_lost_sandbox_goes_after_the_grace_period_and_two_strikes()
    {
        var a = HostLocalAdd("c1");
        // The file is written, the runtime does not list the sandbox yet.
        Assert.Equal(Verdict.Young, Assert.Single(Pass().Decisions).Verdict);
        _clock.SinceBoot += Grace;
        Assert.Equal(Verdict.Strike, Assert.Single(Pass().Decisions).Verdict);
        Assert.True(FileExists(a));

        var released = Assert.Single(Pass().Decisions);

        Assert.Equal(Verdict.Release, released.Verdict);
        Assert.False(FileExists(a));
        Assert.Equal(Reasons.HostLocalReconcile, Assert.Single(Releases()).Reason);
        Assert.Empty(_store.Read(tx => tx.GuardedFiles()));
    }

    [Fact]
    public void A_ready_sandbox_keeps_its_file_and_clears_its_strikes()
    {
        var a = HostLocalAdd("c1");
        Pass();
        _clock.SinceBoot += Grace;
        Pass();
        Runtime(ready: ["c1"]);
        Assert.Equal(Verdict.Keep, Assert.Single(Pass().Decisions).Verdict);
        Runtime(ready: []);

        Assert.Equal(Verdict.Strike, Assert.Single(Pass().Decisions).Verdict);
        Assert.True(FileExists(a));
    }

    [Fact]
    public void An_unknown_runtime_never_deletes_a_file_of_this_boot()
    {
        var a = HostLocalAdd("c1");
        RuntimeDown();
        Pass();
        _clock.SinceBoot += Grace * 10;

        Assert.All(Enumerable.Range(0, 3).Select(_ => Assert.Single(Pass().Decisions)), d => Assert.Equal(Verdict.Unknown, d.Verdict));
        Assert.True(FileExists(a));
    }

    [Fact]
    public void The_re_check_just_before_deletion_can_save_a_file()
    {
        var a = HostLocalAdd("c1");
        Pass();
        _clock.SinceBoot += Grace;
        Pass();
        // The first look (the pass's) finds nothing; the second (just before deleting) finds the sandbox.
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(new SandboxList(true, new HashSet<string>()), new SandboxList(true, new HashSet<string> { "c1" }));

        var decision = Assert.Single(Pass().Decisions);

        Assert.Equal(Verdict.Keep, decision.Verdict);
        Assert.StartsWith("re-checked before release", decision.Detail);
        Assert.True(FileExists(a));
    }

    [Fact]
    public void A_new_owner_of_the_same_address_starts_its_grace_period_again()
    {
        var a = HostLocalAdd("c1");
        Pass();
        _clock.SinceBoot += Grace;
        Pass();
        File.WriteAllText(Path.Combine(NetworkDir, a), "c9\r\neth0");

        var decision = Assert.Single(Pass().Decisions);

        Assert.Equal(Verdict.Young, decision.Verdict);
        Assert.Equal("c9", decision.Lease.ContainerId);
    }

    [Fact]
    public void A_dry_run_decides_but_deletes_and_records_nothing()
    {
        var a = HostLocalAdd("c1");
        Reboot();

        Assert.Equal(Verdict.Release, Assert.Single(Recover(dryRun: true).Decisions).Verdict);

        Assert.True(FileExists(a));
        Assert.Empty(Releases());
        Assert.Empty(_store.Read(tx => tx.GuardedFiles()));
    }

    [Theory]
    [InlineData("lock")]
    [InlineData("directory")]
    public void A_deletion_waits_for_host_locals_own_lock_and_leaves_the_file_while_it_is_held(string kind)
    {
        var a = HostLocalAdd("c1");
        Reboot();
        // Newer host-local flocks DIR/NETWORK/lock, older versions the network directory itself.
        using var held = FileLock.Take(kind == "lock" ? Path.Combine(NetworkDir, "lock") : NetworkDir);

        var report = Recover();

        Assert.True(FileExists(a));
        Assert.Contains(report.Warnings, w => w.Contains("host-local's lock was held"));
        Assert.Empty(Releases());
    }

    [Fact]
    public void Hostile_directories_are_skipped_with_warnings_and_only_lease_files_are_ever_deleted()
    {
        var a = HostLocalAdd("c1");
        var outside = _dir.File("outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "10.77.0.99"), "victim\r\neth0");
        File.WriteAllText(Path.Combine(outside, "keep"), "x");
        File.CreateSymbolicLink(Path.Combine(NetworkDir, "10.77.0.99"), Path.Combine(outside, "10.77.0.99"));
        Directory.CreateSymbolicLink(Path.Combine(Networks, "linked"), outside);
        Directory.CreateDirectory(Path.Combine(NetworkDir, "10.77.0.50"));
        File.WriteAllBytes(Path.Combine(NetworkDir, "10.77.0.51"), new byte[2 * 1024 * 1024]);
        File.WriteAllBytes(Path.Combine(NetworkDir, "10.77.0.52"), [0xff, 0xfe, 0x00, 0x41]);
        File.WriteAllText(Path.Combine(NetworkDir, "10.77.0.53"), "not an id!\r\neth0");
        File.WriteAllText(Path.Combine(NetworkDir, "garbage name"), "c2\r\neth0");
        File.WriteAllText(Path.Combine(NetworkDir, "010.77.0.54"), "c2\r\neth0");
        File.WriteAllText(Path.Combine(Networks, "stray-file"), "x");
        Directory.CreateDirectory(Path.Combine(Networks, "bad name!"));
        Reboot();

        var report = Recover();

        Assert.Equal([a], report.Decisions.Where(d => d.Verdict == Verdict.Release).Select(d => d.Lease.Address.ToString()));
        Assert.True(File.Exists(Path.Combine(outside, "10.77.0.99")));
        Assert.True(File.Exists(Path.Combine(outside, "keep")));
        Assert.True(File.Exists(Path.Combine(NetworkDir, "10.77.0.51")));
        Assert.True(Directory.Exists(Path.Combine(NetworkDir, "10.77.0.50")));
        foreach (var name in new[] { "10.77.0.99", "10.77.0.50", "10.77.0.51", "10.77.0.52", "10.77.0.53", "garbage name", "010.77.0.54", "linked", "stray-file", "bad name!" })
        {
            Assert.Contains(report.Warnings, w => w.Contains(name));
        }
    }

    [Fact]
    public void A_network_directory_that_vanishes_is_forgotten_and_a_missing_data_directory_is_no_error()
    {
        HostLocalAdd("c1");
        Pass();
        Assert.Single(_store.Read(tx => tx.GuardedFiles()));
        Directory.Delete(NetworkDir, recursive: true);

        var report = Pass();

        Assert.Empty(report.Decisions);
        Assert.Empty(_store.Read(tx => tx.GuardedFiles()));
        Directory.Delete(Networks, recursive: true);
        Assert.Empty(Pass().Warnings);
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }
}
