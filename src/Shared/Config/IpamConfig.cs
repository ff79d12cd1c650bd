using System.Net;

namespace Berth.Shared.Config;

/// <summary>
/// The network configuration as the plugin needs it: host-local's <c>ipam</c> section canonicalised, plus
/// the requested addresses gathered from CNI_ARGS, <c>args.cni.ips</c> and <c>runtimeConfig.ips</c>.
/// </summary>
public sealed record IpamConfig(
    string CniVersion,
    string Network,
    string DataDir,
    IReadOnlyList<RangeSet> RangeSets,
    IReadOnlyList<Route> Routes,
    string? ResolvConf,
    IReadOnlyList<IPAddress> RequestedAddresses)
{
    /// <summary>Where the store lives when <c>ipam.dataDir</c> is not given.</summary>
    public const string DefaultDataDir = "/var/lib/berth";

    /// <summary>The store's file name inside the data directory.</summary>
    public const string StoreFileName = "berth.db";

    /// <summary>The full path of the store.</summary>
    public string StorePath => Path.Combine(DataDir, StoreFileName);
}
