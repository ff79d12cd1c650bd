using Berth.Shared.Cni;
using Berth.Shared.Leases;
using Berth.Shared.Platform;
using Berth.Tests.Support;

namespace Berth.Tests.Shared.Leases;

/// <summary>
/// The line writers stand in before they write: flock on berth.db.lock, bounded by progress. The waits run on a
/// fake clock that the test moves: no real sleeps, no timed assertions.
/// </summary>
public sealed class WriterLockTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TimerWatch _time = new();
    private string LockPath => _dir.File("berth.db.lock");

    private WriterLock Acquire(TimeSpan timeout) => WriterLock.Acquire(LockPath, timeout, _time);

    /// <summary>One more hand-over, as if the lock had changed hands (the count is the lock file's first 8 bytes).</summary>
    private void CountHandOver()
    {
        // Through libc: a FileStream would take a flock of its own on the file, which the holder's excludes.
        var fd = Libc.open(LockPath, Libc.ORdwr | Libc.OCloexec, 0);
        Assert.True(fd >= 0);
        try
        {
            var count = Libc.pread(fd, out var read, sizeof(long), 0) == sizeof(long) ? read + 1 : 1;
            Assert.Equal(sizeof(long), Libc.pwrite(fd, ref count, sizeof(long), 0));
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }

    /// <summary>One holder's turn: takes the lock, checks what it finds of the one before, marks its own end (null: it dies).</summary>
    private void Turn(bool findsDeath, bool? committed)
    {
        using var holder = Acquire(TimeSpan.FromSeconds(10));
        Assert.Equal(findsDeath, holder.PreviousHolderDied);
        if (committed is { } c) holder.Done(c);
    }

    [Fact]
    public void A_holder_that_lets_go_without_marking_its_hand_over_done_is_seen_as_dead_by_the_next()
    {
        Turn(findsDeath: false, committed: true); // a new file: a clean start
        Turn(findsDeath: false, committed: null); // dies: never marks its hand-over done
        // Wrote nothing: the one after it must still write something.
        Turn(findsDeath: true, committed: false);
        Turn(findsDeath: true, committed: true);
        Turn(findsDeath: false, committed: true);
    }

    [Fact]
    public void A_lock_file_from_before_the_done_mark_counts_as_a_death_once()
    {
        File.WriteAllBytes(LockPath, BitConverter.GetBytes(41L));
        Turn(findsDeath: true, committed: true);
        Turn(findsDeath: false, committed: null);
    }

    [Fact]
    public async Task The_lock_file_is_private_and_a_second_writer_waits_until_the_first_lets_go()
    {
        var holder = Acquire(TimeSpan.FromSeconds(10));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LockPath));
        var waiter = Task.Run(() => Acquire(TimeSpan.FromSeconds(10)));

        // The waiter is in line (waiting on the clock); the clock never moves, so only the holder's release ends it.
        await _time.NextTimerAsync();
        Assert.False(waiter.IsCompleted);
        holder.Dispose();

        (await waiter.WaitAsync(TimeSpan.FromSeconds(60))).Dispose();
    }

    [Fact]
    public async Task A_writer_gives_up_with_11_when_the_lock_does_not_change_hands_for_the_timeout_and_leaves_no_claim()
    {
        using (Acquire(TimeSpan.FromSeconds(10)))
        {
            var waiter = Task.Run(() => Acquire(TimeSpan.FromMilliseconds(300)));
            await _time.NextTimerAsync();
            _time.Advance(TimeSpan.FromMilliseconds(300));

            var e = await Assert.ThrowsAsync<CniException>(() => waiter.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(ErrorCodes.TryAgainLater, e.Code);
            Assert.Contains("has not changed hands for 0.3 s", e.Message, StringComparison.Ordinal);
        }
        // The helper thread of the writer that gave up must not keep the lock once it gets it.
        using var next = await Task.Run(() => Acquire(TimeSpan.FromSeconds(10))).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_writer_keeps_its_place_while_the_line_moves_even_past_the_timeout()
    {
        var holder = Acquire(TimeSpan.FromSeconds(10));
        var waiter = Task.Run(() => Acquire(TimeSpan.FromMilliseconds(500)));

        // A slow line that moves: a hand-over every timeout, for four times the timeout.
        for (var i = 0; i < 4; i++)
        {
            await _time.NextTimerAsync();
            CountHandOver();
            _time.Advance(TimeSpan.FromMilliseconds(500));
        }
        // Still in line: it waits on the clock again instead of giving up.
        await _time.NextTimerAsync();
        Assert.False(waiter.IsCompleted, waiter.Exception?.ToString());
        holder.Dispose();

        (await waiter.WaitAsync(TimeSpan.FromSeconds(60))).Dispose();
    }

    [Fact]
    public async Task A_moving_line_is_still_left_after_the_queue_limit()
    {
        using var holder = Acquire(TimeSpan.FromSeconds(10));
        var waiter = Task.Run(() => Acquire(TimeSpan.FromMilliseconds(500)));

        // The line moves at every step; each step but the last finds the waiter waiting on the clock again.
        for (var i = 0; i < WriterLock.QueueLimitFactor; i++)
        {
            await _time.NextTimerAsync();
            CountHandOver();
            _time.Advance(TimeSpan.FromMilliseconds(500));
        }

        var e = await Assert.ThrowsAsync<CniException>(() => waiter.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(ErrorCodes.TryAgainLater, e.Code);
        Assert.Contains($"waited {0.5 * WriterLock.QueueLimitFactor:0.#} s in line", e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();
}
