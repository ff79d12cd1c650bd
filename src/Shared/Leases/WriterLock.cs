using System.Runtime.InteropServices;
using Berth.Shared.Cni;

namespace Berth.Shared.Leases;

/// <summary>
/// The queue writers stand in before BEGIN IMMEDIATE: flock(LOCK_EX) on a lock file beside the store
/// (berth.db.lock, 0600, never holding any data).
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
/// carries no state to clean up. Readers (CHECK, the operator's queries) do not take it: WAL lets them read
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
/// flock itself cannot time out, so a contended wait happens on a helper thread while the caller watches the
/// hand-over count; a helper that gets the lock after its caller gave up lets go at once.
/// </para>
/// </summary>
internal sealed partial class WriterLock : IDisposable
{
    private const int ORdwr = 0x2, OCreat = 0x40, OCloexec = 0x80000;
    private const int LockEx = 2, LockNb = 4;
    private const int EIntr = 4, EWouldBlock = 11, ERofs = 30;
    private const int Mode0600 = 0x180;

    /// <summary>How many lock timeouts a writer stands in a moving line at most.</summary>
    public const int QueueLimitFactor = 6;

    private int _fd;

    private WriterLock(int fd) => _fd = fd;

    /// <summary>
    /// Takes the lock, waiting while the line moves: at most <paramref name="timeout"/> without a hand-over and
    /// <see cref="QueueLimitFactor"/> times that in all. Throws <see cref="CniException"/> with code 11 when the
    /// wait runs out, and code 5 when the lock file cannot be used.
    /// </summary>
    public static WriterLock Acquire(string lockPath, TimeSpan timeout)
    {
        var fd = open(lockPath, ORdwr | OCreat | OCloexec, Mode0600);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ERofs) throw StoreErrors.ReadOnlyFilesystem(lockPath[..^".lock".Length], Marshal.GetPInvokeErrorMessage(errno));
            throw new CniException(ErrorCodes.IoFailure, $"lock file {lockPath} cannot be opened: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        // The common case, nobody writing: no thread needed.
        if (flock(fd, LockEx | LockNb) == 0) return Taken(fd);
        var first = Marshal.GetLastPInvokeError();
        if (first != EWouldBlock && first != EIntr)
        {
            close(fd);
            throw new CniException(ErrorCodes.IoFailure, $"lock file {lockPath} cannot be locked: {Marshal.GetPInvokeErrorMessage(first)}");
        }

        var waiter = new Waiter(fd);
        var thread = new Thread(waiter.Wait) { IsBackground = true, Name = "berth store lock" };
        var seen = HandOvers(fd);
        var started = Environment.TickCount64;
        var step = (long)timeout.TotalMilliseconds;
        var limit = step * QueueLimitFactor;
        thread.Start();
        while (!waiter.Done.Wait(TimeSpan.FromMilliseconds(Math.Clamp(limit - (Environment.TickCount64 - started), 0, step))))
        {
            var count = HandOvers(fd);
            var moved = count != seen;
            seen = count;
            if (moved && Environment.TickCount64 - started < limit) continue;
            if (!waiter.Abandon()) break; // got it just now after all
            var why = moved ? $"waited {limit / 1000.0:0.#} s in line for its write lock ({lockPath})"
                : $"its write lock ({lockPath}) has not changed hands for {timeout.TotalSeconds:0.#} s";
            throw new CniException(ErrorCodes.TryAgainLater, $"store {lockPath[..^".lock".Length]} is busy: {why}; retry");
        }
        waiter.Done.Wait();
        waiter.Done.Dispose();
        if (waiter.Errno != 0)
        {
            throw new CniException(ErrorCodes.IoFailure, $"lock file {lockPath} cannot be locked: {Marshal.GetPInvokeErrorMessage(waiter.Errno)}");
        }
        return Taken(fd);
    }

    /// <summary>Counts the hand-over that waiters watch, and returns the held lock.</summary>
    private static WriterLock Taken(int fd)
    {
        var count = HandOvers(fd) + 1;
        // Not checked: a failed write only makes waiters see less progress than there was.
        _ = pwrite(fd, ref count, sizeof(long), 0);
        return new WriterLock(fd);
    }

    private static long HandOvers(int fd) => pread(fd, out var count, sizeof(long), 0) == sizeof(long) ? count : 0;

    /// <summary>One more hand-over, as if the lock had changed hands (for tests of a slow but moving line).</summary>
    internal void CountHandOver()
    {
        var count = HandOvers(_fd) + 1;
        _ = pwrite(_fd, ref count, sizeof(long), 0);
    }

    /// <summary>Lets go of the lock (closing the descriptor releases the flock).</summary>
    public void Dispose()
    {
        if (_fd < 0) return;
        close(_fd);
        _fd = -1;
    }

    /// <summary>The blocking flock on its own thread, and the hand-over to, or the abandonment by, its caller.</summary>
    private sealed class Waiter(int fd)
    {
        private readonly Lock _gate = new();
        private bool _abandoned;

        public ManualResetEventSlim Done { get; } = new();

        public int Errno { get; private set; }

        public void Wait()
        {
            int rc;
            do rc = flock(fd, LockEx);
            while (rc != 0 && Marshal.GetLastPInvokeError() == EIntr);
            var errno = rc == 0 ? 0 : Marshal.GetLastPInvokeError();
            lock (_gate)
            {
                // On failure, or when the caller gave up (then the lock passes on to the next in line).
                if (rc != 0 || _abandoned) close(fd);
                if (_abandoned) return;
                Errno = errno;
                Done.Set();
            }
        }

        /// <summary>True when the caller may walk away (the helper then lets go of the lock once it gets it);
        /// false when the lock was got meanwhile, and the caller takes it.</summary>
        public bool Abandon()
        {
            lock (_gate)
            {
                if (Done.IsSet) return false;
                _abandoned = true;
                return true;
            }
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial nint pread(int fd, out long buffer, nint count, long offset);

    [LibraryImport("libc")]
    private static partial nint pwrite(int fd, ref long buffer, nint count, long offset);
}
