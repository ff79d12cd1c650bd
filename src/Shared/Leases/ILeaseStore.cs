namespace Berth.Shared.Leases;

/// <summary>
/// An open lease store, seen through <typeparamref name="TTransaction"/>: the plugin holds it as
/// <c>ILeaseStore&lt;IStoreTransaction&gt;</c>, the agent as <c>ILeaseStore&lt;IAgentTransaction&gt;</c>. Each call is one transaction.
/// </summary>
public interface ILeaseStore<out TTransaction> : IDisposable where TTransaction : IStoreTransaction
{
    /// <summary>Runs <paramref name="work"/> in one write transaction, committed (durably) when it returns.</summary>
    T Write<T>(Func<TTransaction, T> work);

    /// <summary>Runs <paramref name="work"/> on a consistent snapshot; nothing is written.</summary>
    T Read<T>(Func<TTransaction, T> work);

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction that is always rolled back: a dry run does the real
    /// work, so it reports exactly what would happen, and keeps none of it.
    /// </summary>
    T Rehearse<T>(Func<TTransaction, T> work);

    /// <summary>The rows skipped since the last call because berth did not write them so, each with why.</summary>
    IReadOnlyList<string> TakeSkipped();
}
