using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent.Node;

/// <summary>
/// While this agent stands aside for a directory another agent guards, it looks every interval whether that agent
/// is gone (its lock free). Then it stops, so that its supervisor (systemd's Restart=always, the kubelet's
/// restartPolicy Always) starts it again, and the new process takes the lock and guards the directory: no pass
/// has to change the set of directories it guards halfway through a life.
/// </summary>
internal sealed class StandAsideWatch(GuardLocks locks, TimeSpan interval, ILogger logger, IHostApplicationLifetime lifetime, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!locks.AnyFreed()) continue;
            logger.LogWarning("the other berth-agent released its lock on {Dirs}: stopping so that the supervisor restarts this agent to guard it", string.Join(", ", locks.Aside));
            lifetime.StopApplication();
            return;
        }
    }
}
