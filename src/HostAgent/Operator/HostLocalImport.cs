using System.Net.Sockets;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Cni;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>What an import did, network by network.</summary>
internal sealed record ImportReport(List<string> Imported, List<string> Already, List<string> Conflicts, List<string> Cursors, List<string> Skipped);

/// <summary>
/// `berth-agent import-host-local`: takes over a node that ran host-local without restarting its pods. Each
/// lease file <c>DIR/NETWORK/ADDRESS</c> (read by <see cref="HostLocalDirs"/>, as the guardian reads them) ("containerID\r\nifname", or only the ID in older files) becomes a lease of
/// this boot with reason "import"; <c>last_reserved_ip.N</c> becomes the round-robin position of range set N.
/// Idempotent: what berth already holds for the same owner is left as it is; an address berth gives to
/// someone else is reported as a conflict and never overwritten.
/// </summary>
internal sealed class HostLocalImport(SqliteLeaseStore store, IBootClock clock, TimeProvider time)
{
    public ImportReport Run(string directory, string? onlyNetwork, bool dryRun, string actor)
    {
        if (!Directory.Exists(directory)) throw new CniException(ErrorCodes.IoFailure, $"{directory} does not exist: no host-local data to import");
        var scan = HostLocalDirs.Scan([directory], onlyNetwork);
        if (onlyNetwork is not null && HostLocalDirs.Networks(directory)?.Contains(onlyNetwork) != true)
        {
            throw new CniException(ErrorCodes.IoFailure, $"no network \"{onlyNetwork}\" under {directory}");
        }
        var report = new ImportReport([], [], [], [], [.. scan.Warnings]);
        var recorded = store.Query(q => q.Networks()).ToDictionary(n => n.Network, n => RecordedRanges.Parse(n.Network, n.Ranges));
        ImportReport Act(IAgentTransaction tx)
        {
            foreach (var network in scan.Files.Select(f => f.Network).Concat(scan.Cursors.Select(c => c.Network)).Distinct().Order(StringComparer.Ordinal))
            {
                ImportNetwork(tx, network, [.. scan.Files.Where(f => f.Network == network)], [.. scan.Cursors.Where(c => c.Network == network)],
                    recorded.GetValueOrDefault(network), actor, report);
            }
            return report;
        }
        return dryRun ? store.Rehearse(Act) : store.Write(Act);
    }

    private void ImportNetwork(IAgentTransaction tx, string network, List<HostLocalFile> files, List<HostLocalCursor> cursors, IReadOnlyList<RangeSet>? sets, string actor, ImportReport report)
    {
        var hasIpv4 = files.Any(e => e.Address.AddressFamily == AddressFamily.InterNetwork);
        foreach (var file in files)
        {
            var (address, id) = (file.Address, file.ContainerId);
            // Files of host-local before 0.8 name no interface: the runtimes of that time used eth0.
            var ifName = file.IfName.Length > 0 ? file.IfName : "eth0";
            // Without recorded ranges, families stand for range sets: IPv4 first, as dual-stack configs order them.
            var set = sets?.FirstOrDefault(s => s.Contains(address));
            var rangeSet = set?.Index ?? (address.AddressFamily == AddressFamily.InterNetworkV6 && hasIpv4 ? 1 : 0);
            var what = $"{address} in network {network} for container {id} ({ifName})";
            if (tx.Holder(network, address) is { } holder)
            {
                if (holder.IsOwnedBy(id, ifName)) report.Already.Add(what);
                else report.Conflicts.Add($"{what}: berth gives it to {holder.Describe()}; left as it is");
                continue;
            }
            if (tx.LeasesOf(network, id, ifName).FirstOrDefault(l => l.RangeSet == rangeSet) is { } other)
            {
                report.Conflicts.Add($"{what}: berth already gives that container {other.Address} in range set {rangeSet}; left as it is");
                continue;
            }
            tx.Add(new Lease(network, address, rangeSet, set?.RangeFor(address)?.Subnet.ToString() ?? "", id, ifName, "", null, null, null, null,
                clock.BootId, clock.SinceBoot, time.GetUtcNow(), Reasons.Import), new Change(Reasons.Import, actor, $"from {file.Path}"));
            report.Imported.Add(what);
        }
        foreach (var cursor in cursors)
        {
            if (tx.Cursor(network, cursor.RangeSet) is not null) continue;
            tx.SetCursor(network, cursor.RangeSet, cursor.Last);
            report.Cursors.Add($"network {network} range set {cursor.RangeSet}: round-robin continues after {cursor.Last}");
        }
    }
}
