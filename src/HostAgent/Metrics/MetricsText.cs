using System.Globalization;
using System.Text;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Metrics;

/// <summary>What the daemon knows of its own work, for the metrics page.</summary>
/// <remarks><paramref name="LastSuccessAt"/>: the wall clock when the last pass completed, for the age people see on a dashboard.</remarks>
internal sealed record DaemonFigures(TimeSpan? LastReconcileDuration, bool? LastReconcileSucceeded, int LastReconcileReleased, long Passes, bool RecoveryDone,
    DateTimeOffset? LastSuccessAt = null, long Failures = 0)
{
    /// <summary>The process's counts of skipped entries: one instance, carried along by every <c>with</c>.</summary>
    public SkippedEntries Skipped { get; init; } = new();
}

/// <summary>
/// The Prometheus text exposition format (version 0.0.4) of the store's figures and the daemon's. Every
/// figure comes from the store at scrape time, so what the page says is what the store holds.
/// </summary>
internal static class MetricsText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Render(SqliteLeaseStore store, IBootClock clock, DaemonFigures daemon, IReadOnlyList<Pools.PoolRange>? guarded = null)
    {
        var bootId = clock.BootId;
        var liveness = new Liveness(clock);
        var text = new StringBuilder();
        var ranges = new List<(string Labels, UInt128 Capacity, long Leased)>();
        var (current, previous, releases, releasesThisBoot) = store.Query(q =>
        {
            foreach (var (network, json) in q.Networks())
            {
                if (RecordedRanges.Parse(network, json) is not { } sets) continue;
                foreach (var set in sets)
                {
                    foreach (var r in set.Ranges)
                    {
                        ranges.Add(($"store=\"{LeaseStores.Berth}\",network=\"{Escape(network)}\",range_set=\"{set.Index}\",range=\"{r}\"", r.Capacity, q.CountLeases(network, r.Start, r.End)));
                    }
                }
            }
            var (c, p) = q.LeasesByBoot(bootId);
            return (c, p, q.ReleaseCounts(), q.ReleaseCounts(bootId));
        });

        var pools = guarded ?? [];
        Family(text, "berth_range_addresses", "gauge", "Addresses a range can hand out (gateway excluded).");
        foreach (var r in ranges) Sample(text, "berth_range_addresses", r.Labels, (double)r.Capacity);
        foreach (var p in pools.Where(p => p.Range is not null)) Sample(text, "berth_range_addresses", PoolLabels(p), (double)p.Range!.Capacity);
        Family(text, "berth_range_leased", "gauge", "Addresses of a range that are leased (a guarded host-local network's addresses outside every known range: without range labels).");
        foreach (var r in ranges) Sample(text, "berth_range_leased", r.Labels, r.Leased);
        foreach (var p in pools) Sample(text, "berth_range_leased", PoolLabels(p), p.Used);
        // A guarded host-local file's boot is the one the agent first saw it in (as of its last pass).
        var files = store.Read(GuardLedger.Read).Rows.GroupBy(f => f.Store).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (Store: g.Key, Current: g.LongCount(f => !liveness.IsEarlierBoot(f.BootId)), Previous: g.LongCount(f => liveness.IsEarlierBoot(f.BootId))));
        Family(text, "berth_leases", "gauge", "Leases by the boot they were made in (guarded host-local files: first seen in).");
        Sample(text, "berth_leases", $"store=\"{LeaseStores.Berth}\",boot=\"current\"", current);
        Sample(text, "berth_leases", $"store=\"{LeaseStores.Berth}\",boot=\"previous\"", previous);
        foreach (var f in files)
        {
            Sample(text, "berth_leases", $"store=\"{Escape(f.Store)}\",boot=\"current\"", f.Current);
            Sample(text, "berth_leases", $"store=\"{Escape(f.Store)}\",boot=\"previous\"", f.Previous);
        }
        Family(text, "berth_releases_total", "counter", "Releases recorded in the store's history, by reason.");
        foreach (var reason in new[] { Reasons.CniDel, Reasons.CniGc, Reasons.BootRecovery, Reasons.Reconcile, Reasons.ExhaustedReclaim, Reasons.Manual, Reasons.HostLocalBootRecovery, Reasons.HostLocalReconcile })
        {
            Sample(text, "berth_releases_total", $"reason=\"{reason}\"", releases.GetValueOrDefault(reason));
        }
        Family(text, "berth_recovery_done", "gauge", "1 when the boot recovery has run for this boot.");
        Sample(text, "berth_recovery_done", null, daemon.RecoveryDone ? 1 : 0);
        Family(text, "berth_recovery_released", "gauge", "Leases released by the boot recovery of this boot.");
        Sample(text, "berth_recovery_released", null, releasesThisBoot.GetValueOrDefault(Reasons.BootRecovery));
        Family(text, "berth_reconcile_passes_total", "counter", "Reconcile passes run by this agent process.");
        Sample(text, "berth_reconcile_passes_total", null, daemon.Passes);
        Family(text, "berth_reconcile_failures_total", "counter", "Reconcile passes (and recovery attempts) that failed; the next one runs.");
        Sample(text, "berth_reconcile_failures_total", null, daemon.Failures);
        Family(text, "berth_skipped_entries_total", "counter", "Entries the agent skipped because they are not what they should be, by where: host-local (a guarded directory's entry), store (a row), runtime (an answer).");
        foreach (var (source, count) in daemon.Skipped.Snapshot()) Sample(text, "berth_skipped_entries_total", $"source=\"{source}\"", count);
        if (daemon.LastReconcileDuration is { } duration)
        {
            Family(text, "berth_reconcile_duration_seconds", "gauge", "Duration of the last reconcile pass.");
            Sample(text, "berth_reconcile_duration_seconds", null, duration.TotalSeconds);
        }
        if (daemon.LastReconcileSucceeded is { } ok)
        {
            Family(text, "berth_reconcile_last_success", "gauge", "1 when the last reconcile pass completed, 0 when it failed.");
            Sample(text, "berth_reconcile_last_success", null, ok ? 1 : 0);
            Family(text, "berth_reconcile_last_released", "gauge", "Leases released by the last reconcile pass.");
            Sample(text, "berth_reconcile_last_released", null, daemon.LastReconcileReleased);
        }
        if (daemon.LastSuccessAt is { } at)
        {
            Family(text, "berth_reconcile_last_success_timestamp_seconds", "gauge", "When the last reconcile pass completed (Unix time).");
            Sample(text, "berth_reconcile_last_success_timestamp_seconds", null, at.ToUnixTimeMilliseconds() / 1000.0);
        }
        return text.ToString();
    }

    /// <summary>The plugin calls this agent answered and refused, and the plugin's fallbacks it counted beside the socket.</summary>
    public static string PluginCalls(Serving.PluginServer server)
    {
        var text = new StringBuilder();
        Family(text, "berth_plugin_serving", "gauge", "1 when this agent answers the plugin's calls on its socket, 0 when it does not (another agent does, or it cannot listen).");
        Sample(text, "berth_plugin_serving", $"socket=\"{Escape(server.SocketPath)}\"", server.Serving ? 1 : 0);
        Family(text, "berth_plugin_calls_total", "counter", "Plugin calls this agent process answered, by verb and result (error: a CNI error answered, exit 1).");
        foreach (var (verb, result, count) in server.Served.Calls()) Sample(text, "berth_plugin_calls_total", $"verb=\"{verb}\",result=\"{result}\"", count);
        Family(text, "berth_plugin_calls_refused_total", "counter", "Connections this agent process did not answer with a result, by why; their plugins did the calls themselves.");
        foreach (var (reason, count) in server.Served.Refusals()) Sample(text, "berth_plugin_calls_refused_total", $"reason=\"{reason}\"", count);
        Family(text, "berth_plugin_fallbacks_total", "counter", "Calls the plugin did itself although an agent had served this socket in this boot, by why (counted by the plugin beside the socket).");
        foreach (var (reason, count) in server.Fallbacks()) Sample(text, "berth_plugin_fallbacks_total", $"reason=\"{reason}\"", count);
        return text.ToString();
    }

    /// <summary>A guarded network's labels: its store is host-local:DIR; without a known range, no range labels.</summary>
    private static string PoolLabels(Pools.PoolRange p) => p.Range is null
        ? $"store=\"{Escape(p.Store)}\",network=\"{Escape(p.Network)}\""
        : $"store=\"{Escape(p.Store)}\",network=\"{Escape(p.Network)}\",range_set=\"{p.RangeSet}\",range=\"{p.Range}\"";

    private static void Family(StringBuilder text, string name, string type, string help) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder text, string name, string? labels, double value)
    {
        text.Append(name);
        if (labels is not null) text.Append('{').Append(labels).Append('}');
        text.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
