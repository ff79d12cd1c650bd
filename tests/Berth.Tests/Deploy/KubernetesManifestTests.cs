using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.HostAgent;
using k8s.Models;

namespace Berth.Tests.Deploy;

/// <summary>
/// The promises of deploy/kubernetes, read from the parsed objects (Manifests reads them strictly with the
/// Kubernetes API's models): what the agent's pod needs on a node, the least privilege it runs with, and an
/// agent.json that berth-agent's own strict reader takes. The e2e runs this very DaemonSet under containerd.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly V1DaemonSet DaemonSet = Manifests.DaemonSet();
    private static V1PodSpec Pod => DaemonSet.Spec.Template.Spec;
    private static V1Container Agent => Pod.Containers.Single(c => c.Name == "agent");
    private static V1Container Install => Pod.InitContainers.Single(c => c.Name == "install-cni");
    private static V1ConfigMap Config => Manifests.ConfigMap("berth-agent");
    private static AgentConfig AgentJson => AgentConfig.Parse(System.Text.Encoding.UTF8.GetBytes(Config.Data["agent.json"]), "ConfigMap berth-agent agent.json");

    private static V1Volume Volume(string name) => Pod.Volumes.Single(v => v.Name == name);

    /// <summary>The host path behind a container path (the longest mount that holds it), with the mount.</summary>
    private static (V1VolumeMount Mount, V1Volume Volume) MountOf(V1Container container, string path)
    {
        var mount = container.VolumeMounts
            .Where(m => path == m.MountPath || path.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
            .MaxBy(m => m.MountPath.Length);
        Assert.True(mount is not null, $"{container.Name}: nothing is mounted at {path}");
        return (mount, Volume(mount.Name));
    }

    [Fact]
    public void Every_object_is_in_the_namespace_the_manifests_create()
    {
        var all = Manifests.All();
        var ns = Assert.Single(all.OfType<V1Namespace>()).Metadata.Name;
        Assert.Equal("berth-system", ns);
        foreach (var o in all.Where(o => o is not V1Namespace)) Assert.Equal(ns, ((IMetadata<V1ObjectMeta>)o).Metadata.NamespaceProperty);
        // hostPath, hostNetwork and hostPID are beyond the baseline Pod Security level.
        Assert.Equal("privileged", all.OfType<V1Namespace>().Single().Metadata.Labels["pod-security.kubernetes.io/enforce"]);
    }

    [Fact]
    public void The_pod_shares_the_nodes_network_and_pids_on_every_node_at_node_critical_priority()
    {
        Assert.True(Pod.HostNetwork);
        Assert.True(Pod.HostPID);
        Assert.NotEqual(true, Pod.HostIPC);
        Assert.Equal("system-node-critical", Pod.PriorityClassName);
        // One toleration that tolerates every taint: no key, operator Exists, no effect.
        var all = Assert.Single(Pod.Tolerations);
        Assert.Equal(("Exists", null, null), (all.OperatorProperty, all.Key, all.Effect));
        Assert.False(Pod.AutomountServiceAccountToken);
        Assert.Equal(DaemonSet.Spec.Selector.MatchLabels, DaemonSet.Spec.Template.Metadata.Labels.Where(l => DaemonSet.Spec.Selector.MatchLabels.ContainsKey(l.Key)).ToDictionary());
    }

    [Fact]
    public void Every_container_runs_with_a_read_only_root_and_only_the_named_capabilities()
    {
        foreach (var c in Pod.Containers.Concat(Pod.InitContainers))
        {
            var sc = c.SecurityContext;
            Assert.True(sc.ReadOnlyRootFilesystem, $"{c.Name}: readOnlyRootFilesystem");
            Assert.False(sc.AllowPrivilegeEscalation, $"{c.Name}: allowPrivilegeEscalation");
            Assert.NotEqual(true, sc.Privileged);
            Assert.Equal(["ALL"], sc.Capabilities.Drop);
            Assert.Equal("RuntimeDefault", sc.SeccompProfile?.Type);
        }
        // What running it under containerd showed it needs (the e2e's fourth row); each is explained in the manifest.
        Assert.Equal(["SYS_PTRACE"], Agent.SecurityContext.Capabilities.Add);
        Assert.Null(Install.SecurityContext.Capabilities.Add);
        var text = File.ReadAllText(Manifests.Files().Single(f => f.EndsWith("berth.yaml", StringComparison.Ordinal)));
        foreach (var cap in Agent.SecurityContext.Capabilities.Add)
        {
            var at = text.IndexOf($"- {cap}\n", StringComparison.Ordinal);
            Assert.True(at > 0 && text[..at].TrimEnd().Split('\n')[^1].TrimStart().StartsWith('#'), $"{cap} has a comment saying why, right above it");
        }
    }

    [Fact]
    public void The_images_are_this_versions_image()
    {
        var version = File.ReadAllText(Path.Combine(Repo.Root, "VERSION")).Trim();
        foreach (var c in Pod.Containers.Concat(Pod.InitContainers)) Assert.Equal($"localhost/berth:{version}", c.Image);
        var build = File.ReadAllText(Path.Combine(Repo.Root, "packaging", "image", "build-image.sh"));
        Assert.Contains("name=\"localhost/berth:$version\"", build);
    }

    [Fact]
    public void The_agent_json_of_the_ConfigMap_is_what_berth_agent_reads_and_names_what_is_mounted()
    {
        var config = AgentJson;
        Assert.Equal("/var/lib/cni/berth/berth.db", config.Store);
        Assert.Equal("/usr/bin/berth-agent", Agent.Command[0]);
        Assert.Equal(["run"], Agent.Command.Skip(1).Concat(Agent.Args ?? []));

        // The config is the agent's default path, from the ConfigMap.
        var (configMount, configVolume) = MountOf(Agent, AgentConfig.DefaultPath);
        Assert.True(configMount.ReadOnlyProperty);
        Assert.Equal(Config.Metadata.Name, configVolume.ConfigMap.Name);
        Assert.Equal(Path.GetFileName(AgentConfig.DefaultPath), configVolume.ConfigMap.Items.Single(i => i.Key == "agent.json").Path);

        // The store and host-local's directories: on the host's /var/lib/cni (persistent on Harvester), read-write.
        foreach (var path in config.HostLocalDirs.Append(config.Store))
        {
            var (mount, volume) = MountOf(Agent, path);
            Assert.NotEqual(true, mount.ReadOnlyProperty);
            Assert.Equal("/var/lib/cni", volume.HostPath.Path);
            Assert.Equal(mount.MountPath, volume.HostPath.Path);
        }

        // Namespace pins made after the pod started must show inside: HostToContainer, from the same host path.
        Assert.Equal(["/run/netns", "/var/run/netns"], config.NetnsDirs);
        foreach (var dir in config.NetnsDirs)
        {
            var (mount, volume) = MountOf(Agent, dir);
            Assert.Equal(dir, mount.MountPath);
            Assert.Equal("HostToContainer", mount.MountPropagation);
            Assert.Equal(dir, volume.HostPath.Path);
        }

        // The runtime's socket through its directory (a socket mounted as a file goes stale when re-created).
        var socket = Assert.Single(config.RuntimeSockets);
        var (runtimeMount, runtimeVolume) = MountOf(Agent, socket);
        Assert.Equal(Path.GetDirectoryName(socket), runtimeMount.MountPath);
        Assert.Equal("/run/k3s/containerd", runtimeVolume.HostPath.Path);
        Assert.Equal("Directory", runtimeVolume.HostPath.Type);

        // Metrics on the port the pod declares.
        Assert.True(config.MetricsEnabled);
        Assert.Equal(config.MetricsAddress.Port, Agent.Ports.Single(p => p.Name == "metrics").ContainerPort);
    }

    [Fact]
    public void Only_the_install_step_mounts_the_hosts_CNI_bin_directory_and_it_is_off_unless_the_ConfigMap_says_true()
    {
        Assert.DoesNotContain(Agent.VolumeMounts, m => m.Name == "cni-bin");
        Assert.Equal("/opt/cni/bin", Volume("cni-bin").HostPath.Path);
        var command = Install.Command.Concat(Install.Args ?? []).ToList();
        Assert.Equal(["/usr/bin/berth-agent", "install-cni"], command.Take(2));
        var to = command[command.IndexOf("--to") + 1];
        Assert.Equal("cni-bin", MountOf(Install, to).Mount.Name);
        Assert.Equal("$(INSTALL_CNI)", command[command.IndexOf("--enabled") + 1]);
        var env = Install.Env.Single(e => e.Name == "INSTALL_CNI").ValueFrom.ConfigMapKeyRef;
        Assert.Equal(Config.Metadata.Name, env.Name);
        Assert.Equal("false", Config.Data[env.Key]);
    }

    /// <summary>The README's per-platform `sed` commands (section "Which way onto which node"), exactly as written there.</summary>
    private static List<string> Seds() =>
        [.. File.ReadAllLines(Path.Combine(Repo.Root, "README.md")).Where(l => l.StartsWith("sed -e '", StringComparison.Ordinal))];

    public static TheoryData<string> ReadmeSeds()
    {
        var data = new TheoryData<string>();
        foreach (var line in Seds()) data.Add(line);
        return data;
    }

    [Fact]
    public void The_readme_gives_a_sed_for_each_platform_that_changes_the_file()
    {
        var seds = Seds();
        Assert.Equal(3, seds.Count(l => l.Contains(" deploy/kubernetes/berth.yaml ", StringComparison.Ordinal)));
        Assert.Equal(2, seds.Count(l => l.Contains("deploy/rke2-flannel/", StringComparison.Ordinal) || l.Contains("deploy/k3s/", StringComparison.Ordinal)));
    }

    [Theory]
    [MemberData(nameof(ReadmeSeds))]
    public void Each_sed_of_the_readme_changes_what_it_says_and_leaves_a_valid_file(string command)
    {
        var parsed = Regex.Match(command, @"^sed((?: -e '[^']*')+) (\S+) (?:> \S+|\| kubectl apply -f -)$");
        Assert.True(parsed.Success, $"not a sed of the expected shape: {command}");
        var expressions = Regex.Matches(parsed.Groups[1].Value, "-e '([^']*)'").Select(m => m.Groups[1].Value).ToList();
        var input = Path.Combine(Repo.Root, parsed.Groups[2].Value);
        var original = File.ReadAllText(input);
        foreach (var e in expressions)
        {
            var one = Exec.Run("sed", ["-e", e, input]);
            Assert.True(one.ExitCode == 0, one.ToString());
            Assert.True(one.Stdout != original, $"the expression {e} changes nothing in {parsed.Groups[2].Value}");
        }
        var all = Exec.Run("sed", [.. expressions.SelectMany(e => new[] { "-e", e }), input]);
        Assert.True(all.ExitCode == 0, all.ToString());

        if (input.EndsWith("/kubernetes/berth.yaml", StringComparison.Ordinal))
        {
            // The edited file still reads strictly and keeps what the pod needs.
            var ds = Manifests.Parse(all.Stdout).OfType<V1DaemonSet>().Single();
            var pod = ds.Spec.Template.Spec;
            Assert.Equal(["SYS_PTRACE"], pod.Containers.Single(c => c.Name == "agent").SecurityContext.Capabilities.Add);
            Assert.Equal("true", Manifests.Parse(all.Stdout).OfType<V1ConfigMap>().Single().Data["installCni"]);
            Assert.StartsWith("/", pod.Volumes.Single(v => v.Name == "cni-bin").HostPath.Path);
            return;
        }
        // A flannel config: the plugin's store is the add-on's.
        var json = input.EndsWith(".conflist", StringComparison.Ordinal) ? all.Stdout : all.Stdout[all.Stdout.IndexOf("cniConf: |", StringComparison.Ordinal)..].Split('\n', 2)[1];
        var flannel = JsonNode.Parse(json)!["plugins"]![0]!;
        Assert.Equal(("berth", "/var/lib/cni/berth"), ((string?)flannel["ipam"]!["type"], (string?)flannel["ipam"]!["dataDir"]));
        Assert.Equal(Path.GetDirectoryName(AgentJson.Store), (string?)flannel["ipam"]!["dataDir"]);
    }

    [Fact]
    public void The_agent_answers_the_plugin_on_the_socket_the_plugin_on_the_host_looks_for()
    {
        // The plugin runs on the host and connects to PluginSocket.DefaultPath; the pod serves the same directory.
        var socket = AgentJson.PluginSocket!;
        var (mount, volume) = MountOf(Agent, socket);
        Assert.Equal(Path.GetDirectoryName(Berth.Shared.Plugin.PluginSocket.DefaultPath), volume.HostPath.Path);
        Assert.Equal("DirectoryOrCreate", volume.HostPath.Type);
        Assert.Equal(Path.GetFileName(Berth.Shared.Plugin.PluginSocket.DefaultPath), Path.GetRelativePath(mount.MountPath, socket));
        Assert.NotEqual(true, mount.ReadOnlyProperty);
        // Not nested in another mount of the pod, nor holding one (the runtime's socket directory is /run/berth/runtime).
        Assert.DoesNotContain(Agent.VolumeMounts, m => m != mount && (m.MountPath.StartsWith(mount.MountPath + "/", StringComparison.Ordinal) || mount.MountPath.StartsWith(m.MountPath + "/", StringComparison.Ordinal)));
    }

    [Fact]
    public void Every_host_path_is_one_that_survives_a_reboot_on_Harvester_or_lives_in_run()
    {
        // harvester-installer's persistent paths (docs/FIELD.md) and /run (tmpfs, made by the node at boot).
        string[] persistent = ["/var/lib/cni", "/opt", "/var/lib/rancher", "/etc/cni"];
        foreach (var v in Pod.Volumes.Where(v => v.HostPath is not null))
        {
            var p = v.HostPath.Path;
            Assert.True(persistent.Any(d => p == d || p.StartsWith(d + "/", StringComparison.Ordinal)) || p.StartsWith("/run/", StringComparison.Ordinal) || p.StartsWith("/var/run/", StringComparison.Ordinal),
                $"{v.Name}: {p} is neither persistent on Harvester nor under /run");
        }
    }
}
