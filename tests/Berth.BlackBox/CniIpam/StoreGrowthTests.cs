
namespace Berth.BlackBox.CniIpam;

/// <summary>
/// Every plugin process is the store's only connection, so SQLite rebuilds its WAL index on each open. Unless
/// a committer truncates the WAL, it never restarts: it grows with every operation, and every process reads
/// and re-checkpoints all of it. ADD cost must not grow with the number of operations done so far.
/// </summary>
[Collection("heavy")]
public sealed class StoreGrowthTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Fact]
    public void The_write_ahead_log_stays_short_over_many_operations()
    {
        var config = Configs.Json("""[[{"subnet":"10.75.0.0/16"}],[{"subnet":"fd75::/64"}]]""", _dir.File("data"));
        for (var i = 0; i < 120; i++)
        {
            Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", config, $"g{i}", netns: "/x").ExitCode);
            if (i % 2 == 0) Assert.Equal(0, PluginRun.Run(Repo.Plugin, "DEL", config, $"g{i}").ExitCode);
        }

        // 180 committed operations of about six pages each would make a WAL of some 4 MB if it never restarted.
        var wal = new FileInfo(_dir.File("data/berth.db-wal")).Length;
        Assert.True(wal < 512 * 1024, $"the WAL is {wal} bytes after 180 operations");
        Assert.Equal(["60"], SqliteCli.Column(_dir.File("data/berth.db"), "SELECT count(*) / 2 FROM leases"));
    }

    public void Dispose() => _dir.Dispose();
}
