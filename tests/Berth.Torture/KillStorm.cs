using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Berth.Torture;

public sealed record KillStormOptions(int Seconds, int Seed, int Workers = 6, int ContainersPerWorker = 8, double KillChance = 0.35,
    int MaxKillDelayMs = 25, int RoundSeconds = 5, TextWriter? Log = null)
{
    /// <summary>Runs on the store between a round and its checks; a negative control uses it to break an invariant.</summary>
    public Action<string>? BeforeCheck { get; init; }

    /// <summary>Keep the store for inspection when there are violations (the test suite's negative controls do not).</summary>
    public bool KeepOnViolation { get; init; } = true;

    /// <summary>
    /// Calls go through a `berth-agent run` serving the plugin's socket, which is SIGKILLed at random moments (also in
    /// the middle of calls) and started again at once, so that the plugins' fallbacks race a restarting agent.
    /// </summary>
    public bool AgentServing { get; init; }
}

/// <summary>
/// Thousands of ADD and DEL processes of the published plugin against real network namespaces, SIGKILLed at
/// random moments (seeded), while `berth-agent reconcile` runs over and over (and is SIGKILLed too). Each
/// worker owns its containers, so the operations on one container have a known order. The storm runs in
/// rounds; between rounds, with nothing running, every invariant is checked against the store on disk:
/// integrity, no address leased twice, every acknowledged ADD present (with the acknowledged addresses)
/// unless a DEL was acknowledged after it, every acknowledged DEL absent, no release by the agent of a lease
/// whose namespace is alive. A quarter of the containers name a namespace that does not exist: the agent
/// may release their leases, and each such release must be in the history. After the storm one ADD must
/// succeed promptly (nothing stale blocks it). With <see cref="KillStormOptions.AgentServing"/> the calls go through
/// an agent that is killed and restarted all along; the same invariants hold.
/// </summary>
public sealed class KillStorm(KillStormOptions options)
{
    private static readonly TimeSpan OpTimeout = TimeSpan.FromSeconds(30);
    private readonly TextWriter _log = options.Log ?? Console.Out;
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-killstorm-").FullName;
    private string DataDir => Path.Combine(_dir, "data");
    private string Store => Path.Combine(DataDir, "berth.db");
    private string AgentConfig => Path.Combine(_dir, "agent.json");
    private string PluginSocket => Path.Combine(_dir, "run", "plugin.sock");
    /// <summary>
    /// The storm's own serving agent, or "off": the plugins see only the environment given here, and without it they
    /// would forward to whatever agent answers the default socket on this machine.
    /// </summary>
    private byte[] SocketForPlugins => Encoding.UTF8.GetBytes(options.AgentServing ? PluginSocket : "off");
    private SocketAgent? _serving;
    private readonly Lock _servingTurn = new();
    private string NetworkConfig => $$$"""{"cniVersion":"1.0.0","name":"storm","type":"bridge","ipam":{"type":"berth","dataDir":"{{{DataDir}}}","ranges":[[{"subnet":"10.77.0.0/24"}],[{"subnet":"fd77::/120"}]]}}""";

    /// <summary>What is known of a container's leases at a quiet moment.</summary>
    private sealed class Container(string id, string netns, bool doomed)
    {
        public string Id { get; } = id;
        public string Netns { get; } = netns;
        /// <summary>Its namespace does not exist: the agent may release its leases.</summary>
        public bool Doomed { get; } = doomed;
        /// <summary>null: unknown (a killed operation may or may not have taken effect); empty: holds nothing.</summary>
        public List<string>? Expected = [];
        public string LastAck = "none yet";

        /// <summary>The last operations on it and what came of them, for a violation to show how it came about.</summary>
        public readonly Queue<string> Recent = new();

        public void Record(string what)
        {
            if (Recent.Count == 16) Recent.Dequeue();
            Recent.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {what}");
        }

        public string Story => $"its last operations: {string.Join("; ", Recent)}";
    }

