using System.Net;
using Berth.Shared.Leases;

namespace Berth.BlackBox.HostAgent;

/// <summary>Taking over a node from Debian's real host-local: its files become leases, nothing is handed out twice.</summary>
public sealed class ImportHostLocalTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string HostLocalDir => _dir.File("cni-networks");
    private string Store => _dir.File("data/berth.db");
    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };

    public ImportHostLocalTests() => File.WriteAllText(_dir.File("boot_id"), "boot-import\n");

    private string Ranges => """[[{"subnet":"10.67.0.0/28"}],[{"subnet":"fd67::/120"}]]""";

    private ExecResult HostLocalAdd(string id) => PluginRun.Run(Repo.HostLocal, "ADD",
        Configs.Json(Ranges, HostLocalDir).Replace("\"type\":\"berth\"", "\"type\":\"host-local\""), id, netns: "/var/run/netns/x");

    private ExecResult BerthAdd(string id) => PluginRun.Run(Repo.Plugin, "ADD", Configs.Json(Ranges, _dir.File("data")), id, netns: "/var/run/netns/x", extraEnvironment: Env);

    private ExecResult Import(params string[] extra) => PluginRun.Agent(Env, ["import-host-local", "--dir", HostLocalDir, "--store", Store, .. extra]);

    private IReadOnlyList<string?> Leased(string where = "1") => SqliteCli.Column(Store, $"SELECT address || ' ' || container_id || ' ' || ifname || ' ' || origin FROM leases WHERE {where} ORDER BY address_key");

    [Fact]
    public void Imported_addresses_are_never_handed_out_again_and_the_round_robin_carries_over()
    {
        var held = new[] { "a", "b", "c" }.Select(HostLocalAdd).ToList();
        Assert.All(held, r => Assert.True(r.ExitCode == 0, r.ToString()));
        PluginRun.Run(Repo.HostLocal, "DEL", Configs.Json(Ranges, HostLocalDir).Replace("\"type\":\"berth\"", "\"type\":\"host-local\""), "b", netns: "/var/run/netns/x");

        var import = Import();

        Assert.True(import.ExitCode == 0, import.ToString());
        Assert.Contains("imported 4, already held 0, conflicts 0", import.Stdout);
        Assert.Equal(["10.67.0.2 a eth0 import", "10.67.0.4 c eth0 import", "fd67::2 a eth0 import", "fd67::4 c eth0 import"], Leased());
        // host-local's last_reserved_ip says .4: berth continues after it, as host-local would have.
        var next = BerthAdd("d");
        Assert.Equal(["10.67.0.5/28", "fd67::5/120"], next.Addresses);
        var addresses = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var r = BerthAdd($"more{i}");
            if (r.ExitCode == 0) addresses.AddRange(r.Addresses.Select(a => a.Split('/')[0]));
        }
        Assert.DoesNotContain("10.67.0.2", addresses);
        Assert.DoesNotContain("10.67.0.4", addresses);
        Assert.Equal("import", SqliteCli.Column(Store, "SELECT reason FROM history WHERE address = '10.67.0.2' AND action = 'allocate'").Single());
        // berth also answers a re-ADD of an imported container with the addresses it already has.
        Assert.Equal(["10.67.0.2/28", "fd67::2/120"], BerthAdd("a").Addresses);
    }

    [Fact]
    public void A_second_import_adds_nothing()
    {
        HostLocalAdd("a");
        Import();
        var before = Leased();
        var history = SqliteCli.Column(Store, "SELECT count(*) FROM history");

        var again = Import();

        Assert.Contains("imported 0, already held 2, conflicts 0", again.Stdout);
        Assert.Equal(before, Leased());
        Assert.Equal(history, SqliteCli.Column(Store, "SELECT count(*) FROM history"));
    }

    [Fact]
    public void A_conflicting_entry_is_reported_and_never_overwritten()
    {
        BerthAdd("berth-owner");
        HostLocalAdd("hl-owner");

        var import = Import();

        Assert.Contains("conflicts 2", import.Stdout);
        Assert.Contains("berth gives it to container berth-owner", import.Stdout);
        Assert.Equal(["10.67.0.2 berth-owner eth0 cni-add", "fd67::2 berth-owner eth0 cni-add"], Leased());
    }

    [Fact]
    public void Old_files_with_only_the_container_id_and_a_dry_run()
    {
        Directory.CreateDirectory(Path.Combine(HostLocalDir, "net1"));
        File.WriteAllText(Path.Combine(HostLocalDir, "net1", "10.67.0.9"), "oldcontainer");
        File.WriteAllText(Path.Combine(HostLocalDir, "net1", "lock"), "");
        File.WriteAllText(Path.Combine(HostLocalDir, "net1", "10.67.0.10"), "bad id with spaces\r\neth0");
        BerthAdd("first");

        var dry = Import("--dry-run");
        var dryLeases = Leased();
        var real = Import("--network", "net1");

        Assert.Contains("would import 10.67.0.9 in network net1 for container oldcontainer (eth0)", dry.Stdout);
        Assert.Equal(2, dryLeases.Count);
        Assert.Contains("skipped: ", real.Stdout);
        Assert.Contains("10.67.0.9 oldcontainer eth0 import", Leased());
    }

    public void Dispose() => _dir.Dispose();
}
