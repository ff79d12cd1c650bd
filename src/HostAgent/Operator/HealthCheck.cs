using Berth.HostAgent.HostLocal;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>One thing `check` found: what kind, where, and a sentence for the operator.</summary>
internal sealed record Finding(string Kind, string Message, string? Network = null, string? Address = null)
{
    /// <summary>Kinds that inform and do not make the node unhealthy: what the metrics cannot say, and why.</summary>
    public static readonly IReadOnlySet<string> NoteKinds = new HashSet<string>(StringComparer.Ordinal) { "host-local-size-unknown", "cni-config-skipped" };

    public bool IsNote => NoteKinds.Contains(Kind);
}

/// <summary>
/// `berth-agent check`: SQLite's integrity check, leases outside their network's current ranges (as the
/// plugin last recorded them), range sets full or above 90 %, and leases left from earlier boots; in the guarded
/// host-local directories, files the agent saw in an earlier boot that are still there, and entries it skips.
/// </summary>
internal static class HealthCheck
{
    public static IReadOnlyList<Finding> Run(SqliteLeaseStore store, IBootClock clock, IReadOnlyList<string> hostLocalDirs, IReadOnlyList<string>? cniConfDirs = null)
    {
        var liveness = new Liveness(clock);
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
        foreach (var group in leases.Where(l => liveness.IsEarlierBoot(l.BootId)).GroupBy(l => l.Network))
        {
            findings.Add(new Finding("previous-boot", $"network {group.Key}: {group.Count()} leases from earlier boots remain (has 'berth-agent recover' run this boot?)", group.Key));
        }
        HostLocal(store, liveness, hostLocalDirs, findings);
        if (cniConfDirs is not null) GuardedPools(hostLocalDirs, cniConfDirs, findings);
        return findings;
    }

    /// <summary>The guarded host-local networks' range sets, full or nearly, and why a network has no known size.</summary>
    private static void GuardedPools(IReadOnlyList<string> dirs, IReadOnlyList<string> cniConfDirs, List<Finding> findings)
    {
        var report = Pools.PoolUsage.Measure(dirs, cniConfDirs);
        foreach (var set in report.Ranges.Where(r => r.Range is not null).GroupBy(r => (r.Store, r.Network, r.RangeSet)))
        {
            var capacity = set.Aggregate(UInt128.Zero, (sum, r) => sum + r.Range!.Capacity);
            var used = set.Sum(r => r.Used);
            var share = (double)used / (double)capacity;
            var where = $"host-local network {set.Key.Network} in {LeaseStores.HostLocalDir(set.Key.Store)} range set {set.Key.RangeSet} ({string.Join(",", set.Select(r => r.Range))})";
            if (share >= 1) findings.Add(new Finding("range-full", $"{where} is full: {used} of {capacity}", set.Key.Network));
            else if (share > 0.9) findings.Add(new Finding("range-nearly-full", $"{where} is {share:P0} used: {used} of {capacity}", set.Key.Network));
        }
        foreach (var u in report.Unsized)
        {
            findings.Add(new Finding("host-local-size-unknown", $"host-local network {u.Network} in {u.Dir}: its size is unknown, only the addresses it holds are exported: {u.Why}", u.Network));
        }
        // The guarded directories' own warnings are host-local-skipped findings already; these are the configs'.
        foreach (var w in report.Warnings.Where(w => w.StartsWith("CNI config", StringComparison.Ordinal))) findings.Add(new Finding("cni-config-skipped", w));
    }

    private static void HostLocal(SqliteLeaseStore store, Liveness liveness, IReadOnlyList<string> dirs, List<Finding> findings)
    {
        var scan = HostLocalDirs.Scan(dirs);
        var ledger = store.Read(GuardLedger.Read);
        // In the ledger's order (directory, then network), as the findings were always listed.
        var earlier = scan.Files.Where(f => ledger.SeenInEarlierBoot(f, liveness)).OrderBy(f => f.Dir, StringComparer.Ordinal).ThenBy(f => f.Network, StringComparer.Ordinal);
        foreach (var group in earlier.GroupBy(g => (g.Dir, g.Network)))
        {
            findings.Add(new Finding("host-local-previous-boot",
                $"host-local network {group.Key.Network} in {group.Key.Dir}: {group.Count()} lease files from earlier boots remain (has 'berth-agent recover' run this boot?)", group.Key.Network));
        }
        foreach (var warning in scan.Warnings) findings.Add(new Finding("host-local-skipped", warning));
        foreach (var file in scan.EmptyFiles)
        {
            findings.Add(new Finding("host-local-empty", $"{file.Path}: {HostLocalNetwork.EmptyFile}: berth-agent frees it at its next pass, under host-local's lock", file.Network));
        }
    }
}
