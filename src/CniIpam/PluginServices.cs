using Berth.Shared.Evidence;

namespace Berth.CniIpam;

/// <summary>The plugin's seams to the machine: the boot clock, the netns probe and the wall clock.</summary>
internal sealed record PluginServices(IBootClock BootClock, INetnsProbe Netns, TimeProvider Time)
{
    public static PluginServices ForMachine(Func<string, string?> environment) =>
        new(new SystemBootClock(environment), new NetnsProbe(), TimeProvider.System);
}
