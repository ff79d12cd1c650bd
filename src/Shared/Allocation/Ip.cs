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
    /// Parses an address with host-local's rules, which are Go's (net.ParseIP): IPv4 as exactly four decimal
    /// parts of 0 to 255 with no leading zero, no sign, no space and no trailing dot; IPv6 as hex groups of one to
    /// four digits with at most one "::" (which stands for at least one group), an IPv4 tail allowed in the last 32
    /// bits, and no zone ("%eth0") and no brackets. .NET alone would take "10", "0x0a.0.0.1" or "010.0.0.1" (as
    /// octal: 8.0.0.1), and throw on "10.0.0.09"; host-local refuses all of them. The one reader of addresses:
    /// configs, CNI_ARGS, prevResult, host-local's file names, the store, the operator's arguments.
    /// </summary>
    public static bool TryParse(string? text, out IPAddress address) => TryParse(text.AsSpan(), out address);

    /// <inheritdoc cref="TryParse(string?, out IPAddress)"/>
    public static bool TryParse(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        Span<byte> bytes = stackalloc byte[16];
        // As Go decides: the first of '.' and ':' tells the family.
        var first = text.IndexOfAny('.', ':');
        if (first < 0) return false;
        if (text[first] == '.')
        {
            if (!TryParseV4(text, bytes[..4])) return false;
            address = new IPAddress(bytes[..4]);
            return true;
        }
        if (!TryParseV6(text, bytes)) return false;
        address = new IPAddress(bytes);
        return true;
    }

    private static bool TryParseV4(ReadOnlySpan<char> text, Span<byte> into)
    {
        var part = 0;
        var i = 0;
        while (part < 4)
        {
            var start = i;
            var value = 0;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                value = value * 10 + (text[i] - '0');
                i++;
                if (i - start > 3) return false;
            }
            var digits = i - start;
            if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return false;
            into[part++] = (byte)value;
            if (part == 4) break;
            if (i >= text.Length || text[i] != '.') return false;
            i++;
        }
        return i == text.Length;
    }

    private static bool TryParseV6(ReadOnlySpan<char> s, Span<byte> ip)
    {
        ip.Clear();
        var ellipsis = -1;
        if (s.StartsWith("::"))
        {
            ellipsis = 0;
            s = s[2..];
            if (s.IsEmpty) return true;
        }
        var i = 0;
        while (i < 16)
        {
            var digits = 0;
            var value = 0;
            while (digits < s.Length && char.IsAsciiHexDigit(s[digits]))
            {
                value = value * 16 + HexValue(s[digits]);
                digits++;
                if (digits > 4) return false;
            }
            if (digits == 0) return false;
            if (digits < s.Length && s[digits] == '.')
            {
                // An IPv4 tail fills the last four bytes, or stands after a "::".
                if ((ellipsis < 0 && i != 12) || i + 4 > 16 || !TryParseV4(s, ip.Slice(i, 4))) return false;
                i += 4;
                s = [];
                break;
            }
            ip[i] = (byte)(value >> 8);
            ip[i + 1] = (byte)value;
            i += 2;
            s = s[digits..];
            if (s.IsEmpty) break;
            if (s[0] != ':' || s.Length == 1) return false;
            s = s[1..];
            if (s[0] == ':')
            {
                if (ellipsis >= 0) return false;
                ellipsis = i;
                s = s[1..];
                if (s.IsEmpty) break;
            }
        }
        if (!s.IsEmpty) return false;
        if (i < 16)
        {
            if (ellipsis < 0) return false;
            // Move what followed the "::" to the end; zeros in between.
            var tail = i - ellipsis;
            ip.Slice(ellipsis, tail).CopyTo(ip.Slice(16 - tail, tail));
            ip.Slice(ellipsis, 16 - i).Clear();
        }
        else if (ellipsis >= 0)
        {
            // "::" must stand for at least one group of zeros.
            return false;
        }
        return true;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

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
