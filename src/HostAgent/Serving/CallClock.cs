using Berth.Shared.Evidence;

namespace Berth.HostAgent.Serving;

/// <summary>
/// The boot clock of the call being served, for the stores kept open across calls: a store's options are fixed when it
/// is opened, and each call brings its own clock (the plugin reads the boot ID afresh in every process, and the tests
/// fake a reboot by naming another boot ID file for a call).
/// </summary>
internal sealed class CallClock(IBootClock outside) : IBootClock
{
    private static readonly AsyncLocal<IBootClock?> Current = new();

    public string BootId => (Current.Value ?? outside).BootId;

    public TimeSpan SinceBoot => (Current.Value ?? outside).SinceBoot;

    /// <summary>Makes <paramref name="clock"/> the clock of the stores' transactions on this flow until disposed.</summary>
    public static IDisposable Enter(IBootClock clock)
    {
        Current.Value = clock;
        return new Leave();
    }

    private sealed class Leave : IDisposable
    {
        public void Dispose() => Current.Value = null;
    }
}
