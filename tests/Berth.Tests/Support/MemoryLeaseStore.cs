using System.Net;
using Berth.Shared.Allocation;
using Berth.Shared.Leases;

namespace Berth.Tests.Support;

/// <summary>
/// The allocator's store seam in memory: a sorted list of leases, naive scans. Small enough to be obviously right, so the
/// allocator tables can run against it and, in a second class, against the real SQLite store.
/// </summary>
public sealed class MemoryLeaseStore : ILeaseTransaction
{
    private readonly List<Lease> _leases = [];
    private readonly Dictionary<(string, int), IPAddress> _cursors = [];

    public List<(string Action, Lease Lease, Change Change)> History { get; } = [];

    /// <summary>All or nothing, like a store transaction: an exception restores the state before it.</summary>
    public T Transact<T>(Func<ILeaseTransaction, T> work)
    {
        var leases = _leases.ToList();
        var cursors = new Dictionary<(string, int), IPAddress>(_cursors);
        var history = History.Count;
        try
        {
            return work(this);
        }
        catch
        {
            _leases.Clear();
            _leases.AddRange(leases);
            _cursors.Clear();
            foreach (var (k, v) in cursors) _cursors[k] = v;
            History.RemoveRange(history, History.Count - history);
            throw;
        }
    }

    public IReadOnlyList<Lease> LeasesOf(string network, string containerId, string ifName) =>
        [.. _leases.Where(l => l.Network == network && l.IsOwnedBy(containerId, ifName)).OrderBy(l => l.RangeSet)];

    public Lease? Holder(string network, IPAddress address) => _leases.FirstOrDefault(l => l.Network == network && l.Address.Equals(address));

    public IPAddress? FirstUnleased(string network, IPAddress from, IPAddress to)
    {
        for (var a = from; a is not null && Ip.Compare(a, to) <= 0; a = Ip.Next(a))
        {
            if (Holder(network, a) is null) return a;
        }
        return null;
    }

    public IReadOnlyList<Lease> Leases(string network, IPAddress? from = null, IPAddress? to = null) =>
        [.. _leases.Where(l => l.Network == network && (from is null || (l.Address.AddressFamily == from.AddressFamily
            && Ip.Compare(l.Address, from) >= 0 && Ip.Compare(l.Address, to!) <= 0))).OrderBy(l => Ip.ToValue(l.Address))];

    public IPAddress? Cursor(string network, int rangeSet) => _cursors.GetValueOrDefault((network, rangeSet));

    public void SetCursor(string network, int rangeSet, IPAddress address) => _cursors[(network, rangeSet)] = address;

    public void Add(Lease lease, Change change)
    {
        if (Holder(lease.Network, lease.Address) is not null) throw new InvalidOperationException($"{lease.Address} leased twice");
        _leases.Add(lease);
        History.Add(("allocate", lease, change));
    }

    public bool Release(Lease lease, Change change)
    {
        var removed = _leases.RemoveAll(l => l.Network == lease.Network && l.Address.Equals(lease.Address) && l.IsOwnedBy(lease.ContainerId, lease.IfName));
        if (removed > 0) History.Add(("release", lease, change));
        return removed > 0;
    }
}
