using Berth.Shared.Leases;

namespace Berth.Tests.Support;

/// <summary>Raw SQL on a store's own connection, for tests that look under the lease API or hold SQLite's lock.</summary>
public static class StoreSql
{
    /// <summary>Runs statements outside any lease transaction.</summary>
    internal static void Execute(this SqliteLeaseStore store, string sql) => store.Db.Execute(sql);

    /// <summary>The first column of the first row, as a long.</summary>
    internal static long Scalar(this SqliteLeaseStore store, string sql) => store.Db.Scalar(sql);
}
