using System.Globalization;
using Berth.HostAgent.Cri.V1;
using Berth.Testing;

namespace Berth.Benchmarks;

/// <summary>
/// A container runtime for make bench: the tests' FakeCriServer answering the CRI's Version and ListPodSandbox
/// with a fixed list of COUNT ready sandboxes (ids PREFIX{FIRST} and up). Prints "ready" once it listens, then
/// runs until stdin closes.
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
        var unimplemented = new FakeCriServer.Answer(null, 12);   // 12: UNIMPLEMENTED
        await using var server = await FakeCriServer.StartAsync(socket, (method, _, _) => Task.FromResult(method switch
        {
            "Version" => new FakeCriServer.Answer(version),
            "ListPodSandbox" => new FakeCriServer.Answer(sandboxes),
            _ => unimplemented,
        }));
        Console.WriteLine("ready");
        await Console.In.ReadToEndAsync();
        return 0;
    }
}
