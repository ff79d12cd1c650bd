using Berth.HostAgent.Evidence;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.HostLocal;

/// <summary>What the guardian did with host-local's files, and what it skipped.</summary>
internal sealed record GuardReport(IReadOnlyList<Decision> Decisions, IReadOnlyList<string> Warnings, int Skipped = 0)
{
    public static GuardReport Empty { get; } = new([], []);
}

/// <summary>
/// The guardian of host-local's own lease files, for clusters whose CNI config names host-local and cannot be
/// changed (RKE2's Canal). No CNI config is touched: each file is handed to the same rules as berth's leases
/// (<see cref="Liveness"/>), with what host-local lets us know: the container ID (no netns, no time). A file's age
/// is counted from when the agent first saw it, on the boot clock, as recorded in berth's store (<see cref="GuardLedger"/>);
/// a file seen in an earlier boot with the same owner is a lease of that boot. Every deletion
/// is made under host-local's own lock after reading the file again, and is written to berth's history.
/// </summary>
internal sealed class HostLocalGuard(
    IReadOnlyList<string> dirs, IReadOnlyList<string> netnsDirs, IReadOnlyList<string> sockets, TimeSpan runtimeTimeout,
    ILeaseStore<IAgentTransaction> store, IBootClock clock, TimeSpan gracePeriod, string actor, TimeProvider time, TimeSpan? lockTimeout = null)
{
    /// <summary>How long a deletion waits for host-local's lock before it leaves the file to the next pass.</summary>
    private readonly TimeSpan _lockTimeout = lockTimeout ?? HostLocalNetwork.LockTimeout;

    private readonly Liveness _liveness = new(clock, gracePeriod);

    /// <summary>The host-local data directories guarded.</summary>
    public IReadOnlyList<string> Dirs => dirs;

    /// <summary>The guardian the config asks for, or null when <c>hostLocal.dirs</c> is [].</summary>
    public static HostLocalGuard? For(AgentConfig config, ILeaseStore<IAgentTransaction> store, IBootClock clock, string actor, TimeProvider time) => config.HostLocalDirs.Count == 0 ? null
        : new HostLocalGuard(config.HostLocalDirs, config.NetnsDirs, config.RuntimeSockets, config.RuntimeTimeout, store, clock, config.GracePeriod, actor, time);

    /// <summary>A file to delete, as the lease it is judged as (seen, or not seen: see <see cref="GuardLedger.LeaseOf"/>).</summary>
    private sealed record Candidate(HostLocalFile File, Lease Lease, Reason Why);

    private sealed record Reason(string Code, string Detail, EvidenceKind Evidence);

    /// <summary>
    /// At boot, before the runtime starts: the files of earlier boots go. A file is of an earlier boot when the
    /// agent saw it, with the same owner, in an earlier boot; or, for a file never seen, when
    /// <see cref="BootProof"/> shows that no runtime has run in this boot. Otherwise (recovery running late, with
    /// pods up) a file never seen is recorded as first seen now and left to reconcile: a live pod's file is never
    /// deleted at boot.
    /// </summary>
    public async Task<GuardReport> RecoverAsync(Func<Task<EvidenceSnapshot>> gather, bool dryRun, CancellationToken cancellationToken, IReadOnlyList<string>? only = null)
    {
        var scan = HostLocalDirs.Scan(only ?? dirs);
        if (scan.Files.Count == 0 && scan.EmptyFiles.Count == 0) return new GuardReport([], scan.Warnings, scan.Warnings.Count);
        var mayHaveRun = await BootProof.RuntimeMayHaveRunAsync(netnsDirs, sockets, runtimeTimeout, cancellationToken).ConfigureAwait(false);
        // Only when a runtime may be up is it worth asking (and then its answer keeps any sandbox it lists).
        var evidence = mayHaveRun is null ? null : await gather().ConfigureAwait(false);
        var decisions = new List<Decision>();
        var candidates = new List<Candidate>();
        int Sweep(IAgentTransaction tx)
        {
            var ledger = GuardLedger.Read(tx);
            foreach (var file in scan.Files)
            {
                if (ledger.Seen(file) is { } row)
                {
                    if (!_liveness.IsEarlierBoot(row.BootId)) continue;
                    var lease = row.AsLease();
                    var (kind, detail) = evidence?.Judge(lease) ?? (EvidenceKind.Unknown, "the runtime was not asked: none has run in this boot");
                    if (_liveness.Judge(lease, kind) == OwnerState.Alive)
                    {
                        decisions.Add(new Decision(lease, Verdict.Keep, kind, detail, Store: row.Store));
                        continue;
                    }
                    candidates.Add(new Candidate(file, lease, new Reason(Reasons.HostLocalBootRecovery, $"first seen in boot {row.BootId}; {detail}", kind)));
                    continue;
                }
                var first = GuardLedger.See(tx, file);
                if (mayHaveRun is null)
                {
                    candidates.Add(new Candidate(file, first.AsLease(), new Reason(Reasons.HostLocalBootRecovery,
                        $"no runtime has run in this boot (no netns pins in {string.Join(", ", netnsDirs)}, no runtime socket answers): a file of an earlier boot", EvidenceKind.None)));
                    continue;
                }
                decisions.Add(new Decision(first.AsLease(), Verdict.Young, EvidenceKind.Unknown,
                    $"a runtime may have run in this boot ({mayHaveRun}): first seen now, left to reconcile", Store: first.Store));
            }
            return 0;
        }
        _ = dryRun ? store.Rehearse(Sweep) : store.Write(Sweep);
        var warnings = scan.Warnings.ToList();
        candidates.AddRange(Emptied(scan, Reasons.HostLocalBootRecovery));
        decisions.AddRange(Release(candidates, dryRun, warnings));
        return new GuardReport(decisions, warnings, scan.Warnings.Count);
    }

    /// <summary>
    /// The empty lease files, to delete under host-local's lock if they are still empty there. An empty file names no
    /// owner: a write that a power cut kept without its data (host-local never syncs), or one a killed host-local
    /// left. host-local takes its address for reserved forever and no DEL ever matches it. It is never a write in
    /// progress once we hold host-local's lock: host-local creates and writes its file whole while it holds that
    /// lock, and removes it when the write fails (plugins/ipam/host-local/backend/disk, Reserve under Lock). So it
    /// goes at boot and in any pass, also when the agent starts late, as a pod does, where no boot proof exists.
    /// </summary>
    private IEnumerable<Candidate> Emptied(HostLocalScan scan, string reason)
    {
        foreach (var file in scan.EmptyFiles)
        {
            // An empty file was never a lease of anyone: it is not in the ledger, and is judged as not seen.
            yield return new Candidate(file, GuardLedger.NotSeen(file, clock), new Reason(reason,
                "empty under host-local's lock, it names no owner (a write that a power cut or a killed host-local left without its data)", EvidenceKind.None));
        }
    }

    /// <summary>
    /// One reconcile pass over host-local's files with the evidence the caller gathered; <paramref name="gather"/>
    /// gathers it again for the re-check just before a deletion.
    /// </summary>
    public async Task<GuardReport> PassAsync(EvidenceSnapshot evidence, Func<Task<EvidenceSnapshot>> gather, bool dryRun)
    {
        var scan = HostLocalDirs.Scan(dirs);
        var decisions = new List<Decision>();
        var candidates = new List<GuardedFile>();
        var files = scan.Files.Select(f => (f.Dir, f.Network, f.Address)).ToHashSet();
        int Judge(IAgentTransaction tx)
        {
            var ledger = GuardLedger.Read(tx);
            foreach (var row in ledger.Rows)
            {
                // host-local's own DEL removed it: forget it. Only where the directory could be read this time.
                if (!files.Contains((row.Dir, row.Network, row.Address)) && dirs.Contains(row.Dir) && scan.Read(row.Dir, row.Network)) tx.ForgetGuardedFile(row);
            }
            foreach (var file in scan.Files)
            {
                var current = ledger.Seen(file) ?? GuardLedger.See(tx, file);
                var lease = current.AsLease();
                var (kind, detail) = evidence.Judge(lease);
                var judgement = _liveness.Decide(lease, kind, detail, () => tx.StrikeGuardedFile(current), () => tx.ClearGuardedFileStrikes(current));
                if (judgement.Verdict == Verdict.Release) candidates.Add(current);
                else decisions.Add(Decision.Of(lease, judgement, current.Store));
            }
            return 0;
        }
        _ = dryRun ? store.Rehearse(Judge) : store.Write(Judge);
        var warnings = scan.Warnings.ToList();
        decisions.AddRange(Release([.. Emptied(scan, Reasons.HostLocalReconcile)], dryRun, warnings));
        var skipped = scan.Warnings.Count;
        if (candidates.Count == 0) return new GuardReport(decisions, warnings, skipped);

        // Just before deleting, look again: a sandbox may have come up meanwhile.
        var fresh = await gather().ConfigureAwait(false);
        var release = new List<Candidate>();
        foreach (var row in candidates)
        {
            var lease = row.AsLease();
            var found = fresh.Judge(lease);
            if (_liveness.Recheck(lease, found.Kind, found.Detail, () => { if (!dryRun) store.Write(tx => { tx.ClearGuardedFileStrikes(row); return 0; }); }) is { } kept)
            {
                decisions.Add(Decision.Of(lease, kept, row.Store));
                continue;
            }
            var detail = _liveness.IsEarlierBoot(lease.BootId) ? $"first seen in boot {lease.BootId}: {found.Detail}" : $"{found.Detail}; {row.Strikes + 1} passes without evidence";
            release.Add(new Candidate(new HostLocalFile(row.Dir, row.Network, row.Address, row.ContainerId, row.IfName), lease, new Reason(Reasons.HostLocalReconcile, detail, found.Kind)));
        }
        decisions.AddRange(Release(release, dryRun, warnings));
        return new GuardReport(decisions, warnings, skipped);
    }

    /// <summary>Deletes each file under host-local's lock if it still names the same owner, and records it; in a dry run only says so.</summary>
    private List<Decision> Release(List<Candidate> candidates, bool dryRun, List<string> warnings)
    {
        var decisions = new List<Decision>();
        foreach (var (file, lease, why) in candidates)
        {
            var detail = $"{why.Detail}; file {file.Path}";
            var where = LeaseStores.HostLocal(file.Dir);
            if (dryRun)
            {
                decisions.Add(new Decision(lease, Verdict.Release, why.Evidence, detail, Store: where));
                continue;
            }
            try
            {
                using var network = HostLocalNetwork.Open(file.Dir, file.Network);
                if (!network.Lock(_lockTimeout, time))
                {
                    warnings.Add($"{Path.Combine(file.Dir, file.Network)}: host-local's lock was held for {_lockTimeout.TotalSeconds:0} s; {file.Address} left for the next pass");
                    continue;
                }
                // Gone or handed to another owner meanwhile: host-local's DEL (or a new ADD) was first.
                if (!network.DeleteIfSame(file)) continue;
            }
            catch (HostLocalException e)
            {
                warnings.Add($"{e.Message}; {file.Address} left as it is");
                continue;
            }
            store.Write(tx =>
            {
                tx.RecordGuardedRelease(file.Dir, lease, new Change(why.Code, actor, detail));
                return 0;
            });
            decisions.Add(new Decision(lease, Verdict.Release, why.Evidence, detail, Store: where));
        }
        return decisions;
    }
}
