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

    /// <summary>Whether a missing store may be created (the plugin's ADD and the agent's boot recovery may; operator commands may not).</summary>
    public bool Create { get; init; } = true;

    /// <summary>
    /// For commands that only read (leases, history, check): on a read-only filesystem (a rescue boot) the store is
    /// opened read-only instead of failing; it is never created. Writing through such a store fails with error 5.
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// The WAL size past which a committer truncates it (see <see cref="SqliteLeaseStore"/>). Small for a plugin
    /// process, which is often the store's only connection and rebuilds the WAL index from the whole WAL when it opens;
    /// larger for a store berth-agent keeps open (<see cref="KeptWalTruncateBytes"/>), whose connection keeps the index
    /// alive for every process: each truncation rewrites the database file, which the agent then opens again.
    /// </summary>
    public long WalTruncateBytes { get; init; } = 256 * 1024;

    /// <summary>The <see cref="WalTruncateBytes"/> of a store kept open by berth-agent to answer the plugin's calls.</summary>
    public const long KeptWalTruncateBytes = 4 * 1024 * 1024;
}
