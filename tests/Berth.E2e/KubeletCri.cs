using Berth.HostAgent.Cri;
using Berth.HostAgent.Cri.V1;

namespace Berth.E2e;

/// <summary>
/// The CRI calls a kubelet makes and the agent never does (it lists sandboxes, it never runs or stops one),
/// through the agent's client: the same channel, deadline and error mapping. The e2e and the node VM's CRI client
/// (tests/Berth.NodeCri, which compiles this file in) use them.
/// </summary>
internal static class PodCalls
{
    public static async Task<string> RunPodSandboxAsync(this CriClient cri, PodSandboxConfig config, string runtimeHandler = "", CancellationToken cancellationToken = default) =>
        (await cri.CallAsync((r, o) => r.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = runtimeHandler }, o), cancellationToken)).PodSandboxId;

    public static Task StopPodSandboxAsync(this CriClient cri, string id, CancellationToken cancellationToken = default) =>
        cri.CallAsync((r, o) => r.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id }, o), cancellationToken);

    public static Task RemovePodSandboxAsync(this CriClient cri, string id, CancellationToken cancellationToken = default) =>
        cri.CallAsync((r, o) => r.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id }, o), cancellationToken);

    /// <summary>With <paramref name="verbose"/>, the runtime adds its own details (for containerd: the pause PID, the netns path).</summary>
    public static Task<PodSandboxStatusResponse> PodSandboxStatusAsync(this CriClient cri, string id, bool verbose = false, CancellationToken cancellationToken = default) =>
        cri.CallAsync((r, o) => r.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose }, o), cancellationToken);
}
