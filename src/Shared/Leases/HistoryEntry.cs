namespace Berth.Shared.Leases;

/// <summary>One row of the history: an allocation or a release, why, by whom, of what.</summary>
public sealed record HistoryEntry(
    long Id,
    DateTimeOffset At,
    string BootId,
    string Action,
    string Reason,
    string Actor,
    string Network,
    string Address,
    string ContainerId,
    string IfName,
    string? PodNamespace,
    string? PodName,
    string? Detail,
    string Store = LeaseStores.Berth);

/// <summary>Which history rows to read: the newest <see cref="Limit"/> that match, returned oldest first.</summary>
public sealed record HistoryFilter(string? Address = null, string? Network = null, DateTimeOffset? Since = null, int Limit = 1000);
