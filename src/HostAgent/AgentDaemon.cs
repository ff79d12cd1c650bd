using Berth.HostAgent.Evidence;
using Berth.HostAgent.Metrics;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Cni;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent;

/// <summary>
/// `berth-agent run` on the generic host with systemd's lifetime: recovery if this boot has not had it (in
/// StartAsync, so it is finished before the lifetime sends READY=1), then a reconcile pass every interval as a
/// background service. STOPPING=1 is the lifetime's, on SIGTERM. The watchdog is pinged from the same loop
/// that runs the passes, so a pass that hangs stops the pings and systemd restarts the agent.
/// </summary>
internal sealed class AgentDaemon(
    AgentServices agent, ISystemdNotifier notifier, ILogger logger, IHostApplicationLifetime lifetime, TimeSpan? watchdog, Node.AgentStartup? startup = null,
    Serving.PluginServer? plugins = null) : BackgroundService
{
    private const string Actor = Cli.Actor;
    private DaemonFigures _figures = new(null, null, 0, 0, false);
    private string _poolWarnings = "";

    /// <summary>
    /// The service's host: journald console format, systemd's lifetime and notifier (given, so that the tests
    /// can watch it), this daemon as the one hosted service. <paramref name="watchdog"/>: how often to send
    /// WATCHDOG=1 (<see cref="WatchdogInterval"/>), or null for never. <paramref name="pluginSocket"/>: where to answer
    /// the plugin's calls (after recovery), or null for nowhere.
    /// </summary>
    public static IHost CreateHost(AgentServices agent, ISystemdNotifier notifier, TimeSpan? watchdog, Node.AgentStartup? startup = null, string? pluginSocket = null)
    {
        // Empty: no appsettings, environment or command-line configuration sources; agent.json is read by AgentConfig.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddSystemdConsole(o => o.IncludeScopes = false).SetMinimumLevel(LogLevel.Information)
            // The host's own "Application started" lines say nothing the journal and READY=1 do not.
            .AddFilter("Microsoft", LogLevel.Warning);
        // A pass in progress is cancelled on SIGTERM; this only bounds a store write that will not finish.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton(notifier);
        // Not AddSystemd(): it switches on only when the parent process is systemd, and a supervisor speaking
        // sd_notify (or a test) must get the same notifications. Without NOTIFY_SOCKET the notifier is silent.
        builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
        if (pluginSocket is not null)
        {
            builder.Services.AddSingleton(services => new Serving.PluginServer(pluginSocket, agent.Clock, agent.Time, services.GetRequiredService<ILoggerFactory>().CreateLogger(Actor)));
        }
        builder.Services.AddHostedService(services => new AgentDaemon(agent, notifier,
            services.GetRequiredService<ILoggerFactory>().CreateLogger(Actor), services.GetRequiredService<IHostApplicationLifetime>(), watchdog, startup,
            services.GetService<Serving.PluginServer>()));
        // After the daemon, whose start is the boot's recovery: until it is done the plugin does its calls itself.
        if (pluginSocket is not null) builder.Services.AddHostedService(services => services.GetRequiredService<Serving.PluginServer>());
        if (startup?.Locks is { Aside.Count: > 0 } locks)
        {
            builder.Services.AddHostedService(services => new Node.StandAsideWatch(locks, agent.Config.Interval,
                services.GetRequiredService<ILoggerFactory>().CreateLogger(Actor), services.GetRequiredService<IHostApplicationLifetime>(), agent.Time));
        }
        return builder.Build();
    }

    /// <summary>How often to send WATCHDOG=1 (half systemd's WatchdogSec), or null when it asks for none from this process.</summary>
    public static TimeSpan? WatchdogInterval(Func<string, string?> environment)
    {
        if (!long.TryParse(environment("WATCHDOG_USEC"), out var usec) || usec <= 0) return null;
        if (int.TryParse(environment("WATCHDOG_PID"), out var pid) && pid != Environment.ProcessId) return null;
        return TimeSpan.FromMicroseconds(usec / 2.0);
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var line in startup?.Locks?.Explain() ?? []) logger.LogWarning("{Lock}", line);
        await RecoverAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Recovery for this boot, once. One that fails is logged and counted, and tried again before each pass: the
    /// service stays up (a node with no reconcile and no metrics is worse off than one whose recovery waits).
    /// </summary>
    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        try
        {
            var recovery = await agent.RecoverAsync(agent.Config.DryRun, cancellationToken).ConfigureAwait(false);
            Log.Recovery(logger, recovery);
            foreach (var line in startup?.AfterRecovery(recovery, agent.Config.GracePeriod, agent.Config.Interval) ?? []) logger.LogWarning("{Unproven}", line);
            _figures.Skipped.Add(recovery.Skipped);
            _figures = _figures with { RecoveryDone = !agent.Config.DryRun || recovery.AlreadyDoneAt is not null };
            _recovered = true;
            Status(recovery.Summary);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Failed("recovery", e);
        }
    }

    /// <summary>A failed pass or recovery: the journal and STATUS say why, the metrics count it, the service goes on.</summary>
    private void Failed(string what, Exception e)
    {
        // A CniException is a known condition (the store busy or damaged); anything else is a bug, said as one.
        var why = e is CniException ? e.Message : $"{e.GetType().Name}: {e.Message} (a bug in berth-agent; please report it with this line)";
        logger.LogError("{What} failed: {Why}; trying again at the next interval", what, why);
        _figures = _figures with { LastReconcileSucceeded = false, Failures = _figures.Failures + 1 };
        Status($"{what} failed: {why}");
    }

    private bool _recovered;

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // The first pass comes after READY=1, which the lifetime sends once every hosted service has started.
        if (!await StartedAsync(stop).ConfigureAwait(false)) return;

        await using var metrics = agent.Config.MetricsEnabled ? new MetricsServer(agent.Config.MetricsAddress, RenderMetrics) : null;
        try
        {
            metrics?.Start();
            if (metrics is not null) logger.LogInformation("metrics on http://{Address}/metrics", metrics.Address);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            logger.LogError("metrics cannot listen on {Address}: {Message}; reconciling without them", agent.Config.MetricsAddress, e.Message);
        }

        var reconciler = agent.Reconciler();
        while (!stop.IsCancellationRequested)
        {
            if (!_recovered) await RecoverAsync(stop).ConfigureAwait(false);
            try
            {
                var report = await reconciler.PassAsync(agent.Config.DryRun, stop).ConfigureAwait(false);
                Log.Pass(logger, report);
                _figures.Skipped.Add(report.Skipped);
                _figures = _figures with { LastReconcileDuration = report.Duration, LastReconcileSucceeded = true, LastReconcileReleased = report.Released, Passes = _figures.Passes + 1, LastSuccessAt = agent.Time.GetUtcNow() };
                Status("last pass: " + report.Summary);
                if (!agent.Config.DryRun)
                {
                    var pruned = agent.Store.Write(tx => tx.PruneHistory(agent.Config.HistoryKeepEvents, agent.Time.GetUtcNow() - agent.Config.HistoryKeepAge));
                    if (pruned > 0) logger.LogInformation("history: pruned {Count} events beyond the newest {Keep} and older than {Days} days", pruned, agent.Config.HistoryKeepEvents, agent.Config.HistoryKeepAge.TotalDays);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // The store busy or damaged, or a bug: say so, keep the service up, try again next interval.
                Failed("reconcile", e);
                _figures = _figures with { Passes = _figures.Passes + 1 };
            }
            await WaitAsync(agent.Config.Interval, stop).ConfigureAwait(false);
        }
        logger.LogInformation("stopping");
    }

    /// <summary>The page, with the guarded networks' pools as the node's CNI configs size them now.</summary>
    private string RenderMetrics()
    {
        var pools = Pools.PoolUsage.Measure(agent.Config.HostLocalDirs, agent.Config.CniConfDirs);
        // What the pools cannot say goes to the journal when it changes, not at every scrape.
        var said = string.Join("\n", pools.Warnings.Concat(pools.Unsized.Select(u => $"host-local network {u.Network} in {u.Dir}: size unknown: {u.Why}")));
        if (Interlocked.Exchange(ref _poolWarnings, said) != said)
        {
            foreach (var line in said.Split('\n', StringSplitOptions.RemoveEmptyEntries)) logger.LogWarning("pools: {Warning}", line);
        }
        return MetricsText.Render(agent.Store, agent.Clock, _figures, pools.Ranges) + startup?.Locks?.Metrics() + (plugins is null ? "" : MetricsText.PluginCalls(plugins));
    }

    private async Task<bool> StartedAsync(CancellationToken stop)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var _ = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        try
        {
            await started.Task.WaitAsync(stop).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Waits for the next pass, pinging the watchdog on the way; returns early when stopped.</summary>
    private async Task WaitAsync(TimeSpan interval, CancellationToken stop)
    {
        var until = agent.Time.GetTimestamp() + (long)(interval.TotalSeconds * agent.Time.TimestampFrequency);
        while (!stop.IsCancellationRequested)
        {
            var left = agent.Time.GetElapsedTime(agent.Time.GetTimestamp(), until);
            if (left <= TimeSpan.Zero) return;
            try
            {
                await Task.Delay(watchdog is { } w && w < left ? w : left, agent.Time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (watchdog is not null) notifier.Notify(new ServiceState("WATCHDOG=1"));
        }
    }

    private void Status(string text) => notifier.Notify(new ServiceState("STATUS=" + text));
}
