using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// A row of the agent's ledger of host-local's files: the file <c>Dir/Network/Address</c>, holding
/// "containerID\r\nifname", as berth-agent first saw it: in which boot and how long after that boot started (and,
/// for people, when on the wall clock). host-local records no netns and no time that survives a wall-clock jump, so
/// the agent's first sighting, on the boot clock, is what the grace period is counted from, and a file seen in an
/// earlier boot with the same owner is a file of that boot. A row is always a sighting; a file not seen has no row.
/// </summary>
public sealed record GuardedFile(
    string Dir,
    string Network,
    IPAddress Address,
    string ContainerId,
    string IfName,
    string BootId,
    TimeSpan SinceBoot,
    DateTimeOffset SeenAt,
    int Strikes = 0)
{
    /// <summary>The history's name for host-local's store, with the directory it lives in.</summary>
    public string Store => LeaseStores.HostLocal(Dir);

    /// <summary>The file as a lease, for the evidence and the liveness rule: made (first seen) in <see cref="BootId"/>.</summary>
    public Lease AsLease() => LeaseOf(Network, Address, ContainerId, IfName, BootId, SinceBoot, SeenAt);

    /// <summary>A host-local file as a lease: an owner and an address, no netns, made (first seen) in <paramref name="bootId"/>.</summary>
    public static Lease LeaseOf(string network, IPAddress address, string containerId, string ifName, string bootId, TimeSpan sinceBoot, DateTimeOffset seenAt) =>
        new(network, address, 0, "", containerId, ifName, "", null, null, null, null, bootId, sinceBoot, seenAt, "host-local");

    /// <summary>Whether the file still names the same owner.</summary>
    public bool SameOwner(string containerId, string ifName) => ContainerId == containerId && IfName == ifName;
}
