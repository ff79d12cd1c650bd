using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent;

/// <summary>How decisions reach the journal: every release and strike with its evidence; keeps only in debug.</summary>
internal static class Log
{
    public static void Recovery(ILogger logger, RecoveryResult result)
    {
        foreach (var d in result.Decisions) Decision(logger, d, result.DryRun);
        foreach (var w in result.Warnings ?? []) logger.LogWarning("{Warning}", w);
        logger.LogInformation("{Summary}", result.Summary);
    }

    public static void Pass(ILogger logger, ReconcileReport report)
    {
        foreach (var d in report.Decisions) Decision(logger, d, report.DryRun);
        foreach (var w in report.Warnings) logger.LogWarning("{Warning}", w);
        logger.LogInformation("reconcile: {Summary}", report.Summary);
    }

    public static string Line(Decision d, bool dryRun)
    {
        var verb = d.Verdict switch
        {
            Verdict.Release => dryRun ? "would release" : "release",
            Verdict.Strike => "strike",
            Verdict.Unknown => "unknown",
            Verdict.Young => "young",
            _ => "keep",
        };
        var store = d.Store == LeaseStores.Berth ? "" : ", host-local";
        return $"{verb} {d.Lease.Address} ({d.Lease.Network}{store}, {d.Lease.Owner}): {d.Evidence.ToString().ToLowerInvariant()}: {d.Detail}";
    }

    private static void Decision(ILogger logger, Decision d, bool dryRun)
    {
        var level = d.Verdict switch
        {
            Verdict.Release or Verdict.Strike => LogLevel.Information,
            Verdict.Unknown => LogLevel.Warning,
            _ => LogLevel.Debug,
        };
        logger.Log(level, "{Decision}", Line(d, dryRun));
    }
}
