using System.Text.Json;

namespace Berth.BlackBox.HostAgent;

/// <summary>
/// One bad entry never stops the published agent: a guarded host-local directory with entries that are not
/// host-local's, a store with rows berth did not write, a recovery run with a narrower config than the service's.
/// Each bad entry is skipped with a warning naming it; everything else is done as if it were not there.
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    private readonly TempDir _dir = new();

    public HostileInputTests()
    {
        Directory.CreateDirectory(_dir.File("netns"));
        Boot("boot-hostile-1");
        Config("agent.json", $"[\"{Networks}\"]");
        Config("no-guardian.json", "[]");
    }

    private string Networks => _dir.File("networks");

    private string NetworkDir => Path.Combine(Networks, "cbr0");

    private string Store => _dir.File("berth/berth.db");

    private void Boot(string id) => File.WriteAllText(_dir.File("boot_id"), id + "\n");

    private void Config(string name, string dirs) => File.WriteAllText(_dir.File(name), $$"""
        {"runtimeSockets": [], "metricsAddress": "off", "gracePeriodSeconds": 0,
         "hostLocal": {"dirs": {{dirs}}, "netnsDirs": ["{{_dir.File("netns")}}"]} }
        """);

    private ExecResult Agent(string config, params string[] args) =>
        PluginRun.Agent(new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") }, [.. args, "--store", Store, "--config", _dir.File(config)]);

    private string HostLocalAdd(string containerId) => HostLocalPlugin.Add(HostLocalPlugin.Config(Networks), containerId);

    private static void AssertClean(ExecResult r, params int[] codes)
    {
        Assert.True(codes.Contains(r.ExitCode), r.ToString());
        Assert.DoesNotContain("Unhandled exception", r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void A_file_named_like_an_address_with_a_leading_zero_is_skipped_by_every_command_and_the_rest_is_guarded()
    {
        var live = HostLocalAdd("c-live");
        var gone = HostLocalAdd("c-gone");
        // The file that stopped the agent (FormatException from the address parser), and its cousins.
        foreach (var name in new[] { "10.77.0.09", "010.77.0.1", "10.77.00.1", "10.77.0.1.", "10.77.0.1\nx", "fe80::1%eth0" })
        {
            File.WriteAllText(Path.Combine(NetworkDir, name), "c-evil\r\neth0");
        }

        // Entries named like addresses that read as empty (a FIFO, a device like /dev/null) are no empty lease files.
        Exec.Must("mkfifo", Path.Combine(NetworkDir, "10.77.0.200"));
        Exec.Must("mknod", Path.Combine(NetworkDir, "10.77.0.201"), "c", "1", "3");

        // Recovery with no runtime in this boot: every real file is of an earlier boot.
        var recover = Agent("agent.json", "recover");
        AssertClean(recover, 0);
        Assert.Contains("10.77.0.09: not a host-local lease file", recover.Stderr);
        Assert.Contains("released 2 of 2", recover.Stdout);
        Assert.False(File.Exists(Path.Combine(NetworkDir, live)));
        Assert.False(File.Exists(Path.Combine(NetworkDir, gone)));
        // Nothing of what is not host-local's was touched.
        Assert.True(File.Exists(Path.Combine(NetworkDir, "10.77.0.09")));
        Assert.True(File.Exists(Path.Combine(NetworkDir, "10.77.0.1\nx")));
        Assert.Contains("10.77.0.200: a FIFO, not a lease file", recover.Stderr);
        Assert.Contains("10.77.0.201: a device, not a lease file", recover.Stderr);
        Assert.True(Path.Exists(Path.Combine(NetworkDir, "10.77.0.200")) && Path.Exists(Path.Combine(NetworkDir, "10.77.0.201")));
        // host-local itself blocks on such a FIFO in its ADD: gone before the next one.
        File.Delete(Path.Combine(NetworkDir, "10.77.0.200"));
        File.Delete(Path.Combine(NetworkDir, "10.77.0.201"));

        var again = HostLocalAdd("c-next");
        foreach (var command in new[] { new[] { "reconcile", "--dry-run" }, ["reconcile"], ["leases"], ["leases", "--json"] })
        {
            var r = Agent("agent.json", command);
            AssertClean(r, 0);
            Assert.Contains("10.77.0.09", r.Stderr + r.Stdout);
        }
        AssertClean(Agent("agent.json", "history"), 0);
        var check = Agent("agent.json", "check");
        AssertClean(check, 0, 1);
        Assert.Contains("10.77.0.09", check.Stdout);
        var leases = JsonDocument.Parse(Agent("agent.json", "leases", "--json").Stdout).RootElement.GetProperty("leases");
        Assert.Contains(leases.EnumerateArray(), l => l.GetProperty("address").GetString() == again);
    }

    [Fact]
    public void A_recovery_with_the_guardian_off_does_not_stand_for_the_services_recovery_of_host_locals_files()
    {
        var old = HostLocalAdd("c-old");
        // Seen in the first boot by the service's recovery, late (a runtime has pinned a pod): recorded, kept.
        File.WriteAllText(_dir.File("netns/cni-pod"), "");
        AssertClean(Agent("agent.json", "recover"), 0);
        Assert.True(File.Exists(Path.Combine(NetworkDir, old)));
        Boot("boot-hostile-2");
        File.Delete(_dir.File("netns/cni-pod"));

        // Someone runs recovery by hand with the guardian off: it sweeps berth's own store only.
        var narrow = Agent("no-guardian.json", "recover");
        AssertClean(narrow, 0);
        Assert.True(File.Exists(Path.Combine(NetworkDir, old)));

        // The real unit's run must still sweep host-local's directory in this boot.
        var full = Agent("agent.json", "recover");
        AssertClean(full, 0);
        Assert.DoesNotContain("nothing to do", full.Stdout);
        Assert.False(File.Exists(Path.Combine(NetworkDir, old)), full.ToString());

        // And now everything is done for this boot.
        var third = Agent("agent.json", "recover");
        Assert.Contains("nothing to do", third.Stdout);
    }

    [Fact]
    public void Rows_of_the_store_berth_did_not_write_are_skipped_with_a_warning_and_the_rest_is_listed()
    {
        Assert.Equal(0, Agent("no-guardian.json", "recover").ExitCode);
        var plugin = Configs.Json("""[[{"subnet":"10.79.0.0/29"}]]""", Path.GetDirectoryName(Store)!);
        Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", plugin, "c-good", netns: "/var/run/netns/x").ExitCode);
        // Rows as a damaged or hand-edited store may hold them: an address with a leading zero, garbage, a bad time.
        var edit = Exec.Run("sqlite3", [Store, """
            INSERT INTO leases SELECT network, X'040A4F0005', '10.79.0.05', range_set, subnet, 'c-bad1', ifname, netns, netns_inode, pod_namespace, pod_name, pod_uid, boot_id, since_boot_ns, created_at, origin FROM leases WHERE container_id = 'c-good';
            INSERT INTO leases SELECT network, X'040A4F0003', 'garbage', range_set, subnet, 'c-bad2', ifname, netns, netns_inode, pod_namespace, pod_name, pod_uid, boot_id, since_boot_ns, created_at, origin FROM leases WHERE container_id = 'c-good';
            INSERT INTO leases SELECT network, X'040A4F0004', '10.79.0.4', range_set, subnet, 'c-bad3', ifname, netns, netns_inode, pod_namespace, pod_name, pod_uid, boot_id, since_boot_ns, 'not a time', origin FROM leases WHERE container_id = 'c-good';
            UPDATE runs SET last = X'040A4F0005' WHERE first = X'040A4F0002';
            INSERT INTO history (at, boot_id, since_boot_ns, action, reason, actor, network, address, container_id, ifname) VALUES ('yesterday', 'b', 0, 'release', 'manual', 'x', 'net1', '10.79.0.6', 'c', 'eth0');
            """]);
        Assert.True(edit.ExitCode == 0, edit.ToString());

        var leases = Agent("no-guardian.json", "leases", "--json");
        AssertClean(leases, 0);
        Assert.Contains("not a row berth wrote", leases.Stderr);
        var rows = JsonDocument.Parse(leases.Stdout).RootElement.GetProperty("leases").EnumerateArray().ToList();
        Assert.Equal("c-good", Assert.Single(rows).GetProperty("containerId").GetString());

        AssertClean(Agent("no-guardian.json", "history"), 0);
        AssertClean(Agent("no-guardian.json", "reconcile", "--dry-run"), 0);
        AssertClean(Agent("no-guardian.json", "check"), 0, 1);
        Boot("boot-hostile-3");
        var recover = Agent("no-guardian.json", "recover");
        AssertClean(recover, 0);
        Assert.Contains("not a row berth wrote", recover.Stderr);
        // The bad rows still hold their addresses: the next ADD does not get one of them.
        var add = PluginRun.Run(Repo.Plugin, "ADD", plugin, "c-new", netns: "/var/run/netns/x");
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal("10.79.0.6/29", add.Addresses[0]);
    }

    public void Dispose() => _dir.Dispose();
}
