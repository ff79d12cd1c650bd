using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Reconcile;

/// <summary>What a pass decided about one lease, with the evidence behind it; <see cref="Store"/> says where the lease lives (berth's store, or host-local:DIR).</summary>
internal sealed record Decision(Lease Lease, Verdict Verdict, EvidenceKind Evidence, string Detail, int Strikes = 0, string Store = LeaseStores.Berth)
{
    /// <summary><see cref="Liveness"/>'s judgement of a lease kept in <paramref name="store"/>.</summary>
    public static Decision Of(Lease lease, Judgement judgement, string store = LeaseStores.Berth) =>
        new(lease, judgement.Verdict, judgement.Evidence, judgement.Detail, judgement.Strikes, store);
}
