namespace Berth.HostAgent.HostLocal;

/// <summary>
/// host-local's data directories (<c>hostLocal.dirs</c>, default /var/lib/cni/networks): each holds one directory
/// per network. A configured directory that does not exist is skipped (host-local never ran here); everything in
/// it that is not host-local's is skipped with a warning, never touched.
/// </summary>
internal static class HostLocalDirs
{
    public const string Default = "/var/lib/cni/networks";

    /// <summary>Every lease file and cursor under <paramref name="dirs"/>, of one network when <paramref name="onlyNetwork"/> is given.</summary>
    public static HostLocalScan Scan(IEnumerable<string> dirs, string? onlyNetwork = null)
    {
        var files = new List<HostLocalFile>();
        var emptied = new List<HostLocalFile>();
        var cursors = new List<HostLocalCursor>();
        var warnings = new List<string>();
        var unread = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in dirs)
        {
            var networks = Networks(dir, warnings);
            if (networks is null)
            {
                unread.Add(dir);
                continue;
            }
            foreach (var network in networks)
            {
                if (onlyNetwork is not null && network != onlyNetwork) continue;
                try
                {
                    using var net = HostLocalNetwork.Open(dir, network);
                    net.Scan(files, cursors, warnings, emptied);
                }
                catch (HostLocalException e)
                {
                    // A symlink, unreadable, not a network: nothing of ours to do there. Deleted mid-pass (by hand):
                    // its files are gone with it.
                    if (!e.Gone) unread.Add(Path.Combine(dir, network));
                    warnings.Add($"{e.Message}; skipped");
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // What one network directory holds must never stop the pass for the others, nor for berth's own
                    // leases: unread, so nothing in it is forgotten or deleted. A bug: the fuzzing looks for this line.
                    unread.Add(Path.Combine(dir, network));
                    warnings.Add($"{Path.Combine(dir, network)}: internal error while reading it: {e.GetType().Name}: {e.Message}; skipped");
                }
            }
        }
        return new HostLocalScan(files, cursors, warnings, unread, emptied);
    }

    /// <summary>The network directories' names under <paramref name="dir"/>: none when it does not exist, null when it cannot be read.</summary>
    public static IReadOnlyList<string>? Networks(string dir, List<string>? warnings = null)
    {
        if (!Directory.Exists(dir)) return [];
        try
        {
            return [.. Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings?.Add($"{dir}: cannot be listed: {e.Message}; skipped");
            return null;
        }
    }
}
