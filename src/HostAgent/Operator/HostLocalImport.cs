using System.Net;
using System.Net.Sockets;
using Berth.Shared.Allocation;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>What an import did, network by network.</summary>
internal sealed record ImportReport(List<string> Imported, List<string> Already, List<string> Conflicts, List<string> Cursors, List<string> Skipped);

/// <summary>
/// `berth-agent import-host-local`: takes over a node that ran host-local without restarting its pods. Each
/// file <c>DIR/NETWORK/ADDRESS</c> ("containerID\r\nifname", or only the ID in older files) becomes a lease of
/// this boot with reason "import"; <c>last_reserved_ip.N</c> becomes the round-robin position of range set N.
/// Idempotent: what berth already holds for the same owner is left as it is; an address berth gives to
/// someone else is reported as a conflict and never overwritten.
/// </summary>
internal sealed class HostLocalImport(SqliteLeaseStore store, IBootClock clock, TimeProvider time)
{
    private const string CursorPrefix = "last_reserved_ip.";

    public ImportReport Run(string directory, string? onlyNetwork, bool dryRun, string actor)
    {
        if (!Directory.Exists(directory)) throw new Berth.Shared.Cni.CniException(Berth.Shared.Cni.ErrorCodes.IoFailure, $"{directory} does not exist: no host-local data to import");
        var report = new ImportReport([], [], [], [], []);
        var networks = Directory.GetDirectories(directory).Select(Path.GetFileName).OfType<string>()
            .Where(n => onlyNetwork is null || n == onlyNetwork).Order(StringComparer.Ordinal).ToList();
        if (onlyNetwork is not null && networks.Count == 0) throw new Berth.Shared.Cni.CniException(Berth.Shared.Cni.ErrorCodes.IoFailure, $"no network \"{onlyNetwork}\" under {directory}");
        var recorded = store.Query(q => q.Networks()).ToDictionary(n => n.Network, n => RecordedRanges.Parse(n.Network, n.Ranges));
        ImportReport Act(IStoreTransaction tx)
        {
            foreach (var network in networks)
            {
                if (!ConfigParser.IsIdentifier(network))
                {
                    report.Skipped.Add($"{network}: not a CNI network name");
                    continue;
                }
                ImportNetwork(tx, Path.Combine(directory, network), network, recorded.GetValueOrDefault(network), actor, report);
            }
            return report;
        }
        return dryRun ? store.Rehearse(Act) : store.Write(Act);
    }

    private void ImportNetwork(IStoreTransaction tx, string path, string network, IReadOnlyList<RangeSet>? sets, string actor, ImportReport report)
    {
        var entries = new List<(IPAddress Address, string ContainerId, string IfName, string File)>();
        var cursors = new List<(int RangeSet, IPAddress Address)>();
        foreach (var file in Directory.GetFiles(path).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (name.StartsWith(CursorPrefix, StringComparison.Ordinal))
            {
                if (int.TryParse(name[CursorPrefix.Length..], out var index) && Ip.TryParse(Read(file)?.Trim(), out var last)) cursors.Add((index, last));
                continue;
            }
            if (!Ip.TryParse(name, out var address)) continue; // host-local's lock file and anything else that is not a lease
            var lines = (Read(file) ?? "").Split('\n', StringSplitOptions.TrimEntries);
            var id = lines[0];
            var ifName = lines.Length > 1 && lines[1].Length > 0 ? lines[1] : "eth0";
            if (!ConfigParser.IsIdentifier(id) || ifName.Length > 15 || ifName.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
            {
                report.Skipped.Add($"{file}: does not hold a container ID and interface name");
                continue;
            }
            entries.Add((address, id, ifName, file));
        }
        var hasIpv4 = entries.Any(e => e.Address.AddressFamily == AddressFamily.InterNetwork);
        foreach (var (address, id, ifName, file) in entries)
        {
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
                clock.BootId, clock.SinceBoot, time.GetUtcNow(), Reasons.Import), new Change(Reasons.Import, actor, $"from {file}"));
            report.Imported.Add(what);
        }
        foreach (var (index, last) in cursors)
        {
            if (tx.Cursor(network, index) is not null) continue;
            tx.SetCursor(network, index, last);
            report.Cursors.Add($"network {network} range set {index}: round-robin continues after {last}");
        }
    }

    private static string? Read(string file)
    {
        try
        {
            return new FileInfo(file).Length > 4096 ? null : File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
