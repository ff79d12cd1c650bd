using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.Shared.Plugin;

/// <summary>The plugin's seams to the machine: the boot clock, the netns probe and the wall clock.</summary>
public sealed record PluginServices(IBootClock BootClock, INetnsProbe Netns, TimeProvider Time)
{
    /// <summary>The seams of the plugin process itself: each call opens its store and closes it.</summary>
    public static PluginServices ForMachine(Func<string, string?> environment) =>
        new(new SystemBootClock(environment), new NetnsProbe(), TimeProvider.System);

    /// <summary>Stores kept open across calls (the agent); null: the call opens its store and closes it (the plugin).</summary>
    public IStoreKeeper? Stores { get; init; }

    /// <summary>
    /// Called first in every write transaction, after the writer lock is taken: throws (and the transaction rolls
    /// back) when the call is no longer wanted. The agent's check that its caller is still connected; null in the plugin.
    /// </summary>
    public Action? Proceed { get; init; }

    /// <summary>
    /// Where this process opens a file the call names (ipam.resolvConf, flannel's subnet file, the boot ID file): the
    /// path itself in the plugin, which resolves it as its caller does. berth-agent reads the caller's file
    /// (<c>CallerView</c>): another mount namespace (a pod) or working directory can give the same path another file.
    /// </summary>
    public Func<string, string> CallerFile { get; init; } = static path => path;
}
