using Berth.Shared.Leases;

namespace Berth.Shared.Evidence;

/// <summary>
/// The one rule, shared by the plugin's reclaim and the agent, for "this lease's namespace still lives": its
/// netns path is a namespace, and the same one (inode) as at ADD when that was recorded.
/// </summary>
public static class NetnsEvidence
{
    /// <summary>Whether the lease's netns path still names the namespace it was made for.</summary>
    public static bool Matches(Lease lease, INetnsProbe probe) =>
        lease.Netns.Length > 0 && probe.Inode(lease.Netns) is { } inode && (lease.NetnsInode is null || lease.NetnsInode == inode);

    /// <summary>
    /// The evidence of the netns path alone, for callers that ask no other source (the plugin, boot recovery):
    /// <see cref="EvidenceKind.Netns"/>, or <see cref="EvidenceKind.Unknown"/> since the runtime was not asked.
    /// </summary>
    public static EvidenceKind Of(Lease lease, INetnsProbe probe) => Matches(lease, probe) ? EvidenceKind.Netns : EvidenceKind.Unknown;
}
