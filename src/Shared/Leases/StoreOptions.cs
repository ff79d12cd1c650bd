using Berth.Shared.Evidence;

namespace Berth.Shared.Leases;

/// <summary>How a store is opened.</summary>
public sealed record StoreOptions(IBootClock BootClock, TimeProvider Time)
{
    /// <summary>How long a writer waits for the store's lock before giving up with error 11.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether a missing store may be created (the plugin's ADD may; read-only commands may not).</summary>
    public bool Create { get; init; } = true;
}
