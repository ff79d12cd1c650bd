using System.Net;
using Berth.HostAgent.Node;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.Tests.HostAgent.Node;

/// <summary>What a late start says in the log about what it could not prove.</summary>
public sealed class AgentStartupTests
{
    private static Decision Young(string address) =>
        new(new GuardedFile("/var/lib/cni/networks", "k8s-pod-network", IPAddress.Parse(address), "c0ffee", "eth0", "boot-2", TimeSpan.FromSeconds(30), DateTimeOffset.UnixEpoch).AsLease(),
            Verdict.Young, EvidenceKind.Unknown, "a runtime may have run in this boot: first seen now, left to reconcile", Store: LeaseStores.HostLocal("/var/lib/cni/networks"));

    [Fact]
    public void A_late_recovery_with_a_new_store_names_the_files_it_cannot_prove_and_what_happens_to_them()
    {
        var startup = new AgentStartup("/var/lib/cni/berth/berth.db", NewStore: true, Locks: null);
        var recovery = new RecoveryResult("boot-2", null, [Young("10.42.0.7"), Young("10.42.0.9")], DryRun: false);

        var line = Assert.Single(startup.AfterRecovery(recovery, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1)));

        Assert.Contains("2 host-local files cannot be proven to be of an earlier boot", line);
        Assert.Contains("the store /var/lib/cni/berth/berth.db is new", line);
        Assert.Contains("k8s-pod-network/10.42.0.7", line);
        Assert.Contains("300 s", line);
    }

    [Fact]
    public void A_recovery_that_proved_everything_says_nothing_unless_the_store_is_new()
    {
        var recovery = new RecoveryResult("boot-2", null, [], DryRun: false);

        Assert.Empty(new AgentStartup("/s/berth.db", NewStore: false, Locks: null).AfterRecovery(recovery, TimeSpan.Zero, TimeSpan.Zero));
        Assert.Contains("is new", Assert.Single(new AgentStartup("/s/berth.db", NewStore: true, Locks: null).AfterRecovery(recovery, TimeSpan.Zero, TimeSpan.Zero)));
    }
}
