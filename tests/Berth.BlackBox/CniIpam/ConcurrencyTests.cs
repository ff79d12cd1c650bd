using System.Diagnostics;

namespace Berth.BlackBox.CniIpam;

/// <summary>Tests that load the machine: they run alone, not beside the rest of the suite.</summary>
[CollectionDefinition("heavy", DisableParallelization = true)]
public sealed class HeavyCollection;

/// <summary>Many plugin processes at once against one store, started together and awaited.</summary>
[Collection("heavy")]
public sealed class ConcurrencyTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Store => _dir.File("data/berth.db");

    private async Task<ExecResult[]> AddAll(string config, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var processes = Enumerable.Range(0, count).Select(i => PluginRun.Start(Repo.Plugin, "ADD", config, $"c{i}", netns: "/var/run/netns/none")).ToList();
        try
        {
            return await Task.WhenAll(processes.Select(p => p.WaitAsync(TimeSpan.FromMinutes(3))));
        }
        finally
        {
            foreach (var p in processes) p.Dispose();
        }
    }

    [Fact]
    public async Task Sixty_four_parallel_adds_on_a_new_store_get_sixty_four_distinct_addresses()
    {
        var results = await AddAll(Configs.Json("""[[{"subnet":"10.72.0.0/24"}],[{"subnet":"fd72::/64"}]]""", _dir.File("data")), 64);

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Equal(128, results.SelectMany(r => r.Addresses).Distinct().Count());
        Assert.Equal(["ok"], SqliteCli.Column(Store, "PRAGMA integrity_check"));
        Assert.Equal(["128"], SqliteCli.Column(Store, "SELECT count(*) FROM leases"));
    }

    [Fact]
    public async Task Three_hundred_parallel_adds_on_a_24_give_exactly_253_addresses_and_47_clean_refusals()
    {
        var results = await AddAll(Configs.Json("""[[{"subnet":"10.73.0.0/24"}]]""", _dir.File("data")), 300);

        var granted = results.Where(r => r.ExitCode == 0).ToList();
        var refused = results.Where(r => r.ExitCode != 0).ToList();
        Assert.Equal(253, granted.Count);
        Assert.Equal(253, granted.SelectMany(r => r.Addresses).Distinct().Count());
        Assert.All(refused, r => Assert.True(r.ErrorCode == 100, r.ToString()));
        Assert.Equal(47, refused.Count);
        Assert.Equal(["ok"], SqliteCli.Column(Store, "PRAGMA integrity_check"));
        Assert.Equal(["253"], SqliteCli.Column(Store, "SELECT count(*) FROM leases"));
        Assert.Empty(SqliteCli.Query(Store, "SELECT address FROM leases GROUP BY network, address HAVING count(*) > 1"));
    }

    /// <summary>
    /// SQLite's busy handler alone let a writer lose the race for the lock again and again until its 10 s ran
    /// out (error 11) when the machine was busy. Every other core spins here while 256 ADDs start at once: each
    /// must get an address.
    /// </summary>
    [Fact]
    public async Task Two_hundred_fifty_six_parallel_adds_on_a_busy_machine_all_succeed_with_distinct_addresses()
    {
        var config = Configs.Json("""[[{"subnet":"10.76.0.0/16"}]]""", _dir.File("data"));
        var spinners = Enumerable.Range(0, Math.Max(1, Environment.ProcessorCount - 1))
            .Select(_ => Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!)
            .ToList();
        ExecResult[] results;
        try
        {
            results = await AddAll(config, 256);
        }
        finally
        {
            foreach (var spinner in spinners)
            {
                spinner.Kill();
                await spinner.WaitForExitAsync();
                spinner.Dispose();
            }
        }

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Equal(256, results.SelectMany(r => r.Addresses).Distinct().Count());
        Assert.Equal(["ok"], SqliteCli.Column(Store, "PRAGMA integrity_check"));
        Assert.Equal(["256"], SqliteCli.Column(Store, "SELECT count(*) FROM leases"));
        Assert.True(File.Exists(Store + ".lock"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Store + ".lock"));
    }

    public void Dispose() => _dir.Dispose();
}
