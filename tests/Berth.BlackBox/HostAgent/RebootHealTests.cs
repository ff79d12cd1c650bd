using System.Text.Json;

namespace Berth.BlackBox.HostAgent;

/// <summary>
/// One faked hard reboot healed end to end by the published agent, as berth-recover.service heals a node: leases
/// made by real ADDs for real namespaces, then a new boot ID and every namespace gone (a power cut takes them all).
/// `check` sees the earlier boot's leases, `recover` releases them, `history` records why, `check` is healthy again
/// and the next ADD is of the new boot. `make arm64-test` runs it with the arm64 executables under qemu-user.
/// </summary>
public sealed class RebootHealTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<Netns> _namespaces = [];

    public RebootHealTests()
    {
        File.WriteAllText(_dir.File("boot_id"), "heal-boot-1\n");
        File.WriteAllText(_dir.File("agent.json"), """{"runtimeSockets": [], "hostLocal": {"dirs": []}}""");
    }

    private string Store => _dir.File("data/berth.db");
    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };
    private string Config => Configs.Json("""[[{"subnet":"10.73.0.0/29"}]]""", _dir.File("data"));

    private ExecResult Add(string id, Netns ns) => PluginRun.Run(Repo.Plugin, "ADD", Config, id, netns: ns.Path,
        cniArgs: $"K8S_POD_NAMESPACE=edge;K8S_POD_NAME=pod-{id}", extraEnvironment: Env);

    private ExecResult Agent(params string[] args) => PluginRun.Agent(Env, [.. args, "--store", Store, "--config", _dir.File("agent.json")]);

    private static JsonElement Json(ExecResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private Netns Namespace()
    {
        var ns = new Netns();
        _namespaces.Add(ns);
        return ns;
    }

    [Fact]
    public void Recover_heals_a_full_range_after_a_hard_reboot_and_the_operator_commands_say_so()
    {
        // A /29 has five addresses besides the gateway: fill it.
        var pods = Enumerable.Range(0, 5).Select(_ => Namespace()).ToList();
        for (var i = 0; i < pods.Count; i++) Assert.Equal(0, Add($"p{i}", pods[i]).ExitCode);
        Assert.Equal(1, Json(Agent("check", "--json")).GetProperty("findings").EnumerateArray().Count(f => f.GetProperty("kind").GetString() == "range-full"));

        // The power cut: a new boot, and no namespace of the old one survives it.
        foreach (var ns in pods) ns.Dispose();
        File.WriteAllText(_dir.File("boot_id"), "heal-boot-2\n");
        var before = Agent("check", "--json");
        var leasesBefore = Json(Agent("leases", "--json")).GetProperty("leases").EnumerateArray().ToList();

        var recover = Agent("recover");
        var again = Agent("recover");

        Assert.Equal(1, before.ExitCode);
        var earlier = Assert.Single(Json(before).GetProperty("findings").EnumerateArray(), f => f.GetProperty("kind").GetString() == "previous-boot");
        Assert.Contains("5 leases from earlier boots remain", earlier.GetProperty("message").GetString());
        Assert.Equal(5, leasesBefore.Count);
        Assert.All(leasesBefore, l => Assert.Equal(("previous", "none"), (l.GetProperty("boot").GetString(), l.GetProperty("evidence").GetString())));
        Assert.True(recover.ExitCode == 0, recover.ToString());
        Assert.Contains("released 5 of 5 earlier-boot leases", recover.Stdout);
        Assert.Contains("already ran for boot heal-boot-2", again.Stdout);
        Assert.Empty(Json(Agent("leases", "--json")).GetProperty("leases").EnumerateArray());
        var released = Json(Agent("history", "--json")).GetProperty("events").EnumerateArray()
            .Where(e => e.GetProperty("reason").GetString() == "boot-recovery").Select(e => e.GetProperty("address").GetString()).Order().ToList();
        Assert.Equal(["10.73.0.2", "10.73.0.3", "10.73.0.4", "10.73.0.5", "10.73.0.6"], released);
        var healthy = Agent("check");
        Assert.True(healthy.ExitCode == 0, healthy.ToString());
        Assert.Contains("healthy", healthy.Stdout);

        // The node takes pods again, and the new lease is of this boot, held by a live namespace.
        var next = Add("after", Namespace());
        Assert.True(next.ExitCode == 0, next.ToString());
        var lease = Assert.Single(Json(Agent("leases", "--json")).GetProperty("leases").EnumerateArray());
        Assert.Equal(("edge/pod-after", "current", "netns"),
            (lease.GetProperty("owner").GetString(), lease.GetProperty("boot").GetString(), lease.GetProperty("evidence").GetString()));
    }

    public void Dispose()
    {
        foreach (var ns in _namespaces) ns.Dispose();
        _dir.Dispose();
    }
}
