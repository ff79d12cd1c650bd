using System.Text.Json;

namespace Berth.BlackBox.HostAgent;

/// <summary>The operator commands, as the published berth-agent, on stores filled by real berth ADDs.</summary>
public sealed class OperatorTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<Netns> _namespaces = [];

    public OperatorTests()
    {
        File.WriteAllText(_dir.File("boot_id"), "boot-op-1\n");
        File.WriteAllText(_dir.File("agent.json"), """{"runtimeSockets": [], "hostLocal": {"dirs": []}}""");
    }

    private string Store => _dir.File("data/berth.db");
    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id"), ["SUDO_USER"] = "alice" };
    private string Config(string ranges = """[[{"subnet":"10.64.0.0/24"}]]""") => Configs.Json(ranges, _dir.File("data"));

    private ExecResult Add(string id, string? netns = null, string? config = null) =>
        PluginRun.Run(Repo.Plugin, "ADD", config ?? Config(), id, netns: netns ?? "/var/run/netns/gone-" + id,
            cniArgs: $"K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pod-{id}", extraEnvironment: Env);

    private ExecResult Agent(params string[] args) => PluginRun.Agent(Env, [.. args, "--store", Store, "--config", _dir.File("agent.json")]);

    private static JsonElement Json(ExecResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private Netns Live()
    {
        var ns = new Netns();
        _namespaces.Add(ns);
        return ns;
    }

    private IReadOnlyList<string?> Leased() => SqliteCli.Column(Store, "SELECT address FROM leases ORDER BY address_key");

    [Fact]
    public void Leases_shows_owner_boot_and_the_evidence_found_now()
    {
        var live = Live();
        Add("alive", live.Path);
        Add("dead");
        File.WriteAllText(_dir.File("boot_id"), "boot-op-2\n");
        Add("fresh");

        var json = Agent("leases", "--json");
        var text = Agent("leases");

        Assert.Equal(0, json.ExitCode);
        var rows = Json(json).GetProperty("leases").EnumerateArray().ToDictionary(l => l.GetProperty("containerId").GetString()!);
        Assert.Equal(("shop/pod-alive", "previous", "netns"), (rows["alive"].GetProperty("owner").GetString(), rows["alive"].GetProperty("boot").GetString(), rows["alive"].GetProperty("evidence").GetString()));
        Assert.Equal(("previous", "none"), (rows["dead"].GetProperty("boot").GetString(), rows["dead"].GetProperty("evidence").GetString()));
        Assert.Equal(("current", "10.64.0.4"), (rows["fresh"].GetProperty("boot").GetString(), rows["fresh"].GetProperty("address").GetString()));
        Assert.StartsWith("ADDRESS", text.Stdout);
        Assert.Contains("shop/pod-fresh", text.Stdout);
        Assert.Empty(Json(Agent("leases", "--json", "--network", "other")).GetProperty("leases").EnumerateArray());
    }

    [Fact]
    public void History_lists_changes_with_reason_and_actor_and_filters_them()
    {
        Add("a");
        Add("b");
        PluginRun.Run(Repo.Plugin, "DEL", Config(), "a", extraEnvironment: Env);

        var all = Json(Agent("history", "--json")).GetProperty("events").EnumerateArray().ToList();
        var one = Json(Agent("history", "--json", "--ip", "10.64.0.2")).GetProperty("events").EnumerateArray().ToList();
        var last = Json(Agent("history", "--json", "--limit", "1")).GetProperty("events").EnumerateArray().ToList();
        var recent = Json(Agent("history", "--json", "--since", "1h")).GetProperty("events").EnumerateArray().ToList();
        var future = Json(Agent("history", "--json", "--since", "2099-01-01T00:00:00Z")).GetProperty("events").EnumerateArray().ToList();
        var octal = Agent("history", "--ip", "10.64.0.02");

        Assert.Equal(["allocate/cni-add", "allocate/cni-add", "release/cni-del"], all.Select(e => $"{e.GetProperty("action").GetString()}/{e.GetProperty("reason").GetString()}"));
        Assert.All(all, e => Assert.Equal("berth", e.GetProperty("actor").GetString()));
        Assert.Equal(1, octal.ExitCode);
        Assert.Contains("--ip \"10.64.0.02\" is not an IP address", octal.Stderr);
        Assert.Equal(2, one.Count);
        Assert.Equal("release", Assert.Single(last).GetProperty("action").GetString());
        Assert.Equal(3, recent.Count);
        Assert.Empty(future);
        Assert.Equal(1, Agent("history", "--since", "yesterday-ish").ExitCode);
    }

    [Fact]
    public void Release_refuses_while_the_owner_lives_and_releases_when_forced_naming_the_operator()
    {
        var live = Live();
        Add("alive", live.Path);

        var refused = Agent("release", "10.64.0.2", "--network", "net1");
        var forced = Agent("release", "10.64.0.2", "--network", "net1", "--force");

        Assert.Equal(3, refused.ExitCode);
        Assert.Contains("alive", refused.Stderr);
        Assert.Equal(0, forced.ExitCode);
        Assert.Empty(Leased());
        var manual = Assert.Single(Json(Agent("history", "--json", "--ip", "10.64.0.2")).GetProperty("events").EnumerateArray(), e => e.GetProperty("reason").GetString() == "manual");
        Assert.Equal("alice (sudo)", manual.GetProperty("actor").GetString());
        Assert.StartsWith("forced", manual.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("10.64.0.300", "net1", null, 1)]
    [InlineData("10.64.0.2", "unknown-net", null, 1)]
    [InlineData("10.64.0.9", "net1", null, 0)]
    [InlineData("10.64.0.2", "net1", "someone-else", 3)]
    [InlineData("10.64.0.2", "net1", "shop/pod-other", 3)]
    [InlineData("10.64.0.2", "net1", "shop/pod-dead", 0)]
    [InlineData("10.64.0.2", "net1", "dead", 0)]
    public void Release_validates_before_it_acts(string address, string network, string? owner, int exit)
    {
        Add("dead");
        var args = new List<string> { "release", address, "--network", network };
        if (owner is not null) args.AddRange(["--owner", owner]);

        var result = Agent([.. args]);

        Assert.True(exit == result.ExitCode, result.ToString());
        var releasedIt = address == "10.64.0.2" && exit == 0;
        Assert.Equal(releasedIt ? [] : ["10.64.0.2"], Leased());
        if (address == "10.64.0.9") Assert.Contains("already free", result.Stdout);
    }

    [Fact]
    public void Release_dry_run_says_what_it_would_do_and_changes_nothing()
    {
        Add("dead");

        var result = Agent("release", "10.64.0.2", "--network", "net1", "--dry-run");

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("would release 10.64.0.2", result.Stdout);
        Assert.Equal(["10.64.0.2"], Leased());
    }

    [Fact]
    public async Task A_release_racing_a_del_leaves_one_release_and_no_error()
    {
        for (var i = 0; i < 8; i++)
        {
            Add($"race{i}");
            var address = $"10.64.0.{2 + i}";
            var release = Task.Run(() => Agent("release", address, "--network", "net1"));
            var del = Task.Run(() => PluginRun.Run(Repo.Plugin, "DEL", Config(), $"race{i}", extraEnvironment: Env));
            var (r, d) = (await release, await del);

            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(d.ExitCode == 0, d.ToString());
            var releases = SqliteCli.Column(Store, $"SELECT reason FROM history WHERE action = 'release' AND address = '{address}'");
            Assert.Single(releases);
            Assert.Contains(releases[0], new[] { "manual", "cni-del" });
            if (releases[0] == "cni-del") Assert.Contains("already free", r.Stdout);
        }
        Assert.Empty(Leased());
    }

    [Fact]
    public void Check_is_quiet_when_healthy_and_reports_full_ranges_stray_leases_and_earlier_boots()
    {
        var small = Config("""[[{"subnet":"10.65.0.0/29"}]]""");
        Add("x", config: small);
        var healthy = Agent("check");
        for (var i = 0; i < 4; i++) Add($"fill{i}", config: small);
        Add("moved", config: Config("""[[{"subnet":"10.66.0.0/29"}]]"""));
        File.WriteAllText(_dir.File("boot_id"), "boot-op-2\n");

        var sick = Agent("check", "--json");

        Assert.Equal(0, healthy.ExitCode);
        Assert.Contains("healthy", healthy.Stdout);
        Assert.Equal(1, sick.ExitCode);
        var findings = Json(sick).GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("kind").GetString()).ToList();
        Assert.False(Json(sick).GetProperty("healthy").GetBoolean());
        Assert.Equal(5, findings.Count(k => k == "outside-ranges"));
        Assert.Contains("previous-boot", findings);
        Assert.DoesNotContain("integrity", findings);
    }

    [Fact]
    public void Check_reports_a_full_range()
    {
        var small = Config("""[[{"subnet":"10.65.0.0/29"}]]""");
        for (var i = 0; i < 5; i++) Add($"fill{i}", config: small);

        var result = Agent("check", "--json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(Json(result).GetProperty("findings").EnumerateArray(), f => f.GetProperty("kind").GetString() == "range-full");
    }

    [Fact]
    public void Reconcile_json_lists_each_decision()
    {
        Add("dead");
        File.WriteAllText(_dir.File("boot_id"), "boot-op-2\n");

        var result = Agent("reconcile", "--json", "--dry-run");

        Assert.Equal(0, result.ExitCode);
        var decision = Assert.Single(Json(result).GetProperty("decisions").EnumerateArray());
        Assert.Equal(("release", "none", "10.64.0.2"), (decision.GetProperty("verdict").GetString(), decision.GetProperty("evidence").GetString(), decision.GetProperty("address").GetString()));
        Assert.Equal(["10.64.0.2"], Leased());
    }

    public void Dispose()
    {
        foreach (var ns in _namespaces) ns.Dispose();
        _dir.Dispose();
    }
}
