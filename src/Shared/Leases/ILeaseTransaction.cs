using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// The store as the allocator sees it, inside one transaction: everything it reads is consistent, and
/// everything it changes is committed together (history included) or not at all.
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

    /// <summary>Every lease of every network, ordered by network and address.</summary>
    IReadOnlyList<Lease> AllLeases();

    /// <summary>When the once-per-boot recovery ran for this boot, or null.</summary>
    DateTimeOffset? RecoveredAt(string bootId);

    /// <summary>Records that recovery ran for this boot and how many leases it released.</summary>
    void RecordRecovery(string bootId, int released);

    /// <summary>
    /// Counts one more consecutive reconcile pass that found the lease without evidence; returns the count.
    /// A different owner of the same address starts again at one.
    /// </summary>
    int AddStrike(Lease lease);

    /// <summary>Forgets the lease's strikes: evidence was found.</summary>
    void ClearStrikes(Lease lease);

    /// <summary>
    /// Deletes history rows that are both older than <paramref name="keepSince"/> and not among the newest
    /// <paramref name="keepEvents"/>: whichever keeps more wins. Leases are never touched.
    /// </summary>
    int PruneHistory(int keepEvents, DateTimeOffset keepSince);

    /// <summary>Remembers the network's current ranges (as the plugin last saw them) for the operator checks.</summary>
    void RecordRanges(string network, string ranges);
}
