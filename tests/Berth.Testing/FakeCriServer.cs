using System.Buffers.Binary;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Berth.Testing;

/// <summary>
/// A container runtime for tests: Kestrel on a Unix socket, HTTP/2 only, answering CRI methods with whatever
/// the test's handler returns, framed as gRPC with the status in the trailers.
/// </summary>
public sealed class FakeCriServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    /// <summary>
    /// What a handler answers: a message (status 0), or a status and message with no body. Raw: bytes framed
    /// as if they were a message, for a runtime that answers garbage.
    /// </summary>
    public sealed record Answer(IMessage? Message, int Status = 0, string Detail = "", byte[]? Raw = null);

    private FakeCriServer(WebApplication app, string socket)
    {
        _app = app;
        Socket = socket;
    }

    public string Socket { get; }

    /// <summary>Requests received, by method name, as raw protobuf bytes.</summary>
    public List<(string Method, byte[] Body)> Received { get; } = [];

    public static async Task<FakeCriServer> StartAsync(string socket, Func<string, byte[], CancellationToken, Task<Answer>> handle)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socket, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        var server = new FakeCriServer(app, socket);
        app.MapPost("/runtime.v1.RuntimeService/{method}", async (HttpContext context, string method) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            var frame = body.ToArray();
            var message = frame[5..(5 + (int)BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(1)))];
            lock (server.Received) server.Received.Add((method, message));
            var answer = await handle(method, message, context.RequestAborted);
            context.Response.ContentType = "application/grpc";
            if ((answer.Raw ?? answer.Message?.ToByteArray()) is { } reply)
            {
                var bytes = new byte[5 + reply.Length];
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), (uint)reply.Length);
                reply.CopyTo(bytes.AsSpan(5));
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
            }
            context.Response.AppendTrailer("grpc-status", answer.Status.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (answer.Detail.Length > 0) context.Response.AppendTrailer("grpc-message", Uri.EscapeDataString(answer.Detail));
        });
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
