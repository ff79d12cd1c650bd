namespace Berth.Shared.Leases;

/// <summary>An open lease store. Each call is one transaction.</summary>
public interface ILeaseStore : IDisposable
{
    /// <summary>Runs <paramref name="work"/> in one write transaction, committed (durably) when it returns.</summary>
    T Write<T>(Func<ILeaseTransaction, T> work);

    /// <summary>Runs <paramref name="work"/> on a consistent snapshot; nothing is written.</summary>
    T Read<T>(Func<ILeaseTransaction, T> work);
}
