
namespace Berth.BlackBox.HostAgent;

/// <summary>`berth-agent recover` as the published executable, on leases made by real ADDs for real namespaces.</summary>
public sealed class RecoverTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<Netns> _namespaces = [];

    private string BootFile => _dir.File("boot_id");
    private string Store => _dir.File("data/berth.db");
    private string Config => Configs.Json("""[[{"subnet":"10.61.0.0/24"}]]""", _dir.File("data"));
    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = BootFile };

    private ExecResult Add(string id, Netns ns) => PluginRun.Run(Repo.Plugin, "ADD", Config, id, netns: ns.Path,
        cniArgs: $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{id}", extraEnvironment: Env);

    /// <summary>The agent with this test's config (no runtime, no host-local directories) unless the test gives one.</summary>
    private ExecResult AgentRun(string[] args)
    {
        if (args.Contains("--config") || args.Contains("--no-such-option")) return PluginRun.Agent(Env, args);
        File.WriteAllText(_dir.File("quiet.json"), QuietConfig);
        return PluginRun.Agent(Env, [.. args, "--config", _dir.File("quiet.json")]);
    }

    private const string QuietConfig = "{\"runtimeSockets\": [], \"hostLocal\": {\"dirs\": []}}";

    private Netns Namespace()
    {
        var ns = new Netns();
        _namespaces.Add(ns);
        return ns;
    }

    private string[] LeasedAddresses() => Exec.Must("sqlite3", Store, "SELECT address FROM leases ORDER BY address_key").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Recover_after_a_fake_reboot_releases_exactly_the_leases_whose_namespace_is_gone()
    {
        File.WriteAllText(BootFile, "boot-before\n");
        var namespaces = Enumerable.Range(0, 4).Select(_ => Namespace()).ToList();
        for (var i = 0; i < 4; i++) Assert.Equal(0, Add($"c{i}", namespaces[i]).ExitCode);
        namespaces[0].Dispose();
        namespaces[2].Dispose();
        File.WriteAllText(BootFile, "boot-after\n");

        var first = AgentRun(["recover", "--store", Store]);
        var second = AgentRun(["recover", "--store", Store]);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("released 2 of 4 earlier-boot leases", first.Stdout);
        Assert.Equal(["10.61.0.3", "10.61.0.5"], LeasedAddresses());
        Assert.Equal("2", Exec.Must("sqlite3", Store, "SELECT count(*) FROM history WHERE reason = 'boot-recovery'").Trim());
        Assert.Equal(0, second.ExitCode);
        Assert.Contains("already ran for boot boot-after", second.Stdout);
        Assert.Equal(["10.61.0.3", "10.61.0.5"], LeasedAddresses());
        var next = Add("new", Namespace());
        Assert.Equal(0, next.ExitCode);
        Assert.Equal(["10.61.0.6/24"], next.Addresses);
    }

    [Fact]
    public void Recover_with_a_damaged_store_fails_with_a_message_naming_it_and_leaves_it_alone()
    {
        Directory.CreateDirectory(_dir.File("data"));
        File.WriteAllText(Store, "this is not a database, it is a damaged one");
        File.WriteAllText(BootFile, "boot-x\n");

        var result = AgentRun(["recover", "--store", Store]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(Store, result.Stderr);
        Assert.Equal("this is not a database, it is a damaged one", File.ReadAllText(Store));
    }

    [Fact]
    public void Usage_errors_exit_2_and_an_invalid_config_names_the_key()
    {
        File.WriteAllText(_dir.File("agent.json"), """{"intervalSeconds": "often"}""");

        var usage = AgentRun(["recover", "--no-such-option"]);
        var config = AgentRun(["recover", "--store", Store, "--config", _dir.File("agent.json")]);

        Assert.Equal(2, usage.ExitCode);
        Assert.Equal(1, config.ExitCode);
        Assert.Contains("\"intervalSeconds\"", config.Stderr);
        Assert.False(File.Exists(Store));
    }

    public void Dispose()
    {
        foreach (var ns in _namespaces) ns.Dispose();
        _dir.Dispose();
    }
}
