using Berth.Shared.Evidence;

namespace Berth.Tests.Shared.Evidence;

/// <summary>The liveness rule as a table: the product's promise about who keeps an address, in one place.</summary>
public sealed class LivenessTests
{
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
    public void Judge(bool earlierBoot, EvidenceKind evidence, OwnerState expected) =>
        Assert.Equal(expected, Liveness.Judge(earlierBoot, evidence));

    [Theory]
    [InlineData(299, false)]
    [InlineData(300, true)]
    [InlineData(301, true)]
    public void The_grace_period_is_over_when_the_age_reaches_it(int ageSeconds, bool over) =>
        Assert.Equal(over, Liveness.PastGrace(TimeSpan.FromSeconds(ageSeconds), TimeSpan.FromSeconds(300)));

    [Fact]
    public void A_lease_of_this_boot_goes_on_the_second_consecutive_strike() => Assert.Equal(2, Liveness.StrikesToRelease);
}
