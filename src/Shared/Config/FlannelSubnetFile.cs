using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Shared.Allocation;

namespace Berth.Shared.Config;

/// <summary>
/// flannel's subnet file (<c>/run/flannel/subnet.env</c>, written by flanneld): the node's pod subnets, which
/// a <c>"subnet": "usePodCidr"</c> (or <c>"usePodCidrIPv6"</c>) range stands for. Canal's Calico plugin
/// substitutes the node's pod CIDR only for host-local; with berth the literal reaches the IPAM plugin, and
/// flanneld has already written the same subnet here. <c>FLANNEL_SUBNET=10.244.3.1/24</c> is the subnet
/// 10.244.3.0/24, as the flannel CNI plugin passes it to its IPAM plugin; the gateway then defaults to
/// network + 1 like any range.
/// </summary>
public static class FlannelSubnetFile
{
    /// <summary>Where flanneld writes it, and where the flannel CNI plugin reads it unless told otherwise.</summary>
    public const string DefaultPath = "/run/flannel/subnet.env";

    /// <summary>The IPv4 subnet's key.</summary>
    public const string Ipv4Key = "FLANNEL_SUBNET";

    /// <summary>The IPv6 subnet's key.</summary>
    public const string Ipv6Key = "FLANNEL_IPV6_SUBNET";

    /// <summary>flanneld writes a few hundred bytes; anything this large is not its file.</summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>
    /// The subnet under <paramref name="key"/> (<see cref="Ipv4Key"/> or <see cref="Ipv6Key"/>), masked to its
    /// network. Throws <see cref="FormatException"/> with a message that says what is wrong: the file is
    /// missing, unreadable, too large, not text, lacks the key, or holds a value that is not a CIDR of the
    /// key's family. The file is opened at <paramref name="callerFile"/>(<paramref name="path"/>) when given (the
    /// caller's file, in berth-agent); messages name <paramref name="path"/>.
    /// </summary>
    public static IPNetwork Subnet(string path, string key, Func<string, string>? callerFile = null)
    {
        var shown = ConfigParser.Clip(path);
        var family = key == Ipv6Key ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
        string? value = null;
        // Read as the flannel plugin reads it, so that both take the same subnet from the same file: KEY=VALUE
        // lines, the key matched exactly, nothing trimmed but a line's CR; other lines and keys are ignored; the
        // last occurrence of a key wins.
        foreach (var line in Lines(path, callerFile?.Invoke(path) ?? path))
        {
            var text = line.EndsWith('\r') ? line[..^1] : line;
            if (text.StartsWith(key + "=", StringComparison.Ordinal)) value = text[(key.Length + 1)..];
        }
        if (value is null) throw new FormatException($"flannel's subnet file {shown} has no {key}: has flanneld assigned this node {(family == AddressFamily.InterNetwork ? "an IPv4" : "an IPv6")} subnet?");
        if (!Ip.TryParseCidr(value, out var address, out var prefix) || address.AddressFamily != family)
        {
            throw new FormatException($"flannel's subnet file {shown}: {key}=\"{ConfigParser.Clip(value)}\" is not {(family == AddressFamily.InterNetwork ? "an IPv4 CIDR such as 10.244.3.1/24" : "an IPv6 CIDR such as fd00:10:244:3::1/64")}");
        }
        return Ip.NetworkOf(address, prefix);
    }

    private static IEnumerable<string> Lines(string path, string opened)
    {
        var shown = ConfigParser.Clip(path);
        byte[] bytes;
        try
        {
            bytes = SmallFile.Read(opened, MaxBytes);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FormatException($"flannel's subnet file {shown} does not exist: is flanneld running on this node? (set ipam.subnetFile if it writes elsewhere)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new FormatException($"cannot read flannel's subnet file {shown}: {e.Message}");
        }
        if (bytes.AsSpan().Contains((byte)0) || !System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw new FormatException($"flannel's subnet file {shown} is not text: not a file flanneld wrote");
        }
        return Encoding.UTF8.GetString(bytes).Split('\n');
    }
}
