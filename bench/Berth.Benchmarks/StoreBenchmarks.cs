using BenchmarkDotNet.Attributes;

namespace Berth.Benchmarks;

/// <summary>
/// What every plugin process pays before and around its allocation: opening the store (SQLite, the WAL index,
/// the schema check) and one write transaction (the writer flock, BEGIN IMMEDIATE, the allocator, rollback).
/// </summary>
public class StoreBenchmarks
{
    private StoreFixture _fixture = null!;

    [GlobalSetup]
    public void Setup() => _fixture = new StoreFixture(1_000);

    [GlobalCleanup]
    public void Cleanup() => _fixture.Dispose();

    [Benchmark]
    public void OpenClose()
    {
        using var store = _fixture.Open();
    }

    [Benchmark]
    public int OpenAllocateRolledBack()
    {
        using var store = _fixture.Open();
        return store.Rehearse(tx => _fixture.Allocator(tx).Allocate(_fixture.Ipam, StoreFixture.Who("probe")).Count);
    }
}
