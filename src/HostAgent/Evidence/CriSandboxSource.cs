using Berth.HostAgent.Cri;
using Berth.HostAgent.Cri.V1;
using Grpc.Core;

namespace Berth.HostAgent.Evidence;

/// <summary>
/// Ready sandboxes from every configured CRI runtime. No sockets configured: the operator says there is no
/// runtime, so the answer is known and empty. Sockets that do not exist are skipped (not installed here);
/// when none exists the answer is unknown (at boot the runtime is not up yet). Any failing runtime makes the
/// whole answer unknown: a sandbox it would have listed must not be taken for dead.
/// </summary>
internal sealed class CriSandboxSource(IReadOnlyList<string> sockets, TimeSpan timeout, TimeProvider time) : ISandboxSource
{
    public async Task<SandboxList> ReadySandboxesAsync(CancellationToken cancellationToken)
    {
        if (sockets.Count == 0) return new SandboxList(true, new HashSet<string>());
        var present = sockets.Where(File.Exists).ToList();
        if (present.Count == 0) return SandboxList.Unknown($"no runtime socket found: {string.Join(", ", sockets)}");
        var ready = new HashSet<string>(StringComparer.Ordinal);
        foreach (var socket in present)
        {
            using var client = new CriClient(socket, timeout, time);
            try
            {
                foreach (var sandbox in await client.ListPodSandboxAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    if (sandbox.State == PodSandboxState.SandboxReady) ready.Add(sandbox.Id);
                }
            }
            catch (RpcException e)
            {
                // Unavailable: nobody listens (a runtime not up yet). Anything else came from a runtime that is up.
                return SandboxList.Unknown($"runtime {socket}: {e.StatusCode}: {e.Status.Detail}", unusable: e.StatusCode != StatusCode.Unavailable);
            }
        }
        return new SandboxList(true, ready);
    }
}
