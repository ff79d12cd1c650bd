using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Node;

/// <summary>
/// What `run` knew before its host started: whether its store was created just now, and which guarded
/// directories it holds (<see cref="GuardLocks"/>). A pod's agent starts after the kubelet and the runtime:
/// recovery runs late, and with a new store (a first install, a store lost) the agent has no ledger of earlier
/// boots. Then host-local's files it never saw cannot be proven to be of an earlier boot while pods are being
/// created: they are kept until reconcile finds no ready sandbox for them past the grace period. The log says so.
/// </summary>
internal sealed record AgentStartup(string Store, bool NewStore, GuardLocks? Locks)
{
    /// <summary>A store that does not exist yet, or an empty file (created, never written): recovery will create it.</summary>
    public static bool IsNewStore(string path)
    {
        try
        {
            var info = new FileInfo(path);
            return !info.Exists || info.Length == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Lines for the log after recovery: what could not be proven, and why; nothing when all was proven.</summary>
    public IEnumerable<string> AfterRecovery(RecoveryResult recovery, TimeSpan gracePeriod, TimeSpan interval)
    {
        if (recovery.AlreadyDoneAt is not null)
        {
            if (NewStore) yield return $"the store {Store} is new, yet recovery for this boot is recorded in it: nothing to prove";
            yield break;
        }
        var unproven = recovery.Decisions.Where(d => d.Store != LeaseStores.Berth && d.Verdict == Verdict.Young).ToList();
        if (unproven.Count == 0)
        {
            if (NewStore) yield return $"the store {Store} is new: no ledger of earlier boots yet; what the agent records from now on is what the next boot's recovery can prove";
            yield break;
        }
        var why = NewStore
            ? $"the store {Store} is new (no ledger of earlier boots yet)"
            : "the agent had not seen them before this boot";
        yield return $"recovery ran late (a runtime is up) and {unproven.Count} host-local files cannot be proven to be of an earlier boot: {why}. " +
            $"Each is kept while the runtime lists its sandbox as ready; reconcile releases the others once they are {gracePeriod.TotalSeconds:0} s past their first sighting and two passes ({interval.TotalSeconds:0} s apart) found no evidence: " +
            string.Join(", ", unproven.Take(10).Select(d => $"{d.Lease.Network}/{d.Lease.Address}")) + (unproven.Count > 10 ? $" and {unproven.Count - 10} more" : "");
    }
}
