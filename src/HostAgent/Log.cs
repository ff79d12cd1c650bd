using Berth.HostAgent.Reconcile;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent;

/// <summary>How decisions reach the journal: every release and strike with its evidence; keeps only in debug.</summary>
internal static class Log
{
    public static void Recovery(ILogger logger, RecoveryResult result)
    {
        if (result.AlreadyDoneAt is { } at)
        {
            logger.LogInformation("recovery already ran for boot {Boot} at {At:u}: nothing to do", result.BootId, at);
            return;
        }
        foreach (var d in result.Decisions) Decision(logger, d, result.DryRun);
        logger.LogInformation("recovery for boot {Boot}: {Verb} {Released} of {Total} earlier-boot leases",
            result.BootId, result.DryRun ? "would release" : "released", result.Released, result.Decisions.Count);
    }

    public static void Pass(ILogger logger, ReconcileReport report)
    {
        foreach (var d in report.Decisions) Decision(logger, d, report.DryRun);
        logger.LogInformation("reconcile: {Count} leases, {Released} {Verb}, {Unknown} unknown, {Ms:0} ms",
            report.Decisions.Count, report.Released, report.DryRun ? "would be released" : "released", report.Unknown, report.Duration.TotalMilliseconds);
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
        return $"{verb} {d.Lease.Address} ({d.Lease.Network}, {d.Lease.Owner}): {d.Evidence.ToString().ToLowerInvariant()}: {d.Detail}";
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
