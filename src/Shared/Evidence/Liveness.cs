using Berth.Shared.Leases;

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

/// <summary>The possible outcomes for a lease in a pass.</summary>
public enum Verdict
{
    /// <summary>Live evidence, or no reason to act.</summary>
    Keep,
    /// <summary>No evidence, but younger than the grace period.</summary>
    Young,
    /// <summary>A source could not answer: do no harm.</summary>
    Unknown,
    /// <summary>No evidence, counted; released on the second consecutive strike.</summary>
    Strike,
    /// <summary>Released (or, in a dry run, would be).</summary>
    Release,
}

/// <summary>What <see cref="Liveness"/> decided about one lease, with the evidence and the words behind it.</summary>
public readonly record struct Judgement(Verdict Verdict, EvidenceKind Evidence, string Detail, int Strikes = 0);

/// <summary>
/// The one liveness policy. Every path that releases a lease without a DEL asks it (the plugin's reclaim of a full
/// range, boot recovery, reconcile, the guardian of host-local's files, the operator's validated release), and every
/// view that explains one (check, leases) asks it which boot a lease is of; nobody else compares boot IDs or ages.
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
/// The plugin and boot recovery, which ask no runtime and judge only leases of earlier boots, need no grace period.
/// </summary>
public sealed class Liveness(IBootClock clock, TimeSpan gracePeriod = default)
{
    /// <summary>Consecutive passes without evidence after which a lease of this boot is released.</summary>
    public const int StrikesToRelease = 2;

    /// <summary>The boot clock every age and boot is measured on.</summary>
    public IBootClock Clock => clock;

    /// <summary>The earlier-boot predicate: whether something recorded in boot <paramref name="bootId"/> is from a boot before this one.</summary>
    public bool IsEarlierBoot(string bootId) => bootId != clock.BootId;

    /// <summary>What the evidence says about the owner of a lease made in an earlier boot, or in this one: the table.</summary>
    public static OwnerState Judge(bool earlierBoot, EvidenceKind evidence) => earlierBoot
        ? evidence is EvidenceKind.Netns or EvidenceKind.Runtime ? OwnerState.Alive : OwnerState.Gone
        : evidence switch
        {
            EvidenceKind.None => OwnerState.Gone,
            EvidenceKind.Unknown => OwnerState.Unknown,
            _ => OwnerState.Alive,
        };

    /// <summary>What the evidence says about this lease's owner, by the boot the lease is of.</summary>
    public OwnerState Judge(Lease lease, EvidenceKind evidence) => Judge(IsEarlierBoot(lease.BootId), evidence);

    /// <summary>
    /// For the paths that ask no runtime (the plugin's reclaim, boot recovery): whether the lease is of an earlier
    /// boot and its owner is gone by the netns path alone. <paramref name="evidence"/> is what the path showed
    /// (<see cref="EvidenceKind.Netns"/>, or <see cref="EvidenceKind.Unknown"/>: no runtime was asked); a lease of
    /// this boot is never theirs to release.
    /// </summary>
    public bool LostWithItsBoot(Lease lease, INetnsProbe netns, out EvidenceKind evidence)
    {
        evidence = EvidenceKind.Unknown;
        if (!IsEarlierBoot(lease.BootId)) return false;
        evidence = NetnsEvidence.Of(lease, netns);
        return Judge(earlierBoot: true, evidence) == OwnerState.Gone;
    }

    /// <summary>
    /// A pass's verdict on one lease, wherever it is kept (berth's store or host-local's files): the store keeps the
    /// strikes, <paramref name="strike"/> counts one more and returns the count, <paramref name="clearStrikes"/>
    /// forgets them. The lease's boot and time since boot are when it was made (or first seen, for host-local).
    /// </summary>
    public Judgement Decide(Lease lease, EvidenceKind evidence, string detail, Func<int> strike, Action clearStrikes)
    {
        var earlier = IsEarlierBoot(lease.BootId);
        switch (Judge(earlier, evidence))
        {
            case OwnerState.Alive:
                if (!earlier) clearStrikes();
                return new Judgement(Verdict.Keep, evidence, detail);
            case OwnerState.Unknown:
                return new Judgement(Verdict.Unknown, evidence, detail);
        }
        if (earlier) return new Judgement(Verdict.Release, evidence, $"made in boot {lease.BootId}: " + detail);
        var age = LeaseAge.WithinBoot(lease.SinceBoot, clock);
        if (age < gracePeriod) return new Judgement(Verdict.Young, evidence, $"{detail}; {LeaseAge.Format(age)} old, within the grace period of {LeaseAge.Format(gracePeriod)}");
        var strikes = strike();
        return strikes >= StrikesToRelease
            ? new Judgement(Verdict.Release, evidence, $"{detail}; {strikes} passes without evidence", strikes)
            : new Judgement(Verdict.Strike, evidence, $"{detail}; strike {strikes}, released at {StrikesToRelease}", strikes);
    }

    /// <summary>The re-check just before release: null when the lease may still go, else why it stays.</summary>
    public Judgement? Recheck(Lease lease, EvidenceKind evidence, string detail, Action clearStrikes)
    {
        var earlier = IsEarlierBoot(lease.BootId);
        var state = Judge(earlier, evidence);
        if (state == OwnerState.Gone) return null;
        if (state == OwnerState.Alive && !earlier) clearStrikes();
        return new Judgement(state == OwnerState.Unknown ? Verdict.Unknown : Verdict.Keep, evidence, "re-checked before release: " + detail);
    }
}
