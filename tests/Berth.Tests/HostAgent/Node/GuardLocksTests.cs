using Berth.HostAgent.Node;

namespace Berth.Tests.HostAgent.Node;

/// <summary>
/// One guardian per host-local directory: flock on the directory. flock is per open file description, so two
/// takers in one process contend exactly as two agents (the unit's and the pod's) do.
/// </summary>
public sealed class GuardLocksTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_first_agent_guards_and_the_second_stands_aside_until_the_first_is_gone()
    {
        var networks = Directory.CreateDirectory(_dir.File("networks")).FullName;
        using var first = GuardLocks.Take([networks]);
        using var second = GuardLocks.Take([networks]);

        Assert.Equal([networks], first.Guarded);
        Assert.Empty(first.Aside);
        Assert.Empty(second.Guarded);
        Assert.Equal([networks], second.Aside);
        Assert.Contains($"berth_agent_standing_aside{{dir=\"{networks}\"}} 1\n", second.Metrics());
        Assert.Contains($"berth_agent_standing_aside{{dir=\"{networks}\"}} 0\n", first.Metrics());
        Assert.Contains(second.Explain(), l => l.Contains("standing aside", StringComparison.Ordinal) && l.Contains(networks, StringComparison.Ordinal));
        Assert.False(second.AnyFreed());

        first.Dispose();

        // A process another test forks at this moment holds a copy of the descriptor until its exec closes it (O_CLOEXEC):
        // the lock is free once that copy is gone, which is awaited, not assumed.
        Assert.True(SpinWait.SpinUntil(second.AnyFreed, TimeSpan.FromSeconds(10)));
        // AnyFreed does not keep the lock: the restarted agent takes it.
        using var third = GuardLocks.Take([networks]);
        Assert.Equal([networks], third.Guarded);
    }

    [Fact]
    public void A_directory_that_does_not_exist_yet_is_guarded_without_a_lock_and_the_log_says_so()
    {
        var missing = _dir.File("not-yet");
        using var locks = GuardLocks.Take([missing]);

        Assert.Equal([missing], locks.Guarded);
        Assert.Equal([missing], locks.Absent);
        Assert.Contains(locks.Explain(), l => l.Contains(missing, StringComparison.Ordinal) && l.Contains("without the one-agent lock", StringComparison.Ordinal));
        Assert.Equal("", locks.Metrics());
    }

    [Fact]
    public void Each_directory_is_locked_on_its_own()
    {
        var a = Directory.CreateDirectory(_dir.File("a")).FullName;
        var b = Directory.CreateDirectory(_dir.File("b")).FullName;
        using var holdsA = GuardLocks.Take([a]);
        using var both = GuardLocks.Take([a, b, b]);

        Assert.Equal([b], both.Guarded);
        Assert.Equal([a], both.Aside);
    }
}
