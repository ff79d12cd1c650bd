
namespace Berth.BlackBox.HostAgent;

/// <summary>
/// Which commands may create a store, and what the commands that only read do on a read-only filesystem: the
/// published executables against real paths and a real read-only mount.
/// </summary>
public sealed class StoreAccessTests : IDisposable
{
    private readonly TempDir _dir = new();

    public StoreAccessTests()
    {
        File.WriteAllText(_dir.File("boot_id"), "boot-sa-1\n");
        File.WriteAllText(_dir.File("agent.json"), """{"runtimeSockets": [], "hostLocal": {"dirs": []}, "metricsAddress": "off"}""");
    }

    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };

    private ExecResult Agent(string store, params string[] args) => PluginRun.Agent(Env, [.. args, "--store", store, "--config", _dir.File("agent.json")]);

    [Theory]
    [InlineData("leases")]
    [InlineData("history")]
    [InlineData("check")]
    [InlineData("reconcile")]
    [InlineData("reconcile --dry-run")]
    [InlineData("release 10.0.0.2 --network net1")]
    public void An_operator_command_given_a_missing_store_says_so_and_creates_nothing(string command)
    {
        var typo = _dir.File("typo/berth.db");

        var result = Agent(typo, command.Split(' '));

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains($"no store at {typo}", result.Stderr);
        Assert.False(Directory.Exists(_dir.File("typo")));
    }

    [Fact]
    public void Recovery_on_a_node_that_never_had_a_store_creates_it_and_releases_nothing()
    {
        var store = _dir.File("fresh/berth.db");

        var result = Agent(store, "recover");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("released 0 of 0", result.Stdout);
        Assert.True(File.Exists(store));
        Assert.Equal(0, Agent(store, "check").ExitCode);
    }

    [Fact]
    public void On_a_read_only_filesystem_the_reading_commands_read_and_an_add_names_the_cause()
    {
        var mount = _dir.File("ro");
        Directory.CreateDirectory(mount);
        Exec.Must("mount", "-t", "tmpfs", "-o", "size=16m", "berth-test-ro", mount);
        try
        {
            var config = Configs.Json("""[[{"subnet":"10.69.0.0/24"}]]""", mount);
            Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", config, "c1", netns: "/var/run/netns/c1", extraEnvironment: Env).ExitCode);
            Exec.Must("mount", "-o", "remount,ro", mount);
            var store = Path.Combine(mount, "berth.db");

            var leases = Agent(store, "leases", "--json");
            var history = Agent(store, "history");
            var check = Agent(store, "check");
            var add = PluginRun.Run(Repo.Plugin, "ADD", config, "c2", netns: "/var/run/netns/c2", extraEnvironment: Env);

            Assert.True(leases.ExitCode == 0, leases.ToString());
            Assert.Contains("10.69.0.2", leases.Stdout);
            Assert.True(history.ExitCode == 0, history.ToString());
            Assert.Contains("cni-add", history.Stdout);
            Assert.True(check.ExitCode == 0, check.ToString());
            Assert.Equal(5, add.ErrorCode);
            Assert.Contains("read-only filesystem", add.Json.GetProperty("msg").GetString());
        }
        finally
        {
            Exec.Must("umount", mount);
        }
    }

    public void Dispose() => _dir.Dispose();
}
