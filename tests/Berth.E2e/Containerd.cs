using Grpc.Core;

namespace Berth.E2e;

/// <summary>
/// A private containerd: its own config, root, state and socket under <see cref="Dir"/>, the CRI plugin on,
/// CNI binaries and configuration from the run's own directories, every sandbox under one cgroup parent.
/// Started with BERTH_BOOT_ID_FILE in its environment, which it hands to the plugins it runs.
/// </summary>
internal sealed class Containerd(string dir, string cniBin, string cniConf, string bootIdFile, string? socketDir = null)
{
    private Running? _process;

    public string Dir => dir;
    public string Root => Path.Combine(dir, "root");
    public string State => Path.Combine(dir, "state");
    /// <summary>In <c>socketDir</c> when given: a node's /run/k3s/containerd, which the agent's pod mounts (it holds nothing else).</summary>
    public string Socket => Path.Combine(socketDir ?? dir, "containerd.sock");

    /// <summary>
    /// Make the netns pins' directory a shared mount before the runtime starts, as / is on a node under systemd, so
    /// that a pod mounting it with HostToContainer propagation sees the pins made after it started.
    /// </summary>
    public bool ShareNetnsPins { get; init; }

    /// <summary>How many of the CNI configs each pod joins (eth0, eth1, ...; in the order of their file names).</summary>
    public int Networks { get; init; } = 1;
    public string Log => Path.Combine(dir, "containerd.log");
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public KubeletCri Cri() => new(Socket, TimeSpan.FromSeconds(60));

    public async Task StartAsync()
    {
        if (socketDir is not null) Directory.CreateDirectory(socketDir);
        if (ShareNetnsPins && !Host.MountsUnder(NetnsDir).Contains(NetnsDir))
        {
            Directory.CreateDirectory(NetnsDir);
            Host.Check("mount", "--bind", NetnsDir, NetnsDir);
            Host.Check("mount", "--make-shared", NetnsDir);
        }
        var config = Path.Combine(dir, "config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{Root}"
            state = "{State}"
            disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
            [grpc]
              address = "{Socket}"
            [ttrpc]
              address = "{Socket}.ttrpc"
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{PauseImage.Name}"
              restrict_oom_score_adj = true
              # Pods' netns pins under the runtime's own state (on tmpfs on a real node), not the machine's /run/netns.
              netns_mounts_under_state_dir = true
              [plugins."io.containerd.grpc.v1.cri".cni]
                bin_dir = "{cniBin}"
                conf_dir = "{cniConf}"
                max_conf_num = {Networks}
            """);
        _process = Exec.Start("/bin/sh", ["-c", "exec containerd --config \"$0\" >>\"$1\" 2>&1", config, Log], new ExecOptions
        {
            Environment = ExecOptions.Text(new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = bootIdFile }),
            Timeout = Timeout.InfiniteTimeSpan,
        });
        using var cri = Cri();
        await Host.AwaitAsync(async () =>
        {
            if (_process.HasExited) throw new E2eFailure($"containerd exited {_process.Wait().ExitCode}; see {Log}");
            if (!File.Exists(Socket)) return false;
            try
            {
                await cri.VersionAsync();
                return true;
            }
            catch (RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "containerd's CRI service to answer");
    }

    public void Import(string imageTar) =>
        Host.Check("ctr", "--address", Socket, "--namespace", "k8s.io", "images", "import", imageTar);

    /// <summary>
    /// What a power cut does to the runtime: containerd, its shims and every sandbox process die at once,
    /// with no chance to tear anything down.
    /// </summary>
    public async Task KillEverythingAsync()
    {
        var shims = Host.ProcessesWithArgument(Socket);
        var pids = new List<int>(shims);
        pids.AddRange(Host.Descendants(shims));
        if (Pid is { } pid) pids.Add(pid);
        await Host.KillAsync(pids, "containerd, its shims and its sandboxes");
        _process?.Wait();
        _process?.Dispose();
        _process = null;
    }

    /// <summary>The runtime's state directory is on tmpfs on a real node: a reboot empties it.</summary>
    public void WipeState() => Host.RemoveTree(State);

    /// <summary>Where the CRI plugin pins the pods' network namespaces (netns_mounts_under_state_dir).</summary>
    public string NetnsDir => Path.Combine(State, "io.containerd.grpc.v1.cri", "netns");
}
