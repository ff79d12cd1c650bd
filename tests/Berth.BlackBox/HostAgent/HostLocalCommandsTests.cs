using System.Text.Json;

namespace Berth.BlackBox.HostAgent;

/// <summary>
/// The operator commands over guarded host-local files, as the published berth-agent: the files are written by
/// Debian's host-local into the test's directory, which the agent's config names in <c>hostLocal.dirs</c>.
/// </summary>
public sealed class HostLocalCommandsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public HostLocalCommandsTests()
    {
        Directory.CreateDirectory(_dir.File("netns"));
        File.WriteAllText(_dir.File("boot_id"), "boot-hl-1\n");
        File.WriteAllText(_dir.File("agent.json"), $$"""
            {"runtimeSockets": [], "metricsAddress": "off", "gracePeriodSeconds": 0,
             "hostLocal": {"dirs": ["{{Networks}}"], "netnsDirs": ["{{_dir.File("netns")}}"]} }
            """);
    }

    private string Networks => _dir.File("networks");

    private string Store => _dir.File("berth/berth.db");

    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id"), ["SUDO_USER"] = "carol" };

    private ExecResult Agent(params string[] args) => PluginRun.Agent(Env, [.. args, "--store", Store, "--config", _dir.File("agent.json")]);

    private string HostLocalAdd(string containerId) => HostLocalPlugin.Add(HostLocalPlugin.Config(Networks, "10.78.0.0/24"), containerId);

    /// <summary>A runtime is up in this boot: a pod's namespace is pinned, so recovery cannot prove the files old.</summary>
    private void RuntimeRunning() => File.WriteAllText(_dir.File("netns/cni-pod"), "");

    private bool Exists(string address) => File.Exists(Path.Combine(Networks, "cbr0", address));

    private static JsonElement Json(ExecResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    [Fact]
    public void Leases_and_reconcile_dry_run_show_host_local_files_marked_with_their_store()
    {
        var a = HostLocalAdd("c1");
        RuntimeRunning();
        Assert.Equal(0, Agent("recover").ExitCode);

        var leases = Agent("leases", "--json");
        var table = Agent("leases");
        var dry = Agent("reconcile", "--dry-run", "--json");

        Assert.True(leases.ExitCode == 0, leases.ToString());
        var row = Assert.Single(Json(leases).GetProperty("leases").EnumerateArray());
        Assert.Equal(("host-local", Networks, "cbr0", a, "c1", "eth0"), (row.GetProperty("store").GetString(), row.GetProperty("dir").GetString(),
            row.GetProperty("network").GetString(), row.GetProperty("address").GetString(), row.GetProperty("containerId").GetString(), row.GetProperty("ifname").GetString()));
        Assert.Contains("STORE", table.Stdout);
        Assert.Contains("host-local", table.Stdout);
        var decision = Assert.Single(Json(dry).GetProperty("decisions").EnumerateArray());
        Assert.Equal(("host-local", "strike"), (decision.GetProperty("store").GetString(), decision.GetProperty("verdict").GetString()));
        Assert.True(Exists(a));
    }

    [Fact]
    public void Recover_after_a_reboot_deletes_the_files_and_history_names_the_store()
    {
        var a = HostLocalAdd("c1");
        var b = HostLocalAdd("c2");
        File.WriteAllText(_dir.File("boot_id"), "boot-hl-2\n");

        var recover = Agent("recover");
        var history = Agent("history", "--json");

        Assert.True(recover.ExitCode == 0, recover.ToString());
        Assert.Contains("released 2 of 2 earlier-boot leases (2 of them host-local files)", recover.Stdout);
        Assert.False(Exists(a) || Exists(b));
        var events = Json(history).GetProperty("events").EnumerateArray().ToList();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(("release", "host-local-boot-recovery", "host-local", "berth-agent"),
            (e.GetProperty("action").GetString(), e.GetProperty("reason").GetString(), e.GetProperty("store").GetString()![..10], e.GetProperty("actor").GetString())));
        Assert.Equal(0, Agent("check").ExitCode);
    }

    [Fact]
    public void Release_of_a_host_local_address_is_validated_like_one_of_berths()
    {
        var a = HostLocalAdd("c1");
        RuntimeRunning();
        Assert.Equal(0, Agent("recover").ExitCode);

        var wrongOwner = Agent("release", a, "--network", "cbr0", "--owner", "someone-else");
        var released = Agent("release", a, "--network", "cbr0", "--owner", "c1");
        var again = Agent("release", a, "--network", "cbr0");
        var unknown = Agent("release", a, "--network", "nonet");

        Assert.Equal(3, wrongOwner.ExitCode);
        Assert.True(released.ExitCode == 0, released.ToString());
        Assert.Contains("released", released.Stdout);
        Assert.False(Exists(a));
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("already free", again.Stdout);
        Assert.Equal(1, unknown.ExitCode);
        var entry = Json(Agent("history", "--json")).GetProperty("events").EnumerateArray().Single();
        Assert.Equal(("manual", "carol (sudo)"), (entry.GetProperty("reason").GetString(), entry.GetProperty("actor").GetString()));
        Assert.True(File.Exists(Path.Combine(Networks, "cbr0", "lock")));
    }

    [Fact]
    public void Check_reports_what_it_skips_in_host_locals_directories()
    {
        HostLocalAdd("c1");
        File.WriteAllText(Path.Combine(Networks, "cbr0", "not-an-address"), "x");
        RuntimeRunning();
        Assert.Equal(0, Agent("recover").ExitCode);

        var check = Agent("check", "--json");

        Assert.Equal(1, check.ExitCode);
        // Notes (this network's size: no CNI config names it) do not make the node unhealthy.
        var finding = Assert.Single(Json(check).GetProperty("findings").EnumerateArray(), f => !f.TryGetProperty("note", out _));
        Assert.Equal("host-local-skipped", finding.GetProperty("kind").GetString());
        Assert.Contains("not-an-address", finding.GetProperty("message").GetString());
    }

    public void Dispose() => _dir.Dispose();
}
