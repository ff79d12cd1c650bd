using BenchmarkDotNet.Attributes;
using Berth.Shared.Leases;

namespace Berth.Benchmarks;

/// <summary>
/// The next free address with 0 and 60,000 leases in the store (make bench's ADD latency by existing leases):
/// rolled back, so only the queries count; and committed ADD then DEL, where the fsyncs come in.
/// </summary>
public class AllocatorBenchmarks
{
    private StoreFixture _fixture = null!;
    private SqliteLeaseStore _store = null!;
    private int _next;

    [Params(0, 60_000)]
    public int Leases { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _fixture = new StoreFixture(Leases);
        _store = _fixture.Open();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        _fixture.Dispose();
    }

    [Benchmark]
    public int NextFreeRolledBack() =>
        _store.Rehearse(tx => _fixture.Allocator(tx).Allocate(_fixture.Ipam, StoreFixture.Who("probe")).Count);

    [Benchmark]
    public int AddThenDelCommitted()
    {
        var id = $"b{_next++}";
        _store.Write(tx => _fixture.Allocator(tx).Allocate(_fixture.Ipam, StoreFixture.Who(id)).Count);
        return _store.Write(tx => _fixture.Allocator(tx).Release("bench", id, "eth0", Reasons.CniDel));
    }
}
