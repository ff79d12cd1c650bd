using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;

namespace Berth.HostAgent.Cri;

/// <summary>
/// Unary gRPC over HTTP/2 on a Unix socket: what berth-agent needs of gRPC, since Grpc.Net.Client is not
/// available here. Prior-knowledge h2c (no TLS, no upgrade), each message framed as one byte "compressed"
/// (always 0) and a 4-byte big-endian length, the outcome in the grpc-status trailer.
/// </summary>
internal sealed class GrpcUnaryClient : IDisposable
{
    private const int MaxMessage = 16 << 20;
    private readonly HttpClient _http;
    private readonly string _socket;

    public GrpcUnaryClient(string socketPath)
    {
        _socket = socketPath;
        var handler = new SocketsHttpHandler
        {
            // "http://localhost" only names the socket: a proxy from the environment must not reroute it.
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
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://localhost"), Timeout = Timeout.InfiniteTimeSpan };
    }

    public async Task<TResponse> CallAsync<TResponse>(string method, IMessage request, MessageParser<TResponse> parser, TimeSpan deadline, CancellationToken cancellationToken)
        where TResponse : IMessage<TResponse>
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(deadline);
        var body = new byte[5 + request.CalculateSize()];
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(1), (uint)(body.Length - 5));
        request.WriteTo(body.AsSpan(5));
        using var message = new HttpRequestMessage(HttpMethod.Post, method)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        message.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation("grpc-timeout", $"{Math.Max(1, (long)deadline.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}m");
        try
        {
            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new GrpcException(GrpcException.Unavailable, $"{_socket} {method}: HTTP {(int)response.StatusCode}");
            }
            var payload = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
            // A failing call may answer with headers only ("trailers-only"): the status is then in the headers.
            var status = Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status");
            if (status is null) throw new GrpcException(GrpcException.Internal, $"{_socket} {method}: no grpc-status in the answer");
            if (status != "0")
            {
                var detail = Uri.UnescapeDataString(Header(response.TrailingHeaders, "grpc-message") ?? Header(response.Headers, "grpc-message") ?? "");
                throw new GrpcException(int.TryParse(status, out var code) ? code : GrpcException.Internal, $"{_socket} {method}: status {status}: {detail}");
            }
            if (payload.Length < 5 || payload[0] != 0) throw new GrpcException(GrpcException.Internal, $"{_socket} {method}: malformed or compressed answer");
            var length = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(1));
            if (length > MaxMessage || length > payload.Length - 5) throw new GrpcException(GrpcException.Internal, $"{_socket} {method}: truncated answer");
            return parser.ParseFrom(payload.AsSpan(5, (int)length));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new GrpcException(GrpcException.DeadlineExceeded, $"{_socket} {method}: no answer within {deadline.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException e)
        {
            throw new GrpcException(GrpcException.Unavailable, $"{_socket} {method}: {e.InnerException?.Message ?? e.Message}");
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new GrpcException(GrpcException.Internal, $"{_socket} {method}: undecodable answer: {e.Message}");
        }
    }

    private static string? Header(System.Net.Http.Headers.HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    public void Dispose() => _http.Dispose();
}
