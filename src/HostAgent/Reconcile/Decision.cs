using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>What a pass decided about one lease, with the evidence behind it; <see cref="Store"/> says where the lease lives (berth's store, or host-local:DIR).</summary>
internal sealed record Decision(Lease Lease, Verdict Verdict, EvidenceKind Evidence, string Detail, int Strikes = 0, string Store = LeaseStores.Berth);

/// <summary>The possible outcomes for a lease in a pass.</summary>
internal enum Verdict
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
