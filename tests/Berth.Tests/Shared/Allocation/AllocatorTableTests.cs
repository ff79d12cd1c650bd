using System.Net;
using Berth.Shared.Allocation;
using Berth.Shared.Cni;
using Berth.Shared.Config;
using Berth.Shared.Leases;
using Berth.Tests.Support;

namespace Berth.Tests.Shared.Allocation;

/// <summary>
/// The allocator's choices as tables in the manner of host-local's allocator tests: ranges, addresses already
/// taken, the round-robin cursor, and the address expected. Run once against the in-memory fake and once
/// against the real SQLite store (the derived classes at the end of the file).
/// </summary>
public abstract class AllocatorTableTests
{
    protected readonly FakeBootClock Clock = new("boot-now");
    protected readonly FakeNetnsProbe Netns = new();

    protected abstract T Run<T>(Func<ILeaseTransaction, T> work);

    private Allocator AllocatorFor(ILeaseTransaction tx) => new(tx, Clock, TimeProvider.System, Netns);

    protected IReadOnlyList<Lease> Add(IpamConfig config, string containerId, string ifName = "eth0", string netns = "/var/run/netns/x") =>
        Run(tx => AllocatorFor(tx).Allocate(config, new Attachment("net1", containerId, ifName, netns)).Select(a => a.Lease).ToList());

    /// <summary>Leases an address directly, as an earlier ADD (possibly in another boot) would have.</summary>
    protected void Taken(string address, string bootId = "boot-now", string netns = "", ulong? inode = null, int rangeSet = 0, string? owner = null) =>
        Run(tx =>
        {
            var ip = IPAddress.Parse(address);
            tx.Add(new Lease("net1", ip, rangeSet, "n/a", owner ?? "taken-" + address.Replace(':', '_'), "eth0", netns, inode, null, null, null, bootId,
                TimeSpan.Zero, DateTimeOffset.UnixEpoch, Reasons.CniAdd), new Change(Reasons.CniAdd, "test"));
            return 0;
        });

    protected void Cursor(string address, int rangeSet = 0) => Run(tx =>
    {
        tx.SetCursor("net1", rangeSet, IPAddress.Parse(address));
        return 0;
    });

