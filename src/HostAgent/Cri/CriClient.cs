using Berth.HostAgent.Cri.V1;

namespace Berth.HostAgent.Cri;

/// <summary>The CRI RuntimeService calls berth uses, on one runtime socket.</summary>
internal sealed class CriClient(string socketPath, TimeSpan deadline) : IDisposable
{
    private const string Service = "/runtime.v1.RuntimeService/";
    private readonly GrpcUnaryClient _grpc = new(socketPath);

    public string Socket => socketPath;

    public Task<VersionResponse> VersionAsync(CancellationToken cancellationToken = default) =>
        _grpc.CallAsync(Service + "Version", new VersionRequest { Version = "v1" }, VersionResponse.Parser, deadline, cancellationToken);

    public async Task<IReadOnlyList<PodSandbox>> ListPodSandboxAsync(PodSandboxFilter? filter = null, CancellationToken cancellationToken = default) =>
        (await _grpc.CallAsync(Service + "ListPodSandbox", new ListPodSandboxRequest { Filter = filter }, ListPodSandboxResponse.Parser, deadline, cancellationToken)
            .ConfigureAwait(false)).Items;

    public async Task<string> RunPodSandboxAsync(PodSandboxConfig config, string runtimeHandler = "", CancellationToken cancellationToken = default) =>
        (await _grpc.CallAsync(Service + "RunPodSandbox", new RunPodSandboxRequest { Config = config, RuntimeHandler = runtimeHandler },
            RunPodSandboxResponse.Parser, deadline, cancellationToken).ConfigureAwait(false)).PodSandboxId;

    public Task StopPodSandboxAsync(string id, CancellationToken cancellationToken = default) =>
        _grpc.CallAsync(Service + "StopPodSandbox", new StopPodSandboxRequest { PodSandboxId = id }, StopPodSandboxResponse.Parser, deadline, cancellationToken);

    public Task RemovePodSandboxAsync(string id, CancellationToken cancellationToken = default) =>
        _grpc.CallAsync(Service + "RemovePodSandbox", new RemovePodSandboxRequest { PodSandboxId = id }, RemovePodSandboxResponse.Parser, deadline, cancellationToken);

    /// <summary>With <paramref name="verbose"/>, the runtime adds its own details (for containerd: the pause PID, the netns path).</summary>
    public Task<PodSandboxStatusResponse> PodSandboxStatusAsync(string id, bool verbose = false, CancellationToken cancellationToken = default) =>
        _grpc.CallAsync(Service + "PodSandboxStatus", new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose }, PodSandboxStatusResponse.Parser, deadline, cancellationToken);

    public void Dispose() => _grpc.Dispose();
}
