using Berth.Shared.Config;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>One thing `check` found: what kind, where, and a sentence for the operator.</summary>
internal sealed record Finding(string Kind, string Message, string? Network = null, string? Address = null);

/// <summary>
/// `berth-agent check`: SQLite's integrity check, leases outside their network's current ranges (as the
/// plugin last recorded them), range sets full or above 90 %, and leases left from earlier boots.
/// </summary>
internal static class HealthCheck
{
    public static IReadOnlyList<Finding> Run(SqliteLeaseStore store, string bootId)
    {
        var findings = new List<Finding>();
        var integrity = store.Query(q => q.IntegrityCheck());
        if (integrity is not ["ok"])
        {
            findings.Add(new Finding("integrity", $"SQLite integrity check: {string.Join("; ", integrity.Take(10))}"));
            return findings;
        }
        var networks = store.Query(q => q.Networks());
        var leases = store.Read(tx => tx.AllLeases());
        foreach (var (network, json) in networks)
        {
            var mine = leases.Where(l => l.Network == network).ToList();
            if (RecordedRanges.Parse(network, json) is not { } sets)
            {
                findings.Add(new Finding("ranges-unreadable", $"network {network}: its recorded ranges cannot be read", network));
                continue;
            }
            foreach (var lease in mine.Where(l => !sets.Any(s => s.Contains(l.Address))))
            {
                findings.Add(new Finding("outside-ranges", $"{lease.Address} in network {network} ({lease.Describe()}) lies outside the network's current ranges", network, lease.Address.ToString()));
            }
            foreach (var set in sets)
            {
                var capacity = set.Ranges.Aggregate(UInt128.Zero, (sum, r) => sum + r.Capacity);
                var used = mine.Count(l => set.Contains(l.Address));
                var share = (double)used / (double)capacity;
                if (share >= 1) findings.Add(new Finding("range-full", $"network {network} range set {set.Index} ({set}) is full: {used} of {capacity}", network));
                else if (share > 0.9) findings.Add(new Finding("range-nearly-full", $"network {network} range set {set.Index} ({set}) is {share:P0} used: {used} of {capacity}", network));
            }
        }
        foreach (var group in leases.Where(l => l.BootId != bootId).GroupBy(l => l.Network))
        {
            findings.Add(new Finding("previous-boot", $"network {group.Key}: {group.Count()} leases from earlier boots remain (has 'berth-agent recover' run this boot?)", group.Key));
        }
        return findings;
    }
}
