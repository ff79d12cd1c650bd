
namespace Berth.Torture;

/// <summary>
/// Reads a berth store from outside with the sqlite3 command-line tool, as an operator would, so the checks
/// see what is on disk and not what the code under test believes.
/// </summary>
public static class StoreReader
{
    /// <summary>
    /// The files of a store that hold data. Not compared: the -shm index (SQLite rebuilds it) and berth.db.lock,
    /// the writers' queue, which holds no lease data and counts hand-overs even for a writer that then fails.
    /// </summary>
    public static Dictionary<string, byte[]> Snapshot(string directory)
    {
        var files = new Dictionary<string, byte[]>();
        if (!Directory.Exists(directory)) return files;
        foreach (var f in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            if (f.EndsWith("-shm", StringComparison.Ordinal) || f.EndsWith(".lock", StringComparison.Ordinal)) continue;
            try
            {
                files[f] = File.ReadAllBytes(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A fuzz case may leave an unreadable file (a FIFO, a directory race): compared by name only.
                files[f] = [];
            }
        }
        return files;
    }

    /// <summary>What changed between two snapshots, in words; empty when nothing did.</summary>
    public static List<string> Diff(Dictionary<string, byte[]> before, Dictionary<string, byte[]> after)
    {
        var changes = new List<string>();
        foreach (var (f, bytes) in before)
        {
            if (!after.TryGetValue(f, out var now)) changes.Add($"{f} was removed");
            else if (!bytes.AsSpan().SequenceEqual(now)) changes.Add($"{f} changed ({bytes.Length} -> {now.Length} bytes)");
        }
        // SQLite creates an empty -wal beside a WAL-mode database it opens: no data, not a change.
        foreach (var f in after.Keys.Where(f => !before.ContainsKey(f) && !(f.EndsWith("-wal", StringComparison.Ordinal) && after[f].Length == 0))) changes.Add($"{f} was created ({after[f].Length} bytes)");
        return changes;
    }
}

/// <summary>The figures of one mode's run and its violations, each with what is needed to reproduce it.</summary>
public sealed class Report(string mode, int seed)
{
    private readonly object _gate = new();
    private readonly List<string> _violations = [];

    public string Mode { get; } = mode;
    public int Seed { get; } = seed;
    public long Cycles;
    public long Acked;
    public long Cuts;

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate) return [.. _violations];
        }
    }

    public TextWriter Log { get; init; } = Console.Out;

    public void Violation(string what)
    {
        lock (_gate)
        {
            _violations.Add(what);
            Log.WriteLine($"VIOLATION mode={Mode} seed={Seed}: {what}");
        }
    }

    public string Summary => $"SUMMARY mode={Mode} cycles={Cycles} acked={Acked} cuts={Cuts} violations={Violations.Count}";
}
