namespace Berth.Testing;

/// <summary>Debian's real host-local (<see cref="Repo.HostLocal"/>), run as a runtime runs it, into a data directory of the test's.</summary>
public static class HostLocalPlugin
{
    /// <summary>A network config with host-local's single-subnet form, its files under <paramref name="dataDir"/>.</summary>
    public static string Config(string dataDir, string subnet = "10.77.0.0/24", string network = "cbr0") =>
        $$$"""{"cniVersion":"0.4.0","name":"{{{network}}}","type":"bridge","ipam":{"type":"host-local","subnet":"{{{subnet}}}","dataDir":"{{{dataDir}}}"}}""";

    /// <summary>An ADD that must succeed (its output in the exception when it does not); the first address it handed out, without the prefix length.</summary>
    public static string Add(string config, string containerId, string ifName = "eth0")
    {
        var result = PluginRun.Run(Repo.HostLocal, "ADD", config, containerId, ifName, netns: "/var/run/netns/" + containerId);
        if (result.ExitCode != 0) throw new InvalidOperationException($"host-local ADD of {containerId} failed: {result}");
        return result.Addresses[0].Split('/')[0];
    }
}
