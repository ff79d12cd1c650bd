using System.Net;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Allocation;
using Berth.Shared.Config;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Pools;

/// <summary>
/// One series of a guarded network's pool: a range of range set <see cref="RangeSet"/> with its size, or, when
/// <see cref="Range"/> is null, the addresses held outside every known range (all of them when the network's
/// ranges are not known).
/// </summary>
internal sealed record PoolRange(string Store, string Network, int? RangeSet, AddressRange? Range, long Used);

/// <summary>A guarded network whose size is not known, and why.</summary>
internal sealed record UnsizedNetwork(string Dir, string Network, string Why);

/// <summary>What <see cref="PoolUsage.Measure"/> found.</summary>
internal sealed record PoolReport(IReadOnlyList<PoolRange> Ranges, IReadOnlyList<UnsizedNetwork> Unsized, IReadOnlyList<string> Warnings)
{
    public static PoolReport Empty { get; } = new([], [], []);
}

/// <summary>
/// How full the networks are whose host-local directories the agent guards (<c>hostLocal.dirs</c>), for the same
/// size and used series berth's own ranges have. Used is what host-local itself takes for taken: every
/// address-named entry in the network's directory (an empty or damaged file holds its address too); the size
/// comes from the network's CNI config on the node (<see cref="NodeCniConfigs"/>). Only names are listed, no file
/// is read, and nothing is written: cheap enough for every scrape.
/// </summary>
internal static class PoolUsage
{
    public static PoolReport Measure(IReadOnlyList<string> hostLocalDirs, IReadOnlyList<string> cniConfDirs)
    {
        if (hostLocalDirs.Count == 0) return PoolReport.Empty;
        var configs = NodeCniConfigs.Read(cniConfDirs);
        var ranges = new List<PoolRange>();
        var unsized = new List<UnsizedNetwork>();
        var warnings = new List<string>(configs.Warnings);
        foreach (var dir in hostLocalDirs)
        {
            if (HostLocalDirs.Networks(dir, warnings) is not { } networks) continue;
            var store = LeaseStores.HostLocal(dir);
            foreach (var network in networks)
            {
                List<IPAddress> held;
                try
                {
                    using var net = HostLocalNetwork.Open(dir, network);
                    held = [.. net.Names().Select(AddressOf).OfType<IPAddress>()];
                }
                catch (HostLocalException e)
                {
                    if (!e.Gone) warnings.Add($"{e.Message}; skipped");
                    continue;
                }
                var config = configs.Find(dir, network);
                if (config?.Sets is not { } sets)
                {
                    ranges.Add(new PoolRange(store, network, null, null, held.Count));
                    unsized.Add(new UnsizedNetwork(dir, network, config is null
                        ? $"no CNI config in {string.Join(", ", cniConfDirs)} names network {network} with host-local ipam and dataDir {dir} (set cniConfDirs to the runtime's CNI config dir)"
                        : $"its CNI config {config.File}: {config.Problem}"));
                    continue;
                }
                var outside = held.Count;
                foreach (var set in sets)
                {
                    foreach (var range in set.Ranges)
                    {
                        var used = held.Count(range.Contains);
                        outside -= used;
                        ranges.Add(new PoolRange(store, network, set.Index, range, used));
                    }
                }
                if (outside > 0) ranges.Add(new PoolRange(store, network, null, null, outside));
            }
        }
        return new PoolReport(ranges, unsized, warnings);
    }

    /// <summary>The address a directory entry is named for, in host-local's spelling (Go's net.IP.String), or null.</summary>
    private static IPAddress? AddressOf(string name) => Ip.TryParse(name, out var address) && address.ToString() == name ? address : null;
}
