using Berth.HostAgent.Evidence;
using Berth.HostAgent.Metrics;
using Berth.HostAgent.Reconcile;
using Berth.HostAgent.Systemd;
using Berth.Shared.Cni;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent;

/// <summary>
/// `berth-agent run`: recovery if this boot has not had it, READY=1, then a reconcile pass every interval.
/// The watchdog is pinged from the same loop that runs the passes, so a pass that hangs stops the pings and
/// systemd restarts the agent.
/// </summary>
internal sealed class AgentDaemon(
    AgentConfig config, SqliteLeaseStore store, IBootClock clock, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime,
    ISystemdNotifier notifier, ILogger logger, TimeSpan? watchdog, TimeProvider time)
{
    private const string Actor = Cli.Actor;
    private DaemonFigures _figures = new(null, null, 0, 0, false);

    public async Task<int> RunAsync(CancellationToken stop)
    {
        var guard = HostLocal.HostLocalGuard.For(config, store, clock, Actor);
        var recovery = await Recovery.RunAsync(store, clock, netns, guard, runtime, config.DryRun, Actor, stop).ConfigureAwait(false);
        Log.Recovery(logger, recovery);
        _figures = _figures with { RecoveryDone = !config.DryRun || recovery.AlreadyDoneAt is not null };
        notifier.Notify($"READY=1\nSTATUS={recovery.Summary}");

        await using var metrics = config.MetricsEnabled ? new MetricsServer(config.MetricsAddress, () => MetricsText.Render(store, clock.BootId, _figures)) : null;
        try
        {
            metrics?.Start();
            if (metrics is not null) logger.LogInformation("metrics on http://{Address}/metrics", metrics.Address);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            logger.LogError("metrics cannot listen on {Address}: {Message}; reconciling without them", config.MetricsAddress, e.Message);
        }

        var reconciler = new Reconciler(store, clock, netns, processes, runtime, config.GracePeriod, Actor, guard);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var report = await reconciler.PassAsync(config.DryRun, stop).ConfigureAwait(false);
                Log.Pass(logger, report);
                _figures = _figures with { LastReconcileDuration = report.Duration, LastReconcileSucceeded = true, LastReconcileReleased = report.Released, Passes = _figures.Passes + 1 };
                notifier.Notify($"STATUS=last pass: {report.Summary}");
                if (!config.DryRun)
                {
                    var pruned = store.Write(tx => tx.PruneHistory(config.HistoryKeepEvents, time.GetUtcNow() - config.HistoryKeepAge));
                    if (pruned > 0) logger.LogInformation("history: pruned {Count} events beyond the newest {Keep} and older than {Days} days", pruned, config.HistoryKeepEvents, config.HistoryKeepAge.TotalDays);
                }
            }
            catch (CniException e)
            {
                // The store is busy or damaged: say so, keep the service up, try again next interval.
                logger.LogError("reconcile failed: {Message}", e.Message);
                _figures = _figures with { LastReconcileSucceeded = false, Passes = _figures.Passes + 1 };
                notifier.Notify($"STATUS=reconcile failed: {e.Message}");
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            await WaitAsync(config.Interval, stop).ConfigureAwait(false);
        }
        notifier.Notify("STOPPING=1");
        logger.LogInformation("stopping");
        return 0;
    }

    /// <summary>Waits for the next pass, pinging the watchdog on the way; returns early when stopped.</summary>
    private async Task WaitAsync(TimeSpan interval, CancellationToken stop)
    {
        var until = time.GetTimestamp() + (long)(interval.TotalSeconds * time.TimestampFrequency);
        while (!stop.IsCancellationRequested)
        {
            var left = time.GetElapsedTime(time.GetTimestamp(), until);
            if (left <= TimeSpan.Zero) return;
            try
            {
                await Task.Delay(watchdog is { } w && w < left ? w : left, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (watchdog is not null) notifier.Notify("WATCHDOG=1");
        }
    }

}