    public Report Run()
    {
        Repo.RequireBuilt();
        var report = new Report(options.AgentServing ? "killstorm-serving" : "killstorm", options.Seed) { Log = _log };
        _log.WriteLine($"killstorm: seed {options.Seed}, {options.Seconds} s, {options.Workers} workers x {options.ContainersPerWorker} containers, store {Store}");
        var random = new Random(options.Seed);
        var namespaces = new List<string>();
        var containers = new List<Container>[options.Workers];
        try
        {
            for (var w = 0; w < options.Workers; w++)
            {
                containers[w] = [];
                for (var c = 0; c < options.ContainersPerWorker; c++)
                {
                    var id = $"ks{options.Seed}-w{w}-c{c}";
                    var doomed = random.Next(4) == 0;
                    string netns;
                    if (doomed)
                    {
                        netns = $"/var/run/netns/bks-gone-{Environment.ProcessId}-{w}-{c}";
                    }
                    else
                    {
                        var name = $"bks-{Environment.ProcessId}-{w}-{c}";
                        Exec.Must("ip", "netns", "add", name);
                        namespaces.Add(name);
                        netns = "/var/run/netns/" + name;
                    }
                    containers[w].Add(new Container(id, netns, doomed));
                }
            }
            File.WriteAllText(AgentConfig, $$"""{"store":"{{Store}}","gracePeriodSeconds":0,"runtimeSockets":[],"metricsAddress":"off","hostLocal":{"dirs":[]} }""");

            if (options.AgentServing) _serving = SocketAgent.Start(Path.Combine(_dir, "serving"), PluginSocket);
            var deadline = Stopwatch.StartNew();
            var round = 0;
            while (deadline.Elapsed.TotalSeconds < options.Seconds)
            {
                round++;
                var roundLength = TimeSpan.FromSeconds(Math.Min(options.RoundSeconds, Math.Max(1, options.Seconds - deadline.Elapsed.TotalSeconds)));
                RunRound(round, roundLength, containers, random.Next(), report);
                options.BeforeCheck?.Invoke(Store);
                Check(round, containers.SelectMany(c => c).ToList(), report);
                _log.WriteLine($"killstorm: round {round} done at {deadline.Elapsed.TotalSeconds:F0} s: {report.Cycles} operations, {report.Acked} acknowledged, {report.Cuts} kills, {report.Violations.Count} violations");
            }
            AfterTheStorm(report);
            if (options.AgentServing) _log.WriteLine($"killstorm: the plugins' fallbacks while the agent was killed and restarted: {Fallbacks()}");
            var releases = SqliteCli.Query(Store, "SELECT reason, count(*) AS n FROM history WHERE action = 'release' GROUP BY reason ORDER BY reason");
            _log.WriteLine($"killstorm: releases in the history: {string.Join(", ", releases.Select(r => $"{r["reason"]} {r["n"]}"))}");
            _log.WriteLine($"killstorm: {deadline.Elapsed.TotalSeconds:F0} s, seed {options.Seed}");
        }
        finally
        {
            _serving?.Dispose();
            foreach (var n in namespaces) Exec.Run("ip", ["netns", "delete", n]);
            if (report.Violations.Count == 0 || !options.KeepOnViolation) Directory.Delete(_dir, recursive: true);
            else _log.WriteLine($"killstorm: store kept for inspection in {_dir}");
        }
        return report;
    }

    private void RunRound(int round, TimeSpan length, List<Container>[] containers, int roundSeed, Report report)
    {
        using var stop = new CancellationTokenSource(length);
        var workers = containers.Select((mine, w) => Task.Run(() => Worker(mine, new Random(roundSeed + w), stop.Token, report))).ToList();
        var agent = Task.Run(() => AgentLoop(new Random(roundSeed - 1), stop.Token, report));
        var watcher = Task.Run(() => IntegrityWatch(stop.Token, report));
        var serving = options.AgentServing ? Task.Run(() => ServingAgentKills(new Random(roundSeed - 2), stop.Token, report)) : Task.CompletedTask;
        Task.WaitAll([.. workers, agent, watcher, serving]);
    }

