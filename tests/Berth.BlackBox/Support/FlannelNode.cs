using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Berth.BlackBox.Support;

/// <summary>
/// One node as flannel sees it, for one test: flanneld's subnet file with a /24 of the test's own inside a /16,
/// flannel's scratch directory, a bridge and namespaces named "hf…", and berth's store, all removed at the end.
/// The real flannel plugin runs against it, delegating to Debian's bridge, which delegates IPAM to the published
/// berth (CNI_PATH holds both).
/// </summary>
public sealed class FlannelNode : IDisposable
{
    /// <summary>The upstream flannel CNI plugin, where CI puts it: beside the repository, in shared/tools.</summary>
    public static string Plugin { get; } = Path.GetFullPath(Path.Combine(Repo.Root, "..", "shared", "tools", "flannel", "flannel"));

    private readonly TempDir _dir = new();
    private readonly List<Netns> _namespaces = [];
    private readonly int _second = RandomNumberGenerator.GetInt32(128, 255);
    private readonly int _third = RandomNumberGenerator.GetInt32(0, 256);

    public FlannelNode()
    {
        // FLANNEL_IPMASQ=true means flanneld masquerades, so the plugin tells bridge not to: no nat rules are left
        // behind by a test that leaves a container attached.
        WriteSubnetFile($"FLANNEL_NETWORK={Network}\nFLANNEL_SUBNET={Prefix}1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
    }

    public BridgeLink Bridge { get; } = new("hf");

    /// <summary>The cluster network, FLANNEL_NETWORK.</summary>
    public string Network => $"10.{_second}.0.0/16";

    /// <summary>"10.a.b.": the node's /24 is Prefix + "0/24", FLANNEL_SUBNET is Prefix + "1/24".</summary>
    public string Prefix => $"10.{_second}.{_third}.";

    public string SubnetFile => _dir.File("subnet.env");

    public string ScratchDir => _dir.File("flannel");

    public string StoreDir => _dir.File("store");

    public string Store => Path.Combine(StoreDir, "berth.db");

    /// <summary>The test's own directory, for anything else it needs on disk.</summary>
    public string Home => _dir.Path;

    public void WriteSubnetFile(string text) => File.WriteAllText(SubnetFile, text);

    public Netns NewNetns()
    {
        var netns = new Netns("hf-" + RandomNumberGenerator.GetHexString(12, lowercase: true));
        _namespaces.Add(netns);
        return netns;
    }

    /// <summary>
    /// The flannel plugin's config (the first plugin) from a conflist, as a runtime passes it (the list's name and cniVersion put in
    /// the plugin's), moved onto this node: its subnet file, scratch directory, bridge and store.
    /// </summary>
    public string FromConflist(string conflist)
    {
        var list = JsonNode.Parse(conflist)!.AsObject();
        var config = list["plugins"]![0]!.DeepClone().AsObject();
        config["name"] = list["name"]!.DeepClone();
        config["cniVersion"] = list["cniVersion"]!.DeepClone();
        config["subnetFile"] = SubnetFile;
        config["dataDir"] = ScratchDir;
        config["delegate"] ??= new JsonObject();
        config["delegate"]!["bridge"] = Bridge.Name;
        config["ipam"]!["dataDir"] = StoreDir;
        return config.ToJsonString();
    }

    /// <summary>A flannel config written directly: the IPAM section and delegate as given, this node's paths added.</summary>
    public string FlannelConfig(string ipam = """{"type":"berth"}""", string version = "1.0.0") =>
        FromConflist($$$"""{"name":"cbr0","cniVersion":"{{{version}}}","plugins":[{"type":"flannel","ipam":{{{ipam}}},"delegate":{"hairpinMode":true,"isDefaultGateway":true}}]}""");

    /// <summary>Runs flannel as containerd does for a pod, with IgnoreUnknown and the pod's names in CNI_ARGS.</summary>
    public static ExecResult Flannel(string command, string config, string containerId, Netns? netns) =>
        PluginRun.Run(Plugin, command, config, containerId, "eth0", netns?.Path ?? "", $"IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-{containerId}");

    /// <summary>flannel's scratch file for a container: the bridge config it delegated at ADD and replays at DEL.</summary>
    public string ScratchFile(string containerId) => Path.Combine(ScratchDir, containerId);

    public void Dispose()
    {
        foreach (var netns in _namespaces) netns.Dispose();
        Bridge.Dispose();
        _dir.Dispose();
    }
}
