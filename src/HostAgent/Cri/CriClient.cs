using Berth.HostAgent.Cri.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Berth.HostAgent.Cri;

/// <summary>
/// The CRI RuntimeService on one runtime's Unix socket, through Grpc.Net.Client. Every call carries the
/// configured deadline; a failure of any kind (no socket, refused, deadline, non-OK status, an answer that
/// does not decode) surfaces as an <see cref="RpcException"/>, and a cancelled caller as an
/// OperationCanceledException, so the agent can stop in the middle of a call without reading it as "unknown".
/// </summary>
internal sealed class CriClient : IDisposable
{
    // A node with thousands of sandboxes lists more than gRPC's 4 MiB default.
    private const int MaxAnswer = 16 << 20;
    private readonly GrpcChannel _channel;
    private readonly TimeSpan _deadline;
    private readonly TimeProvider _time;
    private readonly RuntimeService.RuntimeServiceClient _runtime;

    public CriClient(string socketPath, TimeSpan deadline, TimeProvider time)
    {
        _deadline = deadline;
        _time = time;
        _channel = UnixChannel.For(socketPath, MaxAnswer);
        _runtime = new RuntimeService.RuntimeServiceClient(_channel);
    }

    /// <summary>
    /// One call of the generated client with the configured deadline from now. gRPC reports a deadline and a
    /// cancelled caller alike (or, told to, as OperationCanceledException both): only the caller's own
    /// cancellation becomes an OperationCanceledException here; a deadline stays a runtime failure.
    /// </summary>
    public async Task<TResponse> CallAsync<TResponse>(Func<RuntimeService.RuntimeServiceClient, CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(_runtime, new CallOptions(deadline: _time.GetUtcNow().UtcDateTime + _deadline, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(e.Message, e, cancellationToken);
        }
    }

    public async Task<IReadOnlyList<PodSandbox>> ListPodSandboxAsync(PodSandboxFilter? filter = null, CancellationToken cancellationToken = default) =>
        (await CallAsync((r, o) => r.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter }, o), cancellationToken).ConfigureAwait(false)).Items;

    public void Dispose() => _channel.Dispose();
}
