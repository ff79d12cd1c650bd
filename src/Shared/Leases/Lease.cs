using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// One address held by one attachment (network, container ID, ifname), with what is needed later to decide
/// whether its owner still lives: the netns path and inode seen at ADD, the boot it was made in and when.
/// </summary>
public sealed record Lease(
    string Network,
    IPAddress Address,
    int RangeSet,
    string Subnet,
    string ContainerId,
    string IfName,
    string Netns,
    ulong? NetnsInode,
    string? PodNamespace,
    string? PodName,
    string? PodUid,
    string BootId,
    TimeSpan SinceBoot,
    DateTimeOffset CreatedAt,
    string Origin)
{
    /// <summary>Whether this lease belongs to the attachment.</summary>
    public bool IsOwnedBy(string containerId, string ifName) => ContainerId == containerId && IfName == ifName;

    /// <summary>
    /// Whether <paramref name="other"/> is this very lease, not only one of the same attachment: an attachment that
    /// was deleted and added again, even at the same address, holds a new lease, made at another moment of a boot.
    /// </summary>
    public bool IsSameLeaseAs(Lease other) =>
        Network == other.Network && Address.Equals(other.Address) && IsOwnedBy(other.ContainerId, other.IfName)
        && BootId == other.BootId && SinceBoot == other.SinceBoot;

    /// <summary>"namespace/pod" when the runtime said, otherwise "containerID/ifname".</summary>
    public string Owner => PodName is not null ? $"{PodNamespace}/{PodName}" : $"{ContainerId}/{IfName}";

    /// <summary>The holder in a sentence, for messages.</summary>
    public string Describe() => PodName is not null
        ? $"pod {PodNamespace}/{PodName} (container {ContainerId}, {IfName})"
        : $"container {ContainerId} ({IfName})";
}
