using System.Globalization;
using System.Text;
using Berth.Shared.Platform;

namespace Berth.HostAgent.Node;

/// <summary>
/// One guardian per host-local directory on a node. Where the packages' berth-agent.service and the DaemonSet's
/// pod both run (a node moving from one to the other, or a mistake), both would guard /var/lib/cni/networks, each
/// with its own store: two ledgers, two histories, every release counted twice. So `run` takes an exclusive flock
/// on each guarded directory it finds (the directory itself: it exists wherever there is something to guard, the
/// unit's read-only view of the filesystem can open it, and no file is added to host-local's tree; host-local
/// flocks <c>DIR/NETWORK/lock</c> and old versions <c>DIR/NETWORK</c>, never <c>DIR</c>). A directory another
/// agent holds is left to it: this agent stands aside for it, says so in its log and in
/// <c>berth_agent_standing_aside</c>, and looks again every so often; once the other agent is gone it asks to be
/// restarted (its supervisor, systemd or the kubelet, starts it again) and the new process guards it.
/// The lock lives as long as the process (the kernel drops it when the process dies, also on SIGKILL).
/// </summary>
internal sealed class GuardLocks : IDisposable
{
    private readonly Dictionary<string, int> _held = new(StringComparer.Ordinal);
    private readonly List<string> _aside = [];
    private readonly List<string> _absent = [];

    private GuardLocks()
    {
    }

    /// <summary>The directories this agent guards: those it holds the lock of, and those that do not exist yet (nobody guards them yet).</summary>
    public IReadOnlyList<string> Guarded => [.. _held.Keys, .. _absent];

    /// <summary>The directories another agent holds: this one does not guard them.</summary>
    public IReadOnlyList<string> Aside => _aside;

    /// <summary>Directories that did not exist when the agent started: guarded without a lock (there is nothing to lock yet).</summary>
    public IReadOnlyList<string> Absent => _absent;

    /// <summary>Takes the lock of each directory it can; never blocks.</summary>
    public static GuardLocks Take(IReadOnlyList<string> dirs)
    {
        var locks = new GuardLocks();
        foreach (var dir in dirs.Distinct(StringComparer.Ordinal))
        {
            switch (TryLock(dir, out var fd))
            {
                case Outcome.Held:
                    locks._held[dir] = fd;
                    break;
                case Outcome.Busy:
                    locks._aside.Add(dir);
                    break;
                default:
                    locks._absent.Add(dir);
                    break;
            }
        }
        return locks;
    }

    /// <summary>What the log says at start: one line per directory this agent does not lock, or nothing.</summary>
    public IEnumerable<string> Explain()
    {
        foreach (var dir in _aside)
        {
            yield return $"another berth-agent guards {dir} (it holds the directory's lock): standing aside for it, this agent neither deletes nor records its files; it takes over when restarted after the other one stops";
        }
        foreach (var dir in _absent)
        {
            yield return $"{dir} does not exist or cannot be opened yet: guarded without the one-agent lock (a second agent on this node would guard it too)";
        }
    }

    /// <summary>True once a directory this agent stands aside for is no longer locked by anyone (the lock is not kept: a restart takes it).</summary>
    public bool AnyFreed()
    {
        foreach (var dir in _aside)
        {
            if (TryLock(dir, out var fd) != Outcome.Held) continue;
            _ = Libc.close(fd);
            return true;
        }
        return false;
    }

    /// <summary>berth_agent_standing_aside: 1 for each guarded directory another agent holds, 0 for those this agent holds.</summary>
    public string Metrics()
    {
        if (_held.Count == 0 && _aside.Count == 0) return "";
        var text = new StringBuilder();
        text.Append("# HELP berth_agent_standing_aside 1 when another berth-agent on this node holds the guarded directory's lock and this one leaves its files alone.\n");
        text.Append("# TYPE berth_agent_standing_aside gauge\n");
        foreach (var dir in _held.Keys.Order(StringComparer.Ordinal)) Line(text, dir, 0);
        foreach (var dir in _aside.Order(StringComparer.Ordinal)) Line(text, dir, 1);
        return text.ToString();
    }

    private static void Line(StringBuilder text, string dir, int value) =>
        text.Append(CultureInfo.InvariantCulture, $"berth_agent_standing_aside{{dir=\"{dir.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"}} {value}\n");

    public void Dispose()
    {
        foreach (var fd in _held.Values) _ = Libc.close(fd);
        _held.Clear();
    }

    private enum Outcome { Held, Busy, Absent }

    private static Outcome TryLock(string dir, out int fd)
    {
        fd = Libc.open(dir, Libc.ORdonly | Libc.ODirectory | Libc.OCloexec, 0);
        if (fd < 0) return Outcome.Absent;
        while (Libc.flock(fd, Libc.LockEx | Libc.LockNb) != 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.EIntr) continue;
            _ = Libc.close(fd);
            fd = -1;
            // EWOULDBLOCK: another process holds it. Anything else (ENOLCK on an odd filesystem): treat as nobody's.
            return errno == Libc.EWouldBlock ? Outcome.Busy : Outcome.Absent;
        }
        return Outcome.Held;
    }
}
