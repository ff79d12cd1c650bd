using System.Text.Json;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// Every kind of bad input, against the published plugin and a store that already holds leases: the right
/// error code, exit 1, well-formed error JSON, no crash, and the store's files byte for byte as before.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string DataDir => _dir.File("data");
    private string Good => Configs.Json("""[[{"subnet":"10.70.0.0/29"}]]""", DataDir);

    public BadInputTests()
    {
        for (var i = 0; i < 3; i++) Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", Good, $"held{i}", netns: "/var/run/netns/x").ExitCode);
    }

    private Dictionary<string, byte[]?> Snapshot() => new[] { "berth.db", "berth.db-wal" }
        .ToDictionary(f => f, f => File.Exists(Path.Combine(DataDir, f)) ? File.ReadAllBytes(Path.Combine(DataDir, f)) : null);

    private static readonly string Ranges = """[[{"subnet":"10.70.0.0/29"}]]""";

    public static TheoryData<string, string, string, string, string, int> Cases => new()
    {
        // name, command, container ID, ifname, stdin (DATA stands for the data dir), expected code. The version and
        // command checks are DispatcherTests' (in process): nothing about them needs a process.
        { "oversized stdin", "ADD", "c1", "eth0", new string(' ', (1 << 20) + 10) + "{}", 6 },
        { "invalid JSON", "ADD", "c1", "eth0", "{\"cniVersion\":", 6 },
        { "JSON that is not an object", "ADD", "c1", "eth0", "[1,2,3]", 6 },
        { "empty stdin", "ADD", "c1", "eth0", "", 6 },
        { "an unpaired surrogate escape in the name", "ADD", "c1", "eth0", Configs.Json(Ranges, "DATA", name: "n\\ud800et"), 6 },
        { "an unpaired surrogate escape in a key", "DEL", "c1", "eth0", Configs.Json(Ranges, "DATA", extra: ",\"\\udc00\":1"), 6 },
        { "invalid CIDR", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/33"}]]""", "DATA"), 7 },
        { "subnet with host bits", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.1/29"}]]""", "DATA"), 7 },
        { "not an address", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"ten/8"}]]""", "DATA"), 7 },
        { "overlapping ranges", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/29"}],[{"subnet":"10.70.0.0/28"}]]""", "DATA"), 7 },
        { "ranges of the wrong type", "ADD", "c1", "eth0", Configs.Json("\"x\"", "DATA"), 7 },
        { "a range of the wrong type", "ADD", "c1", "eth0", Configs.Json("[[42]]", "DATA"), 7 },
        { "no ipam section", "ADD", "c1", "eth0", """{"cniVersion":"1.0.0","name":"net1","type":"bridge"}""", 7 },
        { "bad network name", "ADD", "c1", "eth0", Configs.Json(Ranges, "DATA", name: "net/../1"), 7 },
        { "relative dataDir", "ADD", "c1", "eth0", Configs.Json(Ranges, "relative/dir"), 7 },
        { "container ID with a slash", "ADD", "bad/id", "eth0", Configs.Json(Ranges, "DATA"), 4 },
        { "container ID starting with a dash", "ADD", "-id", "eth0", Configs.Json(Ranges, "DATA"), 4 },
        { "container ID with a space", "ADD", "a b", "eth0", Configs.Json(Ranges, "DATA"), 4 },
        { "empty container ID", "ADD", "", "eth0", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname longer than 15 bytes", "ADD", "c1", "eth0123456789012", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname of 15 bytes but 8 characters", "ADD", "c1", "éééééééé", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname with a slash", "ADD", "c1", "eth/0", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname with a colon", "ADD", "c1", "eth:0", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname with a space", "ADD", "c1", "eth 0", Configs.Json(Ranges, "DATA"), 4 },
        { "ifname dot dot", "DEL", "c1", "..", Configs.Json(Ranges, "DATA"), 4 },
        // Leading zeros, as host-local refuses them: once read as octal (8.0.0.5) or an internal error 999.
        { "rangeStart with a leading zero", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/29","rangeStart":"010.70.0.5"}]]""", "DATA"), 7 },
        { "rangeStart with a zero octet written twice", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/29","rangeStart":"10.70.00.5"}]]""", "DATA"), 7 },
        { "rangeEnd with 09", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/29","rangeEnd":"10.70.0.06"}]]""", "DATA"), 7 },
        { "rangeStart with 09", "ADD", "c1", "eth0", Configs.Json("""[[{"subnet":"10.70.0.0/29","rangeStart":"10.70.0.09"}]]""", "DATA"), 7 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bad_input_gets_its_error_code_and_leaves_the_store_untouched(string name, string command, string containerId, string ifName, string stdin, int code)
    {
        var before = Snapshot();

        var result = PluginRun.Run(Repo.Plugin, command, stdin.Replace("\"DATA\"", $"\"{DataDir}\""), containerId, ifName, netns: "/var/run/netns/x");

        AssertCniError(result, code, name);
        Assert.Equal(before, Snapshot());
    }

    [Theory]
    [InlineData("IgnoreUnknown=1;K8S_POD_NAME", 4)]
    [InlineData("IP=10.70.0.300", 4)]
    [InlineData("IP=10.70.0.1", 101)]
    [InlineData("IP=10.71.0.5", 101)]
    [InlineData("IP=10.70.0.2", 101)]
    public void Bad_or_unavailable_requested_addresses_change_nothing(string cniArgs, int code)
    {
        var before = Snapshot();

        var result = PluginRun.Run(Repo.Plugin, "ADD", Good, "c1", netns: "/var/run/netns/x", cniArgs: cniArgs);

        AssertCniError(result, code, cniArgs);
        Assert.Equal(before, Snapshot());
    }

    [Fact]
    public void A_requested_address_held_by_another_names_the_holder()
    {
        var result = PluginRun.Run(Repo.Plugin, "ADD", Good, "c1", netns: "/var/run/netns/x", cniArgs: "IP=10.70.0.3");

        AssertCniError(result, 101, "held");
        Assert.Contains("container held1", result.Json.GetProperty("msg").GetString());
    }

    [Fact]
    public void A_full_range_fails_with_100_and_changes_nothing()
    {
        Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", Good, "held3", netns: "/var/run/netns/x").ExitCode);
        Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", Good, "held4", netns: "/var/run/netns/x").ExitCode);
        var before = Snapshot();

        var result = PluginRun.Run(Repo.Plugin, "ADD", Good, "one-too-many", netns: "/var/run/netns/x");

        AssertCniError(result, 100, "full");
        Assert.Contains("5 leases, 0 from earlier boots", result.Json.GetProperty("msg").GetString());
        Assert.Equal(before, Snapshot());
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public void A_resolv_conf_that_never_ends_is_error_7_not_a_hang(string resolvConf)
    {
        var config = $$$"""{"cniVersion":"1.0.0","name":"net1","type":"bridge","ipam":{"type":"berth","dataDir":"{{{DataDir}}}","resolvConf":"{{{resolvConf}}}","ranges":{{{Ranges}}}}}""";
        var before = Snapshot();

        var result = PluginRun.Run(Repo.Plugin, "ADD", config, "c1", netns: "/var/run/netns/x", timeout: TimeSpan.FromSeconds(20));

        AssertCniError(result, 7, resolvConf);
        Assert.Contains("larger than 64 KiB", result.Json.GetProperty("msg").GetString());
        Assert.Equal(before, Snapshot());
    }

    [Fact]
    public void Missing_environment_is_error_4_naming_the_variable()
    {
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = "c1", ["CNI_IFNAME"] = "eth0" };

        var result = Exec.Run(Repo.Plugin, [], PluginRun.Plugin(env, Good, TimeSpan.FromSeconds(30)));

        AssertCniError(result, 4, "no netns");
        Assert.Contains("CNI_NETNS", result.Json.GetProperty("msg").GetString());
    }

    [Fact]
    public void The_result_goes_where_the_shared_offset_is_as_any_programs_output_does()
    {
        // A script's log: berth's result, then the next writer's line, in one file both write through the same offset.
        var log = _dir.File("log");
        var stdin = _dir.File("stdin.json");
        File.WriteAllText(stdin, Good);
        var script = $"(echo BEFORE; {Repo.Plugin} < {stdin}; echo END) > {log}";
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = "logged", ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/var/run/netns/x" };
        var result = Exec.Run("/bin/sh", ["-c", script], PluginRun.Plugin(env, "", TimeSpan.FromSeconds(30)));
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = File.ReadAllText(log).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("BEFORE", lines[0]);
        Assert.Equal("END", lines[^1]);
        using var json = JsonDocument.Parse(string.Join('\n', lines[1..^1]));
        Assert.Equal("10.70.0.5/29", json.RootElement.GetProperty("ips")[0].GetProperty("address").GetString());

        // Appending (>>) lands at the end whatever the descriptor's offset.
        File.WriteAllText(log, "FIRST\n");
        env["CNI_CONTAINERID"] = "appended";
        result = Exec.Run("/bin/sh", ["-c", $"{Repo.Plugin} < {stdin} >> {log}"], PluginRun.Plugin(env, "", TimeSpan.FromSeconds(30)));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("FIRST\n{", File.ReadAllText(log));
    }

    private static void AssertCniError(ExecResult result, int code, string name)
    {
        Assert.True(result.ExitCode == 1, $"{name}: {result}");
        var json = result.Json;
        Assert.True(code == json.GetProperty("code").GetInt32(), $"{name}: {result}");
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("msg").GetString()), name);
        Assert.Equal(JsonValueKind.String, json.GetProperty("cniVersion").ValueKind);
        Assert.DoesNotContain("Unhandled exception", result.Stderr);
    }

    public void Dispose() => _dir.Dispose();
}
