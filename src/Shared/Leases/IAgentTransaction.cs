using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// One transaction on the whole store as berth-agent sees it: the plugin's view, and what only the agent uses (every
/// lease, the once-per-boot marker, reconcile strikes, history pruning, and the ledger of host-local files it guards).
/// </summary>
public interface IAgentTransaction : IStoreTransaction
{
    /// <summary>Every lease of every network, ordered by network and address.</summary>
    IReadOnlyList<Lease> AllLeases();

    /// <summary>What the once-per-boot recovery swept in this boot, scope by scope (<see cref="LeaseStores"/>: "berth", "host-local:DIR"), and when.</summary>
    IReadOnlyDictionary<string, DateTimeOffset> Recovered(string bootId);

    /// <summary>Records that recovery swept <paramref name="scope"/> in this boot and how many leases it released there.</summary>
    void RecordRecovery(string bootId, string scope, int released);

    /// <summary>
    /// Counts one more consecutive reconcile pass that found the lease without evidence; returns the count.
    /// A different owner of the same address starts again at one.
    /// </summary>
    int AddStrike(Lease lease);

    /// <summary>Forgets the lease's strikes: evidence was found.</summary>
    void ClearStrikes(Lease lease);

    /// <summary>
    /// Deletes history rows that are both older than <paramref name="keepSince"/> and not among the newest
    /// <paramref name="keepEvents"/>: whichever keeps more wins. Leases are never touched.
    /// </summary>
    int PruneHistory(int keepEvents, DateTimeOffset keepSince);

    /// <summary>Every host-local file the agent has seen and not yet forgotten.</summary>
    IReadOnlyList<GuardedFile> GuardedFiles();

    /// <summary>
    /// Records a host-local file as first seen now (this boot, this time since boot), strikes at zero: a file not
    /// seen before, or one whose owner changed since.
    /// </summary>
    GuardedFile SeeGuardedFile(string dir, string network, IPAddress address, string containerId, string ifName);

    /// <summary>One more consecutive pass without evidence for a guarded file; returns the count.</summary>
    int StrikeGuardedFile(GuardedFile file);

    /// <summary>Forgets a guarded file's strikes: evidence was found.</summary>
    void ClearGuardedFileStrikes(GuardedFile file);

    /// <summary>Forgets a guarded file that is gone (host-local's own DEL removed it).</summary>
    void ForgetGuardedFile(GuardedFile file);

    /// <summary>
    /// Records the release of host-local's file of <paramref name="lease"/> in <paramref name="dir"/> (already deleted
    /// under host-local's lock) in the history, and forgets it if it was seen.
    /// </summary>
    void RecordGuardedRelease(string dir, Lease lease, Change change);
}
