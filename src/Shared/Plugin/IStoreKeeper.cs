using Berth.Shared.Leases;

namespace Berth.Shared.Plugin;

/// <summary>Stores kept open across calls, by path: the agent's, so that a call does not pay for opening one.</summary>
public interface IStoreKeeper
{
    /// <summary>
    /// The open store at <paramref name="path"/>, opened with <paramref name="options"/> if it is not open yet or its
    /// file was replaced; hand it back with <see cref="Done"/> once the call is over with it.
    /// </summary>
    SqliteLeaseStore Get(string path, StoreOptions options);

    /// <summary>The call is over with the store (a store no longer kept is closed once no call uses it).</summary>
    void Done(SqliteLeaseStore store);
}
