using System.Diagnostics;

namespace Berth.Tests.Support;

/// <summary>
/// Holds flock(LOCK_EX) on a file or directory, as host-local does, until disposed: util-linux's flock(1) holds
/// it while it waits on its stdin, and says so once it has it.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly Process _holder;

    private FileLock(Process holder) => _holder = holder;

    public static FileLock Take(string path)
    {
        var start = new ProcessStartInfo("flock", ["--exclusive", path, "sh", "-c", "echo locked; cat >/dev/null"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var holder = Process.Start(start)!;
        if (holder.StandardOutput.ReadLine() != "locked") throw new IOException($"flock could not lock {path}");
        return new FileLock(holder);
    }

    public void Dispose()
    {
        _holder.StandardInput.Close();
        _holder.WaitForExit();
        _holder.Dispose();
    }
}
