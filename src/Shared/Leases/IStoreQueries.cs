using System.Net;

namespace Berth.Shared.Leases;

/// <summary>Read-only figures for metrics and operators; not part of the allocator's seam.</summary>
public interface IStoreQueries
{
    /// <summary>Each network's ranges as the plugin last recorded them (canonical JSON of the range sets).</summary>
    IReadOnlyList<(string Network, string Ranges)> Networks();

    /// <summary>How many leases lie in [from, to] of a network.</summary>
    long CountLeases(string network, IPAddress from, IPAddress to);

    /// <summary>Leases made in the given boot, and in any other.</summary>
    (long Current, long Previous) LeasesByBoot(string bootId);

    /// <summary>History rows matching the filter, oldest first.</summary>
    IReadOnlyList<HistoryEntry> History(HistoryFilter filter);

    /// <summary>SQLite's own integrity check: "ok", or what it found.</summary>
    IReadOnlyList<string> IntegrityCheck();

    /// <summary>Releases recorded in the history by reason; only those made in <paramref name="bootId"/> when given.</summary>
    IReadOnlyDictionary<string, long> ReleaseCounts(string? bootId = null);
}
