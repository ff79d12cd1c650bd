using Berth.Testing.Cri;

namespace Berth.BlackBox.HostAgent.Cri;

/// <summary>The published (NativeAOT) agent asking a runtime: the CRI path works outside the JIT too.</summary>
public sealed class PublishedAgentCriTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Fact]
    public async Task Reconcile_keeps_the_lease_a_runtime_lists_as_ready_and_strikes_the_other()
    {
        var env = new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };
        File.WriteAllText(_dir.File("boot_id"), "boot-cri\n");
        var config = Configs.Json("""[[{"subnet":"10.63.0.0/24"}]]""", _dir.File("data"));
        foreach (var id in new[] { "ready-one", "gone-one" }) Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", config, id, netns: "/nonexistent", extraEnvironment: env).ExitCode);
        await using var runtime = await FakeCriServer.StartAsync(_dir.File("cri.sock"), (method, _, _) => Task.FromResult(new FakeCriServer.Answer(
            new ListPodSandboxResponse { Items = { new PodSandbox { Id = "ready-one", State = PodSandboxState.SandboxReady }, new PodSandbox { Id = "gone-one", State = PodSandboxState.SandboxNotready } } })));
        File.WriteAllText(_dir.File("agent.json"), $$"""{"gracePeriodSeconds": 0, "runtimeSockets": ["{{runtime.Socket}}"], "hostLocal": {"dirs": []} }""");

        var agent = await Exec.RunAsync(Repo.Agent, ["reconcile", "--store", _dir.File("data/berth.db"), "--config", _dir.File("agent.json")],
            new ExecOptions { Environment = ExecOptions.Text(env) });

        Assert.True(agent.ExitCode == 0, agent.Stderr);
        var output = agent.Stdout;
        Assert.Contains("keep 10.63.0.2 (net1, ready-one/eth0): runtime", output);
        Assert.Contains("strike 10.63.0.3 (net1, gone-one/eth0): none", output);
        Assert.Contains("ListPodSandbox", runtime.Received.Select(r => r.Method));
    }

    public void Dispose() => _dir.Dispose();
}
