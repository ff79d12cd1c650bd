using System.Text.Json;
using Berth.Shared.Allocation;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.Benchmarks;

/// <summary>A store in a fresh directory under /tmp with N leases from 10.77.0.2 up, as an ADD would make them.</summary>
internal sealed class StoreFixture : IDisposable
{
    private sealed class BenchClock : IBootClock
    {
        public string BootId => "bench-boot";
        public TimeSpan SinceBoot => TimeSpan.FromMilliseconds(Environment.TickCount64);
    }

    private readonly string _dir = Directory.CreateTempSubdirectory("berth-bdn-").FullName;
    private readonly NetnsProbe _netns = new();

    public StoreFixture(int leases)
    {
        using var document = JsonDocument.Parse(
            $$$"""{"cniVersion":"1.0.0","name":"bench","type":"bridge","ipam":{"type":"berth","dataDir":"{{{_dir}}}","ranges":[[{"subnet":"10.77.0.0/16"}]]}}""");
        Ipam = ConfigParser.Parse(document.RootElement, "1.0.0", CniArgs.Empty);
        Options = new StoreOptions(Clock, TimeProvider.System);
        using var store = Open();
        // One transaction for all of them: the fixture's cost, not what is measured.
        store.Write(tx =>
        {
            var allocator = Allocator(tx);
            for (var i = 0; i < leases; i++) allocator.Allocate(Ipam, Who($"fill{i}"));
            return 0;
        });
    }

    public IBootClock Clock { get; } = new BenchClock();

    public StoreOptions Options { get; }

    public IpamConfig Ipam { get; }

    public string StorePath => Ipam.StorePath;

    public SqliteLeaseStore Open() => SqliteLeaseStore.Open(StorePath, Options);

    public Allocator Allocator(ILeaseTransaction tx) => new(tx, Clock, TimeProvider.System, _netns);

    public static Attachment Who(string containerId) => new("bench", containerId, "eth0");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
