using System.Text.Json;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// berth as a drop-in for host-local: Debian's host-local and the published berth, each with its own dataDir,
/// get the same ipam section and the same ADD and DEL sequence, and must hand out the same addresses in the
/// same order. Each step of a table reads
/// <c>ADD id[/ifname] [KEY=VALUE…] -&gt; addresses | full | refused</c> or <c>DEL id[/ifname]</c>, where a
/// KEY is <c>IP</c> (CNI_ARGS), <c>args.cni.ips</c>, <c>runtimeConfig.ips</c> or <c>runtimeConfig.ipRanges</c>
/// (a subnet), and the table is checked against host-local first, so a wrong table cannot pass for berth either.
/// </summary>
public sealed class HostLocalParityTests : IDisposable
{
    // host-local's skeleton insists on CNI_NETNS for ADD but never opens it; berth only records it.
    private const string AbsentNetns = "/var/run/netns/berth-parity-absent";

    private static readonly Plugin HostLocal = new("host-local", Repo.HostLocal,
        IsFull: r => r.ExitCode != 0 && r.Stdout.Contains("no IP addresses available", StringComparison.Ordinal),
        IsRefused: r => r.ExitCode != 0 && r.Stdout.Contains("requested ip", StringComparison.OrdinalIgnoreCase));

    private static readonly Plugin Berth = new("berth", Repo.Plugin,
        IsFull: r => r.ExitCode == 1 && r.ErrorCode == 100,
        IsRefused: r => r.ExitCode == 1 && r.ErrorCode == 101);