    private async Task Worker(List<Container> mine, Random random, CancellationToken stop, Report report)
    {
        while (!stop.IsCancellationRequested)
        {
            var c = mine[random.Next(mine.Count)];
            var command = random.Next(5) < 3 ? "ADD" : "DEL";
            var killAfter = random.NextDouble() < options.KillChance ? random.Next(0, options.MaxKillDelayMs) : -1;
            var env = new Dictionary<string, byte[]>
            {
                ["CNI_COMMAND"] = Encoding.UTF8.GetBytes(command),
                ["CNI_CONTAINERID"] = Encoding.UTF8.GetBytes(c.Id),
                ["CNI_IFNAME"] = "eth0"u8.ToArray(),
                ["CNI_NETNS"] = Encoding.UTF8.GetBytes(c.Netns),
                ["CNI_PATH"] = "/opt/cni/bin"u8.ToArray(),
                ["CNI_ARGS"] = Encoding.UTF8.GetBytes($"IgnoreUnknown=1;K8S_POD_NAMESPACE=storm;K8S_POD_NAME={c.Id}"),
            };
            env["BERTH_PLUGIN_SOCKET"] = SocketForPlugins;
            using var child = Exec.Start(Repo.Plugin, [], new ExecOptions { Environment = env, OnlyThisEnvironment = true, Stdin = Encoding.UTF8.GetBytes(NetworkConfig) });
            if (killAfter >= 0)
            {
                // The random moment of the kill is the point of the storm, not a wait for a condition.
                await Task.Delay(killAfter, CancellationToken.None);
                child.Kill();
            }
            var result = await child.WaitAsync(OpTimeout);
            Interlocked.Increment(ref report.Cycles);
            lock (c) Apply(c, command, result, child.KilledByUs, report);
        }
    }