    public static TheoryData<string, string[], string?, string> Tables => new()
    {
        // ranges, taken, cursor (last reserved), expected
        { """[[{"subnet":"10.0.0.0/24"}]]""", [], null, "10.0.0.2" },
        { """[[{"subnet":"10.0.0.0/24"}]]""", [], "10.0.0.2", "10.0.0.3" },
        { """[[{"subnet":"10.0.0.0/24"}]]""", ["10.0.0.2", "10.0.0.3"], null, "10.0.0.4" },
        { """[[{"subnet":"10.0.0.0/24"}]]""", ["10.0.0.3", "10.0.0.4", "10.0.0.5"], "10.0.0.2", "10.0.0.6" },
        // the cursor at the end wraps round; the gateway (.1) is skipped
        { """[[{"subnet":"10.0.0.0/24"}]]""", [], "10.0.0.254", "10.0.0.2" },
        // a cursor outside every range (the config changed) restarts at the first range's start
        { """[[{"subnet":"10.0.0.0/24"}]]""", [], "10.9.9.9", "10.0.0.2" },
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.20"}]]""", [], null, "10.0.0.10" },
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.20"}]]""", [], "10.0.0.20", "10.0.0.10" },
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.20","gateway":"10.0.0.10"}]]""", [], null, "10.0.0.11" },
        { """[[{"subnet":"10.0.0.0/24","gateway":"10.0.0.5"}]]""", ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], null, "10.0.0.6" },
        // several ranges in one set: the end of one leads to the start of the next, the last back to the first
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.2","rangeEnd":"10.0.0.3"},{"subnet":"10.0.1.0/24","rangeStart":"10.0.1.2","rangeEnd":"10.0.1.3"}]]""", [], "10.0.0.3", "10.0.1.2" },
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.2","rangeEnd":"10.0.0.3"},{"subnet":"10.0.1.0/24","rangeStart":"10.0.1.2","rangeEnd":"10.0.1.3"}]]""", [], "10.0.1.3", "10.0.0.2" },
        { """[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.2","rangeEnd":"10.0.0.3"},{"subnet":"10.0.1.0/24","rangeStart":"10.0.1.2","rangeEnd":"10.0.1.3"}]]""", ["10.0.1.2", "10.0.1.3"], "10.0.0.3", "10.0.0.2" },
        // wrap within one range: everything after the cursor taken, the one before it free
        { """[[{"subnet":"10.0.0.0/29"}]]""", ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"], "10.0.0.3", "10.0.0.3" },
        { """[[{"subnet":"10.0.0.0/29"}]]""", ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"], "10.0.0.3", "10.0.0.2" },
        // IPv6: no broadcast, so the last address is handed out
        { """[[{"subnet":"fd00::/120"}]]""", [], null, "fd00::2" },
        { """[[{"subnet":"fd00::/120"}]]""", [], "fd00::fe", "fd00::ff" },
        { """[[{"subnet":"fd00::/120"}]]""", [], "fd00::ff", "fd00::2" },
        // a /64 is walked by arithmetic, never enumerated
        { """[[{"subnet":"fd00:1::/64"}]]""", [], "fd00:1::ffff:ffff:ffff:fffe", "fd00:1::ffff:ffff:ffff:ffff" },
        { """[[{"subnet":"fd00:1::/64"}]]""", ["fd00:1::ffff:ffff:ffff:ffff", "fd00:1::2"], "fd00:1::ffff:ffff:ffff:fffe", "fd00:1::3" },
    };

    [Theory]
    [MemberData(nameof(Tables))]
    public void Allocate_picks_the_address_host_local_would(string ranges, string[] taken, string? cursor, string expected)
    {
        foreach (var address in taken) Taken(address);
        if (cursor is not null) Cursor(cursor);

        var leases = Add(ParsedConfig.Ipam(ranges), "c1");

        Assert.Equal(expected, Assert.Single(leases).Address.ToString());
        Assert.Equal(expected, Run(tx => tx.Cursor("net1", 0))!.ToString());
        Assert.Equal("c1", Run(tx => tx.Holder("net1", IPAddress.Parse(expected)))!.ContainerId);
    }

    [Fact]
    public void Allocate_in_a_full_range_fails_with_100_and_counts_the_leases()
    {
        foreach (var a in new[] { "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6" }) Taken(a);

        var e = Assert.Throws<CniException>(() => Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/29"}]]"""), "c1"));

        Assert.Equal(ErrorCodes.RangeExhausted, e.Code);
        Assert.Contains("5 leases, 0 from earlier boots", e.Message);
    }

    [Fact]
    public void Allocate_gives_one_address_per_range_set_for_dual_stack()
    {
        var leases = Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]"""), "c1");

        Assert.Equal(["10.0.0.2", "fd00::2"], leases.Select(l => l.Address.ToString()));
        Assert.Equal([0, 1], leases.Select(l => l.RangeSet));
    }

    [Fact]
    public void Allocate_again_for_the_same_attachment_returns_what_it_holds()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]""");
        var first = Add(config, "c1");
        Add(config, "c2");

        var again = Add(config, "c1");

        Assert.Equal(first.Select(l => l.Address), again.Select(l => l.Address));
        Assert.Equal(4, Run(tx => tx.Leases("net1").Count));
    }

    [Fact]
    public void Allocate_for_another_ifname_of_the_same_container_gets_another_address()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""");

        var eth0 = Add(config, "c1", "eth0");
        var net1 = Add(config, "c1", "net1");

        Assert.NotEqual(eth0[0].Address, net1[0].Address);
    }

    [Fact]
    public void Allocate_gives_the_requested_address_and_moves_the_cursor_there()
    {
        var leases = Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""", "IgnoreUnknown=1;IP=10.0.0.77"), "c1");

        Assert.Equal("10.0.0.77", leases[0].Address.ToString());
        Assert.Equal("10.0.0.78", Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]"""), "c2")[0].Address.ToString());
    }

    [Fact]
    public void Allocate_refuses_a_requested_address_held_by_another_and_names_the_holder()
    {
        Taken("10.0.0.77", owner: "holder-container");

        var e = Assert.Throws<CniException>(() => Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""", "IP=10.0.0.77"), "c1"));

        Assert.Equal(ErrorCodes.AddressUnavailable, e.Code);
        Assert.Contains("holder-container", e.Message);
    }

    [Theory]
    [InlineData("IP=10.0.0.1", "gateway")]
    [InlineData("IP=10.5.0.9", "cannot be given")]
    [InlineData("IP=10.0.0.7,10.0.0.8", "different range set")]
    public void Allocate_refuses_a_requested_address_that_cannot_be_given(string cniArgs, string why)
    {
        var e = Assert.Throws<CniException>(() => Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""", cniArgs), "c1"));

        Assert.Equal(ErrorCodes.AddressUnavailable, e.Code);
        Assert.Contains(why, e.Message);
        Assert.Empty(Run(tx => tx.Leases("net1")));
    }

    [Fact]
    public void Allocate_takes_args_ips_over_cni_args_ip()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""", "IP=10.0.0.50", extra: ""","args":{"cni":{"ips":["10.0.0.60"]}}""");

        Assert.Equal("10.0.0.60", Add(config, "c1")[0].Address.ToString());
    }

    [Fact]
    public void Allocate_failing_in_the_second_range_set_leases_nothing()
    {
        Taken("fd00::2", rangeSet: 1);
        Taken("fd00::3", rangeSet: 1);
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/126"}]]""");

        Assert.Throws<CniException>(() => Add(config, "c1"));

        Assert.Null(Run(tx => tx.Holder("net1", IPAddress.Parse("10.0.0.2"))));
    }

    [Fact]
    public void A_full_range_reclaims_earlier_boot_leases_whose_netns_is_gone()
    {
        Taken("10.0.0.2", bootId: "boot-old", netns: "/var/run/netns/gone", inode: 11);
        Taken("10.0.0.3", bootId: "boot-old", netns: "/var/run/netns/alive", inode: 12);
        Taken("10.0.0.4", bootId: "boot-old", netns: "/var/run/netns/reused", inode: 13);
        Taken("10.0.0.5", bootId: "boot-now", netns: "/var/run/netns/gone-too", inode: 14);
        Taken("10.0.0.6", bootId: "boot-now");
        Netns.Namespaces["/var/run/netns/alive"] = 12;
        Netns.Namespaces["/var/run/netns/reused"] = 99;

        var leases = Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/29"}]]"""), "c1");

        // .2 (netns gone) and .4 (path now names another namespace) are reclaimed; .3 lives; this boot's are kept.
        Assert.Equal("10.0.0.2", leases[0].Address.ToString());
        Assert.Null(Run(tx => tx.Holder("net1", IPAddress.Parse("10.0.0.4"))));
        Assert.Equal(["10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"], Run(tx => tx.Leases("net1")).Select(l => l.Address.ToString()));
    }

    [Fact]
    public void A_full_range_with_only_live_or_current_leases_still_fails()
    {
        Taken("10.0.0.2", bootId: "boot-old", netns: "/var/run/netns/alive", inode: 12);
        foreach (var a in new[] { "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6" }) Taken(a, netns: "/var/run/netns/gone");
        Netns.Namespaces["/var/run/netns/alive"] = 12;

        var e = Assert.Throws<CniException>(() => Add(ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/29"}]]"""), "c1"));

        Assert.Equal(ErrorCodes.RangeExhausted, e.Code);
        Assert.Contains("5 leases, 1 from earlier boots", e.Message);
    }

    [Fact]
    public void Release_frees_every_address_of_the_attachment_and_only_those()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]""");
        Add(config, "c1");
        Add(config, "c2");

        var released = Run(tx => AllocatorFor(tx).Release("net1", "c1", "eth0", Reasons.CniDel));
        var again = Run(tx => AllocatorFor(tx).Release("net1", "c1", "eth0", Reasons.CniDel));

        Assert.Equal(2, released);
        Assert.Equal(0, again);
        Assert.All(Run(tx => tx.Leases("net1")), l => Assert.Equal("c2", l.ContainerId));
    }

    [Fact]
    public void Collect_releases_the_attachments_the_runtime_does_not_list()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""");
        Add(config, "keep");
        Add(config, "drop");
        Add(config, "keep", "net1");

        var released = Run(tx => AllocatorFor(tx).Collect("net1", new HashSet<(string, string)> { ("keep", "eth0"), ("keep", "net1") }));

        Assert.Equal(1, released);
        Assert.Equal(["keep", "keep"], Run(tx => tx.Leases("net1")).Select(l => l.ContainerId));
    }

    [Fact]
    public void A_freed_address_is_not_handed_out_again_at_once()
    {
        var config = ParsedConfig.Ipam("""[[{"subnet":"10.0.0.0/24"}]]""");
        var first = Add(config, "c1");
        Run(tx => AllocatorFor(tx).Release("net1", "c1", "eth0", Reasons.CniDel));

        var next = Add(config, "c2");

        Assert.NotEqual(first[0].Address, next[0].Address);
    }
}

public sealed class AllocatorTableTestsInMemory : AllocatorTableTests
{
    private readonly MemoryLeaseStore _store = new();

    protected override T Run<T>(Func<ILeaseTransaction, T> work) => _store.Transact(work);
}

public sealed class AllocatorTableTestsOnSqlite : AllocatorTableTests, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly SqliteLeaseStore _store;

    public AllocatorTableTestsOnSqlite()
    {
        _store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(Clock, TimeProvider.System));
    }

    protected override T Run<T>(Func<ILeaseTransaction, T> work) => _store.Write(work);

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }
}
