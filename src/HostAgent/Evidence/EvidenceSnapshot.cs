using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Evidence;

/// <summary>
/// The evidence gathered once for a reconcile pass: the process namespaces and the runtimes' ready sandboxes
/// (both expensive, so read once), with the netns path probed per lease.
/// </summary>
internal sealed class EvidenceSnapshot(INetnsProbe netns, IReadOnlySet<ulong>? processInodes, SandboxList sandboxes)
{
    public static async Task<EvidenceSnapshot> GatherAsync(INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime, CancellationToken cancellationToken) =>
        new(netns, processes.NetnsInodes(), await runtime.ReadySandboxesAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Why the runtime's answer was skipped, when a runtime answered with something that could not be used; else null.</summary>
    public string? RuntimeUnusable => sandboxes.Unusable ? $"{sandboxes.Problem}: its answer skipped, the runtime's evidence is unknown this pass" : null;

    /// <summary>The strongest evidence for a lease, and a few words on it for logs and history.</summary>
    public (EvidenceKind Kind, string Detail) Judge(Lease lease)
    {
        if (NetnsEvidence.Matches(lease, netns)) return (EvidenceKind.Netns, $"netns {lease.Netns} is the same namespace");
        if (lease.NetnsInode is { } inode && processInodes is not null && processInodes.Contains(inode))
        {
            return (EvidenceKind.Process, $"a process lives in netns inode {inode}");
        }
        if (sandboxes.Known && sandboxes.ReadyIds.Contains(lease.ContainerId)) return (EvidenceKind.Runtime, "the runtime lists the sandbox as ready");
        if (processInodes is null) return (EvidenceKind.Unknown, "the processes' namespaces could not all be read");
        if (!sandboxes.Known) return (EvidenceKind.Unknown, sandboxes.Problem ?? "the runtime could not be asked");
        return (EvidenceKind.None, $"netns {(lease.Netns.Length > 0 ? lease.Netns : "(none)")} gone, no process in it, no ready sandbox {lease.ContainerId}");
    }
}
