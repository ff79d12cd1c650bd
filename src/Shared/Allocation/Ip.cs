using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Berth.Shared.Allocation;

/// <summary>
/// Address arithmetic on <see cref="IPAddress"/> through 128-bit integers, so that a /64 is walked by
/// adding one, never by enumerating it, and strict parsing that refuses the forms a config should not use.
/// </summary>
public static class Ip
{
    /// <summary>The address as an unsigned integer (IPv4 in the low 32 bits).</summary>
    public static UInt128 ToValue(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(bytes)
            : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>The address of the given family with the given integer value.</summary>
    public static IPAddress FromValue(UInt128 value, AddressFamily family)
    {
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)value);
            return new IPAddress(v4);
        }
        Span<byte> v6 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(v6, value);
        return new IPAddress(v6);
    }

    /// <summary>The largest value an address of the family can have.</summary>
    public static UInt128 MaxValue(AddressFamily family) =>
        family == AddressFamily.InterNetwork ? uint.MaxValue : UInt128.MaxValue;

    /// <summary>The next address, or null past the end of the family's space.</summary>
    public static IPAddress? Next(IPAddress address)
    {
        var value = ToValue(address);
        return value == MaxValue(address.AddressFamily) ? null : FromValue(value + 1, address.AddressFamily);
    }

    /// <summary>The previous address, or null before the start of the family's space.</summary>
    public static IPAddress? Previous(IPAddress address)
    {
        var value = ToValue(address);
        return value == UInt128.Zero ? null : FromValue(value - 1, address.AddressFamily);
    }

    /// <summary>Orders addresses of one family numerically; IPv4 sorts before IPv6.</summary>
    public static int Compare(IPAddress a, IPAddress b)
    {
        if (a.AddressFamily != b.AddressFamily)
        {
            return a.AddressFamily == AddressFamily.InterNetwork ? -1 : 1;
        }
        return ToValue(a).CompareTo(ToValue(b));
    }

    /// <summary>The number of address bits in the family: 32 or 128.</summary>
    public static int Bits(AddressFamily family) => family == AddressFamily.InterNetwork ? 32 : 128;

    /// <summary>The last address of a network (for IPv4, its broadcast address).</summary>
    public static IPAddress LastOf(IPNetwork network)
    {
        var bits = Bits(network.BaseAddress.AddressFamily);
        var hostBits = bits - network.PrefixLength;
        var hostMask = hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
        return FromValue(ToValue(network.BaseAddress) | hostMask, network.BaseAddress.AddressFamily);
    }

    /// <summary>
    /// Parses an address written the usual way: IPv4 as four decimal parts, IPv6 without a zone.
    /// .NET alone would also take "10", "10.1" or "0x0a.0.0.1", which no config means.
    /// </summary>
    public static bool TryParse(string? text, out IPAddress address)
    {
        address = IPAddress.None;
        if (string.IsNullOrEmpty(text) || text.Length > 45 || text.Contains('%')) return false;
        if (text.Contains(':'))
        {
            if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6) return false;
            address = v6;
            return true;
        }
        var parts = text.Split('.');
        if (parts.Length != 4) return false;
        foreach (var part in parts)
        {
            if (part.Length is 0 or > 3 || !part.All(char.IsAsciiDigit) || int.Parse(part) > 255) return false;
        }
        address = IPAddress.Parse(text);
        return true;
    }

    /// <summary>Parses "address/prefix", keeping the address as written (host bits included).</summary>
    public static bool TryParseCidr(string? text, out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = -1;
        var slash = text?.IndexOf('/') ?? -1;
        if (slash <= 0) return false;
        var prefixText = text![(slash + 1)..];
        if (!TryParse(text[..slash], out address)) return false;
        if (prefixText.Length is 0 or > 3 || !prefixText.All(char.IsAsciiDigit)) return false;
        prefix = int.Parse(prefixText);
        return prefix <= Bits(address.AddressFamily);
    }

    /// <summary>The network of an address with a prefix: its host bits cleared (10.244.3.1/24 → 10.244.3.0/24).</summary>
    public static IPNetwork NetworkOf(IPAddress address, int prefix)
    {
        var hostMask = prefix == 0 ? MaxValue(address.AddressFamily) : (UInt128.One << (Bits(address.AddressFamily) - prefix)) - 1;
        return new IPNetwork(FromValue(ToValue(address) & ~hostMask & MaxValue(address.AddressFamily), address.AddressFamily), prefix);
    }

    /// <summary>Whether the address is inside the network.</summary>
    public static bool Contains(IPNetwork network, IPAddress address) =>
        address.AddressFamily == network.BaseAddress.AddressFamily && network.Contains(address);
}
