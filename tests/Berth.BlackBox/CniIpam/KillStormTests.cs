
namespace Berth.BlackBox.CniIpam;

/// <summary>
/// ADD and DEL processes killed with SIGKILL at random moments, several at a time. Whatever was acknowledged
/// must hold, nothing may be leased twice, and nothing may be left that blocks the next ADD.
/// </summary>
[Collection("heavy")]
public sealed class KillStormTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Store => _dir.File("data/berth.db");
    private string Config => Configs.Json("""[[{"subnet":"10.74.0.0/24"}],[{"subnet":"fd74::/120"}]]""", _dir.File("data"));

    /// <summary>What happened to one operation: acknowledged (exit 0), refused, or killed (outcome unknown).</summary>
    private sealed record Op(string Command, string Container, ExecResult? Result, bool Killed)
    {
        public bool Acknowledged => !Killed && Result is { ExitCode: 0 };
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Killed_processes_leave_the_store_consistent_and_acknowledged_work_in_place(int seed)
    {
        const int Workers = 6, OpsPerWorker = 40, Containers = 36;
        var random = new Random(seed);
        var plans = Enumerable.Range(0, Workers).Select(w => Enumerable.Range(0, OpsPerWorker).Select(_ =>
            (Command: random.Next(3) == 0 ? "DEL" : "ADD", Container: $"k{w + Workers * random.Next(Containers / Workers)}",
             KillAfterMs: random.Next(4) == 0 ? random.Next(1, 12) : -1)).ToList()).ToList();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));

        // Each worker owns its containers, so the operations on one container happen in a known order.
        var logs = await Task.WhenAll(plans.Select(async plan =>
        {
            var log = new List<Op>();
            foreach (var (command, container, killAfter) in plan)
            {
                using var process = PluginRun.Start(Repo.Plugin, command, Config, container, netns: "/var/run/netns/none");
                if (killAfter >= 0)
                {
                    // The random moment of the kill is the point of the test, not a wait for a condition. A call the
                    // agent answers is over in a few milliseconds: the moments shrink with it, so kills still land mid-call.
                    await Task.Delay(ServingAgent.Enabled ? killAfter / 4 : killAfter, timeout.Token);
                    process.Kill();
                }
                var result = await process.WaitAsync(TimeSpan.FromMinutes(3));
                log.Add(new Op(command, container, result, killAfter >= 0 && result.Signalled));
            }
            return log;
        }));

        var context = $"seed {seed}";
        Assert.True(SqliteCli.Column(Store, "PRAGMA integrity_check").SequenceEqual(["ok"]), context);
        Assert.Empty(SqliteCli.Query(Store, "SELECT address FROM leases GROUP BY network, address HAVING count(*) > 1"));
        Assert.Empty(SqliteCli.Query(Store, "SELECT container_id FROM leases GROUP BY network, container_id, ifname, range_set HAVING count(*) > 1"));
        var leased = SqliteCli.Query(Store, "SELECT container_id, address FROM leases")
            .GroupBy(r => r["container_id"]!).ToDictionary(g => g.Key, g => g.Select(r => r["address"]!).Order().ToList());

        foreach (var ops in logs.SelectMany(l => l).GroupBy(o => o.Container))
        {
            var list = ops.ToList();
            var lastAck = list.FindLastIndex(o => o.Acknowledged);
            if (lastAck < 0) continue;
            var after = list.Skip(lastAck + 1).ToList();
            var ack = list[lastAck];
            if (ack.Command == "ADD" && !after.Any(o => o.Command == "DEL"))
            {
                // An acknowledged ADD holds until a DEL; a later ADD, killed or not, returns the same addresses.
                var expected = ack.Result!.Addresses.Select(a => a.Split('/')[0]).Order().ToList();
                Assert.True(leased.TryGetValue(ops.Key, out var actual) && actual.SequenceEqual(expected),
                    $"{context}: {ops.Key} was acknowledged {string.Join(", ", expected)} but the store holds {string.Join(", ", actual ?? [])}");
            }
            if (ack.Command == "DEL" && !after.Any(o => o.Command == "ADD"))
            {
                Assert.False(leased.ContainsKey(ops.Key), $"{context}: {ops.Key}'s DEL was acknowledged but it still holds an address");
            }
        }
        Assert.True(logs.SelectMany(l => l).Count(o => o.Killed) > 10, $"{context}: the storm killed too few processes to mean anything");

        var next = PluginRun.Run(Repo.Plugin, "ADD", Config, "after-the-storm", netns: "/var/run/netns/none");
        Assert.True(next.ExitCode == 0, $"{context}: {next}");
    }

    public void Dispose() => _dir.Dispose();
}
