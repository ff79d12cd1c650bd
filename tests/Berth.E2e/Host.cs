using System.Diagnostics;

namespace Berth.E2e;

/// <summary>A step of the run did not turn out as the product promises (or the machine could not do it).</summary>
internal sealed class E2eFailure(string message) : Exception(message);

/// <summary>Commands, processes, mounts and waits on this machine.</summary>
internal static class Host
{
    private static volatile bool _stopRequested;
    private static volatile bool _cleaningUp;

    /// <summary>Set by SIGINT or SIGTERM: the run stops at its next step and cleans up on its usual path.</summary>
    public static void RequestStop() => _stopRequested = true;

    /// <summary>From here on nothing stops for a signal: the cleanup must run to its end.</summary>
    public static void BeginCleanup() => _cleaningUp = true;

    public static void ThrowIfStopping()
    {
        if (_stopRequested && !_cleaningUp) throw new E2eFailure("stopped by a signal");
    }

    /// <summary>SIGTERM to one process, for a program that stops cleanly on it.</summary>
    public static void Terminate(int pid) => _ = SendSignal(pid, 15);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>The one runner (Berth.Testing), stopping first when the run was told to stop; a command that hangs fails the run.</summary>
    public static ExecResult Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        ThrowIfStopping();
        var r = Exec.Run(file, args, new ExecOptions
        {
            Environment = ExecOptions.Text(environment ?? new Dictionary<string, string>()),
            Timeout = timeout ?? TimeSpan.FromMinutes(2),
        });
        if (r.TimedOut) throw new E2eFailure($"{file} {string.Join(' ', args)} did not finish in time");
        return r;
    }

    /// <summary>Runs a command that must succeed; returns its standard output.</summary>
    public static string Check(string file, params string[] args)
    {
        var o = Run(file, args);
        if (o.ExitCode != 0) throw new E2eFailure($"{file} {string.Join(' ', args)} exited {o.ExitCode}: {o.Stderr.Trim()} {o.Stdout.Trim()}");
        return o.Stdout;
    }

    /// <summary>Waits for a condition the run cannot be told about, polling it; fails with what was awaited.</summary>
    public static async Task AwaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            ThrowIfStopping();
            if (clock.Elapsed > timeout) throw new E2eFailure($"timed out after {timeout.TotalSeconds:0} s waiting for {what}");
            await Task.Delay(50);
        }
    }

    public static Task AwaitAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        AwaitAsync(() => Task.FromResult(condition()), timeout, what);

    /// <summary>Alive and not a zombie (an orphan's zombie is reaped by whatever PID 1 is, or never).</summary>
    public static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    public static IEnumerable<int> AllPids() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(n => int.TryParse(n, out var pid) ? pid : 0).Where(pid => pid > 0);

    /// <summary>Processes whose command line holds <paramref name="needle"/> as one of its arguments.</summary>
    public static List<int> ProcessesWithArgument(string needle) =>
        AllPids().Where(pid =>
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(needle);
            }
            catch (IOException)
            {
                return false;
            }
        }).ToList();

    /// <summary>Every descendant of the given processes.</summary>
    public static List<int> Descendants(IReadOnlyCollection<int> roots)
    {
        var parents = AllPids().ToDictionary(pid => pid, ParentOf);
        var found = new List<int>();
        var frontier = new HashSet<int>(roots);
        while (frontier.Count > 0)
        {
            var next = parents.Where(p => frontier.Contains(p.Value)).Select(p => p.Key).ToHashSet();
            found.AddRange(next);
            frontier = next;
        }
        return found;
    }

    /// <summary>SIGKILL by PID, then waits until every one is gone.</summary>
    public static async Task KillAsync(IReadOnlyCollection<int> pids, string what)
    {
        foreach (var pid in pids)
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Already gone.
            }
        }
        await AwaitAsync(() => pids.All(pid => !Alive(pid)), TimeSpan.FromSeconds(30), $"{what} to die");
    }

    /// <summary>Mount points at or under <paramref name="dir"/>, deepest first.</summary>
    public static List<string> MountsUnder(string dir)
    {
        var prefix = dir.TrimEnd('/') + "/";
        return File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => Unescape(l.Split(' ')[4]))
            .Where(m => m == dir || m.StartsWith(prefix, StringComparison.Ordinal))
            .Distinct().OrderByDescending(m => m.Length).ToList();
    }

    public static void Unmount(string path)
    {
        var o = Run("umount", ["--lazy", path]);
        if (o.ExitCode != 0 && File.ReadAllText("/proc/self/mountinfo").Contains(" " + path + " ", StringComparison.Ordinal))
            throw new E2eFailure($"cannot unmount {path}: {o.Stderr.Trim()}");
    }

    /// <summary>Unmounts everything under the directory, then removes it.</summary>
    public static void RemoveTree(string dir)
    {
        foreach (var m in MountsUnder(dir)) Unmount(m);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static string Unescape(string mountPath) =>
        mountPath.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