    private void Apply(Container c, string command, ExecResult result, bool killed, Report report)
    {
        c.Record($"{command} " + (killed ? "killed" : result.ExitCode == 0 ? "exit 0" + (command == "ADD" ? " " + Addresses(result.Stdout) : "")
            : $"exit {result.ExitCode} code {result.ErrorCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}") + $" ({result.Elapsed.TotalMilliseconds:F0} ms)");
        if (killed)
        {
            Interlocked.Increment(ref report.Cuts);
            // A killed ADD of a container that holds its addresses changes nothing; otherwise either outcome is possible.
            if (command == "ADD" && c.Expected is { Count: 0 }) c.Expected = null;
            if (command == "DEL" && c.Expected is { Count: > 0 }) c.Expected = null;
            return;
        }
        if (result.TimedOut || result.Signalled || result.Stderr.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase))
        {
            report.Violation($"{command} {c.Id} crashed or hung: {result}");
            c.Expected = null;
            return;
        }
        if (result.ExitCode != 0)
        {
            // Refused (for example 11 under a long lock): nothing changed. Code 999 is a bug.
            if (result.ErrorCode is not (int code and not 999)) report.Violation($"{command} {c.Id} failed without a CNI error: {result}");
            return;
        }
        Interlocked.Increment(ref report.Acked);
        if (command == "DEL")
        {
            c.Expected = [];
            c.LastAck = $"DEL at {DateTime.UtcNow:HH:mm:ss.fff}";
            return;
        }
        List<string> addresses;
        try
        {
            using var doc = JsonDocument.Parse(result.StdoutBytes);
            addresses = [.. doc.RootElement.GetProperty("ips").EnumerateArray().Select(ip => ip.GetProperty("address").GetString()!.Split('/')[0]).Order()];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            report.Violation($"ADD {c.Id} exited 0 without a result: {result}");
            c.Expected = null;
            return;
        }
        if (addresses.Count != 2) report.Violation($"ADD {c.Id} acknowledged {addresses.Count} addresses, expected one per range set: {result}");
        if (!c.Doomed && c.Expected is { Count: > 0 } held && !held.SequenceEqual(addresses))
        {
            report.Violation($"ADD {c.Id} repeated while holding {string.Join(", ", held)} returned {string.Join(", ", addresses)}; {c.Story}; {HistoryOf(c)}");
        }
        c.Expected = addresses;
        c.LastAck = $"ADD {string.Join(", ", addresses)} at {DateTime.UtcNow:HH:mm:ss.fff}";
    }

    /// <summary>`berth-agent reconcile` over and over, one in four SIGKILLed at a random moment.</summary>
    private async Task AgentLoop(Random random, CancellationToken stop, Report report)
    {
        while (!stop.IsCancellationRequested)
        {
            if (!File.Exists(Store))
            {
                await Task.Delay(20, CancellationToken.None);
                continue;
            }
            var killAfter = random.Next(4) == 0 ? random.Next(0, 60) : -1;
            var env = new Dictionary<string, byte[]> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"u8.ToArray() };
            using var agent = Exec.Start(Repo.Agent, ["reconcile", "--config", AgentConfig, "--store", Store], new ExecOptions { Environment = env, OnlyThisEnvironment = true, Stdin = null });
            if (killAfter >= 0)
            {
                await Task.Delay(killAfter, CancellationToken.None);
                if (agent.Kill()) Interlocked.Increment(ref report.Cuts);
            }
            var result = await agent.WaitAsync(TimeSpan.FromSeconds(60));
            if (agent.KilledByUs) continue;
            if (result.TimedOut || result.Signalled || result.Stderr.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase))
            {
                report.Violation($"berth-agent reconcile crashed or hung: {result}");
            }
        }
    }

    /// <summary>The serving agent SIGKILLed at random moments and started again at once; meanwhile the plugins do their calls themselves.</summary>
    private async Task ServingAgentKills(Random random, CancellationToken stop, Report report)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // The random moment of the kill is the point of the storm, not a wait for a condition.
                await Task.Delay(random.Next(50, 600), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            lock (_servingTurn)
            {
                _serving!.Kill();
                Interlocked.Increment(ref report.Cuts);
                _serving.Dispose();
                _serving = SocketAgent.Start(Path.Combine(_dir, "serving"), PluginSocket);
            }
        }
    }

    /// <summary>What the plugins did themselves, by why (the counter files beside the socket).</summary>
    private string Fallbacks() => string.Join(", ", Directory.GetFiles(Path.GetDirectoryName(PluginSocket)!, "plugin.sock.fallback-*")
        .Select(f => $"{Path.GetFileName(f)["plugin.sock.fallback-".Length..]} {new FileInfo(f).Length}"));

    /// <summary>While the storm runs: SQLite's integrity check and the uniqueness of addresses, read by sqlite3.</summary>
    private async Task IntegrityWatch(CancellationToken stop, Report report)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(1000, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!File.Exists(Store)) continue;
            var rows = SqliteCli.TryQuery(Store, "PRAGMA integrity_check", out var error);
            // A busy store is not a finding; a reader in WAL mode is rarely refused.
            if (rows is null) continue;
            if (rows.Count != 1 || rows[0].Values.Single() != "ok") report.Violation($"integrity_check during the storm: {string.Join("; ", rows.SelectMany(r => r.Values))}");
        }
    }

    private long _historySeen;

    private void Check(int round, List<Container> all, Report report)
    {
        var integrity = SqliteCli.Query(Store, "PRAGMA integrity_check");
        if (integrity.Count != 1 || integrity[0].Values.Single() != "ok") report.Violation($"round {round}: integrity_check: {string.Join("; ", integrity.SelectMany(r => r.Values))}");
        foreach (var row in SqliteCli.Query(Store, "SELECT network, address, count(*) AS n FROM leases GROUP BY network, address HAVING count(*) > 1"))
        {
            report.Violation($"round {round}: {row["address"]} is leased {row["n"]} times");
        }
        foreach (var row in SqliteCli.Query(Store, "SELECT container_id, range_set, count(*) AS n FROM leases GROUP BY network, container_id, ifname, range_set HAVING count(*) > 1"))
        {
            report.Violation($"round {round}: {row["container_id"]} holds {row["n"]} leases in range set {row["range_set"]}");
        }
        var leased = SqliteCli.Query(Store, "SELECT container_id, address FROM leases")
            .GroupBy(r => r["container_id"]!).ToDictionary(g => g.Key, g => g.Select(r => r["address"]!).Order().ToList());
        var agentReleases = SqliteCli.Query(Store, $"SELECT container_id, address, reason FROM history WHERE action = 'release' AND reason <> 'cni-del' AND id > {_historySeen}")
            .GroupBy(r => r["container_id"]!).ToDictionary(g => g.Key, g => g.ToList());
        _historySeen = long.Parse(SqliteCli.Query(Store, "SELECT coalesce(max(id), 0) AS m FROM history")[0]["m"]!, System.Globalization.CultureInfo.InvariantCulture);
        var known = all.ToDictionary(c => c.Id);
        foreach (var id in leased.Keys.Where(id => !known.ContainsKey(id) && id != "after-the-storm")) report.Violation($"round {round}: a lease for unknown container {id}");

        foreach (var c in all)
        {
            var actual = leased.GetValueOrDefault(c.Id) ?? [];
            var released = agentReleases.GetValueOrDefault(c.Id) ?? [];
            if (!c.Doomed && released.Count > 0)
            {
                report.Violation($"round {round}: the agent released {string.Join(", ", released.Select(r => $"{r["address"]} ({r["reason"]})"))} of {c.Id} whose namespace {c.Netns} is alive");
            }
            if (c.Expected is { } expected && !expected.SequenceEqual(actual))
            {
                var explained = c.Doomed && expected.Count > 0 && expected.All(a => released.Any(r => r["address"] == a));
                if (!explained)
                {
                    report.Violation($"round {round}: {c.Id} (last acknowledged: {c.LastAck}) should hold [{string.Join(", ", expected)}] but the store holds [{string.Join(", ", actual)}]; {c.Story}; {HistoryOf(c)}");
                }
            }
            // What is on disk now is the truth the next round starts from.
            c.Expected = actual;
        }
    }

    /// <summary>The store's last history rows for the container, read while the storm may still run (a finding is rare).</summary>
    private string HistoryOf(Container c)
    {
        var rows = SqliteCli.TryQuery(Store, $"SELECT at, action, reason, actor, address FROM history WHERE container_id = '{c.Id}' ORDER BY id DESC LIMIT 12", out var error);
        return rows is null ? $"its history could not be read: {error}"
            : "its history, newest first: " + string.Join("; ", rows.Select(r => $"{r["at"]} {r["action"]} {r["reason"]} by {r["actor"]} {r["address"]}"));
    }

    private static string Addresses(string result) =>
        string.Join(", ", System.Text.RegularExpressions.Regex.Matches(result, "\"address\":\\s*\"([^\"/]+)").Select(m => m.Groups[1].Value));

    private void AfterTheStorm(Report report)
    {
        var env = new Dictionary<string, byte[]>
        {
            ["CNI_COMMAND"] = "ADD"u8.ToArray(),
            ["CNI_CONTAINERID"] = "after-the-storm"u8.ToArray(),
            ["CNI_IFNAME"] = "eth0"u8.ToArray(),
            ["CNI_NETNS"] = "/var/run/netns/after-the-storm"u8.ToArray(),
        };
        env["BERTH_PLUGIN_SOCKET"] = SocketForPlugins;
        using var child = Exec.Start(Repo.Plugin, [], new ExecOptions { Environment = env, OnlyThisEnvironment = true, Stdin = Encoding.UTF8.GetBytes(NetworkConfig) });
        var result = child.Wait(TimeSpan.FromSeconds(30));
        if (result.ExitCode != 0) report.Violation($"the first ADD after the storm failed: {result}");
        else if (result.Elapsed > TimeSpan.FromSeconds(3)) report.Violation($"the first ADD after the storm took {result.Elapsed.TotalSeconds:F1} s: something stale blocked it");
        else _log.WriteLine($"killstorm: the first ADD after the storm succeeded in {result.Elapsed.TotalMilliseconds:F0} ms");
    }
}
