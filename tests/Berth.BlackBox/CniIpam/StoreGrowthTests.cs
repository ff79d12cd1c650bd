using Berth.Shared.Leases;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// Every plugin process is the store's only connection, so SQLite rebuilds its WAL index on each open. Unless
/// a committer truncates the WAL, it never restarts: it grows with every operation, and every process reads
/// and re-checkpoints all of it. ADD cost must not grow with the number of operations done so far. With
/// berth-agent answering, its connection keeps the index alive and it lets the WAL grow to a larger bound
/// (<see cref="StoreOptions.KeptWalTruncateBytes"/>), so the test runs long enough to pass that bound twice over.
/// </summary>
[Collection("heavy")]
public sealed class StoreGrowthTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Fact]
    public void The_write_ahead_log_stays_short_over_many_operations()
    {
        var (adds, bound) = ServingAgent.Enabled ? (480, 2 * StoreOptions.KeptWalTruncateBytes) : (120, 512 * 1024L);
        var config = Configs.Json("""[[{"subnet":"10.75.0.0/16"}],[{"subnet":"fd75::/64"}]]""", _dir.File("data"));
        for (var i = 0; i < adds; i++)
        {
            Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", config, $"g{i}", netns: "/x").ExitCode);
            if (i % 2 == 0) Assert.Equal(0, PluginRun.Run(Repo.Plugin, "DEL", config, $"g{i}").ExitCode);
        }

        // Each committed operation writes some six to sixteen pages: a WAL that never restarted would pass the bound
        // (120 ADDs and 60 DELs: about 4 MB; 480 and 240: over 16 MB).
        var wal = new FileInfo(_dir.File("data/berth.db-wal")).Length;
        Assert.True(wal < bound, $"the WAL is {wal} bytes after {adds * 3 / 2} operations");
        Assert.Equal([(adds / 2).ToString(System.Globalization.CultureInfo.InvariantCulture)], SqliteCli.Column(_dir.File("data/berth.db"), "SELECT count(*) / 2 FROM leases"));
    }

    public void Dispose() => _dir.Dispose();
}
