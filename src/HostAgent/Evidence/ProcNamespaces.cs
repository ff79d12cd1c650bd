namespace Berth.HostAgent.Evidence;

/// <summary>
/// Reads <c>/proc/PID/ns/net</c> of every process ("net:[4026532301]"). Covers runtimes that pass
/// CNI_NETNS=/proc/PID/ns/net and namespaces still held by a process after their pin was removed.
/// </summary>
internal sealed class ProcNamespaces(string proc = "/proc") : IProcessNamespaces
{
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
        foreach (var pid in pids)
        {
            try
            {
                var target = new FileInfo(Path.Combine(pid, "ns", "net")).LinkTarget;
                if (target is not null && target.StartsWith("net:[", StringComparison.Ordinal) && ulong.TryParse(target.AsSpan(5, target.Length - 6), out var inode))
                {
                    inodes.Add(inode);
                }
            }
            catch (UnauthorizedAccessException)
            {
                // Without the right to look at every process, absence proves nothing.
                return null;
            }
            catch (IOException)
            {
                // The process exited while we looked: it holds no namespace any more.
            }
        }
        return inodes;
    }
}
