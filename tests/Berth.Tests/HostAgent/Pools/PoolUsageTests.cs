using Berth.HostAgent.Metrics;
using Berth.HostAgent.Operator;
using Berth.HostAgent.Pools;
using Berth.Shared.Leases;
using Berth.Tests.Support;

namespace Berth.Tests.HostAgent.Pools;

/// <summary>The size and use of guarded host-local networks, from the node's CNI configs and host-local's own directories.</summary>
public sealed class PoolUsageTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _conf;
    private readonly string _data;

    public PoolUsageTests()
    {
        _conf = Directory.CreateDirectory(_dir.File("net.d")).FullName;
        _data = Directory.CreateDirectory(_dir.File("networks")).FullName;
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>host-local's directory of a network holding files for these addresses, plus its lock and cursor.</summary>
    private void Held(string network, params string[] addresses)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_data, network)).FullName;
        File.WriteAllText(Path.Combine(dir, "lock"), "");
        File.WriteAllText(Path.Combine(dir, "last_reserved_ip.0"), addresses.FirstOrDefault() ?? "");
        foreach (var a in addresses) File.WriteAllText(Path.Combine(dir, a), $"c-{a.Replace(':', '-')}\r\neth0");
    }

    private void Conflist(string file, string network, string ipam) => File.WriteAllText(Path.Combine(_conf, file), $$$"""
        {"cniVersion": "1.0.0", "name": "{{{network}}}", "plugins": [
          {"type": "bridge", "bridge": "h24br0", "ipam": {{{ipam}}}},
          {"type": "portmap", "capabilities": {"portMappings": true}}]}
        """);

    private PoolReport Measure() => PoolUsage.Measure([_data], [_conf]);

    [Fact]
    public void A_guarded_network_gets_the_size_of_its_config_and_the_use_of_its_directory()
    {
        Conflist("10-net.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "ranges": [[{"subnet": "10.70.0.0/28"}], [{"subnet": "fd70::/120", "rangeStart": "fd70::10", "rangeEnd": "fd70::1f"}]]}""");
        Held("net1", "10.70.0.2", "10.70.0.3", "10.70.0.4", "fd70::10", "10.99.0.1");
        // A name that is an address in another spelling is not host-local's file.
        File.WriteAllText(Path.Combine(_data, "net1", "010.070.000.005"), "x\r\neth0");

        var report = Measure();

        Assert.Empty(report.Unsized);
        Assert.Equal(
            [("10.70.0.1-10.70.0.14", 13ul, 3L), ("fd70::10-fd70::1f", 16ul, 1L), ("", 0ul, 1L)],
            report.Ranges.Select(r => (r.Range?.ToString() ?? "", (ulong)(r.Range?.Capacity ?? 0), r.Used)));
        Assert.All(report.Ranges, r => Assert.Equal(("host-local:" + _data, "net1"), (r.Store, r.Network)));
        Assert.Equal([0, 1, null], report.Ranges.Select(r => r.RangeSet));
    }

    [Fact]
    public void UsePodCidr_is_read_from_flannels_subnet_file_and_its_absence_is_the_reason_given()
    {
        var subnetFile = _dir.File("subnet.env");
        Conflist("10-canal.conflist", "k8s-pod-network", $$"""{"type": "host-local", "subnetFile": "{{subnetFile}}", "ranges": [[{"subnet": "usePodCidr"}]]}""");
        Held("k8s-pod-network", "10.71.3.2", "10.71.3.9");

        var before = PoolUsage.Measure([_data], [_conf]);
        File.WriteAllText(subnetFile, "FLANNEL_NETWORK=10.71.0.0/16\nFLANNEL_SUBNET=10.71.3.1/24\nFLANNEL_MTU=1450\n");
        var after = PoolUsage.Measure([_data], [_conf]);

        // dataDir defaults to host-local's /var/lib/cni/networks, not this test's directory: no config names it here.
        Assert.Contains("names network k8s-pod-network with host-local ipam and dataDir " + _data, Assert.Single(before.Unsized).Why);
        File.WriteAllText(Path.Combine(_conf, "10-canal.conflist"), File.ReadAllText(Path.Combine(_conf, "10-canal.conflist")).Replace("\"type\": \"host-local\"", $"\"type\": \"host-local\", \"dataDir\": \"{_data}/\""));
        File.Delete(subnetFile);
        var missing = PoolUsage.Measure([_data], [_conf]);
        File.WriteAllText(subnetFile, "FLANNEL_SUBNET=10.71.3.1/24\n");
        var found = PoolUsage.Measure([_data], [_conf]);

        Assert.Single(after.Unsized);
        var why = Assert.Single(missing.Unsized).Why;
        Assert.Contains("10-canal.conflist", why);
        Assert.Contains($"flannel's subnet file {subnetFile} does not exist", why);
        Assert.Equal(2, Assert.Single(missing.Ranges).Used);
        Assert.Null(Assert.Single(missing.Ranges).Range);
        Assert.Empty(found.Unsized);
        var range = Assert.Single(found.Ranges);
        Assert.Equal(("10.71.3.1-10.71.3.254", 2L), (range.Range!.ToString(), range.Used));
        Assert.Equal(253, (int)range.Range.Capacity);
    }

    [Fact]
    public void Flannels_plugin_delegates_to_host_local_with_the_subnets_of_its_subnet_file()
    {
        var subnetFile = _dir.File("subnet.env");
        // k3s's conflist: flannel with no ipam section; its delegate gets host-local (in this test's dataDir).
        File.WriteAllText(Path.Combine(_conf, "10-flannel.conflist"), $$$"""
            {"name": "cbr0", "cniVersion": "1.0.0", "plugins": [
              {"type": "flannel", "subnetFile": "{{{subnetFile}}}", "ipam": {"dataDir": "{{{_data}}}"}, "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
              {"type": "portmap", "capabilities": {"portMappings": true}}]}
            """);
        File.WriteAllText(Path.Combine(_conf, "20-flannel-berth.conflist"), $$$"""
            {"name": "berthnet", "cniVersion": "1.0.0", "plugins": [{"type": "flannel", "subnetFile": "{{{subnetFile}}}", "ipam": {"type": "berth", "dataDir": "{{{_data}}}"}}]}
            """);
        Held("cbr0", "10.81.7.2", "fd81:0:0:7::2");
        Held("berthnet", "10.81.7.3");

        var missing = Measure();
        File.WriteAllText(subnetFile, "FLANNEL_NETWORK=10.81.0.0/16\nFLANNEL_SUBNET=10.81.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
        var v4 = Measure();
        File.AppendAllText(subnetFile, "FLANNEL_IPV6_SUBNET=fd81:0:0:7::1/64\n");
        var dual = Measure();

        Assert.Contains($"flannel's subnet file {subnetFile} does not exist", Assert.Single(missing.Unsized, u => u.Network == "cbr0").Why);
        // berthnet's flannel delegates to berth: not a host-local network, so no config describes its directory.
        Assert.Contains("no CNI config", Assert.Single(v4.Unsized).Why);
        Assert.Equal([("cbr0", "10.81.7.1-10.81.7.254", 1L), ("cbr0", "", 1L)],
            v4.Ranges.Where(r => r.Network == "cbr0").Select(r => (r.Network, r.Range?.ToString() ?? "", r.Used)));
        Assert.Equal([("10.81.7.1-10.81.7.254", 0), ("fd81:0:0:7::1-fd81::7:ffff:ffff:ffff:ffff", 1)],
            dual.Ranges.Where(r => r.Network == "cbr0").Select(r => (r.Range!.ToString(), r.RangeSet!.Value)));
    }

    [Fact]
    public void A_network_no_config_names_is_exported_with_used_only_and_says_why()
    {
        Held("lost", "10.72.0.2", "10.72.0.3");
        Conflist("10-other.conflist", "other", $$"""{"type": "berth", "ranges": [[{"subnet": "10.72.0.0/24"}]]}""");

        var report = Measure();

        var only = Assert.Single(report.Ranges);
        Assert.Equal(("lost", null, 2L), (only.Network, only.Range, only.Used));
        Assert.Contains("no CNI config in " + _conf + " names network lost", Assert.Single(report.Unsized).Why);
    }

    [Fact]
    public void The_first_file_by_name_describes_a_network_as_the_runtimes_cni_library_reads_them()
    {
        Held("net1", "10.73.0.2");
        Conflist("20-late.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "ranges": [[{"subnet": "10.73.0.0/24"}]]}""");
        File.WriteAllText(Path.Combine(_conf, "10-early.conf"), $$$"""{"cniVersion": "0.4.0", "name": "net1", "type": "bridge", "ipam": {"type": "host-local", "dataDir": "{{{_data}}}", "subnet": "10.73.0.0/28"}}""");
        File.WriteAllText(Path.Combine(_conf, "05-ignored.txt"), "not a config name");

        var report = Measure();

        Assert.Equal("10.73.0.1-10.73.0.14", Assert.Single(report.Ranges).Range!.ToString());
        Assert.Contains(report.Warnings, w => w.Contains("20-late.conflist") && w.Contains("10-early.conf already"));
        Assert.DoesNotContain(report.Warnings, w => w.Contains("05-ignored"));
    }

    [Fact]
    public async Task Hostile_configs_are_skipped_with_a_warning_and_never_stop_the_good_one()
    {
        Held("net1", "10.74.0.2");
        Conflist("50-good.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "ranges": [[{"subnet": "10.74.0.0/29"}]]}""");
        var bad = new Dictionary<string, byte[]>
        {
            ["01-garbage.conf"] = "{\"name\": "u8.ToArray(),
            ["02-binary.conf"] = [0xff, 0xfe, 0x00, 0x7b],
            ["03-array.conflist"] = "[1, 2]"u8.ToArray(),
            ["04-noname.conflist"] = """{"plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]}"""u8.ToArray(),
            ["05-badname.conflist"] = """{"name": "../../etc", "plugins": []}"""u8.ToArray(),
            ["06-types.conflist"] = """{"name": "x", "plugins": [1, "a", {"ipam": "host-local"}, {"ipam": {"type": 5}}, {"ipam": {"type": "host-local", "dataDir": 7}}]}"""u8.ToArray(),
            ["07-plugins-object.conflist"] = """{"name": "y", "plugins": {"type": "bridge"}}"""u8.ToArray(),
            ["08-bad-range.conflist"] = """{"name": "net2", "plugins": [{"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.74.0.0/33"}]]}}]}"""u8.ToArray(),
            ["09-deep.conf"] = System.Text.Encoding.ASCII.GetBytes(new string('[', 5000)),
            ["10-huge.conf"] = new byte[(1 << 20) + 10],
        };
        foreach (var (name, bytes) in bad) File.WriteAllBytes(Path.Combine(_conf, name), bytes);
        Directory.CreateDirectory(Path.Combine(_conf, "11-dir.conf"));
        File.CreateSymbolicLink(Path.Combine(_conf, "12-zero.conf"), "/dev/zero");
        File.CreateSymbolicLink(Path.Combine(_conf, "13-dangling.conf"), _dir.File("nowhere"));
        Exec.Must("mkfifo", Path.Combine(_conf, "14-fifo.conf"));

        // A FIFO nobody writes would block a plain open forever: the reading must come back, and soon.
        var report = await Task.Run(Measure).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal("10.74.0.1-10.74.0.6", Assert.Single(report.Ranges).Range!.ToString());
        foreach (var name in new[] { "01-garbage", "02-binary", "03-array", "04-noname", "05-badname", "09-deep", "10-huge", "12-zero", "14-fifo" })
        {
            Assert.Contains(report.Warnings, w => w.Contains(name) && w.EndsWith("skipped", StringComparison.Ordinal));
        }
        Assert.Contains(report.Warnings, w => w.Contains("06-types") && w.Contains("dataDir"));
        Assert.Contains(report.Warnings, w => w.Contains("12-zero") && w.Contains("not a regular file"));
    }

    [Fact]
    public async Task A_subnet_file_that_is_not_a_regular_file_is_a_reason_not_a_hang()
    {
        var subnetFile = _dir.File("subnet.env");
        Exec.Must("mkfifo", subnetFile);
        Conflist("10-canal.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "subnetFile": "{{subnetFile}}", "ranges": [[{"subnet": "usePodCidr"}]]}""");
        Held("net1", "10.75.0.2");

        var report = await Task.Run(Measure).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Contains("is not a regular file", Assert.Single(report.Unsized).Why);
    }

    [Fact]
    public void The_metrics_page_shows_guarded_ranges_beside_berths_with_their_store()
    {
        Conflist("10-net.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "ranges": [[{"subnet": "10.76.0.0/29"}]]}""");
        Held("net1", "10.76.0.2", "10.76.0.3");
        Held("lost", "10.77.0.2");
        var clock = new FakeBootClock("boot-0");
        using var store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(clock, TimeProvider.System) { Create = true });
        foreach (var (address, boot) in new[] { ("10.76.0.2", "boot-0"), ("10.76.0.4", "boot-0"), ("10.76.0.3", "boot-1") })
        {
            // The store stamps a sighting with the boot its clock is in.
            clock.BootId = boot;
            store.Write(tx => tx.SeeGuardedFile(_data, "net1", System.Net.IPAddress.Parse(address), "c" + address, "eth0"));
        }

        var page = MetricsText.Render(store, clock, new DaemonFigures(null, null, 0, 0, true), Measure().Ranges);

        Assert.Contains($"berth_range_addresses{{store=\"host-local:{_data}\",network=\"net1\",range_set=\"0\",range=\"10.76.0.1-10.76.0.6\"}} 5\n", page);
        Assert.Contains($"berth_range_leased{{store=\"host-local:{_data}\",network=\"net1\",range_set=\"0\",range=\"10.76.0.1-10.76.0.6\"}} 2\n", page);
        Assert.Contains($"berth_range_leased{{store=\"host-local:{_data}\",network=\"lost\"}} 1\n", page);
        Assert.DoesNotContain("network=\"lost\",range", page);
        Assert.DoesNotContain("berth_range_addresses{store=\"host-local:" + _data + "\",network=\"lost\"", page);
        Assert.Contains("berth_leases{store=\"berth\",boot=\"previous\"} 0\n", page);
        Assert.Contains($"berth_leases{{store=\"host-local:{_data}\",boot=\"current\"}} 1\n", page);
        Assert.Contains($"berth_leases{{store=\"host-local:{_data}\",boot=\"previous\"}} 2\n", page);
        Assert.DoesNotContain("berth_reconcile_last_success_timestamp_seconds", page);
    }

    [Fact]
    public void Check_finds_a_full_guarded_range_and_notes_a_network_without_a_size()
    {
        Conflist("10-net.conflist", "net1", $$"""{"type": "host-local", "dataDir": "{{_data}}", "ranges": [[{"subnet": "10.78.0.0/29"}]]}""");
        Held("net1", "10.78.0.2", "10.78.0.3", "10.78.0.4", "10.78.0.5", "10.78.0.6");
        Held("lost", "10.79.0.2");
        File.WriteAllText(Path.Combine(_conf, "20-broken.conflist"), "{");
        using var store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(new FakeBootClock("boot-1"), TimeProvider.System) { Create = true });

        var findings = HealthCheck.Run(store, new FakeBootClock("boot-1"), [_data], [_conf]);

        var full = Assert.Single(findings, f => f.Kind == "range-full");
        Assert.Equal($"host-local network net1 in {_data} range set 0 (10.78.0.1-10.78.0.6) is full: 5 of 5", full.Message);
        Assert.False(full.IsNote);
        var unsized = Assert.Single(findings, f => f.Kind == "host-local-size-unknown");
        Assert.True(unsized.IsNote);
        Assert.Contains("network lost", unsized.Message);
        Assert.True(Assert.Single(findings, f => f.Kind == "cni-config-skipped").IsNote);
        Assert.DoesNotContain(HealthCheck.Run(store, new FakeBootClock("boot-1"), [_data]), f => f.Kind is "range-full" or "host-local-size-unknown");
    }
}
