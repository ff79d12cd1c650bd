using System.Text.Json.Nodes;
using Berth.BlackBox.Support;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// berth behind the real flannel CNI plugin (v1.9.1, as k3s and RKE2 run it) in real namespaces: flannel reads
/// its subnet file and delegates to Debian's bridge, which delegates IPAM to the published berth. What flannel
/// does around berth (its scratch file, its no-op CHECK, its DEL that calls nobody) is asserted as it really is.
/// </summary>
public sealed class FlannelTests : IDisposable
{
    private readonly FlannelNode _node = new();

    private IReadOnlyList<string?> Leases() => SqliteCli.Column(_node.Store, "SELECT address || ' ' || container_id FROM leases ORDER BY address_key");

    private IReadOnlyList<string?> History() =>
        SqliteCli.Column(_node.Store, "SELECT action || ' ' || reason || ' ' || address || ' ' || container_id FROM history ORDER BY id");

    [FlannelFact]
    public void Add_leases_from_flannel_s_subnet_with_berth_s_default_gateway_and_returns_the_routes_flannel_appends()
    {
        var pod = _node.NewNetns();
        var config = _node.FlannelConfig("""{"type":"berth","routes":[{"dst":"192.168.77.0/24"}]}""");

        var add = FlannelNode.Flannel("ADD", config, "c1", pod);

        Assert.True(add.ExitCode == 0, add.ToString());
        var p = _node.Prefix;
        Assert.Equal([p + "2/24"], add.Addresses);
        Assert.Equal(p + "1", add.Json.GetProperty("ips")[0].GetProperty("gateway").GetString());
        // The operator's routes first, flannel's cluster route after them, then bridge's default route (isDefaultGateway).
        Assert.Equal(["192.168.77.0/24 ", $"{_node.Network} ", $"0.0.0.0/0 {p}1"],
            add.Json.GetProperty("routes").EnumerateArray().Select(r => r.GetProperty("dst").GetString() + " " + (r.TryGetProperty("gw", out var gw) ? gw.GetString() : "")));
        // What flannel handed on: its subnet as the only range, without a gateway, and berth's type kept.
        var delegated = JsonNode.Parse(File.ReadAllText(_node.ScratchFile("c1")))!;
        Assert.Equal("berth", (string?)delegated["ipam"]!["type"]);
        Assert.Equal($$"""[[{"subnet":"{{p}}0/24"}]]""", delegated["ipam"]!["ranges"]!.ToJsonString());
        // bridge took berth's default gateway (network + 1) for itself, and the routes reach the namespace.
        Assert.Contains($"inet {p}1/24 ", _node.Bridge.Addresses());
        Assert.Contains($"inet {p}2/24 ", pod.Ipv4Addresses("eth0"));
        var routes = Netns.Ip("-n", pod.Name, "route");
        Assert.Contains($"{_node.Network} via {p}1 dev eth0", routes);
        Assert.Contains($"192.168.77.0/24 via {p}1 dev eth0", routes);
        Assert.Contains($"default via {p}1 dev eth0", routes);
        var lease = Assert.Single(SqliteCli.Query(_node.Store, "SELECT * FROM leases"));
        Assert.Equal((p + "2", "c1", pod.Path, "shop", "web-c1"), (lease["address"], lease["container_id"], lease["netns"], lease["pod_namespace"], lease["pod_name"]));
        Assert.Contains($"{p}0/24", SqliteCli.Column(_node.Store, "SELECT ranges FROM networks WHERE name = 'cbr0'").Single());
    }

    [FlannelFact]
    public void Check_through_flannel_never_reaches_berth_but_the_config_flannel_saved_checks_the_lease()
    {
        var pod = _node.NewNetns();
        var config = _node.FlannelConfig();
        var add = FlannelNode.Flannel("ADD", config, "c1", pod);
        Assert.True(add.ExitCode == 0, add.ToString());
        var withPrevResult = (string conf) => conf[..^1] + ",\"prevResult\":" + add.Stdout.Trim() + "}";

        // flannel v1.9.1's CHECK is a stub that answers success, even for a container no one ever added.
        var flannelCheck = FlannelNode.Flannel("CHECK", withPrevResult(config), "never-added", pod);
        // The bridge config flannel saved at ADD, with the ADD's result, as bridge hands it to berth on a CHECK.
        // (Debian's bridge would then fail its own part of the CHECK: it looks for flannel's gateway-less route
        // without a gateway, and the kernel holds it via the gateway.)
        var saved = File.ReadAllText(_node.ScratchFile("c1"));
        var own = PluginRun.Run(Repo.Plugin, "CHECK", withPrevResult(saved), "c1", "eth0", pod.Path, "IgnoreUnknown=1");
        var other = PluginRun.Run(Repo.Plugin, "CHECK", withPrevResult(saved), "c9", "eth0", pod.Path, "IgnoreUnknown=1");

        Assert.True(flannelCheck.ExitCode == 0, flannelCheck.ToString());
        Assert.True(own.ExitCode == 0, own.ToString());
        Assert.Equal(3, other.ErrorCode);
        Assert.Contains("no address is leased to container c9", other.Stdout);
    }

