using System.Text;
using Berth.Shared.Platform;

namespace Berth.HostAgent.Evidence;

/// <summary>
/// Reads <c>/proc/PID/ns/net</c> of every process ("net:[4026532301]"). Covers runtimes that pass
/// CNI_NETNS=/proc/PID/ns/net and namespaces still held by a process after their pin was removed.
/// readlink(2) itself, not FileInfo.LinkTarget: the kernel refuses the link of a process with more capabilities
/// than the reader (EACCES without CAP_SYS_PTRACE), and LinkTarget answers that with null, as for a process that
/// is gone, so a lease whose namespace such a process holds would have read as "no process in it".
/// A refused link makes the whole answer unknown when the agent lacks CAP_SYS_PTRACE (then any process with
/// more capabilities than the agent is hidden from it, a pod's among them). With CAP_SYS_PTRACE the kernel
/// refuses only a process of another user namespace that is not below the agent's (the supervisor of a machine
/// that is itself a container, as PID 1 of the project's build machines): no pod of this node runs there, so
/// it is skipped, as before.
/// </summary>
internal sealed class ProcNamespaces(string proc = "/proc") : IProcessNamespaces
{
    private const int CapSysPtrace = 19;

    /// <summary>Whether this process has CAP_SYS_PTRACE in its effective set (/proc/self/status, CapEff).</summary>
    private static readonly Lazy<bool> CanTrace = new(() =>
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
            return line is not null && ulong.TryParse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, null, out var caps) && (caps & (1UL << CapSysPtrace)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    });

    public IReadOnlySet<ulong>? NetnsInodes()
    {
        var inodes = new HashSet<ulong>();
        IEnumerable<string> pids;
        try
        {
            pids = Directory.EnumerateDirectories(proc).Where(d => Path.GetFileName(d).All(char.IsAsciiDigit)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        var buffer = new byte[256];
        foreach (var pid in pids)
        {
            var n = Libc.readlink(Path.Combine(pid, "ns", "net"), buffer, buffer.Length);
            if (n < 0)
            {
                // The process exited while we looked: it holds no namespace any more.
                if (Libc.Errno is Libc.ENoent or Libc.ESrch) continue;
                // Without the right to look at every process, absence proves nothing.
                if (!CanTrace.Value) return null;
                continue;
            }
            var target = Encoding.UTF8.GetString(buffer, 0, (int)n);
            if (target.StartsWith("net:[", StringComparison.Ordinal) && target.EndsWith(']') && ulong.TryParse(target.AsSpan(5, target.Length - 6), out var inode))
            {
                inodes.Add(inode);
            }
        }
        return inodes;
    }
}
