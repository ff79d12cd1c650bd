using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Allocation;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>How a manual release ended.</summary>
internal enum ReleaseStatus
{
    /// <summary>Released (or, in a dry run, would be).</summary>
    Released,
    /// <summary>Nothing held the address: a success that changed nothing.</summary>
    AlreadyFree,
    /// <summary>The owner lives, cannot be checked, or is not the one named: nothing changed.</summary>
    Refused,
    /// <summary>A malformed address or an unknown network.</summary>
    Invalid,
}

/// <summary>The outcome of a manual release and what to tell the operator.</summary>
internal sealed record ReleaseOutcome(ReleaseStatus Status, string Message, Lease? Lease = null);

/// <summary>
/// `berth-agent release`: the validated manual release, for a controller-style "release this address" that must
/// not hurt a live owner. A malformed address or an unknown network is invalid; an address already free is a
/// success that changes nothing; an owner that still shows live evidence (or whose evidence cannot be gathered)
/// is refused unless forced; an --owner that is not the holder is refused; otherwise the lease goes, with the
/// operator's name in the history. The network may be berth's, or one of host-local's that the agent guards:
/// then the file is deleted under host-local's own lock.
/// </summary>
internal sealed class ManualRelease(
    SqliteLeaseStore store, IBootClock clock, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime, IReadOnlyList<string> hostLocalDirs,
    TimeProvider time)
{
    private static readonly TimeSpan LockTimeout = HostLocalNetwork.LockTimeout;

    private readonly Liveness _liveness = new(clock);

    public async Task<ReleaseOutcome> RunAsync(string addressText, string network, string? owner, bool force, bool dryRun, string actor, CancellationToken cancellationToken)
    {
        if (!Ip.TryParse(addressText, out var address)) return new(ReleaseStatus.Invalid, $"\"{addressText}\" is not an IP address");
        var known = store.Query(q => q.Networks()).Any(n => n.Network == network) || store.Read(tx => tx.Leases(network).Count) > 0;
        if (!known)
        {
            if (hostLocalDirs.FirstOrDefault(d => HostLocalDirs.Networks(d)?.Contains(network) == true) is { } dir)
            {
                return await ReleaseHostLocalAsync(dir, network, address, owner, force, dryRun, actor, cancellationToken).ConfigureAwait(false);
            }
            return new(ReleaseStatus.Invalid, $"unknown network \"{network}\": no ADD has been seen for it, and no host-local directory holds it (see 'berth-agent leases')");
        }

        var holder = store.Read(tx => tx.Holder(network, address));
        if (holder is null) return Free(address, network);
        if (owner is not null && !Matches(holder, owner)) return new(ReleaseStatus.Refused, $"{address} is held by {holder.Describe()}, not by {owner}: refused", holder);

        var evidence = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
        if (Refusal(holder, holder.Describe(), evidence.Judge(holder), force, out var change) is { } refused) return refused;
        ReleaseOutcome Act(IAgentTransaction tx)
        {
            // Look again under the write lock: a DEL or a new ADD may have come between the check and now.
            var current = tx.Holder(network, address);
            if (current is null) return Free(address, network);
            if (!current.IsSameLeaseAs(holder)) return new(ReleaseStatus.Refused, $"{address} changed hands while it was checked (now {current.Describe()}): run again", current);
            tx.Release(current, change with { Actor = actor });
            return new(ReleaseStatus.Released, $"{(dryRun ? "would release" : "released")} {address} in network {network}, held by {current.Describe()} ({change.Detail})", current);
        }
        return dryRun ? store.Rehearse(Act) : store.Write(Act);
    }

    private async Task<ReleaseOutcome> ReleaseHostLocalAsync(string dir, string network, System.Net.IPAddress address, string? owner, bool force, bool dryRun, string actor, CancellationToken cancellationToken)
    {
        HostLocalNetwork files;
        try
        {
            files = HostLocalNetwork.Open(dir, network);
        }
        catch (HostLocalException e)
        {
            return new(ReleaseStatus.Invalid, e.Message);
        }
        using var _ = files;
        if (files.ReadLease(address).Lease is not { } file) return Free(address, network);
        var holder = store.Read(GuardLedger.Read).LeaseOf(file, clock);
        if (owner is not null && owner != file.ContainerId) return new(ReleaseStatus.Refused, $"{address} is held by {Describe(file)}, not by {owner}: refused", holder);

        var evidence = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
        if (Refusal(holder, Describe(file), evidence.Judge(holder), force, out var change) is { } refused) return refused;
        var done = $"{address} in host-local's network {network} ({file.Path}), held by {Describe(file)} ({change.Detail})";
        if (dryRun) return new(ReleaseStatus.Released, "would release " + done, holder);
        if (!files.Lock(LockTimeout, time)) return new(ReleaseStatus.Refused, $"host-local's lock on {Path.Combine(dir, network)} stayed held for {LockTimeout.TotalSeconds:0} s: run again", holder);
        // Read again under host-local's lock: its DEL or a new ADD may have come between the check and now.
        if (!files.DeleteIfSame(file))
        {
            return files.ReadLease(address).Lease is { } now
                ? new(ReleaseStatus.Refused, $"{address} changed hands while it was checked (now {Describe(now)}): run again", holder)
                : Free(address, network);
        }
        store.Write(tx =>
        {
            tx.RecordGuardedRelease(dir, holder, change with { Actor = actor, Detail = $"{change.Detail}; file {file.Path}" });
            return 0;
        });
        return new(ReleaseStatus.Released, "released " + done, holder);
    }

    /// <summary>Why a holder may not be released now (by <see cref="Liveness"/>), or null with the change to record.</summary>
    private ReleaseOutcome? Refusal(Lease holder, string who, (EvidenceKind Kind, string Detail) found, bool force, out Change change)
    {
        var (kind, detail) = found;
        var state = _liveness.Judge(holder, kind);
        change = new Change(Reasons.Manual, "", force && state != OwnerState.Gone ? $"forced; evidence: {kind.ToString().ToLowerInvariant()}: {detail}" : $"evidence: {detail}");
        if (force || state == OwnerState.Gone) return null;
        var why = state == OwnerState.Unknown ? $"its owner cannot be checked ({detail})" : $"its owner is alive ({detail})";
        return new(ReleaseStatus.Refused, $"{holder.Address} is held by {who} and {why}: refused; --force releases it anyway", holder);
    }

    private static ReleaseOutcome Free(System.Net.IPAddress address, string network) =>
        new(ReleaseStatus.AlreadyFree, $"{address} is already free in network {network}: nothing to do");

    private static string Describe(HostLocalFile file) => $"container {file.ContainerId}{(file.IfName.Length > 0 ? $" ({file.IfName})" : "")}";

    /// <summary>--owner names the container ID or the pod as namespace/name.</summary>
    private static bool Matches(Lease lease, string owner) =>
        owner == lease.ContainerId || (lease.PodName is not null && owner == $"{lease.PodNamespace}/{lease.PodName}");
}
