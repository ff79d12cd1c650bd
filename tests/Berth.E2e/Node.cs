using System.Text.Json;
using Berth.Testing.Cri;

namespace Berth.E2e;

/// <summary>A pod the run created: its sandbox, the address the runtime reports, its pause process and netns pin.</summary>
internal sealed record Pod(string Name, string SandboxId, string Ip, int PausePid, string Netns);

/// <summary>
/// One simulated node: a private containerd whose pod network is Debian's bridge plugin with
/// <see cref="Ipam"/> ("berth" or "host-local") as its IPAM, in a small range so exhaustion shows quickly.
/// Everything it makes is under its directory, one bridge and one cgroup parent, and is undone by <see cref="DisposeAsync"/>.
/// </summary>
internal sealed class Node : IAsyncDisposable
{
    public const string PodNamespace = "e2e";
    /// <summary>Each node's subnet is a /28: 16 less the network, broadcast and gateway (the bridge) addresses.</summary>
    public const int RangeSize = 13;
    private readonly string _cgroupParent;
    private readonly HashSet<string> _pins = [];
    private int _boot = 1;

    public Node(string ipam, string dir, string subnet, string bridge, string berth, string agent, bool guarded = false, bool podAgent = false)
    {
        Ipam = ipam;
        Guarded = guarded || podAgent;
        PodAgent = podAgent;
        Dir = dir;
        Bridge = bridge;
        Agent = agent;
        Network = podAgent ? "e2e-pod" : guarded ? "e2e-guarded" : "e2e-" + ipam;
        // The agent's pod mounts the node's /var/lib/cni: host-local's default data directory is under it.
        DataDir = podAgent ? Path.Combine(HostRoot, "var", "lib", "cni", "networks") : Path.Combine(dir, "ipam");
        BootIdFile = podAgent ? Path.Combine(dir, "boot", "boot_id") : Path.Combine(dir, "boot_id");
        Directory.CreateDirectory(Path.GetDirectoryName(BootIdFile)!);
        _cgroupParent = "/" + Path.GetFileName(Path.GetDirectoryName(dir.TrimEnd('/'))) + "-" + ipam;
        var bin = CniBin;
        var conf = Path.Combine(dir, "cni", "conf");
        Directory.CreateDirectory(bin);
        Directory.CreateDirectory(conf);
        Directory.CreateDirectory(DataDir);
        foreach (var plugin in new[] { "bridge", "loopback", "host-local" }) File.Copy(Path.Combine("/usr/lib/cni", plugin), Path.Combine(bin, plugin));
        File.Copy(berth, Path.Combine(bin, "berth"));
        File.WriteAllText(Path.Combine(conf, "10-e2e.conflist"), System.Text.Json.JsonSerializer.Serialize(new
        {
            cniVersion = "1.0.0",
            name = Network,
            plugins = new[]
            {
                new { type = "bridge", bridge, isGateway = true, ipMasq = false, ipam = new { type = ipam, dataDir = DataDir, ranges = new[] { new[] { new { subnet } } } } },
            },
        }));
        if (podAgent)
        {
            // The pod's second network names berth, its store in the add-on's directory (the node's
            // /var/lib/cni/berth), as on a node whose flannel config names berth: the pod's agent guards both.
            File.WriteAllText(Path.Combine(conf, "20-e2e-berth.conflist"), System.Text.Json.JsonSerializer.Serialize(new
            {
                cniVersion = "1.0.0",
                name = Network + "-berth",
                plugins = new[]
                {
                    new { type = "bridge", bridge = BerthBridge, isGateway = true, ipMasq = false, ipam = new { type = "berth", dataDir = Path.GetDirectoryName(Store)!, ranges = new[] { new[] { new { subnet = BerthSubnet } } } } },
                },
            }));
        }
        File.WriteAllText(BootIdFile, BootId);
        Runtime = podAgent
            ? new Containerd(Path.Combine(dir, "containerd"), bin, conf, BootIdFile, Path.Combine(HostRoot, "run", "k3s", "containerd")) { ShareNetnsPins = true, Networks = 2 }
            : new Containerd(Path.Combine(dir, "containerd"), bin, conf, BootIdFile);
        Directory.CreateDirectory(Runtime.Dir);
    }

    public string Ipam { get; }

    /// <summary>The CNI bin directory containerd runs plugins from (the node's /opt/cni/bin).</summary>
    public string CniBin => Path.Combine(Dir, "cni", "bin");

    /// <summary>The cgroup parent of every sandbox of this node, the agent's pod included.</summary>
    public string CgroupParent => _cgroupParent;

    /// <summary>host-local, its config untouched, with berth-agent guarding its files (hostLocal.dirs).</summary>
    public bool Guarded { get; }

    /// <summary>Whether berth protects this node: it names berth, or the agent guards host-local's files.</summary>
    public bool Protected => Ipam == "berth" || Guarded;

