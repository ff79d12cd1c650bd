using System.Diagnostics;
using Berth.Shared.Cni;
using Berth.Shared.Leases;

namespace Berth.Tests.Shared.Leases;

/// <summary>The line writers stand in before they write: flock on berth.db.lock, bounded by progress.</summary>
public sealed class WriterLockTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string LockPath => _dir.File("berth.db.lock");

    [Fact]
    public async Task The_lock_file_is_private_and_a_second_writer_waits_until_the_first_lets_go()
    {
        var holder = WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LockPath));
        var waiter = Task.Run(() => WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10)));

        // Not waiting for a condition: the point is that nothing happens while the lock is held.
        await Task.Delay(300);
        Assert.False(waiter.IsCompleted);
        holder.Dispose();

        (await waiter.WaitAsync(TimeSpan.FromSeconds(10))).Dispose();
    }

    [Fact]
    public void A_writer_gives_up_with_11_when_the_lock_does_not_change_hands_for_the_timeout_and_leaves_no_claim()
    {
        using (WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10)))
        {
            var watch = Stopwatch.StartNew();
            var e = Assert.Throws<CniException>(() => WriterLock.Acquire(LockPath, TimeSpan.FromMilliseconds(300)));

            Assert.Equal(ErrorCodes.TryAgainLater, e.Code);
            Assert.Contains("has not changed hands for 0.3 s", e.Message, StringComparison.Ordinal);
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(290), TimeSpan.FromSeconds(5));
        }
        // The helper thread of the writer that gave up must not keep the lock once it gets it.
        using var next = WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_writer_keeps_its_place_while_the_line_moves_even_past_the_timeout()
    {
        var holder = WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10));
        var waiter = Task.Run(() => WriterLock.Acquire(LockPath, TimeSpan.FromMilliseconds(500)));

        // A slow line that moves: a hand-over every 50 ms for 2 s, four times the waiter's timeout. A thread of
        // its own, so that a thread pool busy with other tests cannot stall the line.
        var mover = new Thread(() =>
        {
            for (var i = 0; i < 40; i++)
            {
                Thread.Sleep(50);
                holder.CountHandOver();
            }
        });
        mover.Start();
        await Task.Run(mover.Join);
        Assert.False(waiter.IsCompleted, waiter.Exception?.ToString());
        holder.Dispose();

        (await waiter).Dispose();
    }

    [Fact]
    public void A_moving_line_is_still_left_after_the_queue_limit()
    {
        using var holder = WriterLock.Acquire(LockPath, TimeSpan.FromSeconds(10));
        var stop = false;
        // A thread of its own: this test blocks its own thread, and the pool's may all be busy with other tests.
        var mover = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                Thread.Sleep(20);
                holder.CountHandOver();
            }
        });
        mover.Start();

        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<CniException>(() => WriterLock.Acquire(LockPath, TimeSpan.FromMilliseconds(500)));
        Volatile.Write(ref stop, true);
        mover.Join();

        Assert.Equal(ErrorCodes.TryAgainLater, e.Code);
        Assert.Contains("in line", e.Message, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(500 * WriterLock.QueueLimitFactor - 10), TimeSpan.FromSeconds(10));
    }

    public void Dispose() => _dir.Dispose();
}
