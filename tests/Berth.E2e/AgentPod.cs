using System.Net.Sockets;
using System.Reflection;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Berth.Testing.Cri;
using k8s.Models;

namespace Berth.E2e;

/// <summary>
/// deploy/kubernetes's DaemonSet run the way a kubelet runs it on one node, through CRI: a sandbox with the pod's
/// namespaces, then each init container to completion, then the app containers. Every setting comes from the
/// parsed manifest (Manifests reads it strictly with the Kubernetes API's models); a field this translation
/// does not know how to apply fails the run instead of being skipped. What the simulated node adds is named
/// here and nowhere else: where each hostPath lives on it (<see cref="HostPaths"/>), the fake boot ID the whole
/// e2e uses (an environment variable and a read-only mount), and the changes to agent.json the run asks for.
/// </summary>
internal sealed class AgentPod(
    V1DaemonSet daemonSet, IReadOnlyList<V1ConfigMap> configMaps, string runtimeSocket, string dir, string cgroupParent,
    IReadOnlyDictionary<string, string> hostPaths, Func<string, string, string> configMapOverride, string? bootIdFile, string? nodeDir = null)
{
    /// <summary>Where <c>dir</c> is as the node sees it (the node VM's own path for what is written here and copied in).</summary>
    private string NodeDir => nodeDir ?? dir;

    /// <summary>The kubelet's default masked and read-only paths for a container that is not privileged.</summary>
    private static readonly string[] MaskedPaths = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"];
    private static readonly string[] ReadonlyPaths = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>The labels of the simulated node, for the pod's nodeSelector.</summary>
    private static readonly Dictionary<string, string> NodeLabels = new() { ["kubernetes.io/os"] = "linux", ["kubernetes.io/arch"] = "amd64" };

    /// <summary>The kubelet's oom_score_adj for pods of a system-*-critical priority class.</summary>
    private const long CriticalOomScoreAdj = -997;

    public const string BootIdDir = "/run/berth-e2e-boot";

    private V1PodSpec Spec => daemonSet.Spec.Template.Spec;

    public IReadOnlyDictionary<string, string> HostPaths => hostPaths;

    public string? SandboxId { get; private set; }

    public string? AgentContainerId { get; private set; }

    /// <summary>Where the runtime writes a container's log (the CRI log format: time, stream, tag, text).</summary>
    public string LogOf(string container, uint attempt) => Path.Combine(dir, "logs", container, $"{attempt}.log");

    /// <summary>Every field the manifest sets that this translation cannot apply; empty when it can run the pod.</summary>
    public List<string> Unsupported()
    {
        var problems = new List<string>();
        Only(daemonSet.Spec, "spec", problems, "selector", "template", "updateStrategy");
        Only(daemonSet.Spec.Template.Metadata, "spec.template.metadata", problems, "labels");
        Only(Spec, "pod", problems, "hostNetwork", "hostPID", "dnsPolicy", "priorityClassName", "automountServiceAccountToken",
            "terminationGracePeriodSeconds", "tolerations", "nodeSelector", "initContainers", "containers", "volumes");
        if (Spec.HostNetwork != true) problems.Add("pod.hostNetwork: only host-network pods are run here (no pod network for the agent)");
        if (Spec.DnsPolicy is not ("ClusterFirstWithHostNet" or "Default")) problems.Add($"pod.dnsPolicy {Spec.DnsPolicy}: with host network only ClusterFirstWithHostNet or Default (the node's resolv.conf, no cluster DNS here)");
        if (Spec.AutomountServiceAccountToken != false) problems.Add("pod.automountServiceAccountToken: must be false (there is no API server to issue a token)");
        foreach (var (key, value) in Spec.NodeSelector ?? new Dictionary<string, string>())
        {
            if (!NodeLabels.TryGetValue(key, out var have) || have != value) problems.Add($"pod.nodeSelector {key}={value} does not select this node");
        }
        foreach (var t in Spec.Tolerations ?? []) Only(t, "pod.tolerations[]", problems, "operator", "key", "effect", "value", "tolerationSeconds");
        foreach (var v in Spec.Volumes ?? [])
        {
            Only(v, $"volume {v.Name}", problems, "name", "hostPath", "configMap");
            if (v.HostPath is { } h)
            {
                Only(h, $"volume {v.Name}.hostPath", problems, "path", "type");
                if (!hostPaths.ContainsKey(h.Path)) problems.Add($"volume {v.Name}: the e2e does not know where hostPath {h.Path} is on its simulated node");
                if (h.Type is not (null or "" or "Directory" or "DirectoryOrCreate")) problems.Add($"volume {v.Name}: hostPath type {h.Type} is not applied here");
            }
            if (v.ConfigMap is { } c)
            {
                Only(c, $"volume {v.Name}.configMap", problems, "name", "items");
                if (configMaps.All(m => m.Metadata.Name != c.Name)) problems.Add($"volume {v.Name}: no ConfigMap {c.Name} in the manifests");
                foreach (var item in c.Items ?? []) Only(item, $"volume {v.Name}.configMap.items[]", problems, "key", "path");
            }
        }
        foreach (var c in (Spec.InitContainers ?? []).Concat(Spec.Containers))
        {
            var at = $"container {c.Name}";
            Only(c, at, problems, "name", "image", "imagePullPolicy", "command", "args", "env", "ports", "resources", "securityContext", "volumeMounts");
            if (c.ImagePullPolicy is not ("IfNotPresent" or "Never")) problems.Add($"{at}: imagePullPolicy {c.ImagePullPolicy} needs a registry; the image is imported here");
            foreach (var e in c.Env ?? [])
            {
                Only(e, $"{at}.env {e.Name}", problems, "name", "value", "valueFrom");
                if (e.ValueFrom is { } from)
                {
                    Only(from, $"{at}.env {e.Name}.valueFrom", problems, "configMapKeyRef");
                    if (from.ConfigMapKeyRef is { } r) Only(r, $"{at}.env {e.Name}.valueFrom.configMapKeyRef", problems, "name", "key");
                }
            }
            foreach (var p in c.Ports ?? []) Only(p, $"{at}.ports[]", problems, "name", "containerPort", "protocol");
            if (c.Resources is { } r2)
            {
                Only(r2, $"{at}.resources", problems, "requests", "limits");
                foreach (var k in (r2.Requests?.Keys ?? []).Concat(r2.Limits?.Keys ?? [])) if (k is not ("cpu" or "memory")) problems.Add($"{at}.resources: {k} is not applied here");
            }
            if (c.SecurityContext is { } s)
            {
                Only(s, $"{at}.securityContext", problems, "runAsUser", "allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities", "seccompProfile", "privileged");
                if (s.Privileged == true) problems.Add($"{at}: privileged is not applied here (the sandbox would have to be privileged too)");
                if (s.SeccompProfile is { } sp && (sp.Type != "RuntimeDefault" || sp.LocalhostProfile is not null)) problems.Add($"{at}: seccompProfile {sp.Type} is not applied here");
                if (s.Capabilities is { } caps) Only(caps, $"{at}.securityContext.capabilities", problems, "add", "drop");
            }
            foreach (var m in c.VolumeMounts ?? [])
            {
                Only(m, $"{at}.volumeMounts {m.Name}", problems, "name", "mountPath", "readOnly", "mountPropagation");
                if (m.MountPropagation is not (null or "None" or "HostToContainer")) problems.Add($"{at}.volumeMounts {m.Name}: mountPropagation {m.MountPropagation} is not applied here");
                if ((Spec.Volumes ?? []).All(v => v.Name != m.Name)) problems.Add($"{at}.volumeMounts {m.Name}: no such volume");
            }
        }
        return problems;
    }

    /// <summary>
    /// The pod, attempt <paramref name="attempt"/> (a new sandbox after each reboot, as the kubelet makes one):
    /// sandbox, init containers run to exit 0 in order, then the app containers started.
    /// </summary>
    public async Task StartAsync(uint attempt)
    {
        if (Unsupported() is { Count: > 0 } problems) throw new E2eFailure("the DaemonSet asks for what the e2e cannot apply: " + string.Join("; ", problems));
        PrepareVolumes();
        using var kubelet = new KubeletCri(runtimeSocket, TimeSpan.FromSeconds(60));
        var cri = kubelet.Runtime;
        var sandbox = SandboxConfig(attempt);
        SandboxId = (await cri.RunPodSandboxAsync(new RunPodSandboxRequest { Config = sandbox }, kubelet.Options())).PodSandboxId;
        foreach (var init in Spec.InitContainers ?? [])
        {
            var id = await CreateAsync(kubelet, init, sandbox, attempt);
            await cri.StartContainerAsync(new StartContainerRequest { ContainerId = id }, kubelet.Options());
            ContainerStatus? status = null;
            await Host.AwaitAsync(async () =>
            {
                status = (await cri.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, kubelet.Options())).Status;
                return status.State == ContainerState.ContainerExited;
            }, TimeSpan.FromSeconds(60), $"init container {init.Name} to exit");
            if (status!.ExitCode != 0) throw new E2eFailure($"init container {init.Name} exited {status.ExitCode} ({status.Reason} {status.Message}): {Tail(LogOf(init.Name, attempt))}");
        }
        foreach (var app in Spec.Containers)
        {
            var id = await CreateAsync(kubelet, app, sandbox, attempt);
            await cri.StartContainerAsync(new StartContainerRequest { ContainerId = id }, kubelet.Options());
            if (app.Name == "agent") AgentContainerId = id;
        }
    }

    /// <summary>The state of the agent's container now (exited means the pod is failing: the log says why).</summary>
    public async Task<ContainerStatus> AgentStatusAsync()
    {
        using var kubelet = new KubeletCri(runtimeSocket, TimeSpan.FromSeconds(60));
        var cri = kubelet.Runtime;
        return (await cri.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = AgentContainerId ?? throw new E2eFailure("the agent's container was never created") }, kubelet.Options())).Status;
    }

    /// <summary>The agent's process on the host (containerd's verbose status names it), to look into its mount namespace through /proc/PID/root.</summary>
    public async Task<int> AgentPidAsync()
    {
        using var kubelet = new KubeletCri(runtimeSocket, TimeSpan.FromSeconds(60));
        var cri = kubelet.Runtime;
        var status = await cri.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = AgentContainerId ?? throw new E2eFailure("the agent's container was never created"), Verbose = true }, kubelet.Options());
        using var info = System.Text.Json.JsonDocument.Parse(status.Info["info"]);
        return info.RootElement.GetProperty("pid").GetInt32();
    }

    /// <summary>The last lines of a container's CRI log, their text only.</summary>
    public static string Tail(string log, int lines = 15)
    {
        if (!File.Exists(log)) return $"(no log at {log})";
        return string.Join("\n", File.ReadAllLines(log).TakeLast(lines).Select(l => l.Split(' ', 4) is { Length: 4 } parts ? parts[3] : l));
    }

    private PodSandboxConfig SandboxConfig(uint attempt)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = daemonSet.Metadata.Name + "-e2e", Namespace = daemonSet.Metadata.NamespaceProperty, Uid = "e2e-" + daemonSet.Metadata.Name, Attempt = attempt },
            LogDirectory = Path.Combine(NodeDir, "logs"),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = cgroupParent,
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = Namespaces() },
            },
        };
        foreach (var (k, v) in daemonSet.Spec.Template.Metadata.Labels ?? new Dictionary<string, string>()) config.Labels[k] = v;
        // With the host's network, the kubelet maps each container port to the same host port.
        foreach (var p in Spec.Containers.SelectMany(c => c.Ports ?? []))
        {
            config.PortMappings.Add(new PortMapping { ContainerPort = p.ContainerPort, HostPort = p.ContainerPort, Protocol = p.Protocol switch { "UDP" => Protocol.Udp, "SCTP" => Protocol.Sctp, _ => Protocol.Tcp } });
        }
        return config;
    }

    private NamespaceOption Namespaces() => new()
    {
        Network = Spec.HostNetwork == true ? NamespaceMode.Node : NamespaceMode.Pod,
        // The kubelet gives each container its own PID namespace unless hostPID (or shareProcessNamespace).
        Pid = Spec.HostPID == true ? NamespaceMode.Node : NamespaceMode.Container,
        Ipc = NamespaceMode.Pod,
    };

    private async Task<string> CreateAsync(KubeletCri kubelet, V1Container c, PodSandboxConfig sandbox, uint attempt)
    {
        var config = BuildContainer(c, attempt);
        Directory.CreateDirectory(Path.Combine(dir, "logs", c.Name));
        return (await kubelet.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = SandboxId, Config = config, SandboxConfig = sandbox }, kubelet.Options())).ContainerId;
    }

    /// <summary>
    /// For a node that runs the pod itself (make node-test's VM, through berth-node-cri pod): the requests a
    /// kubelet would send, as protobuf files in <paramref name="outDir"/> (sandbox.bin, then containers/NN-init-NAME.bin
    /// and NN-app-NAME.bin in the order they run; the attempt numbers are the node's to set), and the ConfigMap's files.
    /// </summary>
    public void WriteRequests(string outDir)
    {
        if (Unsupported() is { Count: > 0 } problems) throw new E2eFailure("the DaemonSet asks for what the e2e cannot apply: " + string.Join("; ", problems));
        PrepareVolumes(createHostPaths: false);
        Directory.CreateDirectory(Path.Combine(outDir, "containers"));
        File.WriteAllBytes(Path.Combine(outDir, "sandbox.bin"), Google.Protobuf.MessageExtensions.ToByteArray(SandboxConfig(0)));
        var n = 0;
        foreach (var (c, kind) in (Spec.InitContainers ?? []).Select(c => (c, "init")).Concat(Spec.Containers.Select(c => (c, "app"))))
        {
            File.WriteAllBytes(Path.Combine(outDir, "containers", $"{n++:00}-{kind}-{c.Name}.bin"), Google.Protobuf.MessageExtensions.ToByteArray(BuildContainer(c, 0)));
        }
    }

    private ContainerConfig BuildContainer(V1Container c, uint attempt)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in c.Env ?? [])
        {
            env[e.Name] = e.Value ?? (e.ValueFrom?.ConfigMapKeyRef is { } r
                ? (configMaps.SingleOrDefault(m => m.Metadata.Name == r.Name)?.Data?.TryGetValue(r.Key, out var value) == true ? configMapOverride(r.Key, value) : throw new E2eFailure($"container {c.Name}: env {e.Name} names ConfigMap {r.Name} key {r.Key}, which does not exist"))
                : "");
        }
        // What only the simulated node needs: the fake boot ID (a reboot here does not change the kernel's).
        if (bootIdFile is not null) env["BERTH_BOOT_ID_FILE"] = Path.Combine(BootIdDir, Path.GetFileName(bootIdFile));

        var config = new ContainerConfig
        {
            // The kubelet counts a container's restarts on across sandboxes: the runtime keys names on (name, attempt).
            Metadata = new ContainerMetadata { Name = c.Name, Attempt = attempt },
            Image = new ImageSpec { Image = c.Image },
            LogPath = Path.Combine(c.Name, $"{attempt}.log"),
            Linux = new LinuxContainerConfig { Resources = Resources(c), SecurityContext = Security(c) },
        };
        config.Command.AddRange((c.Command ?? []).Select(a => Expand(a, env)));
        config.Args.AddRange((c.Args ?? []).Select(a => Expand(a, env)));
        config.Envs.AddRange(env.Select(e => new KeyValue { Key = e.Key, Value = e.Value }));
        foreach (var m in c.VolumeMounts ?? [])
        {
            config.Mounts.Add(new Mount
            {
                ContainerPath = m.MountPath,
                HostPath = VolumeSource(Spec.Volumes.Single(v => v.Name == m.Name)),
                Readonly = m.ReadOnlyProperty == true,
                Propagation = m.MountPropagation == "HostToContainer" ? MountPropagation.PropagationHostToContainer : MountPropagation.PropagationPrivate,
            });
        }
        if (bootIdFile is not null) config.Mounts.Add(new Mount { ContainerPath = BootIdDir, HostPath = Path.GetDirectoryName(bootIdFile)!, Readonly = true });
        return config;
    }

    private LinuxContainerResources Resources(V1Container c)
    {
        var r = new LinuxContainerResources();
        if (Spec.PriorityClassName is "system-node-critical" or "system-cluster-critical") r.OomScoreAdj = CriticalOomScoreAdj;
        if (c.Resources?.Requests?.TryGetValue("cpu", out var cpu) == true) r.CpuShares = Math.Max(2, (long)(cpu.ToDecimal() * 1024));
        if (c.Resources?.Limits?.TryGetValue("cpu", out var cpuLimit) == true)
        {
            r.CpuPeriod = 100_000;
            r.CpuQuota = Math.Max(1000, (long)(cpuLimit.ToDecimal() * 100_000));
        }
        if (c.Resources?.Limits?.TryGetValue("memory", out var memory) == true) r.MemoryLimitInBytes = (long)memory.ToDecimal();
        return r;
    }

    private LinuxContainerSecurityContext Security(V1Container c)
    {
        var s = c.SecurityContext;
        var security = new LinuxContainerSecurityContext
        {
            NamespaceOptions = Namespaces(),
            ReadonlyRootfs = s?.ReadOnlyRootFilesystem == true,
            // allowPrivilegeEscalation: false is no_new_privs (the kubelet's default is to allow it).
            NoNewPrivs = s?.AllowPrivilegeEscalation == false,
            Capabilities = new Capability(),
            Seccomp = new SecurityProfile { ProfileType = s?.SeccompProfile?.Type == "RuntimeDefault" ? SecurityProfile.Types.ProfileType.RuntimeDefault : SecurityProfile.Types.ProfileType.Unconfined },
        };
        if (s?.RunAsUser is { } uid) security.RunAsUser = new Int64Value { Value = uid };
        security.Capabilities.AddCapabilities.AddRange(s?.Capabilities?.Add ?? []);
        security.Capabilities.DropCapabilities.AddRange(s?.Capabilities?.Drop ?? []);
        security.MaskedPaths.AddRange(MaskedPaths);
        security.ReadonlyPaths.AddRange(ReadonlyPaths);
        return security;
    }

    /// <summary>The kubelet's $(VAR) expansion of command and args from the container's environment ($$ is a literal $).</summary>
    private static string Expand(string text, IReadOnlyDictionary<string, string> env) =>
        Regex.Replace(text, @"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", m => m.Value == "$$" ? "$" : env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    /// <summary>Makes what the kubelet makes before the containers: hostPath directories of type DirectoryOrCreate, ConfigMap files.</summary>
    private void PrepareVolumes(bool createHostPaths = true)
    {
        foreach (var v in Spec.Volumes ?? [])
        {
            if (v.HostPath is { } h && createHostPaths)
            {
                var local = hostPaths[h.Path];
                if (h.Type == "DirectoryOrCreate") Directory.CreateDirectory(local);
                else if (h.Type == "Directory" && !Directory.Exists(local)) throw new E2eFailure($"volume {v.Name}: hostPath {h.Path} ({local}) is not a directory, and its type is Directory");
            }
            if (v.ConfigMap is { } c)
            {
                var map = configMaps.Single(m => m.Metadata.Name == c.Name);
                var target = Directory.CreateDirectory(Path.Combine(dir, "configmaps", v.Name)).FullName;
                var items = c.Items?.Select(i => (i.Key, i.Path)) ?? map.Data.Keys.Select(k => (k, k));
                foreach (var (key, path) in items)
                {
                    if (!map.Data.TryGetValue(key, out var data)) throw new E2eFailure($"volume {v.Name}: ConfigMap {c.Name} has no key {key}");
                    File.WriteAllText(Path.Combine(target, path), configMapOverride(key, data));
                }
            }
        }
    }

    private string VolumeSource(V1Volume v) => v.HostPath is { } h ? hostPaths[h.Path] : Path.Combine(NodeDir, "configmaps", v.Name);

    /// <summary>Fails for every property of <paramref name="model"/> that is set and not in <paramref name="known"/> (by its API name).</summary>
    private static void Only(object? model, string at, List<string> problems, params string[] known)
    {
        if (model is null) return;
        foreach (var p in model.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? p.Name;
            if (name is "apiVersion" or "kind" || p.GetIndexParameters().Length > 0) continue;
            if (p.GetValue(model) is not null && !known.Contains(name)) problems.Add($"{at}.{name} is set, and the e2e does not know how to apply it");
        }
    }

}
