using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Berth.BlackBox.Support;

namespace Berth.BlackBox.Deploy;

/// <summary>
/// The field recipes in deploy/, each run for real: the files an operator copies are read from the repository and
/// fed to the real flannel plugin, Debian's bridge and the published berth, moved only onto the test's own subnet
/// file, scratch directory, bridge and store.
/// </summary>
public sealed class RecipeTests : IDisposable
{
    private readonly FlannelNode _node = new();

    private static string Recipe(string path) => File.ReadAllText(Path.Combine(Repo.Root, "deploy", path));

    /// <summary>ADD then DEL of one pod through flannel with the given flannel plugin config.</summary>
    private void AttachesAndDetachesThroughFlannel(string config)
    {
        var pod = _node.NewNetns();
        var add = FlannelNode.Flannel("ADD", config, "c1", pod);
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal([_node.Prefix + "2/24"], add.Addresses);
        Assert.Contains($"inet {_node.Prefix}2/24 ", pod.Ipv4Addresses("eth0"));
        Assert.Equal([$"{_node.Prefix}2 c1"], SqliteCli.Column(_node.Store, "SELECT address || ' ' || container_id FROM leases"));

        var del = FlannelNode.Flannel("DEL", config, "c1", pod);

        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Empty(SqliteCli.Query(_node.Store, "SELECT * FROM leases"));
    }

    [FlannelFact]
    public void The_k3s_flannel_cni_conf_runs_berth_under_flannel()
    {
        var conflist = Recipe("k3s/10-flannel.conflist");
        var flannel = JsonNode.Parse(conflist)!["plugins"]![0]!;

        // The network keeps k3s's name, so host-local's files (/var/lib/cni/networks/cbr0) import into it.
        Assert.Equal("cbr0", (string?)JsonNode.Parse(conflist)!["name"]);
        Assert.Equal(("flannel", "berth"), ((string?)flannel["type"], (string?)flannel["ipam"]!["type"]));
        AttachesAndDetachesThroughFlannel(_node.FromConflist(conflist));
    }

    [Fact]
    public void The_k3s_drop_in_links_berth_into_every_k3s_data_directory()
    {
        // k3s's data directory with two unpacked versions (an upgrade) and its "current" link, under the test's directory.
        var k3s = Path.Combine(_node.Home, "k3s");
        foreach (var version in new[] { "aaa111", "bbb222" }) Directory.CreateDirectory(Path.Combine(k3s, "data", version, "bin"));
        File.CreateSymbolicLink(Path.Combine(k3s, "data", "current"), Path.Combine(k3s, "data", "bbb222"));
        var dropIn = Recipe("k3s/berth-cni-bin.conf").Split('\n');
        var commands = dropIn.Where(l => l.StartsWith("ExecStartPre=-/bin/sh -c '") || l.StartsWith("ExecStartPost=-/bin/sh -c '")).ToList();

        Assert.Equal(2, commands.Count);
        Assert.Contains("[Service]", dropIn);
        foreach (var line in commands)
        {
            var script = line[(line.IndexOf("-c '", StringComparison.Ordinal) + 4)..^1]
                .Replace("/var/lib/rancher/k3s", k3s).Replace("/opt/cni/bin/berth", Repo.Plugin);
            // Twice: the second start finds the links already there.
            Exec.Must("/bin/sh", "-c", script);
            Exec.Must("/bin/sh", "-c", script);
        }

        foreach (var version in new[] { "aaa111", "bbb222" })
        {
            Assert.Equal(Repo.Plugin, new FileInfo(Path.Combine(k3s, "data", version, "bin", "berth")).LinkTarget);
        }
        // With no data directory yet (k3s never started) the commands still succeed.
        var empty = commands[0][(commands[0].IndexOf("-c '", StringComparison.Ordinal) + 4)..^1].Replace("/var/lib/rancher/k3s", Path.Combine(_node.Home, "none"));
        Exec.Must("/bin/sh", "-c", empty);
    }

    [FlannelFact]
    public void The_rke2_flannel_helm_chart_config_sets_the_chart_s_cni_conf_to_berth_under_flannel()
    {
        var yaml = Recipe("rke2-flannel/rke2-flannel-berth.yaml").Split('\n');

        Assert.Contains("apiVersion: helm.cattle.io/v1", yaml);
        Assert.Contains("kind: HelmChartConfig", yaml);
        Assert.Contains("  name: rke2-flannel", yaml);
        Assert.Contains("  namespace: kube-system", yaml);
        Assert.Contains("  valuesContent: |-", yaml);
        Assert.Contains("    flannel:", yaml);
        var conflist = Block(yaml, "      cniConf: |");
        Assert.Equal("cbr0", (string?)JsonNode.Parse(conflist)!["name"]);
        AttachesAndDetachesThroughFlannel(_node.FromConflist(conflist));
    }

