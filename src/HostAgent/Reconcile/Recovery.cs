using Berth.HostAgent.Evidence;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>What the once-per-boot sweep did.</summary>
internal sealed record RecoveryResult(string BootId, DateTimeOffset? AlreadyDoneAt, IReadOnlyList<Decision> Decisions, bool DryRun)
{
    public int Released => Decisions.Count(d => d.Verdict == Verdict.Release);
    public int Kept => Decisions.Count(d => d.Verdict != Verdict.Release);
}

/// <summary>
/// The sweep run once per boot before the container runtime starts. A lease from an earlier boot lost its
/// sandbox with that boot's kernel: it goes unless its netns path is still the very namespace it was made
/// for. The runtime is not asked (it is not up yet, by design). Completion is recorded per boot ID in the
/// same transaction, so a second run in the same boot, or an agent restart, never sweeps again.
/// </summary>
internal static class Recovery
{
    public static RecoveryResult Run(ILeaseStore store, IBootClock clock, INetnsProbe netns, bool dryRun, string actor)
    {
        var boot = clock.BootId;
        RecoveryResult Sweep(ILeaseTransaction tx)
        {
            if (tx.RecoveredAt(boot) is { } at) return new RecoveryResult(boot, at, [], dryRun);
            var decisions = new List<Decision>();
            foreach (var lease in tx.AllLeases().Where(l => l.BootId != boot))
            {
                if (NetnsEvidence.Matches(lease, netns))
                {
                    decisions.Add(new Decision(lease, Verdict.Keep, EvidenceKind.Netns, $"netns {lease.Netns} is still the same namespace"));
                    continue;
                }
                var detail = $"made in boot {lease.BootId}; netns {(lease.Netns.Length > 0 ? lease.Netns : "(none)")} did not survive the reboot";
                tx.Release(lease, new Change(Reasons.BootRecovery, actor, detail));
                decisions.Add(new Decision(lease, Verdict.Release, EvidenceKind.None, detail));
            }
            var result = new RecoveryResult(boot, null, decisions, dryRun);
            tx.RecordRecovery(boot, result.Released);
            return result;
        }
        return dryRun ? store.Rehearse(Sweep) : store.Write(Sweep);
    }
}
