using System.Runtime.InteropServices;
using Berth.Shared.Cni;
using Berth.Shared.Platform;

namespace Berth.Shared.Leases;

/// <summary>
/// The queue writers stand in before BEGIN IMMEDIATE: flock(LOCK_EX) on a lock file beside the store
/// (berth.db.lock, 0600, holding two counters and no lease data).
/// <para>
/// Why: SQLite's busy handler is unfair. A writer that finds the store locked sleeps (up to 100 ms at a time)
/// and tries again; meanwhile newcomers that arrive just as the lock is free take it. Under CPU load with
/// hundreds of parallel ADDs, some writer kept losing that race until its 10 s budget ran out (error 11). A
/// process blocked in flock is instead woken by the kernel the moment the holder lets go, so a waiter competes
/// only with the few others woken with it, never with a stream of fresh arrivals, and the wait is bounded by
/// the queue ahead of it.
/// </para>
/// <para>
/// The kernel drops a flock when its holder dies, so a killed process never blocks the next one, and the file
/// carries nothing to clean up. Readers (CHECK, the operator's queries) do not take it: WAL lets them read
/// beside a writer.
/// </para>
/// <para>
/// The wait is bounded by progress, not by the length of the line: each writer that gets the lock counts one
/// more hand-over in the file's first 8 bytes (no fsync: nothing depends on them surviving a crash), and a
/// waiter gives up (error 11) when the lock has not changed hands for the store's lock timeout, which means
/// its holder is stuck, or when it has been in line for <see cref="QueueLimitFactor"/> times that. A fixed
/// 10 s for the whole wait would fail the tail of a long line on a slow machine even though the line moves:
/// 256 ADDs at once took 13 to 22 s on a loaded 2-core machine even with a store each, so no lock at all.
/// </para>
/// <para>
/// The wait itself is <see cref="FlockWait"/>'s (a blocking flock on a helper thread); this type watches the
/// hand-over count while it lasts, on the store's <see cref="TimeProvider"/>.
/// </para>
/// <para>
/// The file's next 8 bytes say which hand-over ended cleanly (<see cref="Done"/>), so that the next holder knows
/// when the one before it died holding the lock. That matters to SQLite's WAL: a writer killed after its commit
/// frame reached the WAL but before it published the frame in the shared WAL index leaves a transaction that the
/// connections still open do not see, while the next connection to rebuild the index does (when the last one
/// closes, or after a reboot). A transaction that writes nothing in between, such as an ADD that finds its lease
/// held, would answer from the state before the dead writer's change, and the change would come back later: a DEL
/// the runtime never saw succeed would undo an ADD it did see. So after a holder died, the next transaction writes
/// at least one page (<see cref="SqliteLeaseStore"/> seals it), which overwrites the dead writer's frames: its
/// change is gone for good, as the state everyone read says.
/// </para>
/// </summary>
internal sealed class WriterLock : IDisposable
{
    private const int Mode0600 = 0x180;

    /// <summary>How many lock timeouts a writer stands in a moving line at most.</summary>
    public const int QueueLimitFactor = 6;

    private const long DoneOffset = sizeof(long);

    private int _fd;
    private readonly long _turn;

    private WriterLock(int fd, long turn, bool previousHolderDied)
    {
        _fd = fd;
        _turn = turn;
        PreviousHolderDied = previousHolderDied;
    }

    /// <summary>
    /// Whether the holder before this one let go without <see cref="Done"/>: it died (or failed) holding the lock,
    /// maybe in the middle of its commit, and this holder's transaction must write something.
    /// </summary>
    public bool PreviousHolderDied { get; }

    /// <summary>
    /// Marks this hand-over as ended cleanly, before letting go: after a commit, or after a transaction that wrote
    /// nothing when the holder before was clean too (otherwise the next holder must still write something).
    /// </summary>
    public void Done(bool committed)
    {
        if (_fd < 0 || (PreviousHolderDied && !committed)) return;
        var turn = _turn;
        // Not checked, not synced: a lost mark only makes the next holder write one page it did not need to.
        _ = Libc.pwrite(_fd, ref turn, sizeof(long), DoneOffset);
    }

    /// <summary>
    /// Takes the lock, waiting while the line moves: at most <paramref name="timeout"/> without a hand-over and
    /// <see cref="QueueLimitFactor"/> times that in all, measured on <paramref name="time"/>. Throws
    /// <see cref="CniException"/> with code 11 when the wait runs out, and code 5 when the lock file cannot be used.
    /// </summary>
    public static WriterLock Acquire(string lockPath, TimeSpan timeout, TimeProvider time)
    {
        var fd = Libc.open(lockPath, Libc.ORdwr | Libc.OCreat | Libc.OCloexec, Mode0600);
        if (fd < 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.ERofs) throw StoreErrors.ReadOnlyFilesystem(lockPath[..^".lock".Length], Libc.Message(errno));
            throw new CniException(ErrorCodes.IoFailure, $"lock file {lockPath} cannot be opened: {Libc.Message(errno)}");
        }
        // The common case, nobody writing, ends here without a thread.
        var wait = FlockWait.Begin(fd, "berth store lock");
        if (!wait.Finished)
        {
            var seen = HandOvers(fd);
            var started = time.GetTimestamp();
            var limit = timeout * QueueLimitFactor;
            while (!wait.Wait(Clamp(limit - time.GetElapsedTime(started), timeout), time))
            {
                var count = HandOvers(fd);
                var moved = count != seen;
                seen = count;
                if (moved && time.GetElapsedTime(started) < limit) continue;
                if (!wait.Abandon()) break; // got it just now after all
                var why = moved ? $"waited {limit.TotalSeconds:0.#} s in line for its write lock ({lockPath})"
                    : $"its write lock ({lockPath}) has not changed hands for {timeout.TotalSeconds:0.#} s";
                throw new CniException(ErrorCodes.TryAgainLater, $"store {lockPath[..^".lock".Length]} is busy: {why}; retry");
            }
        }
        if (wait.Errno != 0)
        {
            throw new CniException(ErrorCodes.IoFailure, $"lock file {lockPath} cannot be locked: {Libc.Message(wait.Errno)}");
        }
        return Taken(fd);
    }

    private static TimeSpan Clamp(TimeSpan left, TimeSpan step) => left < TimeSpan.Zero ? TimeSpan.Zero : left > step ? step : left;

    /// <summary>Counts the hand-over that waiters watch, and returns the held lock.</summary>
    private static WriterLock Taken(int fd)
    {
        // Both counters in one read: the hand-over count, then the last one marked done (0 where the file is shorter).
        Span<byte> counters = stackalloc byte[2 * sizeof(long)];
        counters.Clear();
        _ = Libc.pread(fd, counters, counters.Length, 0);
        var before = MemoryMarshal.Read<long>(counters);
        var done = MemoryMarshal.Read<long>(counters[sizeof(long)..]);
        var count = before + 1;
        // Not checked: a failed write only makes waiters see less progress than there was.
        _ = Libc.pwrite(fd, ref count, sizeof(long), 0);
        return new WriterLock(fd, count, previousHolderDied: done != before);
    }

    private static long HandOvers(int fd) => Libc.pread(fd, out var count, sizeof(long), 0) == sizeof(long) ? count : 0;

    /// <summary>Lets go of the lock (closing the descriptor releases the flock).</summary>
    public void Dispose()
    {
        if (_fd < 0) return;
        _ = Libc.close(_fd);
        _fd = -1;
    }
}
