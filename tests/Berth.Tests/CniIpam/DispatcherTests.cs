using System.Text;
using System.Text.Json;
using Berth.Shared.Plugin;
using Berth.Tests.Support;

namespace Berth.Tests.CniIpam;

/// <summary>The protocol in-process: the dispatcher with a dictionary for the environment and strings for the streams.</summary>
public sealed class DispatcherTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-1");
    private readonly FakeNetnsProbe _netns = new();

    private string DataDir => Path.Combine(_dir.Path, "data");

    private (int Exit, string Stdout, string Stderr) Invoke(string command, string config, string containerId = "c1", string ifName = "eth0",
        string netns = "/var/run/netns/p1", string cniArgs = "")
    {
        var env = new Dictionary<string, string?>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_IFNAME"] = ifName,
            ["CNI_NETNS"] = netns,
            ["CNI_ARGS"] = cniArgs,
        };
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var exit = new Dispatcher(k => env.GetValueOrDefault(k), new MemoryStream(Encoding.UTF8.GetBytes(config)), stdout, stderr,
            new PluginServices(_clock, _netns, TimeProvider.System)).Run();
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private string Config(string version = "1.0.0", string ranges = """[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd01::/64"}]]""", string ipamExtra = "", string extra = "") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"net1","type":"bridge"{{{extra}}},"ipam":{"type":"berth","dataDir":"{{{DataDir}}}","ranges":{{{ranges}}}{{{ipamExtra}}}}}""";

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    [Theory]
    [InlineData("0.3.0", true)]
    [InlineData("0.3.1", true)]
    [InlineData("0.4.0", true)]
    [InlineData("1.0.0", false)]
    [InlineData("1.1.0", false)]
    public void Add_prints_the_result_shape_of_the_requested_version(string version, bool hasIpVersion)
    {
        var (exit, stdout, _) = Invoke("ADD", Config(version));

        Assert.Equal(0, exit);
        var result = Json(stdout);
        Assert.Equal(version, result.GetProperty("cniVersion").GetString());
        var ips = result.GetProperty("ips").EnumerateArray().ToList();
        Assert.Equal(["10.1.0.2/24", "fd01::2/64"], ips.Select(ip => ip.GetProperty("address").GetString()));
        Assert.Equal(["10.1.0.1", "fd01::1"], ips.Select(ip => ip.GetProperty("gateway").GetString()));
        Assert.Equal(hasIpVersion ? ["4", "6"] : [null, null], ips.Select(ip => ip.TryGetProperty("version", out var v) ? v.GetString() : null));
        Assert.False(ips[0].TryGetProperty("interface", out _));
    }

    [Theory]
    [InlineData("1.0.0", false)]
    [InlineData("1.1.0", true)]
    public void Route_attributes_beyond_dst_and_gw_appear_from_1_1_0(string version, bool extended)
    {
        var routes = ""","routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.254","mtu":1400,"priority":5},{"dst":"192.168.0.0/16"}]""";

        var route = Json(Invoke("ADD", Config(version, ipamExtra: routes)).Stdout).GetProperty("routes")[0];

        Assert.Equal("0.0.0.0/0", route.GetProperty("dst").GetString());
        Assert.Equal("10.1.0.254", route.GetProperty("gw").GetString());
        Assert.Equal(extended, route.TryGetProperty("mtu", out _));
        Assert.Equal(extended, route.TryGetProperty("priority", out _));
    }

    [Fact]
    public void Add_reports_dns_from_the_resolv_conf_file()
    {
        File.WriteAllText(_dir.File("resolv.conf"), "# test\nnameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\ndomain cluster.local\n");

        var dns = Json(Invoke("ADD", Config(ipamExtra: $$""","resolvConf":"{{_dir.File("resolv.conf")}}" """)).Stdout).GetProperty("dns");

        Assert.Equal(["10.43.0.10"], dns.GetProperty("nameservers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["default.svc.cluster.local", "svc.cluster.local"], dns.GetProperty("search").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["ndots:5"], dns.GetProperty("options").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("cluster.local", dns.GetProperty("domain").GetString());
    }

    [Fact]
    public void Add_with_an_unreadable_resolv_conf_fails_with_7_before_touching_the_store()
    {
        var (exit, stdout, _) = Invoke("ADD", Config(ipamExtra: ""","resolvConf":"/nonexistent/resolv.conf" """));

        Assert.Equal(1, exit);
        Assert.Equal(7, Json(stdout).GetProperty("code").GetInt32());
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void Add_records_the_pod_and_the_netns_inode()
    {
        _netns.Namespaces["/var/run/netns/p1"] = 4026532999;

        Invoke("ADD", Config(), cniArgs: "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-x;K8S_POD_UID=u-1;K8S_POD_INFRA_CONTAINER_ID=c1");

        using var store = Berth.Shared.Leases.SqliteLeaseStore.Open(Path.Combine(DataDir, "berth.db"), new(_clock, TimeProvider.System));
        var lease = store.Read(tx => tx.LeasesOf("net1", "c1", "eth0"))[0];
        Assert.Equal(("kube-system", "coredns-x", "u-1"), (lease.PodNamespace, lease.PodName, lease.PodUid));
        Assert.Equal(4026532999UL, lease.NetnsInode);
        Assert.Equal("/var/run/netns/p1", lease.Netns);
        Assert.Equal("boot-1", lease.BootId);
    }

    [Fact]
    public void Del_with_an_empty_netns_releases_and_may_be_repeated()
    {
        Invoke("ADD", Config());

        Assert.Equal(0, Invoke("DEL", Config(), netns: "").Exit);
        Assert.Equal(0, Invoke("DEL", Config(), netns: "").Exit);
        Assert.Equal("10.1.0.3/24", Json(Invoke("ADD", Config(), containerId: "c2").Stdout).GetProperty("ips")[0].GetProperty("address").GetString());
        Assert.Equal(1, Invoke("CHECK", Config()).Exit);
    }

    [Fact]
    public void Del_without_a_store_succeeds_and_creates_nothing()
    {
        var (exit, stdout, _) = Invoke("DEL", Config());

        Assert.Equal(0, exit);
        Assert.Equal("", stdout);
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void Check_accepts_the_attachment_s_own_prev_result_and_rejects_others()
    {
        var added = Json(Invoke("ADD", Config()).Stdout);
        var prev = $""","prevResult":{added.GetRawText()}""";
        var wrong = ""","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.99/24"}]}""";

        Assert.Equal(0, Invoke("CHECK", Config(extra: prev)).Exit);
        var (exit, stdout, _) = Invoke("CHECK", Config(extra: wrong));
        Assert.Equal(1, exit);
        Assert.Equal(3, Json(stdout).GetProperty("code").GetInt32());
        Assert.Contains("10.1.0.99", Json(stdout).GetProperty("msg").GetString());
        Assert.Equal(3, Json(Invoke("CHECK", Config(extra: prev), containerId: "unknown").Stdout).GetProperty("code").GetInt32());
    }

    [Theory]
    [InlineData("CHECK", "0.3.1")]
    [InlineData("GC", "1.0.0")]
    [InlineData("STATUS", "1.0.0")]
    public void A_verb_newer_than_the_config_version_is_refused_with_1(string command, string version)
    {
        var (exit, stdout, _) = Invoke(command, Config(version));

        Assert.Equal(1, exit);
        Assert.Equal(1, Json(stdout).GetProperty("code").GetInt32());
        Assert.Equal(version, Json(stdout).GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Gc_releases_what_is_not_listed_and_keeps_what_is()
    {
        Invoke("ADD", Config(), containerId: "keep");
        Invoke("ADD", Config(), containerId: "drop");
        var gc = Config("1.1.0", extra: ""","cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]""");

        Assert.Equal(0, Invoke("GC", gc, containerId: "", ifName: "", netns: "").Exit);

        Assert.Equal(0, Invoke("CHECK", Config(), containerId: "keep").Exit);
        Assert.Equal(1, Invoke("CHECK", Config(), containerId: "drop").Exit);
        Assert.Equal(["10.1.0.2 keep", "fd01::2 keep"], SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM leases ORDER BY address"));
        Assert.Equal(["10.1.0.3 drop cni-gc", "fd01::3 drop cni-gc"],
            SqliteCli.Column(Store, "SELECT address || ' ' || container_id || ' ' || reason FROM history WHERE action = 'release' ORDER BY address"));
    }

    [Fact]
    public void Gc_accepts_the_legacy_attachments_key_and_refuses_a_missing_list()
    {
        Invoke("ADD", Config(), containerId: "keep");

        Assert.Equal(0, Invoke("GC", Config("1.1.0", extra: ""","cni.dev/attachments":[{"containerID":"keep","ifname":"eth0"}]""")).Exit);
        var (exit, stdout, _) = Invoke("GC", Config("1.1.0"));

        Assert.Equal(1, exit);
        Assert.Equal(7, Json(stdout).GetProperty("code").GetInt32());
        Assert.Equal(0, Invoke("CHECK", Config(), containerId: "keep").Exit);
    }

    [Fact]
    public void Status_is_ready_until_a_range_is_full_then_answers_50()
    {
        var small = Config("1.1.0", """[[{"subnet":"10.2.0.0/30"}]]""");

        Assert.Equal((0, ""), (Invoke("STATUS", small).Exit, Invoke("STATUS", small).Stdout));
        Assert.Equal(0, Invoke("ADD", small).Exit);
        var (exit, stdout, _) = Invoke("STATUS", small);

        Assert.Equal(1, exit);
        Assert.Equal(50, Json(stdout).GetProperty("code").GetInt32());
        Assert.Contains("no free address", Json(stdout).GetProperty("msg").GetString());
    }

    [Fact]
    public void Status_counts_reclaimable_earlier_boot_leases_as_free()
    {
        var small = Config("1.1.0", """[[{"subnet":"10.2.0.0/30"}]]""");
        Invoke("ADD", small);
        _clock.BootId = "boot-2";

        Assert.Equal(0, Invoke("STATUS", small).Exit);
        Assert.Equal("10.2.0.2/30", Json(Invoke("ADD", small, containerId: "c2").Stdout).GetProperty("ips")[0].GetProperty("address").GetString());
    }

    [Theory]
    [InlineData("0.2.0")]
    [InlineData("2.0.0")]
    [InlineData("")]
    public void An_unsupported_version_is_error_1(string version)
    {
        var (exit, stdout, _) = Invoke("ADD", Config(version));

        Assert.Equal(1, exit);
        Assert.Equal(1, Json(stdout).GetProperty("code").GetInt32());
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void Without_cni_command_it_says_what_it_is_and_exits_0()
    {
        var (exit, stdout, stderr) = Invoke("", Config());

        Assert.Equal(0, exit);
        Assert.Equal("", stdout);
        Assert.Contains("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0", stderr);
    }

    [Fact]
    public void Version_answers_without_a_config()
    {
        var (exit, stdout, _) = Invoke("VERSION", "");

        Assert.Equal(0, exit);
        Assert.Equal("1.1.0", Json(stdout).GetProperty("cniVersion").GetString());
    }

    [Theory]
    [InlineData("FROB", "0.4.0", "0.4.0")]
    [InlineData("ADD ", "0.3.1", "0.3.1")]
    [InlineData("del", "1.0.0", "1.0.0")]
    [InlineData("FROB", "0.2.0", "1.1.0")]
    public void An_unknown_command_is_answered_in_the_version_the_request_names_when_supported(string command, string requested, string answered)
    {
        var (exit, stdout, _) = Invoke(command, Config(requested));

        Assert.Equal(1, exit);
        Assert.Equal(4, Json(stdout).GetProperty("code").GetInt32());
        Assert.Equal(answered, Json(stdout).GetProperty("cniVersion").GetString());
    }

    [Theory]
    [InlineData("ADD", 6)]
    [InlineData("DEL", 6)]
    [InlineData("VERSION", 0)]
    public void Bytes_that_are_not_utf8_inside_a_json_string_are_error_6_not_an_internal_error(string command, int code)
    {
        // Well-formed JSON whose network name holds the bytes FF FE: the reader accepts them, a value read does not.
        var config = Encoding.UTF8.GetBytes(Config("0.4.0").Replace("\"net1\"", "\"n\uFFFF\"", StringComparison.Ordinal));
        var at = Array.IndexOf(config, (byte)0xEF);
        byte[] bytes = [.. config[..at], 0xFF, 0xFE, .. config[(at + 3)..]];
        var stdout = new StringWriter();
        var env = new Dictionary<string, string?> { ["CNI_COMMAND"] = command, ["CNI_CONTAINERID"] = "c1", ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/var/run/netns/p1" };

        var exit = new Dispatcher(k => env.GetValueOrDefault(k), new MemoryStream(bytes), stdout, new StringWriter(),
            new PluginServices(_clock, _netns, TimeProvider.System)).Run();

        var answer = Json(stdout.ToString());
        if (code == 0)
        {
            // VERSION reads only the cniVersion, which is readable here, and answers in it.
            Assert.Equal(0, exit);
            Assert.Equal("0.4.0", answer.GetProperty("cniVersion").GetString());
            Assert.Equal(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"], answer.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
        }
        else
        {
            Assert.Equal(1, exit);
            Assert.Equal(code, answer.GetProperty("code").GetInt32());
            Assert.Equal("0.4.0", answer.GetProperty("cniVersion").GetString());
        }
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void A_repeated_add_after_the_network_lost_a_range_set_returns_what_the_container_holds()
    {
        // Leased in range sets 0 and 1; the config then keeps only the second set, which becomes set 0.
        var first = Invoke("ADD", Config(ranges: """[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.2.0.0/24"}]]"""));
        Assert.Equal(0, first.Exit);

        var (exit, stdout, _) = Invoke("ADD", Config(ranges: """[[{"subnet":"10.2.0.0/24"}]]"""));

        Assert.True(exit == 0, stdout);
        Assert.Equal("10.2.0.2/24", Json(stdout).GetProperty("ips")[0].GetProperty("address").GetString());
    }

    private string SubnetFile => _dir.File("subnet.env");

    private string PodCidrConfig(string version = "1.0.0", string extra = "") =>
        Config(version, """[[{"subnet":"usePodCidr"}]]""", $$""","subnetFile":"{{SubnetFile}}" """, extra);

    private string Store => Path.Combine(DataDir, "berth.db");

    [Fact]
    public void Add_with_usePodCidr_leases_from_flannel_s_subnet_with_its_gateway()
    {
        File.WriteAllText(SubnetFile, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");

        var (exit, stdout, _) = Invoke("ADD", PodCidrConfig());

        Assert.Equal(0, exit);
        var ip = Json(stdout).GetProperty("ips")[0];
        Assert.Equal(("10.244.3.2/24", "10.244.3.1"), (ip.GetProperty("address").GetString(), ip.GetProperty("gateway").GetString()));
        // The ranges the store records for the agent's checks are the resolved ones, not the placeholder.
        Assert.Contains("10.244.3.0/24", Assert.Single(SqliteCli.Column(Store, "SELECT ranges FROM networks")));
    }

    [Theory]
    [InlineData(null, "does not exist")]
    [InlineData("FLANNEL_NETWORK=10.244.0.0/16\n", "has no FLANNEL_SUBNET")]
    [InlineData("FLANNEL_SUBNET=10.244.3.1/33\n", "is not an IPv4 CIDR")]
    public void Add_without_a_usable_subnet_file_is_error_7_and_creates_no_store(string? env, string message)
    {
        if (env is not null) File.WriteAllText(SubnetFile, env);

        var (exit, stdout, _) = Invoke("ADD", PodCidrConfig());

        Assert.Equal(1, exit);
        Assert.Equal(7, Json(stdout).GetProperty("code").GetInt32());
        Assert.Contains(message, Json(stdout).GetProperty("msg").GetString());
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void A_subnet_file_turned_hostile_fails_the_next_add_and_changes_nothing()
    {
        File.WriteAllText(SubnetFile, "FLANNEL_SUBNET=10.244.3.1/24\n");
        Assert.Equal(0, Invoke("ADD", PodCidrConfig(), containerId: "c1").Exit);
        var before = SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM leases UNION ALL SELECT action || ' ' || address FROM history");

        File.WriteAllBytes(SubnetFile, [.. "FLANNEL_SUBNET="u8, .. new byte[200_000]]);
        var (exit, stdout, _) = Invoke("ADD", PodCidrConfig(), containerId: "c2");

        Assert.Equal(1, exit);
        Assert.Equal(7, Json(stdout).GetProperty("code").GetInt32());
        Assert.Equal(before, SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM leases UNION ALL SELECT action || ' ' || address FROM history"));
    }

    [Fact]
    public void Del_check_and_gc_work_after_flannel_s_subnet_file_is_gone()
    {
        File.WriteAllText(SubnetFile, "FLANNEL_SUBNET=10.244.3.1/24\n");
        var added = Invoke("ADD", PodCidrConfig(), containerId: "c1").Stdout;
        Invoke("ADD", PodCidrConfig(), containerId: "c2");
        Invoke("ADD", PodCidrConfig(), containerId: "c3");
        File.Delete(SubnetFile);

        Assert.Equal(0, Invoke("CHECK", PodCidrConfig(extra: $""","prevResult":{added}""")).Exit);
        Assert.Equal(0, Invoke("DEL", PodCidrConfig(), containerId: "c1").Exit);
        var gc = PodCidrConfig("1.1.0", ""","cni.dev/valid-attachments":[{"containerID":"c2","ifname":"eth0"}]""");
        Assert.Equal(0, Invoke("GC", gc, containerId: "", ifName: "", netns: "").Exit);

        Assert.Equal(["10.244.3.3 c2"], SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM leases"));
        var released = Invoke("CHECK", PodCidrConfig(), containerId: "c1");
        Assert.Equal((1, 3), (released.Exit, Json(released.Stdout).GetProperty("code").GetInt32()));
    }

    [Fact]
    public void Status_with_usePodCidr_is_ready_once_flannel_wrote_its_subnet_and_50_before()
    {
        var before = Invoke("STATUS", PodCidrConfig("1.1.0"));
        File.WriteAllText(SubnetFile, "FLANNEL_SUBNET=10.244.3.1/30\n");
        var ready = Invoke("STATUS", PodCidrConfig("1.1.0"));
        Invoke("ADD", PodCidrConfig("1.1.0"));
        var full = Invoke("STATUS", PodCidrConfig("1.1.0"));
        // A config that is wrong apart from the placeholder stays error 7.
        var wrong = Invoke("STATUS", Config("1.1.0", """[[{"subnet":"usePodCidr"}],[{"subnet":"10.0.0.1/24"}]]""", $$""","subnetFile":"{{SubnetFile}}" """));

        Assert.Equal(1, before.Exit);
        Assert.Equal(50, Json(before.Stdout).GetProperty("code").GetInt32());
        Assert.Contains("does not exist: is flanneld running on this node?", Json(before.Stdout).GetProperty("msg").GetString());
        Assert.Equal(0, ready.Exit);
        Assert.Equal(50, Json(full.Stdout).GetProperty("code").GetInt32());
        Assert.Equal(7, Json(wrong.Stdout).GetProperty("code").GetInt32());
    }

    public void Dispose() => _dir.Dispose();
}