    /// <summary>host-local guarded by berth-agent running as deploy/kubernetes's DaemonSet pod, started after containerd.</summary>
    public bool PodAgent { get; }

    /// <summary>The agent pod's node: the host paths its DaemonSet names, under the node's directory.</summary>
    public string HostRoot => Path.Combine(Dir, "host");

    /// <summary>The row's name in the table.</summary>
    public string Label => PodAgent ? "host-local guarded by berth-agent as a DaemonSet pod (started late)" : Guarded ? "host-local guarded by berth-agent" : Ipam;
    public string Dir { get; }
    public string Bridge { get; }

    /// <summary>The agent pod's node: the bridge and subnet of its second network, which names berth.</summary>
    public const string BerthBridge = "berthe2e5", BerthSubnet = "10.88.5.0/28";
    public string Agent { get; }
    public string Network { get; }
    public string DataDir { get; }
    public string BootIdFile { get; }
    /// <summary>berth's store: the plugin's own, or on a guarded node the agent's (history, first sightings).</summary>
    public string Store => PodAgent ? Path.Combine(HostRoot, "var", "lib", "cni", "berth", "berth.db") : Guarded ? Path.Combine(Dir, "berth", "berth.db") : Path.Combine(DataDir, "berth.db");

    /// <summary>
    /// The agent's config for this node: its runtime, and on a guarded node host-local's data directory and the
    /// runtime's netns pins (the boot proof); a berth node guards nothing.
    /// </summary>
    public string AgentConfig(int intervalSeconds = 60, int gracePeriodSeconds = 300)
    {
        var path = Path.Combine(Dir, "agent.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["store"] = Store,
            ["intervalSeconds"] = intervalSeconds,
            ["gracePeriodSeconds"] = gracePeriodSeconds,
            ["runtimeSockets"] = new[] { Runtime.Socket },
            ["metricsAddress"] = "off",
            ["hostLocal"] = new Dictionary<string, string[]>
            {
                ["dirs"] = Guarded ? [DataDir] : [],
                ["netnsDirs"] = [Runtime.NetnsDir],
            },
        }));
        return path;
    }
    public string BootId => $"e2e-boot-{_boot}";
    public Containerd Runtime { get; }
    public Dictionary<string, string> AgentEnvironment => new() { ["BERTH_BOOT_ID_FILE"] = BootIdFile };

    public async Task StartAsync(string imageTar)
    {
        await Runtime.StartAsync();
        Runtime.Import(imageTar);
    }

    /// <summary>RunPodSandbox as a kubelet would send it; null and the runtime's message when the pod got no address.</summary>
    public async Task<(Pod? Pod, string? Error)> RunPodAsync(string name)
    {
        Host.ThrowIfStopping();
        using var cri = Runtime.Cri();
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = PodNamespace, Uid = Guid.NewGuid().ToString(), Attempt = 0 },
            Hostname = name,
            LogDirectory = Path.Combine(Dir, "logs", name),
            Linux = new LinuxPodSandboxConfig { CgroupParent = _cgroupParent },
        };
        string id;
        try
        {
            id = await cri.RunPodSandboxAsync(config);
        }
        catch (Grpc.Core.RpcException e)
        {
            return (null, e.Status.Detail);
        }
        var status = await cri.PodSandboxStatusAsync(id, verbose: true);
        using var info = JsonDocument.Parse(status.Info["info"]);
        var pid = info.RootElement.GetProperty("pid").GetInt32();
        var netns = info.RootElement.GetProperty("runtimeSpec").GetProperty("linux").GetProperty("namespaces").EnumerateArray()
            .First(n => n.GetProperty("type").GetString() == "network").GetProperty("path").GetString()!;
        _pins.Add(netns);
        return (new Pod(name, id, status.Status.Network?.Ip ?? "", pid, netns), null);
    }

    public async Task StopAndRemoveAsync(Pod pod)
    {
        using var cri = Runtime.Cri();
        await cri.StopPodSandboxAsync(pod.SandboxId);
        await cri.RemovePodSandboxAsync(pod.SandboxId);
        _pins.Remove(pod.Netns);
    }

    /// <summary>The addresses the IPAM holds now: berth's leases, or host-local's one file per address.</summary>
    public List<string> HeldAddresses()
    {
        if (Ipam == "berth") return Leases().Select(l => l.Address).ToList();
        var dir = Path.Combine(DataDir, Network);
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateFiles(dir).Select(Path.GetFileName).Where(n => System.Net.IPAddress.TryParse(n, out _)).Select(n => n!).ToList();
    }

    public sealed record Lease(string Address, string ContainerId, string PodNamespace, string PodName, string BootId);

    public List<Lease> Leases()
    {
        var json = Host.Run(Agent, ["leases", "--json", "--store", Store], AgentEnvironment);
        if (json.ExitCode != 0) throw new E2eFailure($"berth-agent leases exited {json.ExitCode}: {json.Stderr.Trim()}");
        using var doc = JsonDocument.Parse(json.Stdout);
        return doc.RootElement.GetProperty("leases").EnumerateArray().Select(l => new Lease(
            l.GetProperty("address").GetString()!, l.GetProperty("containerId").GetString()!,
            l.TryGetProperty("podNamespace", out var ns) ? ns.GetString() ?? "" : "",
            l.TryGetProperty("podName", out var pn) ? pn.GetString() ?? "" : "",
            l.TryGetProperty("bootId", out var b) ? b.GetString() ?? "" : "")).ToList();
    }

    /// <summary>Ready sandboxes and the address the runtime reports for each.</summary>
    public async Task<List<(string Id, string Name, string Ip)>> ReadyPodsAsync()
    {
        using var cri = Runtime.Cri();
        var ready = new List<(string, string, string)>();
        foreach (var s in await cri.ListPodSandboxAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } }))
        {
            // The test's pods only: the agent's own pod (host network, no address) is not one of them.
            if (s.Metadata.Namespace != PodNamespace) continue;
            var status = await cri.PodSandboxStatusAsync(s.Id);
            ready.Add((s.Id, s.Metadata.Name, status.Status.Network?.Ip ?? ""));
        }
        return ready;
    }

    /// <summary>Sandboxes the runtime remembers but that are not ready: after a reboot, the lost pods.</summary>
    public async Task<List<string>> NotReadySandboxesAsync()
    {
        using var cri = Runtime.Cri();
        var filter = new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } };
        return (await cri.ListPodSandboxAsync(filter)).Select(s => s.Id).ToList();
    }

    /// <summary>
    /// A hard reboot as the node would see it: every runtime process dies at once; /run is empty afterwards
    /// (netns pins, the runtime's state), and with it the bridge, the veths and the sandboxes' cgroups; the
    /// disk (containerd's root, the IPAM's data) stays; the kernel has a new boot ID. Then the runtime starts again.
    /// </summary>
    public async Task HardRebootAsync(Func<Task> beforeRuntimeStarts)
    {
        await Runtime.KillEverythingAsync();
        DropPins();
        Runtime.WipeState();
        Host.Run("ip", ["link", "delete", Bridge]);
        if (PodAgent) Host.Run("ip", ["link", "delete", BerthBridge]);
        RemoveCgroups();
        _boot++;
        File.WriteAllText(BootIdFile, BootId);
        await beforeRuntimeStarts();
        await Runtime.StartAsync();
    }

    /// <summary>A sandbox that dies on its own, without a DEL: its pause process killed and its netns pin gone.</summary>
    public async Task KillSandboxAsync(Pod pod)
    {
        await Host.KillAsync([pod.PausePid], $"the pause process of {pod.Name}");
        DropPin(pod.Netns);
    }

    private void DropPins()
    {
        foreach (var pin in _pins.ToList()) DropPin(pin);
    }

    private void DropPin(string pin)
    {
        if (File.Exists(pin))
        {
            Host.Unmount(pin);
            File.Delete(pin);
        }
        _pins.Remove(pin);
    }

    private void RemoveCgroups()
    {
        // cgroup v1: one hierarchy per controller under /sys/fs/cgroup; v2: the one hierarchy is /sys/fs/cgroup.
        var dirs = Directory.EnumerateDirectories("/sys/fs/cgroup").Prepend("/sys/fs/cgroup")
            .Select(hierarchy => Path.Combine(hierarchy, _cgroupParent.TrimStart('/')))
            .Where(Directory.Exists);
        foreach (var parent in dirs)
        {
            foreach (var child in Directory.EnumerateDirectories(parent)) TryRemoveDirectory(child);
            TryRemoveDirectory(parent);
        }
    }

    private static void TryRemoveDirectory(string cgroup)
    {
        try
        {
            Directory.Delete(cgroup);
        }
        catch (IOException)
        {
            // A controller mounted twice (cpu,cpuacct) shows the same directory under two names: already gone.
        }
    }

    /// <summary>Undoes everything, each step even when an earlier one failed.</summary>
    public async ValueTask DisposeAsync()
    {
        await Attempt("stop containerd", Runtime.KillEverythingAsync);
        await Attempt("remove netns pins", () => { DropPins(); return Task.CompletedTask; });
        await Attempt("unmount the runtime's state and root", () => { Host.RemoveTree(Runtime.State); Host.RemoveTree(Runtime.Root); return Task.CompletedTask; });
        await Attempt("delete the bridge", () => { Host.Run("ip", ["link", "delete", Bridge]); return Task.CompletedTask; });
        if (PodAgent) await Attempt("delete berth's bridge", () => { Host.Run("ip", ["link", "delete", BerthBridge]); return Task.CompletedTask; });
        await Attempt("remove cgroups", () => { RemoveCgroups(); return Task.CompletedTask; });
    }

    private async Task Attempt(string what, Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"e2e: cleanup of {Ipam} node: cannot {what}: {e.Message}");
        }
    }
}
