namespace Berth.Shared.Config;

/// <summary>
/// What <see cref="ConfigParser.Parse"/> does with a range whose subnet is <c>"usePodCidr"</c> or
/// <c>"usePodCidrIPv6"</c>.
/// </summary>
public enum PodCidrResolution
{
    /// <summary>Replace it with the node's subnet from flannel's subnet file (ADD and STATUS need the ranges).</summary>
    Resolve,

    /// <summary>
    /// Leave it out without reading any file: DEL, CHECK and GC act on the leases a container holds, not on the
    /// ranges, and must work when flannel's file is gone (Calico passes the literal on DEL too).
    /// </summary>
    Ignore,
}
