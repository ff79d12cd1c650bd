using System.Buffers.Binary;
using System.Globalization;
using Berth.HostAgent.Cri.V1;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Berth.Benchmarks;

/// <summary>
/// A container runtime for make bench: Kestrel on a Unix socket, HTTP/2 without TLS, answering the CRI's
/// Version and ListPodSandbox with a fixed list of COUNT ready sandboxes (ids PREFIX{FIRST} and up), framed as
/// gRPC with the status in the trailers. Prints "ready" once it listens, then runs until stdin closes.
/// </summary>
internal static class FakeRuntime
{
    public static async Task<int> RunAsync(string socket, string prefix, int first, int count)
    {
        var sandboxes = new ListPodSandboxResponse();
        for (var i = first; i < first + count; i++)
        {
            var id = prefix + i.ToString(CultureInfo.InvariantCulture);
            sandboxes.Items.Add(new PodSandbox
            {
                Id = id,
                State = PodSandboxState.SandboxReady,
                Metadata = new PodSandboxMetadata { Name = "pod-" + id, Namespace = "bench", Uid = "uid-" + id },
                CreatedAt = 1,
            });
        }
        var version = new VersionResponse { Version = "0.1.0", RuntimeName = "berth-bench", RuntimeVersion = "0", RuntimeApiVersion = "v1" };

        File.Delete(socket);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socket, l => l.Protocols = HttpProtocols.Http2));
        await using var app = builder.Build();
        app.MapPost("/runtime.v1.RuntimeService/{method}", async (HttpContext context, string method) =>
        {
            // The request body is read and dropped: both answers are the same whatever the filter.
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
            context.Response.ContentType = "application/grpc";
            IMessage? reply = method switch { "Version" => version, "ListPodSandbox" => sandboxes, _ => null };
            if (reply is not null)
            {
                var bytes = new byte[5 + reply.CalculateSize()];
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), (uint)(bytes.Length - 5));
                reply.WriteTo(bytes.AsSpan(5));
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
            }
            // 12: UNIMPLEMENTED.
            context.Response.AppendTrailer("grpc-status", reply is null ? "12" : "0");
        });
        await app.StartAsync();
        Console.WriteLine("ready");
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }
}
