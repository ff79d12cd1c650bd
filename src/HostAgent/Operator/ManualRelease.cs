using System.Net;
using Berth.HostAgent.Evidence;
using Berth.Shared.Allocation;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>How a manual release ended: the exit code it maps to and what to tell the operator.</summary>
internal sealed record ReleaseOutcome(int ExitCode, string Message, Lease? Lease = null);

/// <summary>
/// `berth-agent release`: the validated manual release (FIELD.md incident 2). A malformed address or an
/// unknown network is an error; an address already free is a success that changes nothing; an owner that
/// still shows live evidence (or whose evidence cannot be gathered) is refused unless forced; an --owner that
/// is not the holder is refused; otherwise the lease goes, with the operator's name in the history.
/// </summary>
internal sealed class ManualRelease(SqliteLeaseStore store, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime)
{
    public async Task<ReleaseOutcome> RunAsync(string addressText, string network, string? owner, bool force, bool dryRun, string actor, CancellationToken cancellationToken)
    {
        if (!Ip.TryParse(addressText, out var address)) return new(Cli.Error, $"\"{addressText}\" is not an IP address");
        var known = store.Query(q => q.Networks()).Any(n => n.Network == network) || store.Read(tx => tx.Leases(network).Count) > 0;
        if (!known) return new(Cli.Error, $"unknown network \"{network}\": no ADD has been seen for it (see 'berth-agent leases')");

        var holder = store.Read(tx => tx.Holder(network, address));
        if (holder is null) return new(Cli.Ok, $"{address} is already free in network {network}: nothing to do");
        if (owner is not null && !Matches(holder, owner)) return new(Cli.Refused, $"{address} is held by {holder.Describe()}, not by {owner}: refused", holder);

        var evidence = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
        var (kind, detail) = evidence.Judge(holder);
        if (!force && kind != EvidenceKind.None)
        {
            var why = kind == EvidenceKind.Unknown ? $"its owner cannot be checked ({detail})" : $"its owner is alive ({detail})";
            return new(Cli.Refused, $"{address} is held by {holder.Describe()} and {why}: refused; --force releases it anyway", holder);
        }

        var change = new Change(Reasons.Manual, actor, force ? $"forced; evidence: {kind.ToString().ToLowerInvariant()}: {detail}" : $"evidence: {detail}");
        ReleaseOutcome Act(ILeaseTransaction tx)
        {
            // Look again under the write lock: a DEL or a new ADD may have come between the check and now.
            var current = tx.Holder(network, address);
            if (current is null) return new(Cli.Ok, $"{address} is already free in network {network}: nothing to do");
            if (!current.IsOwnedBy(holder.ContainerId, holder.IfName)) return new(Cli.Refused, $"{address} changed hands while it was checked (now {current.Describe()}): run again", current);
            tx.Release(current, change);
            return new(Cli.Ok, $"{(dryRun ? "would release" : "released")} {address} in network {network}, held by {current.Describe()} ({change.Detail})", current);
        }
        return dryRun ? store.Rehearse(Act) : store.Write(Act);
    }

    /// <summary>--owner names the container ID or the pod as namespace/name.</summary>
    private static bool Matches(Lease lease, string owner) =>
        owner == lease.ContainerId || (lease.PodName is not null && owner == $"{lease.PodNamespace}/{lease.PodName}");
}
