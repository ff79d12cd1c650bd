using System.Net;
using System.Net.Sockets;

namespace Berth.Shared.Config;

/// <summary>
/// A range set: one or more ranges of one family from which exactly one address is given per attachment.
/// <see cref="Index"/> is its position in the config, which keys the round-robin cursor as host-local's
/// last_reserved_ip.N does.
/// </summary>
public sealed record RangeSet(int Index, IReadOnlyList<AddressRange> Ranges)
{
    /// <summary>The family shared by every range of the set.</summary>
    public AddressFamily Family => Ranges[0].Family;

    /// <summary>The range holding the address, or null when no range of the set does.</summary>
    public AddressRange? RangeFor(IPAddress address) => Ranges.FirstOrDefault(r => r.Contains(address));

    /// <summary>Whether some range of the set holds the address.</summary>
    public bool Contains(IPAddress address) => RangeFor(address) is not null;

    /// <summary>"10.0.0.1-10.0.0.254,10.0.1.1-10.0.1.254", for messages.</summary>
    public override string ToString() => string.Join(",", Ranges);
}
