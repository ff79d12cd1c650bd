using System.Text.Json;

namespace Berth.BlackBox.HostAgent;

/// <summary>
/// The process evidence (/proc/PID/ns/net of every process) says "unknown" when the agent may not read every
/// process's link, never "no process in it": the pod's agent without CAP_SYS_PTRACE, or any agent with fewer
/// capabilities than the node's processes, must leave this boot's leases alone.
/// </summary>
public sealed class ProcessEvidenceTests : IDisposable
{
    private readonly TempDir _dir = new();

    public ProcessEvidenceTests()
    {
        File.WriteAllText(_dir.File("boot_id"), "boot-proc-1\n");
        File.WriteAllText(_dir.File("agent.json"), """{"runtimeSockets": [], "hostLocal": {"dirs": []}}""");
    }

    public void Dispose() => _dir.Dispose();

    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };

    [Fact]
    public void Without_the_capabilities_to_read_every_process_the_evidence_is_unknown_not_none()
    {
        Repo.RequireBuilt();
        var add = PluginRun.Run(Repo.Plugin, "ADD", Configs.Json("""[[{"subnet":"10.65.0.0/24"}]]""", _dir.File("data")), "c1", netns: "/var/run/netns/gone-c1", extraEnvironment: Env);
        Assert.True(add.ExitCode == 0, add.ToString());
        string[] reconcile = ["reconcile", "--json", "--dry-run", "--store", _dir.File("data/berth.db"), "--config", _dir.File("agent.json")];

        // The control: with root's capabilities every process's link is read, and no process holds the namespace.
        var withCaps = PluginRun.Agent(Env, reconcile);
        // setpriv (util-linux) empties the bounding set: root keeps uid 0 and loses every capability, CAP_SYS_PTRACE included.
        var withoutCaps = Exec.Run("setpriv", ["--bounding-set", "-all", "--inh-caps", "-all", "--", Repo.Agent, .. reconcile], new ExecOptions { Environment = ExecOptions.Text(Env) });

        Assert.True(withCaps.ExitCode == 0, withCaps.ToString());
        Assert.True(withoutCaps.ExitCode == 0, withoutCaps.ToString());
        static string Evidence(ExecResult r) => Assert.Single(JsonDocument.Parse(r.Stdout).RootElement.GetProperty("decisions").EnumerateArray()).GetProperty("evidence").GetString()!;
        Assert.Equal("none", Evidence(withCaps));
        Assert.Equal("unknown", Evidence(withoutCaps));
    }
}
