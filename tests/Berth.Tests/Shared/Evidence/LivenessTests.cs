using System.Net;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Berth.Tests.Shared.Evidence;

/// <summary>
/// The liveness policy as tables: the product's promise about who keeps an address, in one place. Every release path
/// (plugin reclaim, recovery, reconcile, the guardian, manual release) and every view (check, leases) asks
/// <see cref="Liveness"/>; these tables are its whole contract.
/// </summary>
public sealed class LivenessTests
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(300);
    private readonly FakeBootClock _clock = new("boot-2") { SinceBoot = TimeSpan.FromHours(1) };

    /// <summary>A lease made in <paramref name="boot"/>, <paramref name="age"/> ago on this boot's clock.</summary>
    private Lease Lease(string boot, TimeSpan age, string netns = "", ulong? inode = null) =>
        new("net1", IPAddress.Parse("10.0.0.2"), 0, "10.0.0.0/24", "c1", "eth0", netns, inode, null, null, null,
            boot, _clock.SinceBoot - age, new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero), Reasons.CniAdd);

    [Theory]
    // A lease of an earlier boot: the changed boot ID proves its sandbox died, unless the namespace it was made for
    // is still there or a runtime lists the sandbox as ready. A process in "its" inode proves nothing across boots,
    // and unknown evidence (no runtime yet, at boot) does not keep it.
    [InlineData(true, EvidenceKind.Netns, OwnerState.Alive)]
    [InlineData(true, EvidenceKind.Runtime, OwnerState.Alive)]
    [InlineData(true, EvidenceKind.Process, OwnerState.Gone)]
    [InlineData(true, EvidenceKind.None, OwnerState.Gone)]
    [InlineData(true, EvidenceKind.Unknown, OwnerState.Gone)]
    // A lease of this boot: any live evidence keeps it, unknown keeps it (do no harm), only none lets it go.
    [InlineData(false, EvidenceKind.Netns, OwnerState.Alive)]
    [InlineData(false, EvidenceKind.Process, OwnerState.Alive)]
    [InlineData(false, EvidenceKind.Runtime, OwnerState.Alive)]
    [InlineData(false, EvidenceKind.None, OwnerState.Gone)]
    [InlineData(false, EvidenceKind.Unknown, OwnerState.Unknown)]
    public void Judge(bool earlierBoot, EvidenceKind evidence, OwnerState expected)
    {
        Assert.Equal(expected, Liveness.Judge(earlierBoot, evidence));
        // The lease's own boot says which half of the table applies.
        Assert.Equal(expected, new Liveness(_clock).Judge(Lease(earlierBoot ? "boot-1" : "boot-2", TimeSpan.Zero), evidence));
    }

    [Theory]
    [InlineData("boot-1", true)]
    [InlineData("boot-2", false)]
    [InlineData("", true)]
    public void A_boot_other_than_this_one_is_an_earlier_boot(string bootId, bool earlier) =>
        Assert.Equal(earlier, new Liveness(_clock).IsEarlierBoot(bootId));

    [Theory]
    // Columns: made in, age (s), evidence, strikes the store held before this pass -> verdict, strikes after, strikes cleared.
    // An earlier boot's lease goes at once without netns or runtime evidence: no grace, no strikes.
    [InlineData("boot-1", 0, EvidenceKind.None, 0, Verdict.Release, 0, false)]
    [InlineData("boot-1", 0, EvidenceKind.Unknown, 0, Verdict.Release, 0, false)]
    [InlineData("boot-1", 0, EvidenceKind.Process, 0, Verdict.Release, 0, false)]
    [InlineData("boot-1", 0, EvidenceKind.Netns, 0, Verdict.Keep, 0, false)]
    [InlineData("boot-1", 0, EvidenceKind.Runtime, 0, Verdict.Keep, 0, false)]
    // This boot's lease: live evidence keeps it and forgets its strikes; unknown keeps it and leaves them alone.
    [InlineData("boot-2", 3600, EvidenceKind.Netns, 1, Verdict.Keep, 1, true)]
    [InlineData("boot-2", 3600, EvidenceKind.Process, 1, Verdict.Keep, 1, true)]
    [InlineData("boot-2", 3600, EvidenceKind.Runtime, 1, Verdict.Keep, 1, true)]
    [InlineData("boot-2", 3600, EvidenceKind.Unknown, 1, Verdict.Unknown, 1, false)]
    // Without evidence: young until the age reaches the grace period (no strike counted), then a strike per pass,
    // released on the second consecutive one.
    [InlineData("boot-2", 299, EvidenceKind.None, 0, Verdict.Young, 0, false)]
    [InlineData("boot-2", 300, EvidenceKind.None, 0, Verdict.Strike, 1, false)]
    [InlineData("boot-2", 301, EvidenceKind.None, 0, Verdict.Strike, 1, false)]
    [InlineData("boot-2", 301, EvidenceKind.None, 1, Verdict.Release, 2, false)]
    public void Decide(string boot, int ageSeconds, EvidenceKind evidence, int strikesBefore, Verdict verdict, int strikesAfter, bool cleared)
    {
        var strikes = strikesBefore;
        var wasCleared = false;
        var judgement = new Liveness(_clock, Grace).Decide(Lease(boot, TimeSpan.FromSeconds(ageSeconds)), evidence, "found", () => ++strikes, () => wasCleared = true);
        Assert.Equal((verdict, evidence), (judgement.Verdict, judgement.Evidence));
        Assert.Equal((strikesAfter, cleared), (strikes, wasCleared));
        Assert.StartsWith(boot == "boot-1" && verdict == Verdict.Release ? "made in boot boot-1: found" : "found", judgement.Detail);
    }

    [Fact]
    public void A_young_lease_says_its_age_and_the_grace_period() =>
        Assert.Equal("found; 4m old, within the grace period of 5m",
            new Liveness(_clock, Grace).Decide(Lease("boot-2", TimeSpan.FromSeconds(290)), EvidenceKind.None, "found", () => 1, () => { }).Detail);

    [Theory]
    // Just before release: still no evidence lets it go (null); evidence found keeps it, unknown keeps it.
    [InlineData("boot-2", EvidenceKind.None, null, false)]
    [InlineData("boot-2", EvidenceKind.Netns, Verdict.Keep, true)]
    [InlineData("boot-2", EvidenceKind.Unknown, Verdict.Unknown, false)]
    [InlineData("boot-1", EvidenceKind.Unknown, null, false)]
    [InlineData("boot-1", EvidenceKind.Runtime, Verdict.Keep, false)]
    public void Recheck(string boot, EvidenceKind evidence, Verdict? kept, bool cleared)
    {
        var wasCleared = false;
        var judgement = new Liveness(_clock, Grace).Recheck(Lease(boot, TimeSpan.FromHours(1)), evidence, "again", () => wasCleared = true);
        Assert.Equal(kept, judgement?.Verdict);
        Assert.Equal(cleared, wasCleared);
    }

    [Theory]
    // The paths that ask no runtime (plugin reclaim, boot recovery): an earlier boot's lease goes unless its netns
    // path is still the namespace it was made for; a lease of this boot is never theirs.
    [InlineData("boot-1", "/run/netns/a", 7UL, 7UL, false, EvidenceKind.Netns)]
    [InlineData("boot-1", "/run/netns/a", 7UL, 8UL, true, EvidenceKind.Unknown)]
    [InlineData("boot-1", "/run/netns/a", 7UL, null, true, EvidenceKind.Unknown)]
    [InlineData("boot-1", "", null, null, true, EvidenceKind.Unknown)]
    [InlineData("boot-2", "/run/netns/a", 7UL, null, false, EvidenceKind.Unknown)]
    public void Lost_with_its_boot(string boot, string netns, ulong? recorded, ulong? now, bool lost, EvidenceKind shown)
    {
        var probe = new FakeNetnsProbe();
        if (now is { } inode) probe.Namespaces[netns] = inode;
        Assert.Equal(lost, new Liveness(_clock).LostWithItsBoot(Lease(boot, TimeSpan.Zero, netns, recorded), probe, out var evidence));
        Assert.Equal(shown, evidence);
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(59.9, "59s")]
    [InlineData(60, "1m")]
    [InlineData(3599, "59m")]
    [InlineData(3600 + 7 * 60, "1h7m")]
    [InlineData(86400 + 5 * 3600 + 1, "1d5h")]
    [InlineData(1.6 * 86400, "1d14h")]
    [InlineData(-5, "0s")]
    public void An_age_is_shown_in_its_two_largest_whole_units(double seconds, string shown) =>
        Assert.Equal(shown, LeaseAge.Format(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Within_a_boot_the_age_is_on_the_boot_clock_and_across_boots_the_wall_clock_is_only_shown()
    {
        // The wall clock is a day off the lease's: within this boot it is not read.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero));
        var liveness = new Liveness(_clock, Grace);
        Assert.Equal(TimeSpan.FromMinutes(3), LeaseAge.Shown(Lease("boot-2", TimeSpan.FromMinutes(3)), liveness, time));
        Assert.Equal(TimeSpan.FromDays(1), LeaseAge.Shown(Lease("boot-1", TimeSpan.FromMinutes(3)), liveness, time));
        // And no wall clock decides: an earlier boot's lease goes however young the wall clock says it is.
        Assert.Equal(Verdict.Release, liveness.Decide(Lease("boot-1", TimeSpan.Zero), EvidenceKind.None, "found", () => 1, () => { }).Verdict);
    }
}
