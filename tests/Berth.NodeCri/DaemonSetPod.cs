using System.Net.Sockets;
using Berth.E2e;
using Berth.Testing.Cri;
using Grpc.Core;

namespace Berth.NodeCri;

/// <summary>
/// `berth-node-cri pod DIR ATTEMPT`: deploy/kubernetes's DaemonSet pod on the node VM, from the requests the e2e
/// built out of the parsed manifest (AgentPod.WriteRequests): what a kubelet sends, with the attempt numbers of
/// this boot (the runtime keeps the earlier boots' sandboxes and containers, and keys names on the attempt).
/// </summary>
internal static class DaemonSetPod
{
    public static async Task<int> RunAsync(string socket, string dir, uint attempt)
    {
        var sandbox = PodSandboxConfig.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "sandbox.bin")));
        sandbox.Metadata.Attempt = attempt;
        Directory.CreateDirectory(sandbox.LogDirectory);
        using var kubelet = new KubeletCri(socket, TimeSpan.FromSeconds(120));
        var cri = kubelet.Runtime;
        try
        {
            var id = (await cri.RunPodSandboxAsync(new RunPodSandboxRequest { Config = sandbox }, kubelet.Options())).PodSandboxId;
            var app = "";
            foreach (var file in Directory.GetFiles(Path.Combine(dir, "containers")).Order(StringComparer.Ordinal))
            {
                var config = ContainerConfig.Parser.ParseFrom(File.ReadAllBytes(file));
                config.Metadata.Attempt = attempt;
                config.LogPath = Path.Combine(config.Metadata.Name, $"{attempt}.log");
                Directory.CreateDirectory(Path.Combine(sandbox.LogDirectory, config.Metadata.Name));
                var container = (await cri.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = id, Config = config, SandboxConfig = sandbox }, kubelet.Options())).ContainerId;
                await cri.StartContainerAsync(new StartContainerRequest { ContainerId = container }, kubelet.Options());
                if (!Path.GetFileName(file).Contains("-init-", StringComparison.Ordinal))
                {
                    app = container;
                    continue;
                }
                // An init container runs to its end before the next one starts; polled: CRI has no wait call.
                var until = DateTime.UtcNow.AddSeconds(120);
                ContainerStatus status;
                while ((status = (await cri.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container }, kubelet.Options())).Status).State != ContainerState.ContainerExited)
                {
                    if (DateTime.UtcNow > until) throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"init container {config.Metadata.Name} did not exit in 120 s"));
                    await Task.Delay(200);
                }
                if (status.ExitCode != 0)
                {
                    Console.Error.WriteLine($"berth-node-cri pod: init container {config.Metadata.Name} exited {status.ExitCode} ({status.Reason} {status.Message})");
                    return 1;
                }
            }
            Console.WriteLine($"{id} {app}");
            return 0;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"berth-node-cri pod: {e.Status.Detail}");
            return 1;
        }
    }

    public static async Task<int> StatusAsync(string socket, string id)
    {
        using var kubelet = new KubeletCri(socket, TimeSpan.FromSeconds(120));
        var cri = kubelet.Runtime;
        try
        {
            var status = (await cri.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, kubelet.Options())).Status;
            Console.WriteLine($"{status.State switch { ContainerState.ContainerCreated => "CONTAINER_CREATED", ContainerState.ContainerRunning => "CONTAINER_RUNNING", ContainerState.ContainerExited => "CONTAINER_EXITED", _ => "CONTAINER_UNKNOWN" }} {status.ExitCode}");
            return 0;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"berth-node-cri container: {e.Status.Detail}");
            return 1;
        }
    }
}
