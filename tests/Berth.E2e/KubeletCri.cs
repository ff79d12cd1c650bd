using Berth.HostAgent.Cri;
using Berth.Testing.Cri;
using Grpc.Core;
using Grpc.Net.Client;

namespace Berth.E2e;

/// <summary>
/// The CRI as a kubelet calls it (the agent only lists sandboxes; it never runs, stops or inspects one), on the test
/// side's messages (tests/Berth.Testing/Cri/cri.proto) over the agent's Unix channel, every call with the deadline
/// given. The e2e and the node VM's CRI client (tests/Berth.NodeCri, which compiles this file in) use it.
/// </summary>
internal sealed class KubeletCri : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly TimeSpan _deadline;

    public KubeletCri(string socket, TimeSpan deadline)
    {
        _channel = UnixChannel.For(socket);
        _deadline = deadline;
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
    }

    /// <summary>The generated client, for the calls below do not wrap (containers); pass <see cref="Options"/>.</summary>
    public RuntimeService.RuntimeServiceClient Runtime { get; }

    /// <summary>The deadline from now.</summary>
    public CallOptions Options() => new(deadline: DateTime.UtcNow + _deadline);

    public async Task VersionAsync() => await Runtime.VersionAsync(new VersionRequest { Version = "v1" }, Options());

    public async Task<string> RunPodSandboxAsync(PodSandboxConfig config, string runtimeHandler = "") =>
        (await Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = runtimeHandler }, Options())).PodSandboxId;

    public async Task StopPodSandboxAsync(string id) => await Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id }, Options());

    public async Task RemovePodSandboxAsync(string id) => await Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id }, Options());

    /// <summary>With <paramref name="verbose"/>, the runtime adds its own details (for containerd: the pause PID, the netns path).</summary>
    public async Task<PodSandboxStatusResponse> PodSandboxStatusAsync(string id, bool verbose = false) =>
        await Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose }, Options());

    public async Task<IReadOnlyList<PodSandbox>> ListPodSandboxAsync(PodSandboxFilter filter) =>
        (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter }, Options())).Items;

    public void Dispose() => _channel.Dispose();
}
