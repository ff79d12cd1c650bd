using System.Net;
using Berth.HostAgent;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.Operator;
using Berth.Shared.Allocation;
using Berth.Shared.Config;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using NSubstitute;

namespace Berth.Tests.HostAgent;

/// <summary>The operator commands' logic in-process, with the runtime as a seam the test controls.</summary>
public sealed class OperatorInProcessTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-1");
    private readonly FakeNetnsProbe _netns = new();
    private readonly ISandboxSource _runtime = Substitute.For<ISandboxSource>();
    private readonly SqliteLeaseStore _store;

    public OperatorInProcessTests()
    {
        _store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(_clock, TimeProvider.System));
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(new SandboxList(true, new HashSet<string>()));
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.68.0.0/29"}]]""");
        foreach (var id in new[] { "c1", "c2" })
        {
            _store.Write(tx =>
            {
                tx.RecordRanges("net1", RecordedRanges.Format(config));
                return new Allocator(tx, _clock, TimeProvider.System, _netns).Allocate(config, new Attachment("net1", id, "eth0", "/run/netns/" + id, 7));
            });
        }
    }

    private ReleaseOutcome Release(string address, string? owner = null, bool force = false) =>
        new ManualRelease(_store, _clock, _netns, new FakeProcesses(), _runtime, [], TimeProvider.System).RunAsync(address, "net1", owner, force, dryRun: false, "tester", default).GetAwaiter().GetResult();

    [Fact]
    public void A_runtime_that_lists_the_sandbox_as_ready_makes_a_release_refused()
    {
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(new SandboxList(true, new HashSet<string> { "c1" }));

        Assert.Equal(ReleaseStatus.Refused, Release("10.68.0.2").Status);
        Assert.Equal(ReleaseStatus.Released, Release("10.68.0.3").Status);
    }

    [Fact]
    public void Evidence_that_cannot_be_gathered_refuses_unless_forced()
    {
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(SandboxList.Unknown("socket down"));

        var refused = Release("10.68.0.2");
        var forced = Release("10.68.0.2", force: true);

        Assert.Equal(ReleaseStatus.Refused, refused.Status);
        Assert.Contains("cannot be checked (socket down)", refused.Message);
        Assert.Equal(ReleaseStatus.Released, forced.Status);
        Assert.Null(_store.Read(tx => tx.Holder("net1", IPAddress.Parse("10.68.0.2"))));
        var entry = _store.Query(q => q.History(new HistoryFilter("10.68.0.2"))).Last();
        Assert.Equal(("manual", "tester"), (entry.Reason, entry.Actor));
    }

    [Fact]
    public void Check_finds_nothing_in_a_healthy_store_and_a_full_range_when_full()
    {
        Assert.Empty(HealthCheck.Run(_store, new FakeBootClock("boot-1"), []));
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.68.0.0/29"}]]""");
        foreach (var id in new[] { "c3", "c4", "c5" })
        {
            _store.Write(tx =>
            {
                tx.RecordRanges("net1", RecordedRanges.Format(config));
                return new Allocator(tx, _clock, TimeProvider.System, _netns).Allocate(config, new Attachment("net1", id, "eth0"));
            });
        }

        Assert.Equal(["range-full"], HealthCheck.Run(_store, new FakeBootClock("boot-1"), []).Select(f => f.Kind));
        Assert.Equal(["range-full", "previous-boot"], HealthCheck.Run(_store, new FakeBootClock("boot-2"), []).Select(f => f.Kind));
    }

    [Fact]
    public void Import_in_process_takes_the_recorded_ranges_for_the_range_set()
    {
        var dir = Path.Combine(_dir.Path, "hl", "net1");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "10.68.0.6"), "imported\r\neth0");

        var report = new HostLocalImport(_store, _clock, TimeProvider.System).Run(Path.Combine(_dir.Path, "hl"), null, dryRun: false, "tester");

        Assert.Single(report.Imported);
        var lease = _store.Read(tx => tx.Holder("net1", IPAddress.Parse("10.68.0.6")))!;
        Assert.Equal(("imported", 0, "10.68.0.0/29", "import"), (lease.ContainerId, lease.RangeSet, lease.Subnet, lease.Origin));
    }

    [Fact]
    public void Leases_shows_this_boots_age_on_the_boot_clock_and_an_earlier_boots_on_the_wall_clock()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.68.0.0/29"}]]""");
        void Add(string id) => _store.Write(tx => new Allocator(tx, _clock, time, _netns).Allocate(config, new Attachment("net1", id, "eth0", "/run/netns/" + id, 9)));
        Add("old");
        // Two days later on the wall clock, in another boot, 2 min after it started: a new lease, 30 s before the listing.
        time.Advance(TimeSpan.FromDays(2));
        _clock.BootId = "boot-2";
        _clock.SinceBoot = TimeSpan.FromMinutes(2);
        Add("new");
        _clock.SinceBoot += TimeSpan.FromSeconds(30);
        var evidence = new EvidenceSnapshot(_netns, new HashSet<ulong>(), new SandboxList(true, new HashSet<string>()));

        var listing = LeaseListing.Gather(_store, [], null, evidence, _clock, time);
        using var json = new MemoryStream();
        listing.WriteJson(json);
        var rows = System.Text.Json.JsonDocument.Parse(json.ToArray()).RootElement.GetProperty("leases").EnumerateArray()
            .ToDictionary(r => r.GetProperty("containerId").GetString()!);

        Assert.Equal(("previous", 172800.0, "2026-12-01T12:00:00.0000000Z"),
            (rows["old"].GetProperty("boot").GetString(), rows["old"].GetProperty("ageSeconds").GetDouble(), rows["old"].GetProperty("createdAt").GetString()));
        Assert.Equal(("current", 30.0, "2026-12-03T12:00:00.0000000Z"),
            (rows["new"].GetProperty("boot").GetString(), rows["new"].GetProperty("ageSeconds").GetDouble(), rows["new"].GetProperty("createdAt").GetString()));
        Assert.Contains("old/eth0  2d0h  previous", listing.Table());
        Assert.Contains("new/eth0  30s   current", listing.Table());
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }
}