    [FlannelFact]
    public void Del_replays_the_config_saved_at_add_releases_the_lease_and_may_be_repeated()
    {
        var pod = _node.NewNetns();
        Assert.Equal(0, FlannelNode.Flannel("ADD", _node.FlannelConfig(), "c1", pod).ExitCode);
        // The runtime's DEL names another store: flannel replays its scratch file instead, so berth's own store is used.
        var elsewhere = _node.FlannelConfig("""{"type":"berth"}""").Replace(_node.StoreDir, Path.Combine(_node.Home, "elsewhere"));

        var del = FlannelNode.Flannel("DEL", elsewhere, "c1", pod);

        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Empty(Leases());
        Assert.Equal([$"allocate cni-add {_node.Prefix}2 c1", $"release cni-del {_node.Prefix}2 c1"], History());
        Assert.False(File.Exists(_node.ScratchFile("c1")));
        Assert.False(pod.HasLink("eth0"));
        Assert.False(Directory.Exists(Path.Combine(_node.Home, "elsewhere")));
        Assert.Equal(0, FlannelNode.Flannel("DEL", _node.FlannelConfig(), "c1", null).ExitCode);
    }

    [FlannelFact]
    public void A_del_after_flannel_s_scratch_file_vanished_calls_nobody_and_berth_s_lease_stays_for_the_agent()
    {
        var pod = _node.NewNetns();
        Assert.Equal(0, FlannelNode.Flannel("ADD", _node.FlannelConfig(), "c1", pod).ExitCode);
        File.Delete(_node.ScratchFile("c1"));

        var del = FlannelNode.Flannel("DEL", _node.FlannelConfig(), "c1", pod);

        // flannel answers success without calling bridge or berth: the interface and the lease are both still there.
        // berth-agent releases the lease once the sandbox is gone and the grace period has passed.
        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Equal([$"{_node.Prefix}2 c1"], Leases());
        Assert.Equal([$"allocate cni-add {_node.Prefix}2 c1"], History());
        Assert.True(pod.HasLink("eth0"));
        // The address stays taken: the next pod gets the one after it.
        var next = FlannelNode.Flannel("ADD", _node.FlannelConfig(), "c2", _node.NewNetns());
        Assert.Equal([_node.Prefix + "3/24"], next.Addresses);
    }

    [FlannelFact]
    public void A_del_that_fails_in_berth_still_loses_flannel_s_scratch_file_so_the_retry_does_nothing_and_the_lease_stays()
    {
        var pod = _node.NewNetns();
        Assert.Equal(0, FlannelNode.Flannel("ADD", _node.FlannelConfig(), "c1", pod).ExitCode);
        // The store becomes unusable: its directory moved aside and a file in its place (berth: error 5).
        var aside = Path.Combine(_node.Home, "store-aside");
        Directory.Move(_node.StoreDir, aside);
        File.WriteAllText(_node.StoreDir, "not a directory");

        var failed = FlannelNode.Flannel("DEL", _node.FlannelConfig(), "c1", pod);
        var scratchAfterFailure = File.Exists(_node.ScratchFile("c1"));
        File.Delete(_node.StoreDir);
        Directory.Move(aside, _node.StoreDir);
        var retry = FlannelNode.Flannel("DEL", _node.FlannelConfig(), "c1", pod);

        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("cannot be used", failed.Stdout);
        Assert.Equal(5, failed.ErrorCode);
        // flannel removed its scratch file although the DEL failed: the runtime's retry finds nothing to replay.
        Assert.False(scratchAfterFailure);
        Assert.True(retry.ExitCode == 0, retry.ToString());
        Assert.Equal([$"{_node.Prefix}2 c1"], Leases());
        Assert.Equal([$"allocate cni-add {_node.Prefix}2 c1"], History());
    }

    public void Dispose() => _node.Dispose();
}
