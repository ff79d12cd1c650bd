namespace Berth.Tests.Support;

/// <summary>
/// Holds flock(LOCK_EX) on a file or directory, as host-local does, until disposed: util-linux's flock(1) holds
/// it while its child sleeps, and says so once it has it.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly Running _holder;

    private FileLock(Running holder) => _holder = holder;

    public static FileLock Take(string path)
    {
        var locked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holder = Exec.Start("flock", ["--exclusive", path, "sh", "-c", "echo locked; exec sleep infinity"], new ExecOptions
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
