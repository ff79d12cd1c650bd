using System.Security.Cryptography;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// Debian's bridge plugin delegating IPAM to the published berth, in real network namespaces, as a runtime
/// would call it: the address berth leases must be the one on eth0 inside the namespace, and a DEL through
/// bridge must release it. Each test has its own bridge, subnet, namespaces and store.
/// </summary>
public sealed class BridgeTests : IDisposable
{
    private static readonly string BridgePlugin = Path.Combine(Repo.DebianCniDir, "bridge");

    private readonly TempDir _dir = new();
    private readonly BridgeLink _bridge = new();
    private readonly List<Netns> _namespaces = [];

    // A /24 of its own per test: parallel tests may make bridges too, and a shared subnet would muddle the routes.
    private readonly string _prefix = $"10.{RandomNumberGenerator.GetInt32(128, 255)}.{RandomNumberGenerator.GetInt32(0, 256)}.";

    private string Store => Path.Combine(_dir.Path, "data", "berth.db");

    private string Config(string ranges, string version = "1.0.0") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"bridgenet","type":"bridge","bridge":"{{{_bridge.Name}}}","isGateway":true,"ipam":{"type":"berth","dataDir":"{{{Path.Combine(_dir.Path, "data")}}}","ranges":{{{ranges}}}}}""";

    private string Config() => Config($$"""[[{"subnet":"{{_prefix}}0/24"}]]""");

    private Netns NewNetns()
    {
        var netns = new Netns("bt-" + RandomNumberGenerator.GetHexString(12, lowercase: true));
        _namespaces.Add(netns);
        return netns;
    }

    private static ExecResult Bridge(string command, string config, string containerId, Netns? netns, string cniArgs = "",
        IReadOnlyDictionary<string, string>? environment = null) =>
        PluginRun.Run(BridgePlugin, command, config, containerId, "eth0", netns?.Path ?? "", cniArgs, environment);

    [Fact]
    public void The_address_berth_leases_is_on_eth0_inside_the_namespace()
    {
        var pod = NewNetns();

        var result = Bridge("ADD", Config(), "c1", pod, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal([_prefix + "2/24"], result.Addresses);
        Assert.Equal(_prefix + "1", result.Json.GetProperty("ips")[0].GetProperty("gateway").GetString());
        var lease = Assert.Single(SqliteCli.Query(Store, "SELECT * FROM leases"));
        Assert.Equal(_prefix + "2", lease["address"]);
        Assert.Equal("c1", lease["container_id"]);
        Assert.Equal("eth0", lease["ifname"]);
        Assert.Equal(pod.Path, lease["netns"]);
        Assert.Equal(Exec.Must("stat", "-L", "-c", "%i", pod.Path).Trim(), lease["netns_inode"]);
        Assert.Equal(("shop", "web-0", "uid-1"), (lease["pod_namespace"], lease["pod_name"], lease["pod_uid"]));
        Assert.Contains($"inet {_prefix}2/24 ", pod.Ipv4Addresses("eth0"));
        // isGateway: bridge put the gateway berth returned on the bridge itself.
        Assert.Contains($"inet {_prefix}1/24 ", _bridge.Addresses());
    }

    [Fact]
    public void A_second_container_gets_the_next_address()
    {
        var first = NewNetns();
        var second = NewNetns();

        var one = Bridge("ADD", Config(), "c1", first);
        var two = Bridge("ADD", Config(), "c2", second);

        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Equal([_prefix + "2/24"], one.Addresses);
        Assert.Equal([_prefix + "3/24"], two.Addresses);
        Assert.Contains($"inet {_prefix}2/24 ", first.Ipv4Addresses("eth0"));
        Assert.Contains($"inet {_prefix}3/24 ", second.Ipv4Addresses("eth0"));
        Assert.Equal([$"{_prefix}2 c1 {first.Path}", $"{_prefix}3 c2 {second.Path}"],
            SqliteCli.Column(Store, "SELECT address || ' ' || container_id || ' ' || netns FROM leases ORDER BY address_key"));
    }

    [Theory]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    public void A_dual_stack_attachment_gets_both_addresses_on_eth0_in_every_version(string version)
    {
        var pod = NewNetns();
        var prefix6 = $"fd{RandomNumberGenerator.GetInt32(0, 256):x2}:{RandomNumberGenerator.GetInt32(1, 65536):x}::";
        var config = Config($$"""[[{"subnet":"{{_prefix}}0/24"}],[{"subnet":"{{prefix6}}/120"}]]""", version);

        var result = Bridge("ADD", config, "c1", pod);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(version, result.Json.GetProperty("cniVersion").GetString());
        Assert.Equal([_prefix + "2/24", prefix6 + "2/120"], result.Addresses);
        var eth0 = Netns.Ip("-n", pod.Name, "-o", "addr", "show", "dev", "eth0");
        Assert.Contains($"inet {_prefix}2/24 ", eth0);
        Assert.Contains($"inet6 {prefix6}2/120 ", eth0);
        Assert.Equal([$"0 {_prefix}2", $"1 {prefix6}2"], SqliteCli.Column(Store, "SELECT range_set || ' ' || address FROM leases ORDER BY range_set"));
        Assert.Equal(0, Bridge("DEL", config, "c1", pod).ExitCode);
        Assert.Empty(SqliteCli.Query(Store, "SELECT * FROM leases"));
    }

    [Fact]
    public void Del_through_bridge_releases_the_lease_and_a_repeated_del_succeeds()
    {
        var first = NewNetns();
        var second = NewNetns();
        Assert.Equal(0, Bridge("ADD", Config(), "c1", first).ExitCode);

        var del = Bridge("DEL", Config(), "c1", first);

        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Empty(SqliteCli.Query(Store, "SELECT * FROM leases"));
        Assert.Equal(["allocate cni-add " + _prefix + "2 c1", "release cni-del " + _prefix + "2 c1"],
            SqliteCli.Column(Store, "SELECT action || ' ' || reason || ' ' || address || ' ' || container_id FROM history ORDER BY id"));
        Assert.False(first.HasLink("eth0"));
        // A runtime may send DEL again, and with no namespace once the sandbox is gone.
        Assert.Equal(0, Bridge("DEL", Config(), "c1", null).ExitCode);
        // Round-robin: the freed address is not handed out again at once.
        var next = Bridge("ADD", Config(), "c2", second);
        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Equal([_prefix + "3/24"], next.Addresses);
    }

    [Fact]
    public void Check_through_bridge_passes_for_the_attachment_as_added()
    {
        var pod = NewNetns();
        var add = Bridge("ADD", Config(), "c1", pod);
        Assert.True(add.ExitCode == 0, add.ToString());
        var withPrevResult = Config()[..^1] + ",\"prevResult\":" + add.Stdout.Trim() + "}";

        var check = Bridge("CHECK", withPrevResult, "c1", pod);

        Assert.True(check.ExitCode == 0, check.ToString());
        // The same prevResult for a container berth never leased to: berth's CHECK fails it (error 3).
        var other = Bridge("CHECK", withPrevResult, "c9", pod);
        Assert.Equal(3, other.ErrorCode);
    }

    [Fact]
    public void After_a_faked_hard_reboot_a_full_range_heals_through_bridge()
    {
        var bootId = _dir.File("boot_id");
        File.WriteAllText(bootId, "11111111-1111-1111-1111-111111111111\n");
        var environment = new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = bootId };
        // A /30 holds one address besides the gateway.
        var config = Config($$"""[[{"subnet":"{{_prefix}}0/30"}]]""");
        var before = NewNetns();
        Assert.Equal([_prefix + "2/30"], Bridge("ADD", config, "old", before, environment: environment).Addresses);
        var full = Bridge("ADD", config, "refused", NewNetns(), environment: environment);
        Assert.Equal(100, full.ErrorCode);

        // Power loss: a new boot, the namespace gone, and no DEL ever sent.
        File.WriteAllText(bootId, "22222222-2222-2222-2222-222222222222\n");
        Netns.Ip("netns", "delete", before.Name);
        var after = NewNetns();
        var add = Bridge("ADD", config, "new", after, environment: environment);

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal([_prefix + "2/30"], add.Addresses);
        Assert.Contains($"inet {_prefix}2/30 ", after.Ipv4Addresses("eth0"));
        Assert.Equal([$"new 22222222-2222-2222-2222-222222222222"], SqliteCli.Column(Store, "SELECT container_id || ' ' || boot_id FROM leases"));
        var reclaim = Assert.Single(SqliteCli.Query(Store, "SELECT * FROM history WHERE reason = 'exhausted-reclaim'"));
        Assert.Equal(("release", _prefix + "2", "old"), (reclaim["action"], reclaim["address"], reclaim["container_id"]));
    }

    public void Dispose()
    {
        foreach (var netns in _namespaces) netns.Dispose();
        _bridge.Dispose();
        _dir.Dispose();
    }
}
