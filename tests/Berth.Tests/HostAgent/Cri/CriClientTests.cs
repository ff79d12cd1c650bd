using System.Net.Sockets;
using Berth.HostAgent.Cri;
using Berth.HostAgent.Cri.V1;
using Berth.HostAgent.Evidence;
using Grpc.Core;
using Runtime = Berth.Testing.Cri;

namespace Berth.Tests.HostAgent.Cri;

public sealed class CriClientTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    /// <summary>A sandbox as a runtime sends it: built from the test side's CRI messages, read by the agent's own.</summary>
    private static Runtime.PodSandbox Sandbox(string id, PodSandboxState state) =>
        new() { Id = id, State = (Runtime.PodSandboxState)state, Metadata = new Runtime.PodSandboxMetadata { Name = "pod-" + id, Namespace = "default", Uid = "uid-" + id }, CreatedAt = 42 };

    private static Func<string, byte[], CancellationToken, Task<FakeCriServer.Answer>> Listing(params Runtime.PodSandbox[] sandboxes) =>
        (method, _, _) => Task.FromResult(method == "ListPodSandbox"
            ? new FakeCriServer.Answer(new Runtime.ListPodSandboxResponse { Items = { sandboxes } })
            : new FakeCriServer.Answer(null, (int)StatusCode.Unimplemented, "not in this fake"));

    [Fact]
    public async Task ListPodSandbox_returns_the_runtime_s_sandboxes_with_their_fields()
    {
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"), Listing(Sandbox("a", PodSandboxState.SandboxReady), Sandbox("b", PodSandboxState.SandboxNotready)));
        using var client = new CriClient(server.Socket, Deadline, TimeProvider.System);

        var sandboxes = await client.ListPodSandboxAsync(new PodSandboxFilter { LabelSelector = { ["app"] = "web" } });

        Assert.Equal(["a", "b"], sandboxes.Select(s => s.Id));
        Assert.Equal((PodSandboxState.SandboxNotready, "pod-b", "default", "uid-b", 42L),
            (sandboxes[1].State, sandboxes[1].Metadata.Name, sandboxes[1].Metadata.Namespace, sandboxes[1].Metadata.Uid, sandboxes[1].CreatedAt));
        Assert.Equal("web", ListPodSandboxRequest.Parser.ParseFrom(server.Received.Single().Body).Filter.LabelSelector["app"]);
    }

    [Fact]
    public async Task The_generated_client_on_the_agent_s_channel_carries_fields_both_ways()
    {
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"), (method, body, _) => Task.FromResult(method switch
        {
            "RunPodSandbox" => new FakeCriServer.Answer(new RunPodSandboxResponse { PodSandboxId = "sb-" + RunPodSandboxRequest.Parser.ParseFrom(body).Config.Metadata.Name }),
            "Version" => new FakeCriServer.Answer(new VersionResponse { RuntimeName = "fake", RuntimeApiVersion = "v1" }),
            _ => new FakeCriServer.Answer(null, (int)StatusCode.Unimplemented),
        }));
        using var client = new CriClient(server.Socket, Deadline, TimeProvider.System);
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "web", Namespace = "default", Uid = "u1" },
            Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod } } },
        };

        var id = (await client.CallAsync((r, o) => r.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = "runc" }, o), default)).PodSandboxId;
        var version = await client.CallAsync((r, o) => r.VersionAsync(new VersionRequest { Version = "v1" }, o), default);

        Assert.Equal("sb-web", id);
        Assert.Equal("fake", version.RuntimeName);
        var run = RunPodSandboxRequest.Parser.ParseFrom(server.Received[0].Body);
        Assert.Equal(("runc", "u1", "default"), (run.RuntimeHandler, run.Config.Metadata.Uid, run.Config.Metadata.Namespace));
        Assert.Equal(["RunPodSandbox", "Version"], server.Received.Select(r => r.Method));
    }

    [Fact]
    public async Task A_non_zero_grpc_status_becomes_an_exception_with_its_code_and_message()
    {
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"),
            (_, _, _) => Task.FromResult(new FakeCriServer.Answer(null, 5, "sandbox \"x\" not found")));
        using var client = new CriClient(server.Socket, Deadline, TimeProvider.System);

        var e = await Assert.ThrowsAsync<RpcException>(() => client.ListPodSandboxAsync());

        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal("sandbox \"x\" not found", e.Status.Detail);
    }

    [Fact]
    public async Task A_runtime_that_does_not_answer_fails_the_call_at_its_deadline()
    {
        var never = new TaskCompletionSource<FakeCriServer.Answer>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"), (_, _, aborted) => never.Task.WaitAsync(aborted));
        using var client = new CriClient(server.Socket, TimeSpan.FromMilliseconds(300), TimeProvider.System);

        var e = await Assert.ThrowsAsync<RpcException>(() => client.ListPodSandboxAsync());

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
    }

    [Fact]
    public async Task A_caller_that_gives_up_gets_a_cancellation_not_a_runtime_failure()
    {
        var never = new TaskCompletionSource<FakeCriServer.Answer>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"), (_, _, aborted) => never.Task.WaitAsync(aborted));
        using var client = new CriClient(server.Socket, Deadline, TimeProvider.System);
        using var stop = new CancellationTokenSource();

        var call = client.ListPodSandboxAsync(cancellationToken: stop.Token);
        await stop.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task A_runtime_answering_garbage_makes_the_answer_unknown()
    {
        await using var server = await FakeCriServer.StartAsync(_dir.File("cri.sock"),
            (_, _, _) => Task.FromResult(new FakeCriServer.Answer(null, Raw: [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));

        var list = await new CriSandboxSource([server.Socket], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.False(list.Known);
        Assert.Contains(server.Socket, list.Problem);
    }

    [Fact]
    public async Task No_configured_socket_means_a_known_empty_answer()
    {
        var list = await new CriSandboxSource([], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.True(list.Known);
        Assert.Empty(list.ReadyIds);
    }

    [Fact]
    public async Task Configured_sockets_that_do_not_exist_make_the_answer_unknown()
    {
        var list = await new CriSandboxSource([_dir.File("no.sock")], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.False(list.Known);
        Assert.Contains("no runtime socket found", list.Problem);
    }

    [Fact]
    public async Task A_stale_socket_file_nobody_listens_on_makes_the_answer_unknown()
    {
        // Bound but never listening: what a runtime that died leaves behind (.NET would delete the file on dispose).
        var stale = _dir.File("stale.sock");
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(stale));

        var list = await new CriSandboxSource([stale], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.True(File.Exists(stale));
        Assert.False(list.Known);
    }

    [Fact]
    public async Task Ready_sandboxes_of_every_runtime_are_united_and_not_ready_ones_left_out()
    {
        await using var a = await FakeCriServer.StartAsync(_dir.File("a.sock"), Listing(Sandbox("a1", PodSandboxState.SandboxReady), Sandbox("a2", PodSandboxState.SandboxNotready)));
        await using var b = await FakeCriServer.StartAsync(_dir.File("b.sock"), Listing(Sandbox("b1", PodSandboxState.SandboxReady)));

        var list = await new CriSandboxSource([a.Socket, _dir.File("absent.sock"), b.Socket], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.True(list.Known);
        Assert.Equal(["a1", "b1"], list.ReadyIds.Order());
    }

    [Fact]
    public async Task One_failing_runtime_makes_the_whole_answer_unknown()
    {
        await using var good = await FakeCriServer.StartAsync(_dir.File("good.sock"), Listing(Sandbox("a1", PodSandboxState.SandboxReady)));
        await using var bad = await FakeCriServer.StartAsync(_dir.File("bad.sock"), (_, _, _) => Task.FromResult(new FakeCriServer.Answer(null, 14, "shutting down")));

        var list = await new CriSandboxSource([good.Socket, bad.Socket], Deadline, TimeProvider.System).ReadySandboxesAsync(default);

        Assert.False(list.Known);
        Assert.Contains("shutting down", list.Problem);
    }

    public void Dispose() => _dir.Dispose();
}
