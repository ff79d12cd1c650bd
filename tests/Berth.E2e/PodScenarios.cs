using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;

namespace Berth.E2e;

/// <summary>
/// The fourth row: a node whose CNI config keeps host-local while berth-agent runs as deploy/kubernetes's
/// DaemonSet pod, started by the run (as a kubelet would) after containerd in every boot, with a pod of the new
/// boot already up: late recovery, the normal case for an add-on. Its store lives in the node's /var/lib/cni.
/// </summary>
internal static class PodScenarios
{
    /// <summary>The agent's passes and grace period for the run (agent.json keeps every other setting of the ConfigMap).</summary>
    public const int IntervalSeconds = 1, GraceSeconds = 5;

    /// <summary>The DaemonSet of deploy/kubernetes, placed on the node: its hostPaths are the node's directories.</summary>
    public static AgentPod Place(Node node, int metricsPort, Func<string?>? installCni = null)
    {
        var objects = Manifests.All();
        var hostPaths = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["/var/lib/cni"] = Path.Combine(node.HostRoot, "var", "lib", "cni"),
            ["/run/k3s/containerd"] = Path.GetDirectoryName(node.Runtime.Socket)!,
            // /var/run is /run on a node: both name the runtime's pins (containerd keeps them under its state here).
            ["/run/netns"] = node.Runtime.NetnsDir,
            ["/var/run/netns"] = node.Runtime.NetnsDir,
            ["/opt/cni/bin"] = node.CniBin,
            // Where the agent answers the plugin's calls; the e2e's runtime runs the plugin with the socket off, so
            // the plugin alone does this node's calls (the e2e measures the agent's guard, not its serving).
            ["/run/berth"] = Path.Combine(node.HostRoot, "run", "berth"),
        };
        string Override(string key, string value)
        {
            if (key == "installCni") return installCni?.Invoke() ?? value;
            if (key != "agent.json") return value;
            var json = JsonNode.Parse(value)!.AsObject();
            json["intervalSeconds"] = IntervalSeconds;
            json["gracePeriodSeconds"] = GraceSeconds;
            // Loopback and a free port: the run shares the machine's network with other runs.
            json["metricsAddress"] = $"127.0.0.1:{metricsPort}";
            return json.ToJsonString();
        }
        return new AgentPod(objects.OfType<V1DaemonSet>().Single(), [.. objects.OfType<V1ConfigMap>()], node.Runtime.Socket,
            Path.Combine(node.Dir, "pod"), node.CgroupParent, hostPaths, Override, node.BootIdFile);
    }

    /// <summary>Where make node-test's VM keeps the pod's requests and ConfigMap files (torture/node/build-image.sh copies them there).</summary>
    public const string NodeVmPodDir = "/usr/local/share/berth-node/pod";

    /// <summary>
    /// The DaemonSet pod for make node-test's VM, a real node with plain containerd (the README's setting for it:
    /// the runtime's directory is /run/containerd), every other hostPath where the manifest says; agent.json with
    /// the node's pace (a pass every 2 s, as its packaged agent.json; a grace period of 10 s) and metrics where the
    /// node's checks read them.
    /// </summary>
    public static void WriteNodeVmSpec(string outDir)
    {
        var objects = Manifests.All();
        var daemonSet = objects.OfType<V1DaemonSet>().Single();
        var hostPaths = daemonSet.Spec.Template.Spec.Volumes.Where(v => v.HostPath is not null).ToDictionary(v => v.HostPath.Path, v => v.HostPath.Path);
        hostPaths["/run/k3s/containerd"] = "/run/containerd";
        static string Override(string key, string value)
        {
            if (key != "agent.json") return value;
            var json = JsonNode.Parse(value)!.AsObject();
            json["intervalSeconds"] = 2;
            json["gracePeriodSeconds"] = 10;
            json["metricsAddress"] = "127.0.0.1:9617";
            return json.ToJsonString();
        }
        if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        new AgentPod(daemonSet, [.. objects.OfType<V1ConfigMap>()], "", outDir, "", hostPaths, Override, bootIdFile: null, nodeDir: NodeVmPodDir).WriteRequests(outDir);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task<(Outcome Outcome, List<Pod> Running, AgentPod Agent)> RebootsAsync(Node node, int podsPerBoot, int reboots, int rangeSize, Verdicts v)
    {
        var port = FreePort();
        // The ConfigMap's installCni as it is ("false": the guardian alone), except in the second boot, where the
        // run turns it on, as a user of a node whose CNI config names berth does.
        string? install = null;
        var pod = Place(node, port, () => install);
        var unsupported = pod.Unsupported();
        v.Expect(unsupported.Count == 0, $"{node.Label}: the e2e applies every setting of the DaemonSet ({string.Join("; ", unsupported)})");
        Console.WriteLine($"e2e: {node.Label}: agent.json from the ConfigMap, with intervalSeconds {IntervalSeconds}, gracePeriodSeconds {GraceSeconds} and metrics on 127.0.0.1:{port}");

        Console.WriteLine($"e2e: {node.Label}: boot 1 ({node.BootId}): the agent's pod starts after containerd, with no store yet");
        await StartAgentAsync(node, pod, 0, port, v);
        v.Expect(Log(pod, 0).Contains($"the store /var/lib/cni/berth/berth.db is new", StringComparison.Ordinal), $"{node.Label}: the first start says the store is new");

        int created = 0, failed = 0, leaked = 0, unseenAtCut = 0;
        string? firstFailure = null;
        var running = new List<Pod>();
        var written = new Dictionary<string, string>();
        async Task<Pod?> NewPodAsync(string name)
        {
            var (p, error) = await node.RunPodAsync(name);
            created++;
            if (p is null)
            {
                failed++;
                firstFailure ??= error;
                Console.WriteLine($"e2e:   {name}: no address: {error}");
                return null;
            }
            running.Add(p);
            written[p.Ip] = File.ReadAllText(Path.Combine(node.DataDir, node.Network, p.Ip));
            return p;
        }
        void ExpectRunningFilesUntouched(string when)
        {
            var changed = running.Where(p => !File.Exists(Path.Combine(node.DataDir, node.Network, p.Ip)) || File.ReadAllText(Path.Combine(node.DataDir, node.Network, p.Ip)) != written[p.Ip]).Select(p => p.Name).ToList();
            v.Expect(changed.Count == 0, $"{node.Label}: {when}, every running pod's host-local file is byte for byte as host-local wrote it ({string.Join(", ", changed)})");
        }

        for (var boot = 1; boot <= reboots + 1; boot++)
        {
            running.Clear();
            written.Clear();
            var toCreate = podsPerBoot;
            if (boot > 1)
            {
                Console.WriteLine($"e2e: {node.Label}: hard reboot {boot - 1}; nothing runs before containerd");
                await node.HardRebootAsync(() => Task.CompletedTask);
                // A pod of the new boot is up before the agent: its file is one the agent has never seen.
                var early = await NewPodAsync($"boot{boot}-early");
                toCreate--;
                var before = await LeakedAsync(node);
                var berthBefore = await BerthLeakedAsync(node);
                var plugin = Path.Combine(node.CniBin, "berth");
                if (boot == 2)
                {
                    install = "true";
                    File.Delete(plugin);
                }
                await StartAgentAsync(node, pod, (uint)(boot - 1), port, v);
                var installLog = AgentPod.Tail(pod.LogOf("install-cni", (uint)(boot - 1)));
                if (boot == 2)
                {
                    install = null;
                    v.Expect(File.Exists(plugin) && File.ReadAllBytes(plugin).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(Path.GetDirectoryName(node.Agent)!, "berth")))
                        && (File.GetUnixFileMode(plugin) & UnixFileMode.OtherExecute) != 0 && !File.Exists(Path.Combine(node.CniBin, ".berth.new")),
                        $"{node.Label}: with installCni \"true\" the init container installs the image's berth into the node's CNI bin directory, executable, nothing left beside it ({installLog.Trim()})");
                }
                else
                {
                    v.Expect(installLog.Contains("install-cni is off", StringComparison.Ordinal), $"{node.Label}: with the ConfigMap's installCni \"false\" the init container installs nothing ({installLog.Trim()})");
                }
                ExpectRunningFilesUntouched($"after the late recovery of boot {boot}");
                v.Expect(early is null || node.HeldAddresses().Contains(early.Ip), $"{node.Label}: the late recovery keeps the file of {early?.Name}, a pod of this boot it never saw");
                v.Expect(Log(pod, (uint)(boot - 1)).Contains("cannot be proven to be of an earlier boot", StringComparison.Ordinal), $"{node.Label}: the late recovery's log names the files it cannot prove to be of an earlier boot");
                var atRecovery = await LeakedAsync(node);
                var berthAtRecovery = await BerthLeakedAsync(node);
                // Files the agent recorded before the cut are proven to be of the earlier boot: recovery frees them;
                // only those it had not seen yet wait for reconcile and the grace period.
                v.Expect(atRecovery <= unseenAtCut, $"{node.Label}: the late recovery frees every lost pod's file it had seen before the cut ({atRecovery} left, {unseenAtCut} unseen at the cut)");
                var clock = Stopwatch.StartNew();
                try
                {
                    await Host.AwaitAsync(async () => await AgentUpAsync(pod) && await LeakedAsync(node) == 0 && await BerthLeakedAsync(node) == 0,
                        TimeSpan.FromSeconds(GraceSeconds + 30), "the agent's pod to free every address of a pod lost in the reboot, on both networks");
                }
                catch (E2eFailure e)
                {
                    Console.WriteLine($"e2e:   {e.Message}; the agent's log:\n{AgentPod.Tail(pod.LogOf("agent", (uint)(boot - 1)), 30)}");
                }
                leaked = await LeakedAsync(node);
                var berthLeaked = await BerthLeakedAsync(node);
                Console.WriteLine($"e2e:   after reboot {boot - 1}: {before} host-local files and {berthBefore} berth leases held for lost pods when the agent's pod started, " +
                    $"{atRecovery} and {berthAtRecovery} after its recovery, {leaked} and {berthLeaked} {clock.Elapsed.TotalSeconds:0.0} s later");
                v.Expect(leaked == 0, $"{node.Label}: no address of a pod lost in reboot {boot - 1} stays leased once the late agent has had its grace period");
                // berth's leases record their boot: the late recovery frees every one of an earlier boot at once.
                v.Expect(berthAtRecovery == 0 && berthLeaked == 0, $"{node.Label}: on the network naming berth, the late recovery frees every lease of a pod lost in reboot {boot - 1} ({berthAtRecovery} left)");
            }
            Console.WriteLine($"e2e: {node.Label}: boot {boot} ({node.BootId}): {toCreate} new pods, the last one just before the cut");
            for (var i = 1; i < toCreate; i++) await NewPodAsync($"boot{boot}-pod{i}");
            // The agent records what it sees (its ledger); the last pod's file comes after its last look.
            await Host.AwaitAsync(() => Unseen(node) == 0, TimeSpan.FromSeconds(30), "the agent's pod to record every host-local file");
            await NewPodAsync($"boot{boot}-last");
            unseenAtCut = Unseen(node);
            await Scenarios.ExpectNothingHeldTwiceAsync(node, v);
            v.Expect(running.Count == podsPerBoot, $"{node.Label}: every pod of boot {boot} got an address");
            var ready = (await node.ReadyPodsAsync()).Select(p => p.Id).ToList();
            var leases = BerthLeases(node);
            v.Expect(ready.All(id => leases.Count(l => l.ContainerId == id) == 1) && leases.Count == ready.Count,
                $"{node.Label}: on the network naming berth, each ready pod holds one lease and nothing else is held ({ready.Count} ready, {leases.Count} leases)");
            ExpectRunningFilesUntouched($"before the end of boot {boot}");
        }

        var history = Releases(node);
        Console.WriteLine($"e2e:   the agent's releases: {string.Join(", ", history.Select(h => $"{h.Value} {h.Key}"))}");

        // As the guarded row: a kubelet that still knows the lost pods stops and removes their sandboxes.
        var lost = await node.NotReadySandboxesAsync();
        using (var cri = node.Runtime.Cri())
        {
            foreach (var id in lost)
            {
                await cri.StopPodSandboxAsync(id);
                await cri.RemovePodSandboxAsync(id);
            }
        }
        var readyNow = (await node.ReadyPodsAsync()).Select(p => p.Ip).ToHashSet();
        var leakedAfterStop = node.HeldAddresses().Count(a => !readyNow.Contains(a));
        v.Expect(leakedAfterStop == 0, $"{node.Label}: stopping the lost sandboxes later is harmless (nothing released twice, nothing leaked)");
        return (new Outcome(node.Label, created, failed, reboots, leaked, leakedAfterStop, rangeSize, firstFailure), running, pod);
    }

    /// <summary>
    /// With the pod's agent running: the packages' agent started beside it stands aside (one guardian per
    /// directory); then a sandbox dies without a DEL and the pod's agent frees its file after the grace period,
    /// leaving every running pod's file as it was.
    /// </summary>
    public static async Task OneAgentAndLiveReconcileAsync(Node node, AgentPod pod, IReadOnlyList<Pod> running, Verdicts v)
    {
        Console.WriteLine($"e2e: {node.Label}: the packages' berth-agent run starts beside the pod's");
        var log = Path.Combine(node.Dir, "second-agent.log");
        // Its own store, as the packages' /var/lib/berth is: the directory's lock is what the two agents share.
        var store = Path.Combine(node.Dir, "packages-store", "berth.db");
        using (var second = Exec.Start("/bin/sh", ["-c", "exec \"$0\" run --config \"$1\" --store \"$3\" >\"$2\" 2>&1", node.Agent, node.AgentConfig(intervalSeconds: IntervalSeconds, gracePeriodSeconds: GraceSeconds), log, store],
            new ExecOptions { Environment = ExecOptions.Text(node.AgentEnvironment), Unset = ["NOTIFY_SOCKET"], Timeout = Timeout.InfiniteTimeSpan }))
        {
            try
            {
                await Host.AwaitAsync(() => File.Exists(log) && File.ReadAllText(log).Contains("reconcile:", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "the second agent's first pass");
                var text = File.ReadAllText(log);
                v.Expect(text.Contains($"another berth-agent guards {node.DataDir}", StringComparison.Ordinal), $"{node.Label}: a second agent on the node stands aside for {node.DataDir} and says so");
            }
            finally
            {
                Host.Terminate(second.Id);
                second.Wait(TimeSpan.FromSeconds(30));
            }
        }

        Console.WriteLine($"e2e: {node.Label}: a sandbox dies without a DEL while the pod's agent watches (grace period {GraceSeconds} s)");
        var (victim, error) = await node.RunPodAsync("live-victim");
        if (victim is null) throw new E2eFailure($"{node.Label}: no address for the live reconcile's pod: {error}");
        // The pin of a pod made after the agent started shows inside its container (HostToContainer): looked at
        // through the agent's own mount namespace, at the paths agent.json names.
        var pid = await pod.AgentPidAsync();
        foreach (var dir in new[] { "/run/netns", "/var/run/netns" })
        {
            var inside = $"/proc/{pid}/root{dir}/{Path.GetFileName(victim.Netns)}";
            v.Expect(new Berth.Shared.Evidence.NetnsProbe().Inode(inside) is { } inode && inode == new Berth.Shared.Evidence.NetnsProbe().Inode(victim.Netns),
                $"{node.Label}: a netns pin made after the agent's pod started is the same namespace inside it, at {dir}");
        }
        var files = running.ToDictionary(p => p.Ip, p => File.ReadAllText(Path.Combine(node.DataDir, node.Network, p.Ip)));
        await node.KillSandboxAsync(victim);
        await Host.AwaitAsync(() => !node.HeldAddresses().Contains(victim.Ip) && BerthLeases(node).All(l => l.ContainerId != victim.SandboxId), TimeSpan.FromSeconds(GraceSeconds + 60),
            $"the pod's agent to release {victim.Ip} and the berth lease of the dead sandbox");
        v.Expect(files.All(f => File.Exists(Path.Combine(node.DataDir, node.Network, f.Key)) && File.ReadAllText(Path.Combine(node.DataDir, node.Network, f.Key)) == f.Value),
            $"{node.Label}: the dead sandbox's file is gone; the {running.Count} running pods' files are byte for byte as host-local wrote them");
        v.Expect(Releases(node).ContainsKey("host-local-reconcile"), $"{node.Label}: the history records the pod's agent's release (host-local-reconcile)");
    }

    /// <summary>Starts the pod (a new sandbox attempt) and waits until its agent serves metrics with this boot's recovery done.</summary>
    private static async Task StartAgentAsync(Node node, AgentPod pod, uint attempt, int port, Verdicts v)
    {
        var clock = Stopwatch.StartNew();
        await pod.StartAsync(attempt);
        try
        {
            await Host.AwaitAsync(async () =>
            {
                if (!await AgentUpAsync(pod)) throw new E2eFailure($"the agent's container exited: {AgentPod.Tail(pod.LogOf("agent", attempt))}");
                return (await MetricsAsync(port))?.Contains("\nberth_recovery_done 1\n", StringComparison.Ordinal) == true;
            }, TimeSpan.FromSeconds(60), "the agent's pod to finish recovery and serve its metrics");
        }
        catch (E2eFailure e)
        {
            throw new E2eFailure($"{e.Message}; its log:\n{AgentPod.Tail(pod.LogOf("agent", attempt), 30)}");
        }
        Console.WriteLine($"e2e:   the agent's pod (attempt {attempt}) ran its recovery {clock.Elapsed.TotalSeconds:0.0} s after it was created: {Log(pod, attempt).Split('\n').LastOrDefault(l => l.Contains("recovery for boot", StringComparison.Ordinal))?.Trim()}");
        v.Expect(Log(pod, attempt).Contains("recovery for boot " + node.BootId, StringComparison.Ordinal), $"{node.Label}: the pod's agent ran the recovery of boot {node.BootId}");
    }

    private static async Task<bool> AgentUpAsync(AgentPod pod) => (await pod.AgentStatusAsync()).State is Berth.Testing.Cri.ContainerState.ContainerRunning or Berth.Testing.Cri.ContainerState.ContainerCreated;

    private static string Log(AgentPod pod, uint attempt) => AgentPod.Tail(pod.LogOf("agent", attempt), int.MaxValue);

    private static async Task<string?> MetricsAsync(int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            return "\n" + await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>berth's leases in the add-on's store (the pods' second network), read with sqlite3.</summary>
    private static List<(string ContainerId, string Address, string BootId)> BerthLeases(Node node) =>
        File.Exists(node.Store)
            ? [.. SqliteCli.Query(node.Store, "SELECT container_id, address, boot_id FROM leases").Select(r => (r["container_id"]!, r["address"]!, r["boot_id"]!))]
            : [];

    /// <summary>berth's leases held for sandboxes that are not ready now.</summary>
    private static async Task<int> BerthLeakedAsync(Node node)
    {
        var ready = (await node.ReadyPodsAsync()).Select(p => p.Id).ToHashSet();
        return BerthLeases(node).Count(l => !ready.Contains(l.ContainerId));
    }

    /// <summary>Addresses held for pods that are not ready now.</summary>
    private static async Task<int> LeakedAsync(Node node)
    {
        var ready = (await node.ReadyPodsAsync()).Select(p => p.Ip).ToHashSet();
        return node.HeldAddresses().Count(a => !ready.Contains(a));
    }

    /// <summary>
    /// host-local files on the node that the agent has not recorded in its ledger yet, read from its store with
    /// sqlite3 (the agent keys the ledger on the directory as the pod sees it, /var/lib/cni/networks: the host's
    /// `leases` would look for another directory).
    /// </summary>
    private static int Unseen(Node node)
    {
        var seen = File.Exists(node.Store)
            ? SqliteCli.Column(node.Store, $"SELECT address || ' ' || container_id FROM guarded_files WHERE network = '{node.Network}'").ToHashSet()
            : [];
        return node.HeldAddresses().Count(a => !seen.Contains(a + " " + File.ReadAllText(Path.Combine(node.DataDir, node.Network, a)).Split('\n')[0].TrimEnd('\r')));
    }

    /// <summary>The agent's releases in its store's history, by reason.</summary>
    private static Dictionary<string, int> Releases(Node node)
    {
        var history = Host.Run(node.Agent, ["history", "--json", "--store", node.Store], node.AgentEnvironment);
        if (history.ExitCode != 0) throw new E2eFailure($"berth-agent history exited {history.ExitCode}: {history.Stderr.Trim()}");
        using var doc = JsonDocument.Parse(history.Stdout);
        return doc.RootElement.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("action").GetString() == "release")
            .GroupBy(e => e.GetProperty("reason").GetString() ?? "").ToDictionary(g => g.Key, g => g.Count());
    }
}
