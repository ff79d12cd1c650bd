namespace Berth.Testing;

/// <summary>
/// Holds flock(LOCK_EX) on a file or directory, as host-local does, until disposed: a process of its own that
/// says so once it has the lock (one process, so that killing it lets go of the lock and of its output).
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly Running _holder;

    private FileLock(Running holder) => _holder = holder;

    public static FileLock Take(string path)
    {
        var locked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const string Hold = "import fcntl, os, signal, sys; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); signal.pause()";
        var holder = Exec.Start("python3", ["-c", Hold, path], new ExecOptions
        {
            StdoutLine = line => { if (line == "locked") locked.TrySetResult(); },
            Timeout = Timeout.InfiniteTimeSpan,
        });
        if (!locked.Task.Wait(TimeSpan.FromSeconds(30)))
        {
            holder.Dispose();
            throw new IOException($"flock could not lock {path}");
        }
        return new FileLock(holder);
    }

    public void Dispose() => _holder.Dispose();
}
