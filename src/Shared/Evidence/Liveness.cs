namespace Berth.Shared.Evidence;

/// <summary>Whether a lease's owner lives, as far as the evidence can tell.</summary>
public enum OwnerState
{
    /// <summary>Live evidence: the lease stays.</summary>
    Alive,
    /// <summary>The owner is gone: the lease may go (a lease of this boot only after the grace period and two strikes).</summary>
    Gone,
    /// <summary>The evidence could not be gathered: do no harm, keep the lease.</summary>
    Unknown,
}

/// <summary>
/// The one liveness rule. Every path that releases a lease without a DEL asks it: the plugin's reclaim of a full
/// range, boot recovery, reconcile, the operator's validated release, and the guardian of host-local's files.
/// <list type="bullet">
/// <item>A lease of an earlier boot lost its sandbox with that boot's kernel: the changed boot ID is the proof.
/// It stays only while its netns path is still the very namespace it was made for, or a runtime lists its
/// sandbox as ready. A process in a namespace with the recorded inode proves nothing across boots (inode
/// numbers are reused), and unknown evidence does not keep it (at boot the runtime is not up, by design).</item>
/// <item>A lease of this boot stays on any live evidence; unknown keeps it; with no evidence at all it goes, but
/// only once it is older than the grace period on the boot clock (never the wall clock) and was found without
/// evidence on <see cref="StrikesToRelease"/> consecutive passes, and still has none when checked again just
/// before release.</item>
/// </list>
/// </summary>
public static class Liveness
{
    /// <summary>Consecutive passes without evidence after which a lease of this boot is released.</summary>
    public const int StrikesToRelease = 2;

    /// <summary>What the evidence says about the owner of a lease made in an earlier boot, or in this one.</summary>
    public static OwnerState Judge(bool earlierBoot, EvidenceKind evidence) => earlierBoot
        ? evidence is EvidenceKind.Netns or EvidenceKind.Runtime ? OwnerState.Alive : OwnerState.Gone
        : evidence switch
        {
            EvidenceKind.None => OwnerState.Gone,
            EvidenceKind.Unknown => OwnerState.Unknown,
            _ => OwnerState.Alive,
        };

    /// <summary>Whether a lease of this boot, without evidence, has waited out the grace period (ages on the boot clock).</summary>
    public static bool PastGrace(TimeSpan age, TimeSpan gracePeriod) => age >= gracePeriod;
}
