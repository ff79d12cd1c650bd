using Berth.Shared.Evidence;

namespace Berth.Shared.Leases;

/// <summary>How a store is opened.</summary>
public sealed record StoreOptions(IBootClock BootClock, TimeProvider Time)
{
    /// <summary>
    /// How long a writer waits without the store's write lock changing hands before giving up with error 11
    /// (and, times <see cref="WriterLock.QueueLimitFactor"/>, the longest it stands in a moving line).
    /// </summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether a missing store may be created (the plugin's ADD may; read-only commands may not).</summary>
    public bool Create { get; init; } = true;
}
