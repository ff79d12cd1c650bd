using System.Diagnostics;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Metrics;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>The outcome of one pass.</summary>
internal sealed record ReconcileReport(IReadOnlyList<Decision> Decisions, TimeSpan Duration, bool DryRun, IReadOnlyList<string> Warnings,
    IReadOnlyDictionary<string, int>? Skipped = null)
{
    public int Released => Decisions.Count(d => d.Verdict == Verdict.Release);
    public int Unknown => Decisions.Count(d => d.Verdict == Verdict.Unknown);

    /// <summary>The pass in one sentence, for the terminal, the journal and systemd's STATUS.</summary>
    public string Summary => $"{Decisions.Count} leases, {Released} {(DryRun ? "would be released" : "released")}, {Unknown} unknown, {Duration.TotalMilliseconds:0} ms";
}

/// <summary>
/// One reconcile pass over every lease of berth's store, by the rules of <see cref="Liveness"/>. A lease of an
/// earlier boot goes unless its netns is the same namespace or the runtime lists its sandbox as ready. A lease of
/// this boot goes only when it is older than the grace period (boot clock, never the wall clock), was found
/// without evidence on two consecutive passes, and is still without evidence when checked again just before
/// release. Unknown evidence never releases it. A dry run decides and reports but writes nothing. With a
/// <see cref="HostLocalGuard"/>, host-local's files go through the same pass with the same evidence.
/// </summary>
internal sealed class Reconciler(
    ILeaseStore<IAgentTransaction> store, IBootClock clock, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime, TimeSpan gracePeriod, string actor,
    TimeProvider time, HostLocalGuard? guard = null)
{
    private readonly Liveness _liveness = new(clock, gracePeriod);

    public async Task<ReconcileReport> PassAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var evidence = await EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken).ConfigureAwait(false);
        var decisions = new List<Decision>();
        var candidates = new List<Lease>();
        List<Decision> Judge(IAgentTransaction tx)
        {
            var result = new List<Decision>();
            // The leases as they are now, under the write lock, so that a strike is only ever counted for a lease that
            // exists: one read before the evidence would strike leases a DEL has released since, and the strike would
            // wait for the next lease at that address. A lease made after the evidence was gathered is judged by its
            // netns path, read now.
            foreach (var lease in tx.AllLeases())
            {
                var (kind, detail) = evidence.Judge(lease);
                var decision = Decision.Of(lease, _liveness.Decide(lease, kind, detail, () => tx.AddStrike(lease), () => tx.ClearStrikes(lease)));
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
            List<Decision> Release(IAgentTransaction tx)
            {
                var result = new List<Decision>();
                foreach (var candidate in candidates)
                {
                    var current = tx.Holder(candidate.Network, candidate.Address);
                    if (current is null || !current.IsSameLeaseAs(candidate)) continue;
                    var found = fresh.Judge(current);
                    if (_liveness.Recheck(current, found.Kind, found.Detail, () => tx.ClearStrikes(current)) is { } kept)
                    {
                        result.Add(Decision.Of(current, kept));
                        continue;
                    }
                    tx.Release(current, new Change(Reasons.Reconcile, actor, found.Detail));
                    result.Add(new Decision(current, Verdict.Release, found.Kind, found.Detail));
                }
                return result;
            }
            // A dry run's strikes were rolled back with its first transaction: count them again here.
            decisions.AddRange(dryRun ? store.Rehearse(tx => { foreach (var c in candidates) tx.AddStrike(c); return Release(tx); }) : store.Write(Release));
        }
        var warnings = new List<string>();
        var skipped = new Dictionary<string, int>(StringComparer.Ordinal);
        if (guard is not null)
        {
            var guarded = await guard.PassAsync(evidence, () => EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken), dryRun).ConfigureAwait(false);
            decisions.AddRange(guarded.Decisions);
            warnings.AddRange(guarded.Warnings);
            skipped[SkippedEntries.HostLocal] = guarded.Skipped;
        }
        var rows = store.TakeSkipped();
        warnings.AddRange(rows);
        skipped[SkippedEntries.Store] = rows.Count;
        if (evidence.RuntimeUnusable is { } why)
        {
            warnings.Add(why);
            skipped[SkippedEntries.Runtime] = 1;
        }
        return new ReconcileReport(decisions, time.GetElapsedTime(started), dryRun, warnings, skipped);
    }
}
