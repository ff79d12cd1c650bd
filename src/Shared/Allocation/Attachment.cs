namespace Berth.Shared.Allocation;

/// <summary>
/// Who asks for addresses: the (network, container ID, ifname) triple that owns leases, and what is known
/// about it at ADD: the netns path and inode, and the pod from CNI_ARGS when the runtime gave it.
/// </summary>
public sealed record Attachment(
    string Network,
    string ContainerId,
    string IfName,
    string Netns = "",
    ulong? NetnsInode = null,
    string? PodNamespace = null,
    string? PodName = null,
    string? PodUid = null);
