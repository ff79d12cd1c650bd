using System.Net.Sockets;
using Grpc.Net.Client;

namespace Berth.HostAgent.Cri;

/// <summary>A gRPC channel to a runtime's Unix socket: the one way to reach a CRI runtime, for the agent and its tests.</summary>
internal static class UnixChannel
{
    /// <summary>
    /// A channel whose every connection opens <paramref name="socketPath"/>; "http://localhost" only names it, and a
    /// proxy from the environment must not reroute it. <paramref name="maxAnswer"/>: the largest answer taken, else
    /// gRPC's default of 4 MiB (null there would mean no limit at all).
    /// </summary>
    public static GrpcChannel For(string socketPath, int? maxAnswer = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var options = new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true };
        if (maxAnswer is { } max) options.MaxReceiveMessageSize = max;
        return GrpcChannel.ForAddress("http://localhost", options);
    }
}
