using System.Net;
using System.Net.Sockets;

namespace Berth.Shared.Leases;

/// <summary>
/// Addresses as index keys: a family byte (4 or 6) then the address bytes, big-endian. Byte order is numeric
/// order, so SQLite's memcmp ordering of BLOBs sorts and ranges them correctly, and the families never mix.
/// </summary>
internal static class AddressKey
{
    public static byte[] Of(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        var key = new byte[bytes.Length + 1];
        key[0] = address.AddressFamily == AddressFamily.InterNetwork ? (byte)4 : (byte)6;
        bytes.CopyTo(key, 1);
        return key;
    }

    public static IPAddress ToAddress(byte[] key) => new(key.AsSpan(1));

    public static int Compare(byte[] a, byte[] b) => a.AsSpan().SequenceCompareTo(b);

    /// <summary>The key of the next address, or null at the end of the family.</summary>
    public static byte[]? Next(byte[] key) => Step(key, +1);

    /// <summary>The key of the previous address, or null at the start of the family.</summary>
    public static byte[]? Previous(byte[] key) => Step(key, -1);

    private static byte[]? Step(byte[] key, int delta)
    {
        var result = (byte[])key.Clone();
        var limit = delta > 0 ? (byte)0xff : (byte)0x00;
        for (var i = result.Length - 1; i >= 1; i--)
        {
            if (result[i] != limit)
            {
                result[i] = (byte)(result[i] + delta);
                return result;
            }
            result[i] = (byte)(0xff - limit);
        }
        return null;
    }
}
