using Berth.HostAgent.HostLocal;
using Berth.Shared.Platform;
using Berth.Tests.Support;

namespace Berth.Tests.HostAgent.HostLocal;

/// <summary>
/// The wait for host-local's locks (DIR/NETWORK/lock, and the network directory that host-local before 1.1 flocked),
/// on a fake clock that the test moves: no real sleeps, no timed assertions. host-local's hold is played by a
/// flock of the test's own, on another open of the same file (flock excludes across open files, also in one process).
/// </summary>
public sealed class HostLocalLockTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TimerWatch _time = new();

    public HostLocalLockTests() => Directory.CreateDirectory(NetworkDir);

    private string NetworkDir => Path.Combine(_dir.Path, "cbr0");

    /// <summary>An exclusive flock on a path, as host-local takes it; closing the descriptor lets go.</summary>
    private static int Hold(string path)
    {
        var fd = Libc.open(path, Libc.ORdonly | Libc.OCloexec | (Directory.Exists(path) ? 0 : Libc.OCreat), 0x1a4);
        Assert.True(fd >= 0, $"{path}: {Libc.Message(Libc.Errno)}");
        Assert.Equal(0, Libc.flock(fd, Libc.LockEx | Libc.LockNb));
        return fd;
    }

    /// <summary>host-local holds <paramref name="held"/>; the network's lock is being taken, and waits on the clock.</summary>
    private async Task<(int Holder, HostLocalNetwork Network, Task<bool> Locking)> LockWhileHeldAsync(string held)
    {
        var holder = Hold(Path.Combine(NetworkDir, held));
        var network = HostLocalNetwork.Open(_dir.Path, "cbr0");
        var locking = Task.Run(() => network.Lock(TimeSpan.FromSeconds(5), _time));
        await _time.NextTimerAsync();
        return (holder, network, locking);
    }

    [Theory]
    [InlineData("lock")]
    [InlineData(".")]
    public async Task A_lock_that_host_local_lets_go_of_before_the_timeout_is_taken(string held)
    {
        var (holder, network, locking) = await LockWhileHeldAsync(held);
        using var opened = network;

        // Waiting on the clock, which never moves: only the holder's release can end the wait.
        Assert.False(locking.IsCompleted);
        _ = Libc.close(holder);

        Assert.True(await locking.WaitAsync(TimeSpan.FromSeconds(60)));
        // Held now: host-local cannot take it.
        var probe = Libc.open(Path.Combine(NetworkDir, held), Libc.ORdonly | Libc.OCloexec, 0);
        Assert.NotEqual(0, Libc.flock(probe, Libc.LockEx | Libc.LockNb));
        _ = Libc.close(probe);
    }

    [Theory]
    [InlineData("lock")]
    [InlineData(".")]
    public async Task A_lock_held_for_the_whole_timeout_is_given_up_and_nothing_is_kept(string held)
    {
        var (holder, network, locking) = await LockWhileHeldAsync(held);
        using var opened = network;

        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.False(await locking.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Throws<InvalidOperationException>(() => network.DeleteIfSame(new HostLocalFile(_dir.Path, "cbr0", System.Net.IPAddress.Parse("10.0.0.2"), "c1", "eth0")));
        // Once host-local lets go, the next one takes both locks at once: the wait that gave up kept nothing.
        _ = Libc.close(holder);
        Assert.True(await Task.Run(() => network.Lock(TimeSpan.FromSeconds(5), _time)).WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public void An_uncontended_lock_is_taken_without_waiting_on_the_clock()
    {
        using var network = HostLocalNetwork.Open(_dir.Path, "cbr0");

        Assert.True(network.Lock(TimeSpan.Zero, _time));
        Assert.True(File.Exists(Path.Combine(NetworkDir, "lock")));
    }

    public void Dispose() => _dir.Dispose();
}