    private static readonly Dictionary<string, (string Ipam, string[] Steps)> Tables = new()
    {
        ["sequential adds"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b -> 10.10.0.3/24",
            "ADD c -> 10.10.0.4/24",
            "ADD d -> 10.10.0.5/24",
            "ADD e -> 10.10.0.6/24",
        ]),
        ["a freed address is not reused at once"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b -> 10.10.0.3/24",
            "ADD c -> 10.10.0.4/24",
            "DEL a",
            "ADD d -> 10.10.0.5/24",
            "DEL c",
            "ADD e -> 10.10.0.6/24",
            "ADD f -> 10.10.0.7/24",
        ]),
        ["wrap-around in a /29 after DELs"] = (""" "ranges":[[{"subnet":"10.10.0.0/29"}]] """,
        [
            "ADD a -> 10.10.0.2/29",
            "ADD b -> 10.10.0.3/29",
            "ADD c -> 10.10.0.4/29",
            "ADD d -> 10.10.0.5/29",
            "DEL b",
            "DEL a",
            "ADD e -> 10.10.0.6/29",
            "ADD f -> 10.10.0.2/29",
            "ADD g -> 10.10.0.3/29",
            "DEL e",
            "ADD h -> 10.10.0.6/29",
        ]),
        ["rangeStart and rangeEnd"] = (""" "ranges":[[{"subnet":"10.10.0.0/24","rangeStart":"10.10.0.100","rangeEnd":"10.10.0.103"}]] """,
        [
            "ADD a -> 10.10.0.100/24",
            "ADD b -> 10.10.0.101/24",
            "ADD c -> 10.10.0.102/24",
            "ADD d -> 10.10.0.103/24",
            "ADD e -> full",
            "DEL b",
            "ADD f -> 10.10.0.101/24",
            "DEL a",
            "DEL c",
            "ADD g -> 10.10.0.102/24",
            "ADD h -> 10.10.0.100/24",
        ]),
        ["a gateway inside the range is skipped"] = (""" "ranges":[[{"subnet":"10.10.0.0/24","rangeStart":"10.10.0.10","rangeEnd":"10.10.0.14","gateway":"10.10.0.12"}]] """,
        [
            "ADD a -> 10.10.0.10/24",
            "ADD b -> 10.10.0.11/24",
            "ADD c -> 10.10.0.13/24",
            "ADD d -> 10.10.0.14/24",
            "ADD e -> full",
            "DEL b",
            "ADD f -> 10.10.0.11/24",
        ]),
        ["several ranges in one range set"] = (""" "ranges":[[{"subnet":"10.10.0.0/24","rangeStart":"10.10.0.253"},{"subnet":"10.10.1.0/29","rangeEnd":"10.10.1.3"}]] """,
        [
            "ADD a -> 10.10.0.253/24",
            "ADD b -> 10.10.0.254/24",
            "ADD c -> 10.10.1.2/29",
            "DEL a",
            "ADD d -> 10.10.1.3/29",
            "ADD e -> 10.10.0.253/24",
            "ADD f -> full",
            "DEL c",
            "ADD g -> 10.10.1.2/29",
        ]),
        ["IPv6 /120"] = (""" "ranges":[[{"subnet":"fd00:10::/120"}]] """,
        [
            "ADD a -> fd00:10::2/120",
            "ADD b -> fd00:10::3/120",
            "ADD c -> fd00:10::4/120",
            "DEL b",
            "ADD d -> fd00:10::5/120",
        ]),
        ["an IPv6 range ends at the last address of its subnet"] = (""" "ranges":[[{"subnet":"fd00:10::/120","rangeStart":"fd00:10::fd"}]] """,
        [
            "ADD a -> fd00:10::fd/120",
            "ADD b -> fd00:10::fe/120",
            "ADD c -> fd00:10::ff/120",
            "ADD d -> full",
            "DEL b",
            "ADD e -> fd00:10::fe/120",
        ]),
        ["dual-stack"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}],[{"subnet":"fd00:10::/120"}]] """,
        [
            "ADD a -> 10.10.0.2/24 fd00:10::2/120",
            "ADD b -> 10.10.0.3/24 fd00:10::3/120",
            "DEL a",
            "ADD c -> 10.10.0.4/24 fd00:10::4/120",
        ]),
        ["requested addresses move the round-robin"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b IP=10.10.0.7 -> 10.10.0.7/24",
            "ADD c -> 10.10.0.8/24",
            "ADD d IP=10.10.0.3 -> 10.10.0.3/24",
            "ADD e -> 10.10.0.4/24",
            "ADD f -> 10.10.0.5/24",
            "ADD g -> 10.10.0.6/24",
            "ADD h -> 10.10.0.9/24",
        ]),
        ["a requested address in one family of a dual-stack network"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}],[{"subnet":"fd00:10::/120"}]] """,
        [
            "ADD a IP=fd00:10::9 -> 10.10.0.2/24 fd00:10::9/120",
            "ADD b -> 10.10.0.3/24 fd00:10::a/120",
            "ADD c IP=10.10.0.20 -> 10.10.0.20/24 fd00:10::b/120",
        ]),
        ["a held or gateway request is refused and moves nothing"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b IP=10.10.0.2 -> refused",
            "ADD c IP=10.10.0.1 -> refused",
            "ADD d -> 10.10.0.3/24",
            "ADD e IP=10.10.0.3 -> refused",
            "ADD f -> 10.10.0.4/24",
        ]),
        ["exhaustion, then a DEL makes room"] = (""" "ranges":[[{"subnet":"10.10.0.0/29"}]] """,
        [
            "ADD a -> 10.10.0.2/29",
            "ADD b -> 10.10.0.3/29",
            "ADD c -> 10.10.0.4/29",
            "ADD d -> 10.10.0.5/29",
            "ADD e -> 10.10.0.6/29",
            "ADD f -> full",
            "ADD g -> full",
            "DEL c",
            "ADD h -> 10.10.0.4/29",
            "ADD i -> full",
        ]),
        ["the legacy single range with a gateway and routes"] = (
            """ "subnet":"10.10.0.0/24","rangeStart":"10.10.0.250","gateway":"10.10.0.254","routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.10.0.253"}] """,
        [
            "ADD a -> 10.10.0.250/24",
            "ADD b -> 10.10.0.251/24",
            "ADD c -> 10.10.0.252/24",
            "ADD d -> 10.10.0.253/24",
            "ADD e -> full",
        ]),
        ["two interfaces of one container are two owners"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a/eth0 -> 10.10.0.2/24",
            "ADD a/eth1 -> 10.10.0.3/24",
            "DEL a/eth0",
            "ADD b -> 10.10.0.4/24",
            "DEL a/eth1",
            "ADD c -> 10.10.0.5/24",
            "ADD a/eth0 -> 10.10.0.6/24",
        ]),
        ["requested addresses from the config and the runtime"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b args.cni.ips=10.10.0.60 -> 10.10.0.60/24",
            "ADD c runtimeConfig.ips=10.10.0.70/24 -> 10.10.0.70/24",
            "ADD d -> 10.10.0.71/24",
            "ADD e args.cni.ips=10.10.0.70 -> refused",
            "ADD f IP=10.10.0.80/24 -> 10.10.0.80/24",
            "ADD g -> 10.10.0.81/24",
        ]),
        ["runtime ipRanges come before the configured range sets"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "ADD a -> 10.10.0.2/24",
            "ADD b runtimeConfig.ipRanges=10.30.0.0/24 -> 10.30.0.2/24 10.10.0.3/24",
            "ADD c -> 10.10.0.4/24",
            "ADD d runtimeConfig.ipRanges=10.30.0.0/24 -> 10.30.0.3/24 10.10.0.5/24",
        ]),
        ["two range sets of one family give two addresses"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}],[{"subnet":"10.20.0.0/29"}]] """,
        [
            "ADD a -> 10.10.0.2/24 10.20.0.2/29",
            "ADD b IP=10.20.0.5 -> 10.10.0.3/24 10.20.0.5/29",
            "ADD c -> 10.10.0.4/24 10.20.0.6/29",
            "ADD d -> 10.10.0.5/24 10.20.0.3/29",
        ]),
        ["DEL needs no lease and may be repeated"] = (""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        [
            "DEL ghost",
            "ADD a -> 10.10.0.2/24",
            "DEL a",
            "DEL a",
            "ADD b -> 10.10.0.3/24",
        ]),
    };

    private readonly TempDir _dir = new();

    public static TheoryData<string> Sequences => new(Tables.Keys);

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Berth_hands_out_the_same_addresses_in_the_same_order_as_host_local(string sequence)
    {
        var (ipam, steps) = Tables[sequence];

        var hostLocal = Play(HostLocal, ipam, steps);
        var berth = Play(Berth, ipam, steps);

        Assert.Equal(steps, hostLocal.Trace);
        Assert.Equal(hostLocal.Trace, berth.Trace);
        // Beyond the addresses: the same gateways, routes and dns in every successful ADD result.
        Assert.Equal(hostLocal.Results, berth.Results);
    }

    [Fact]
    public void Re_ADD_of_the_same_container_returns_its_addresses_where_host_local_refuses_a_duplicate()
    {
        const string ipam = """ "ranges":[[{"subnet":"10.10.0.0/24"}],[{"subnet":"fd00:10::/120"}]] """;
        string[] steps = ["ADD a", "ADD b", "ADD a", "ADD c"];

        var hostLocal = Play(HostLocal, ipam, steps);
        var berth = Play(Berth, ipam, steps);

        Assert.Equal("ADD a -> 10.10.0.2/24 fd00:10::2/120", hostLocal.Trace[0]);
        Assert.Equal("ADD b -> 10.10.0.3/24 fd00:10::3/120", hostLocal.Trace[1]);
        Assert.StartsWith("ADD a -> error 1:", hostLocal.Trace[2]);
        Assert.Contains("10.10.0.2 has been allocated to a, duplicate allocation is not allowed", hostLocal.Trace[2]);
        Assert.Equal("ADD c -> 10.10.0.4/24 fd00:10::4/120", hostLocal.Trace[3]);

        Assert.Equal(
            ["ADD a -> 10.10.0.2/24 fd00:10::2/120", "ADD b -> 10.10.0.3/24 fd00:10::3/120", "ADD a -> 10.10.0.2/24 fd00:10::2/120", "ADD c -> 10.10.0.4/24 fd00:10::4/120"],
            berth.Trace);
        // The repeated ADD made no lease and no history: it only reported what a already held.
        var store = Path.Combine(_dir.Path, "berth", "berth.db");
        Assert.Equal(["10.10.0.2 a", "10.10.0.3 b", "10.10.0.4 c", "fd00:10::2 a", "fd00:10::3 b", "fd00:10::4 c"],
            SqliteCli.Column(store, "SELECT address || ' ' || container_id FROM leases ORDER BY range_set, address_key"));
        Assert.Equal(["6"], SqliteCli.Column(store, "SELECT count(*) FROM history WHERE action = 'allocate'"));
    }

    /// <summary>
    /// A found difference, consistent with berth's documented all-or-nothing ADD: when host-local fails an ADD
    /// after it picked an address for an earlier range set (a requested address that fits no range set, or a
    /// later range set that is full), it releases that address but keeps the round-robin move; berth moves nothing.
    /// </summary>
    [Theory]
    [InlineData(""" "ranges":[[{"subnet":"10.10.0.0/24"}]] """,
        "ADD a -> 10.10.0.2/24|ADD b IP=10.20.0.5 -> refused|ADD c -> 10.10.0.4/24",
        "ADD a -> 10.10.0.2/24|ADD b IP=10.20.0.5 -> refused|ADD c -> 10.10.0.3/24")]
    [InlineData(""" "ranges":[[{"subnet":"10.10.0.0/24"}],[{"subnet":"fd00:10::/120","rangeStart":"fd00:10::fe"}]] """,
        "ADD a -> 10.10.0.2/24 fd00:10::fe/120|ADD b -> 10.10.0.3/24 fd00:10::ff/120|ADD c -> full|DEL a|ADD d -> 10.10.0.5/24 fd00:10::fe/120",
        "ADD a -> 10.10.0.2/24 fd00:10::fe/120|ADD b -> 10.10.0.3/24 fd00:10::ff/120|ADD c -> full|DEL a|ADD d -> 10.10.0.4/24 fd00:10::fe/120")]
    public void A_failed_ADD_moves_host_locals_round_robin_but_not_berths(string ipam, string hostLocalSteps, string berthSteps)
    {
        var hostLocal = Play(HostLocal, ipam, hostLocalSteps.Split('|'));
        var berth = Play(Berth, ipam, berthSteps.Split('|'));

        Assert.Equal(hostLocalSteps.Split('|'), hostLocal.Trace);
        Assert.Equal(berthSteps.Split('|'), berth.Trace);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    public void The_add_result_has_host_locals_shape_in_every_version_both_speak(string version)
    {
        var resolvConf = _dir.File("resolv.conf");
        File.WriteAllText(resolvConf, "# written by the test\nnameserver 10.0.0.53\nnameserver fd00::53\ndomain example.org\nsearch a.example.org b.example.org\noptions ndots:5 timeout:2\n");
        // The legacy single range becomes range set 0, before "ranges".
        var ipam = $$$""" "subnet":"10.10.0.0/24","ranges":[[{"subnet":"fd00:10::/120"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0","gw":"fd00:10::fe"}],"resolvConf":"{{{resolvConf}}}" """;

        var hostLocal = PluginRun.Run(HostLocal.Executable, "ADD", Config(HostLocal, ipam, version: version), "a", netns: AbsentNetns);
        var berth = PluginRun.Run(Berth.Executable, "ADD", Config(Berth, ipam, version: version), "a", netns: AbsentNetns);

        Assert.True(hostLocal.ExitCode == 0, hostLocal.ToString());
        Assert.True(berth.ExitCode == 0, berth.ToString());
        Assert.Equal(version, berth.Json.GetProperty("cniVersion").GetString());
        Assert.Equal(["10.10.0.2/24", "fd00:10::2/120"], hostLocal.Addresses);
        Assert.Equal(["10.0.0.53", "fd00::53"], hostLocal.Json.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(n => n.GetString()));
        Assert.Equal(Canonical(hostLocal.Json), Canonical(berth.Json));
    }

    /// <summary>
    /// A found difference: host-local's CHECK only asks whether the container holds some address, so a
    /// prevResult naming an address it does not hold passes; berth checks every prevResult address (error 3).
    /// </summary>
    [Fact]
    public void Check_of_an_address_the_container_does_not_hold_fails_in_berth_where_host_local_passes()
    {
        const string ipam = """ "ranges":[[{"subnet":"10.10.0.0/24"}]] """;
        const string held = ""","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.10.0.2/24"}]}""";
        const string notHeld = ""","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.10.0.9/24"}]}""";
        foreach (var plugin in new[] { HostLocal, Berth })
        {
            Assert.Equal(0, PluginRun.Run(plugin.Executable, "ADD", Config(plugin, ipam), "a", netns: AbsentNetns).ExitCode);
            Assert.Equal(0, PluginRun.Run(plugin.Executable, "CHECK", Config(plugin, ipam, held), "a", netns: AbsentNetns).ExitCode);
            // Both refuse a container that holds nothing.
            Assert.NotEqual(0, PluginRun.Run(plugin.Executable, "CHECK", Config(plugin, ipam, held), "b", netns: AbsentNetns).ExitCode);
        }

        var hostLocal = PluginRun.Run(HostLocal.Executable, "CHECK", Config(HostLocal, ipam, notHeld), "a", netns: AbsentNetns);
        var berth = PluginRun.Run(Berth.Executable, "CHECK", Config(Berth, ipam, notHeld), "a", netns: AbsentNetns);

        Assert.True(hostLocal.ExitCode == 0, hostLocal.ToString());
        Assert.Equal(3, berth.ErrorCode);
        Assert.Contains("10.10.0.9 is not leased to container a", berth.Json.GetProperty("msg").GetString());
    }

    /// <summary>The same network config for both plugins but for ipam.type and ipam.dataDir; <paramref name="top"/> adds top-level keys.</summary>
    private string Config(Plugin plugin, string ipam, string top = "", string version = "1.0.0") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"parity","type":"bridge"{{{top}}},"ipam":{"type":"{{{plugin.Type}}}","dataDir":"{{{Path.Combine(_dir.Path, plugin.Type)}}}",{{{ipam}}}}}""";

    /// <summary>Runs the steps through one plugin and describes each outcome in the tables' own notation.</summary>
    private Outcomes Play(Plugin plugin, string ipam, IEnumerable<string> steps)
    {
        var outcomes = new Outcomes([], []);
        foreach (var step in steps)
        {
            var call = step.Split(" -> ")[0];
            var words = call.Split(' ');
            var owner = words[1].Split('/');
            var cniArgs = "";
            var top = "";
            foreach (var (key, value) in words.Skip(2).Select(w => (w[..w.IndexOf('=')], w[(w.IndexOf('=') + 1)..])))
            {
                switch (key)
                {
                    case "IP": cniArgs = "IgnoreUnknown=1;IP=" + value; break;
                    case "args.cni.ips": top += $$$""","args":{"cni":{"ips":["{{{value}}}"]}}"""; break;
                    case "runtimeConfig.ips": top += $$$""","capabilities":{"ips":true},"runtimeConfig":{"ips":["{{{value}}}"]}"""; break;
                    case "runtimeConfig.ipRanges": top += $$$""","capabilities":{"ipRanges":true},"runtimeConfig":{"ipRanges":[[{"subnet":"{{{value}}}"}]]}"""; break;
                    default: throw new ArgumentException($"unknown key {key} in step \"{step}\"");
                }
            }
            var result = PluginRun.Run(plugin.Executable, words[0], Config(plugin, ipam, top), containerId: owner[0],
                ifName: owner.Length > 1 ? owner[1] : "eth0", netns: AbsentNetns, cniArgs: cniArgs);
            outcomes.Trace.Add(Describe(plugin, words[0], call, result));
            if (words[0] == "ADD" && result.ExitCode == 0) outcomes.Results.Add($"{call}: {Canonical(result.Json)}");
        }
        return outcomes;
    }

    private static string Describe(Plugin plugin, string verb, string call, ExecResult result)
    {
        if (verb == "DEL") return result.ExitCode == 0 ? call : $"{call} -> error {result.ExitCode}: {Flat(result.Stdout)}";
        if (result.ExitCode == 0) return $"{call} -> {string.Join(' ', result.Addresses)}";
        if (plugin.IsFull(result)) return $"{call} -> full";
        if (plugin.IsRefused(result)) return $"{call} -> refused";
        return $"{call} -> error {result.ExitCode}: {Flat(result.Stdout)}";
    }

    /// <summary>
    /// JSON with the keys of every object sorted and no whitespace: host-local and berth indent differently,
    /// and key order carries no meaning.
    /// </summary>
    private static string Canonical(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", e.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => JsonSerializer.Serialize(p.Name) + ":" + Canonical(p.Value))) + "}",
        JsonValueKind.Array => "[" + string.Join(",", e.EnumerateArray().Select(Canonical)) + "]",
        // Go and .NET escape different characters in strings.
        JsonValueKind.String => JsonSerializer.Serialize(e.GetString()),
        _ => e.GetRawText(),
    };

    private static string Flat(string text) => string.Join(' ', text.Split(['\n', ' '], StringSplitOptions.RemoveEmptyEntries));

    public void Dispose() => _dir.Dispose();

    private sealed record Plugin(string Type, string Executable, Func<ExecResult, bool> IsFull, Func<ExecResult, bool> IsRefused);

    private sealed record Outcomes(List<string> Trace, List<string> Results);
}
