using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// The store as the allocator sees it, inside one transaction: everything it reads is consistent, and
/// everything it changes is committed together (history included) or not at all. Small on purpose (as
/// host-local's store is): what only the plugin's verbs or the agent need is on <see cref="IStoreTransaction"/>.
/// </summary>
public interface ILeaseTransaction
{
    /// <summary>The leases an attachment holds in a network.</summary>
    IReadOnlyList<Lease> LeasesOf(string network, string containerId, string ifName);

    /// <summary>The lease holding an address, or null when it is free.</summary>
    Lease? Holder(string network, IPAddress address);

    /// <summary>The lowest address in [from, to] that no lease holds, or null; cost independent of the range size.</summary>
    IPAddress? FirstUnleased(string network, IPAddress from, IPAddress to);

    /// <summary>The leases whose addresses lie in [from, to], or every lease of the network when both are null.</summary>
    IReadOnlyList<Lease> Leases(string network, IPAddress? from = null, IPAddress? to = null);

    /// <summary>The last address handed out in a range set (the round-robin position), or null.</summary>
    IPAddress? Cursor(string network, int rangeSet);

    /// <summary>Moves the round-robin position of a range set.</summary>
    void SetCursor(string network, int rangeSet, IPAddress address);

    /// <summary>Records a new lease and its history entry; the store refuses an address or attachment slot already taken.</summary>
    void Add(Lease lease, Change change);

    /// <summary>Removes a lease and records why; false when it was already gone.</summary>
    bool Release(Lease lease, Change change);
}
