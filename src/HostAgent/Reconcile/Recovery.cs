using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Metrics;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>What the once-per-boot sweep did.</summary>
internal sealed record RecoveryResult(string BootId, DateTimeOffset? AlreadyDoneAt, IReadOnlyList<Decision> Decisions, bool DryRun, IReadOnlyList<string>? Warnings = null,
    IReadOnlyDictionary<string, int>? Skipped = null)
{
    public int Released => Decisions.Count(d => d.Verdict == Verdict.Release);

    /// <summary>The sweep in one sentence, for the terminal, the journal and systemd's STATUS.</summary>
    public string Summary => AlreadyDoneAt is { } at
        ? $"recovery already ran for boot {BootId} at {at:u}: nothing to do"
        : $"recovery for boot {BootId}: {(DryRun ? "would release" : "released")} {Released} of {Decisions.Count} earlier-boot leases"
            + (Decisions.Any(d => d.Store != LeaseStores.Berth) ? $" ({Decisions.Count(d => d.Store != LeaseStores.Berth && d.Verdict == Verdict.Release)} of them host-local files)" : "");
}

/// <summary>
/// The sweep run once per boot before the container runtime starts. A lease from an earlier boot lost its
/// sandbox with that boot's kernel: by <see cref="Liveness"/> it goes unless its netns path is still the very
/// namespace it was made for. The runtime is not asked (it is not up yet, by design). Completion is recorded per
/// boot ID in the same transaction, so a second run in the same boot, or an agent restart, never sweeps again.
/// With a <see cref="HostLocalGuard"/>, host-local's files of earlier boots go first (see
/// <see cref="HostLocalGuard.RecoverAsync"/>); deleting a file is idempotent, so a sweep killed before its mark
/// is simply done again.
/// </summary>
internal static class Recovery
{
    public static async Task<RecoveryResult> RunAsync(ILeaseStore<IAgentTransaction> store, IBootClock clock, INetnsProbe netns, HostLocalGuard? guard,
        Func<Task<EvidenceSnapshot>> gather, bool dryRun, string actor, CancellationToken cancellationToken)
    {
        var boot = clock.BootId;
        var done = store.Read(tx => tx.Recovered(boot));
        // Each scope is marked on its own: a run that swept less (the guardian off, other directories) stands only for what it swept.
        var dirs = (guard?.Dirs ?? []).Where(d => !done.ContainsKey(LeaseStores.HostLocal(d))).ToList();
        if (dirs.Count == 0 && done.ContainsKey(LeaseStores.Berth)) return new RecoveryResult(boot, done.Values.Max(), [], dryRun);
        var guarded = guard is null || dirs.Count == 0 ? GuardReport.Empty : await guard.RecoverAsync(gather, dryRun, cancellationToken, dirs).ConfigureAwait(false);
        var marks = dirs.Select(d => (Scope: LeaseStores.HostLocal(d), Released: guarded.Decisions.Count(x => x.Verdict == Verdict.Release && x.Store == LeaseStores.HostLocal(d)))).ToList();
        var result = Run(store, clock, netns, dryRun, actor, marks);
        var rows = store.TakeSkipped();
        return result with
        {
            Decisions = [.. result.Decisions, .. guarded.Decisions],
            Warnings = [.. guarded.Warnings, .. rows],
            Skipped = new Dictionary<string, int> { [SkippedEntries.HostLocal] = guarded.Skipped, [SkippedEntries.Store] = rows.Count },
        };
    }

    /// <summary>
    /// berth's own store, unless this boot's recovery already swept it; records its mark and those of the guarded
    /// directories swept just before (<paramref name="marks"/>) in the same transaction.
    /// </summary>
    public static RecoveryResult Run(ILeaseStore<IAgentTransaction> store, IBootClock clock, INetnsProbe netns, bool dryRun, string actor,
        IReadOnlyList<(string Scope, int Released)>? marks = null)
    {
        var boot = clock.BootId;
        var liveness = new Liveness(clock);
        RecoveryResult Sweep(IAgentTransaction tx)
        {
            var done = tx.Recovered(boot);
            var decisions = new List<Decision>();
            if (!done.ContainsKey(LeaseStores.Berth))
            {
                foreach (var lease in tx.AllLeases().Where(l => liveness.IsEarlierBoot(l.BootId)))
                {
                    if (!liveness.LostWithItsBoot(lease, netns, out var kind))
                    {
                        decisions.Add(new Decision(lease, Verdict.Keep, kind, $"netns {lease.Netns} is still the same namespace"));
                        continue;
                    }
                    var detail = $"made in boot {lease.BootId}; netns {(lease.Netns.Length > 0 ? lease.Netns : "(none)")} did not survive the reboot";
                    tx.Release(lease, new Change(Reasons.BootRecovery, actor, detail));
                    // What was found: the runtime was not asked, so the evidence is unknown, not none (the changed boot is the proof).
                    decisions.Add(new Decision(lease, Verdict.Release, kind, detail));
                }
                tx.RecordRecovery(boot, LeaseStores.Berth, decisions.Count(d => d.Verdict == Verdict.Release));
            }
            else if ((marks ?? []).Count == 0)
            {
                return new RecoveryResult(boot, done.Values.Max(), [], dryRun);
            }
            foreach (var (scope, released) in marks ?? []) tx.RecordRecovery(boot, scope, released);
            return new RecoveryResult(boot, null, decisions, dryRun);
        }
        return dryRun ? store.Rehearse(Sweep) : store.Write(Sweep);
    }
}
