using System.Text.Json;

namespace Berth.BlackBox.HostAgent.Pools;

/// <summary>
/// `berth-agent check` as published, on a network Debian's host-local fills in the test's directory, with the
/// network's conflist in a CNI config dir the agent's config names (<c>cniConfDirs</c>).
/// </summary>
public sealed class GuardedPoolCommandsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public GuardedPoolCommandsTests()
    {
        Directory.CreateDirectory(_dir.File("net.d"));
        File.WriteAllText(_dir.File("boot_id"), "boot-pool-1\n");
        File.WriteAllText(_dir.File("agent.json"), $$"""
            {"runtimeSockets": [], "metricsAddress": "off", "cniConfDirs": ["{{_dir.File("net.d")}}"],
             "hostLocal": {"dirs": ["{{Networks}}"], "netnsDirs": []} }
            """);
    }

    private string Networks => _dir.File("networks");

    private string Ipam => $$"""{"type":"host-local","ranges":[[{"subnet":"10.80.0.0/29"}]],"dataDir":"{{Networks}}"}""";

    private ExecResult Agent(params string[] args) =>
        PluginRun.Agent(new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") }, [.. args, "--store", _dir.File("berth/berth.db"), "--config", _dir.File("agent.json")]);

    private void HostLocalAdd(string containerId) => HostLocalPlugin.Add($$"""{"cniVersion":"1.0.0","name":"pods","type":"bridge","ipam":{{Ipam}}}""", containerId);

    [Fact]
    public void Check_says_why_a_network_has_no_size_and_finds_it_full_once_its_config_is_there()
    {
        // The store first: recovery, with no runtime in this boot, would take files made before it for an earlier boot's.
        Assert.Equal(0, Agent("recover").ExitCode);
        for (var i = 0; i < 5; i++) HostLocalAdd($"c{i}");

        var unsized = Agent("check");
        File.WriteAllText(_dir.File("net.d/10-pods.conflist"), $$"""{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge","ipam":{{Ipam}}}]}""");
        var full = Agent("check", "--json");

        Assert.True(unsized.ExitCode == 0, unsized.ToString());
        Assert.Contains($"note: host-local-size-unknown: host-local network pods in {Networks}: its size is unknown", unsized.Stdout);
        Assert.Contains("no CNI config in " + _dir.File("net.d"), unsized.Stdout);
        Assert.Equal(1, full.ExitCode);
        var findings = JsonDocument.Parse(full.Stdout).RootElement.GetProperty("findings").EnumerateArray().ToList();
        var finding = Assert.Single(findings);
        Assert.Equal("range-full", finding.GetProperty("kind").GetString());
        Assert.Contains("host-local network pods", finding.GetProperty("message").GetString());
        Assert.Contains("is full: 5 of 5", finding.GetProperty("message").GetString());
    }

    public void Dispose() => _dir.Dispose();
}
