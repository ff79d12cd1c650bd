using System.Net;
using System.Net.Sockets;
using Berth.Shared.Allocation;

namespace Berth.Shared.Config;

/// <summary>
/// One range of host-local's config after canonicalisation: a subnet, the first and last address that may be
/// handed out (both inclusive) and the gateway, which is never handed out.
/// </summary>
public sealed record AddressRange(IPNetwork Subnet, IPAddress Start, IPAddress End, IPAddress Gateway)
{
    /// <summary>IPv4 or IPv6.</summary>
    public AddressFamily Family => Subnet.BaseAddress.AddressFamily;

    /// <summary>Whether the address lies between <see cref="Start"/> and <see cref="End"/> of this subnet.</summary>
    public bool Contains(IPAddress address) =>
        Ip.Contains(Subnet, address) && Ip.Compare(address, Start) >= 0 && Ip.Compare(address, End) <= 0;

    /// <summary>How many addresses may be handed out: the range, less the gateway when it lies inside.</summary>
    public UInt128 Capacity => Ip.ToValue(End) - Ip.ToValue(Start) + 1 - (Contains(Gateway) ? UInt128.One : UInt128.Zero);

    /// <summary>Whether two ranges of the same family share an address.</summary>
    public bool Overlaps(AddressRange other) =>
        Family == other.Family && Ip.Compare(Start, other.End) <= 0 && Ip.Compare(other.Start, End) <= 0;

    /// <summary>"10.0.0.1-10.0.0.254", as host-local names a range in messages.</summary>
    public override string ToString() => $"{Start}-{End}";
}
