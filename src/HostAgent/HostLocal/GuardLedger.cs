using System.Net;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.HostLocal;

/// <summary>
/// The agent's ledger of host-local's files, as berth's store keeps it: which files the agent has seen, with which
/// owner, first in which boot and how long after it started. host-local records no netns and no time that survives a
/// wall-clock jump, so this is all that can say a file is old: a file seen in an earlier boot with the same owner is
/// a lease of that boot, and a file seen in this boot is aged from its first sighting (boot clock). A file whose
/// owner changed is a new lease, and so not seen. Every reader of "first seen / seen in an earlier boot" asks here.
/// </summary>
internal sealed class GuardLedger
{
    private readonly Dictionary<(string Dir, string Network, IPAddress Address), GuardedFile> _rows;

    public GuardLedger(IEnumerable<GuardedFile> rows) => _rows = rows.ToDictionary(r => (r.Dir, r.Network, r.Address));

    /// <summary>The ledger as the transaction sees it.</summary>
    public static GuardLedger Read(IAgentTransaction tx) => new(tx.GuardedFiles());

    /// <summary>Every row, file or not.</summary>
    public IReadOnlyCollection<GuardedFile> Rows => _rows.Values;

    /// <summary>The row that saw this file with its current owner; null when the file is not seen (never, or with another owner).</summary>
    public GuardedFile? Seen(HostLocalFile file) =>
        _rows.GetValueOrDefault((file.Dir, file.Network, file.Address)) is { } row && row.SameOwner(file.ContainerId, file.IfName) ? row : null;

    /// <summary>Whether the file was seen, with its current owner, in a boot before this one: by <see cref="Liveness"/>, a lease of that boot.</summary>
    public bool SeenInEarlierBoot(HostLocalFile file, Liveness liveness) => Seen(file) is { } row && liveness.IsEarlierBoot(row.BootId);

    /// <summary>Records a file not seen as first seen now (this boot, this time since boot), strikes at zero.</summary>
    public static GuardedFile See(IAgentTransaction tx, HostLocalFile file) => tx.SeeGuardedFile(file.Dir, file.Network, file.Address, file.ContainerId, file.IfName);

    /// <summary>The file as a lease, for the evidence and the policy: as the ledger saw it, or as <see cref="NotSeen"/>.</summary>
    public Lease LeaseOf(HostLocalFile file, IBootClock clock) => Seen(file)?.AsLease() ?? NotSeen(file, clock);

    /// <summary>
    /// A file the ledger has not seen, as a lease: of this boot, since nothing proves it older (so only its owner's
    /// evidence, never its age, can let it go). It has no first-seen time: its lease's time is left unset, and no
    /// view shows one for it (<c>leases</c> shows it as <c>unseen</c>, with no age).
    /// </summary>
    public static Lease NotSeen(HostLocalFile file, IBootClock clock) =>
        GuardedFile.LeaseOf(file.Network, file.Address, file.ContainerId, file.IfName, clock.BootId, clock.SinceBoot, default);
}
