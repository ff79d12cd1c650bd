using System.Diagnostics;
using Berth.HostAgent.Evidence;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>The outcome of one pass.</summary>
internal sealed record ReconcileReport(IReadOnlyList<Decision> Decisions, TimeSpan Duration, bool DryRun)
{
    public int Released => Decisions.Count(d => d.Verdict == Verdict.Release);
    public int Unknown => Decisions.Count(d => d.Verdict == Verdict.Unknown);
}

/// <summary>
/// One reconcile pass over every lease, by PRODUCT.md's rules. A lease of an earlier boot goes unless its
/// netns is the same namespace or the runtime lists its sandbox as ready. A lease of this boot goes only
/// when it is older than the grace period (boot clock, never the wall clock), was found without evidence on
/// two consecutive passes, and is still without evidence when checked again just before release. Unknown
/// evidence never releases. A dry run decides and reports but writes nothing.
/// </summary>
internal sealed class Reconciler(
    ILeaseStore store, IBootClock clock, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime, TimeSpan gracePeriod, string actor)
{
    public async Task<ReconcileReport> PassAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var leases = store.Read(tx => tx.AllLeases());
        var evidence = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
        var decisions = new List<Decision>();
        var candidates = new List<Lease>();
        List<Decision> Judge(ILeaseTransaction tx)
        {
            var result = new List<Decision>();
            foreach (var lease in leases)
            {
                var decision = Decide(lease, evidence, tx);
                if (decision.Verdict == Verdict.Release) candidates.Add(lease);
                else result.Add(decision);
            }
            return result;
        }
        decisions.AddRange(dryRun ? store.Rehearse(Judge) : store.Write(Judge));

        if (candidates.Count > 0)
        {
            // Just before release, look again: a sandbox may have come up, or a DEL may have raced us.
            var fresh = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
            List<Decision> Release(ILeaseTransaction tx)
            {
                var result = new List<Decision>();
                foreach (var candidate in candidates)
                {
                    var current = tx.Holder(candidate.Network, candidate.Address);
                    if (current is null || !current.IsOwnedBy(candidate.ContainerId, candidate.IfName)) continue;
                    var (kind, detail) = fresh.Judge(current);
                    if (!Releasable(current, kind))
                    {
                        if (kind is EvidenceKind.Netns or EvidenceKind.Process or EvidenceKind.Runtime) tx.ClearStrikes(current);
                        result.Add(new Decision(current, kind == EvidenceKind.Unknown ? Verdict.Unknown : Verdict.Keep, kind, "re-checked before release: " + detail));
                        continue;
                    }
                    tx.Release(current, new Change(Reasons.Reconcile, actor, detail));
                    result.Add(new Decision(current, Verdict.Release, kind, detail));
                }
                return result;
            }
            // A dry run's strikes were rolled back with its first transaction: count them again here.
            decisions.AddRange(dryRun ? store.Rehearse(tx => { foreach (var c in candidates) tx.AddStrike(c); return Release(tx); }) : store.Write(Release));
        }
        return new ReconcileReport(decisions, watch.Elapsed, dryRun);
    }

    private Decision Decide(Lease lease, EvidenceSnapshot evidence, ILeaseTransaction tx)
    {
        var (kind, detail) = evidence.Judge(lease);
        if (lease.BootId != clock.BootId)
        {
            return Releasable(lease, kind)
                ? new Decision(lease, Verdict.Release, kind, $"made in boot {lease.BootId}: " + detail)
                : new Decision(lease, Verdict.Keep, kind, detail);
        }
        switch (kind)
        {
            case EvidenceKind.Netns or EvidenceKind.Process or EvidenceKind.Runtime:
                tx.ClearStrikes(lease);
                return new Decision(lease, Verdict.Keep, kind, detail);
            case EvidenceKind.Unknown:
                return new Decision(lease, Verdict.Unknown, kind, detail);
        }
        var age = clock.SinceBoot - lease.SinceBoot;
        if (age < gracePeriod) return new Decision(lease, Verdict.Young, kind, $"{detail}; {Age(age)} old, within the grace period of {Age(gracePeriod)}");
        var strikes = tx.AddStrike(lease);
        return strikes >= 2
            ? new Decision(lease, Verdict.Release, kind, $"{detail}; {strikes} passes without evidence", strikes)
            : new Decision(lease, Verdict.Strike, kind, $"{detail}; strike {strikes}, released at 2", strikes);
    }

    /// <summary>An earlier boot's lease goes unless its netns lives or the runtime lists it; this boot's needs None.</summary>
    private bool Releasable(Lease lease, EvidenceKind kind) => lease.BootId != clock.BootId
        ? kind is not (EvidenceKind.Netns or EvidenceKind.Runtime)
        : kind == EvidenceKind.None;

    private static string Age(TimeSpan t) => t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#} min" : $"{t.TotalSeconds:0} s";
}