    /// <summary>A YAML block scalar: the lines after its key that are indented deeper, with that indentation removed.</summary>
    private static string Block(string[] lines, string keyLine)
    {
        var start = Array.IndexOf(lines, keyLine);
        Assert.True(start >= 0, $"no line \"{keyLine}\"");
        var keyIndent = keyLine.Length - keyLine.TrimStart().Length;
        var body = lines.Skip(start + 1).TakeWhile(l => l.Trim().Length == 0 || l.Length - l.TrimStart().Length > keyIndent).ToList();
        var indent = body.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join('\n', body.Select(l => l.Length >= indent ? l[indent..] : ""));
    }

    [Fact]
    public void A_canal_conflist_that_names_berth_takes_usePodCidr_from_flannel_s_subnet_file_as_calico_passes_it()
    {
        // Calico hands its own config to the IPAM plugin unchanged when the type is not host-local: the placeholders
        // reach berth, which reads the subnets flanneld wrote for this node.
        var list = JsonNode.Parse(Recipe("rke2-canal/10-canal-berth.conflist"))!.AsObject();
        var calico = list["plugins"]![0]!.DeepClone().AsObject();
        calico["name"] = list["name"]!.DeepClone();
        calico["cniVersion"] = list["cniVersion"]!.DeepClone();
        calico["ipam"]!["dataDir"] = _node.StoreDir;
        calico["ipam"]!["subnetFile"] = _node.SubnetFile;
        var prefix6 = $"fd{RandomNumberGenerator.GetInt32(0, 256):x2}:10:244:3::";
        _node.WriteSubnetFile($"FLANNEL_NETWORK={_node.Network}\nFLANNEL_SUBNET={_node.Prefix}1/24\nFLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_IPV6_SUBNET={prefix6}1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
        var config = calico.ToJsonString();

        var add = PluginRun.Run(Repo.Plugin, "ADD", config, "c1", "eth0", "/var/run/netns/hf-canal", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0");
        File.Delete(_node.SubnetFile);
        var del = PluginRun.Run(Repo.Plugin, "DEL", config, "c1", "eth0", "", "IgnoreUnknown=1");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal("0.3.1", (string?)JsonNode.Parse(add.Stdout)!["cniVersion"]);
        Assert.Equal([_node.Prefix + "2/24", prefix6 + "2/64"], add.Addresses);
        // DEL does not need the file: Calico sends the placeholders on DEL too.
        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Empty(SqliteCli.Query(_node.Store, "SELECT * FROM leases"));
    }

    [Fact]
    public void The_containerd_bridge_conflist_runs_through_bridge()
    {
        var list = JsonNode.Parse(Recipe("containerd-bridge/10-berth.conflist"))!.AsObject();
        var bridge = list["plugins"]![0]!.DeepClone().AsObject();
        Assert.Equal(("bridge", "berth"), ((string?)bridge["type"], (string?)bridge["ipam"]!["type"]));
        bridge["name"] = list["name"]!.DeepClone();
        bridge["cniVersion"] = list["cniVersion"]!.DeepClone();
        // Onto the test's own bridge, /24 and store; masquerading off, so no nat rule outlives the test.
        bridge["bridge"] = _node.Bridge.Name;
        bridge["ipMasq"] = false;
        bridge["ipam"]!["ranges"] = JsonNode.Parse($$"""[[{"subnet":"{{_node.Prefix}}0/24"}]]""");
        bridge["ipam"]!["dataDir"] = _node.StoreDir;
        var config = bridge.ToJsonString();
        var pod = _node.NewNetns();
        var plugin = Path.Combine(Repo.DebianCniDir, "bridge");

        var add = PluginRun.Run(plugin, "ADD", config, "c1", "eth0", pod.Path, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0");
        var routes = Netns.Ip("-n", pod.Name, "route");
        var del = PluginRun.Run(plugin, "DEL", config, "c1", "eth0", pod.Path, "IgnoreUnknown=1");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal([_node.Prefix + "2/24"], add.Addresses);
        Assert.Contains($"default via {_node.Prefix}1 dev eth0", routes);
        Assert.Contains($"inet {_node.Prefix}1/24 ", _node.Bridge.Addresses());
        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Empty(SqliteCli.Query(_node.Store, "SELECT * FROM leases"));
    }

    public void Dispose() => _node.Dispose();
}
