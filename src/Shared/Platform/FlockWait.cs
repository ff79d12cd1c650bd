namespace Berth.Shared.Platform;

/// <summary>
/// flock(LOCK_EX) with a bound on the wait, the one way berth waits for a file lock (the store's writer lock,
/// host-local's locks). flock cannot time out, and polling with LOCK_NB is unfair: a waiter that sleeps between
/// tries loses to newcomers that arrive just as the lock is free. So a contended lock is waited for by a blocking
/// flock on a helper thread, which the kernel wakes the moment the holder lets go, while the caller waits on the
/// given <see cref="TimeProvider"/> and may walk away; a helper whose caller walked away lets go of the lock as
/// soon as it gets it.
/// <para>
/// The descriptor belongs to the wait until it ends: on failure, and after <see cref="Abandon"/>, the wait closes
/// it; once the lock is taken (<see cref="Finished"/> with <see cref="Errno"/> 0) it is the caller's again, who
/// lets go of the lock by closing it. So hand over a descriptor opened for the lock alone.
/// </para>
/// </summary>
public sealed class FlockWait
{
    private readonly int _fd;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _abandoned;

    private FlockWait(int fd) => _fd = fd;

    /// <summary>Whether the wait has ended: the lock is taken, or (<see cref="Errno"/> not 0) cannot be.</summary>
    public bool Finished => _done.Task.IsCompleted;

    /// <summary>0 when the lock was taken; else why flock failed (the descriptor is closed then).</summary>
    public int Errno { get; private set; }

    /// <summary>Tries the lock at once, and when another holds it starts waiting for it on a helper thread named <paramref name="name"/>.</summary>
    public static FlockWait Begin(int fd, string name)
    {
        var wait = new FlockWait(fd);
        if (Libc.flock(fd, Libc.LockEx | Libc.LockNb) == 0)
        {
            wait._done.SetResult();
            return wait;
        }
        var errno = Libc.Errno;
        if (errno is not (Libc.EWouldBlock or Libc.EIntr))
        {
            wait.Fail(errno);
            return wait;
        }
        new Thread(wait.Block) { IsBackground = true, Name = name }.Start();
        return wait;
    }

    /// <summary>Waits at most <paramref name="timeout"/> on <paramref name="time"/>; whether the wait has ended (<see cref="Finished"/>).</summary>
    public bool Wait(TimeSpan timeout, TimeProvider time)
    {
        if (Finished) return true;
        if (timeout <= TimeSpan.Zero) return false;
        using var expiry = new CancellationTokenSource(timeout, time);
        try
        {
            _done.Task.Wait(expiry.Token);
        }
        catch (OperationCanceledException)
        {
            // The timeout: the caller decides whether to wait on.
        }
        return Finished;
    }

    /// <summary>
    /// True when the caller may walk away (the helper then lets go of the lock once it gets it, and closes the
    /// descriptor); false when the wait ended meanwhile, and the caller has the lock (or its error) after all.
    /// </summary>
    public bool Abandon()
    {
        lock (_gate)
        {
            if (Finished) return false;
            _abandoned = true;
            return true;
        }
    }

    private void Block()
    {
        int rc;
        do rc = Libc.flock(_fd, Libc.LockEx);
        while (rc != 0 && Libc.Errno == Libc.EIntr);
        var errno = rc == 0 ? 0 : Libc.Errno;
        lock (_gate)
        {
            if (_abandoned)
            {
                // Closing the descriptor lets the lock pass on to the next in line.
                _ = Libc.close(_fd);
                return;
            }
            if (errno != 0) Fail(errno);
            else _done.SetResult();
        }
    }

    private void Fail(int errno)
    {
        _ = Libc.close(_fd);
        Errno = errno;
        _done.SetResult();
    }
}
