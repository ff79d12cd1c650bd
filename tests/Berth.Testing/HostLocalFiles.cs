namespace Berth.Testing;

/// <summary>
/// Host-local's files written directly, byte for byte as Debian's host-local writes them at ADD (the black-box
/// contract test HostLocalFilesContractTests runs the real one beside this and compares the trees): in
/// <c>dataDir/network/</c> a file named by the address holding <c>containerId\r\nifname</c>,
/// <c>last_reserved_ip.N</c> holding the address last handed out in range set N, and the empty <c>lock</c> file
/// (mode 0750) that host-local flocks. Lets the guardian's unit tests run without the binary.
/// </summary>
public static class HostLocalFiles
{
    /// <summary>
    /// An ADD of one container into a /24 (<paramref name="prefix"/> is its first three octets and a dot) as host-local
    /// hands addresses out with its default range: from .2 (.1 is the gateway), round robin after the last reserved
    /// address, skipping taken ones. Returns the address.
    /// </summary>
    public static string Add(string dataDir, string network, string prefix, string containerId, string ifName = "eth0")
    {
        var dir = Path.Combine(dataDir, network);
        var last = Path.Combine(dir, "last_reserved_ip.0");
        var from = File.Exists(last) ? int.Parse(File.ReadAllText(last).Split('.')[3], System.Globalization.CultureInfo.InvariantCulture) + 1 : 2;
        for (var host = from; host <= 254; host++)
        {
            var address = prefix + host;
            if (File.Exists(Path.Combine(dir, address))) continue;
            Reserve(dataDir, network, address, containerId, ifName);
            return address;
        }
        throw new InvalidOperationException($"no free address in {prefix}0/24 after {from - 1} (no wrap around here)");
    }

    /// <summary>Writes one reservation of <paramref name="address"/> in range set <paramref name="rangeSet"/>, as host-local's disk store does.</summary>
    public static void Reserve(string dataDir, string network, string address, string containerId, string ifName = "eth0", int rangeSet = 0)
    {
        var dir = Directory.CreateDirectory(Path.Combine(dataDir, network)).FullName;
        var lockFile = Path.Combine(dir, "lock");
        if (!File.Exists(lockFile))
        {
            File.WriteAllBytes(lockFile, []);
            File.SetUnixFileMode(lockFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }
        File.WriteAllText(Path.Combine(dir, address), $"{containerId}\r\n{ifName}");
        File.WriteAllText(Path.Combine(dir, $"last_reserved_ip.{rangeSet}"), address);
    }
}
