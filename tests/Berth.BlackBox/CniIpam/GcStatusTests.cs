
namespace Berth.BlackBox.CniIpam;

/// <summary>
/// GC and STATUS (CNI 1.1.0) as the published plugin answers them, one process per call: DispatcherTests has the
/// rules in process; these show the executable (and, under `make arm64-test`, the arm64 one) carries them.
/// </summary>
public sealed class GcStatusTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Store => _dir.File("data/berth.db");

    private string Config(string ranges = """[[{"subnet":"10.72.0.0/29"}]]""", string extra = "") =>
        Configs.Json(ranges, _dir.File("data"), version: "1.1.0", extra: extra);

    private ExecResult Add(string id, string? config = null) => PluginRun.Run(Repo.Plugin, "ADD", config ?? Config(), id, netns: "/var/run/netns/gc-" + id);

    [Fact]
    public void Gc_releases_every_attachment_not_listed_and_keeps_the_listed_ones()
    {
        foreach (var id in new[] { "keep", "drop1", "drop2" }) Assert.Equal(0, Add(id).ExitCode);
        var gc = Config(extra: ""","cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]""");

        var result = PluginRun.Run(Repo.Plugin, "GC", gc);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Stdout.Trim());
        Assert.Equal(["10.72.0.2 keep"], SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM leases"));
        Assert.Equal(["10.72.0.3 drop1", "10.72.0.4 drop2"],
            SqliteCli.Column(Store, "SELECT address || ' ' || container_id FROM history WHERE reason = 'cni-gc' ORDER BY id"));
    }

    [Fact]
    public void Gc_without_a_list_of_valid_attachments_is_refused_and_releases_nothing()
    {
        Assert.Equal(0, Add("keep").ExitCode);

        var result = PluginRun.Run(Repo.Plugin, "GC", Config());

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(7, result.ErrorCode);
        Assert.Equal(["keep"], SqliteCli.Column(Store, "SELECT container_id FROM leases"));
    }

    [Fact]
    public void Status_answers_ready_while_an_address_is_free_and_50_once_the_range_is_full()
    {
        // A /30 holds one address besides the gateway.
        var small = Config("""[[{"subnet":"10.72.1.0/30"}]]""");

        var ready = PluginRun.Run(Repo.Plugin, "STATUS", small);
        Assert.Equal(0, Add("only", small).ExitCode);
        var full = PluginRun.Run(Repo.Plugin, "STATUS", small);

        Assert.True(ready.ExitCode == 0, ready.ToString());
        Assert.Equal("", ready.Stdout.Trim());
        Assert.Equal(1, full.ExitCode);
        Assert.Equal(50, full.ErrorCode);
    }

    [Fact]
    public void Gc_and_status_are_refused_for_a_config_older_than_1_1_0()
    {
        var old = Configs.Json("""[[{"subnet":"10.72.2.0/29"}]]""", _dir.File("data"), version: "1.0.0");

        foreach (var verb in new[] { "GC", "STATUS" })
        {
            var result = PluginRun.Run(Repo.Plugin, verb, old);
            Assert.Equal(1, result.ExitCode);
            Assert.Equal(1, result.ErrorCode);
        }
    }

    public void Dispose() => _dir.Dispose();
}
