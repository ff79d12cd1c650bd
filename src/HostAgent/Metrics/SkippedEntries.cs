namespace Berth.HostAgent.Metrics;

/// <summary>
/// Entries of the world the agent reads that it skipped because they are not what they should be, by where they
/// were: a file in a guarded host-local directory, a row of the store, a runtime's answer. Each one is also a
/// warning in the log naming it; the counts are <c>berth_skipped_entries_total{source}</c>.
/// </summary>
internal sealed class SkippedEntries
{
    /// <summary>An entry of a guarded host-local directory (a name that is no address, a file that is no lease).</summary>
    public const string HostLocal = "host-local";

    /// <summary>A row of the store that berth did not write so.</summary>
    public const string Store = "store";

    /// <summary>An answer of a container runtime that could not be used (the evidence is then unknown).</summary>
    public const string Runtime = "runtime";

    public static readonly string[] Sources = [HostLocal, Store, Runtime];

    private readonly long[] _counts = new long[Sources.Length];

    /// <summary>Adds a report's counts by source.</summary>
    public void Add(IReadOnlyDictionary<string, int>? counts)
    {
        foreach (var (source, count) in counts ?? new Dictionary<string, int>()) Add(source, count);
    }

    public void Add(string source, int count)
    {
        if (count <= 0) return;
        var index = Array.IndexOf(Sources, source);
        Interlocked.Add(ref _counts[index < 0 ? throw new ArgumentException($"unknown source {source}") : index], count);
    }

    public IReadOnlyList<(string Source, long Count)> Snapshot() => [.. Sources.Select((s, i) => (s, Interlocked.Read(ref _counts[i])))];
}
