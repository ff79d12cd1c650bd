using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// A host-local lease file, <c>Dir/Network/Address</c> holding "containerID\r\nifname", as berth-agent first saw
/// it: in which boot and how long after that boot started. host-local records no netns and no time that survives
/// a wall-clock jump, so the agent's first sighting, on the boot clock, is what the grace period is counted from,
/// and a file seen in an earlier boot with the same owner is a file of that boot.
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
    public Lease AsLease() => new(Network, Address, 0, "", ContainerId, IfName, "", null, null, null, null, BootId, SinceBoot, SeenAt, "host-local");

    /// <summary>Whether the file still names the same owner.</summary>
    public bool SameOwner(string containerId, string ifName) => ContainerId == containerId && IfName == ifName;
}
