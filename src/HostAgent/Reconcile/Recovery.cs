using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>What the once-per-boot sweep did.</summary>
internal sealed record RecoveryResult(string BootId, DateTimeOffset? AlreadyDoneAt, IReadOnlyList<Decision> Decisions, bool DryRun, IReadOnlyList<string>? Warnings = null)
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
    public static async Task<RecoveryResult> RunAsync(ILeaseStore store, IBootClock clock, INetnsProbe netns, HostLocalGuard? guard,
        Func<Task<EvidenceSnapshot>> gather, bool dryRun, string actor, CancellationToken cancellationToken)
    {
        var boot = clock.BootId;
        if (store.Read(tx => tx.RecoveredAt(boot)) is { } done) return new RecoveryResult(boot, done, [], dryRun);
        var guarded = guard is null ? GuardReport.Empty : await guard.RecoverAsync(gather, dryRun, cancellationToken).ConfigureAwait(false);
        var result = Run(store, clock, netns, dryRun, actor, guarded.Decisions.Count(d => d.Verdict == Verdict.Release));
        return result.AlreadyDoneAt is not null ? result : result with { Decisions = [.. result.Decisions, .. guarded.Decisions], Warnings = guarded.Warnings };
    }

    /// <summary>berth's own store only (the plugin's tests and callers without a guardian).</summary>
    public static RecoveryResult Run(ILeaseStore store, IBootClock clock, INetnsProbe netns, bool dryRun, string actor, int releasedElsewhere = 0)
    {
        var boot = clock.BootId;
        RecoveryResult Sweep(IStoreTransaction tx)
        {
            if (tx.RecoveredAt(boot) is { } at) return new RecoveryResult(boot, at, [], dryRun);
            var decisions = new List<Decision>();
            foreach (var lease in tx.AllLeases().Where(l => l.BootId != boot))
            {
                var kind = NetnsEvidence.Of(lease, netns);
                if (Liveness.Judge(earlierBoot: true, kind) == OwnerState.Alive)
                {
                    decisions.Add(new Decision(lease, Verdict.Keep, kind, $"netns {lease.Netns} is still the same namespace"));
                    continue;
                }
                var detail = $"made in boot {lease.BootId}; netns {(lease.Netns.Length > 0 ? lease.Netns : "(none)")} did not survive the reboot";
                tx.Release(lease, new Change(Reasons.BootRecovery, actor, detail));
                decisions.Add(new Decision(lease, Verdict.Release, EvidenceKind.None, detail));
            }
            var result = new RecoveryResult(boot, null, decisions, dryRun);
            tx.RecordRecovery(boot, result.Released + releasedElsewhere);
            return result;
        }
        return dryRun ? store.Rehearse(Sweep) : store.Write(Sweep);
    }
}
