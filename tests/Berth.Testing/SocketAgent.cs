using System.Text.Json;
using System.Text.RegularExpressions;

namespace Berth.Testing;

/// <summary>
/// A published `berth-agent run` answering the plugin's calls on <see cref="Socket"/>, with nothing else to do (no
/// runtime, no guardian, a pass a day), its metrics on a loopback port of its own when asked: started, awaited until
/// it says it serves, killed with SIGKILL or at dispose.
/// </summary>
public sealed partial class SocketAgent : IDisposable
{
    private readonly Running _agent;

    private SocketAgent(Running agent, string socket, string? metrics)
    {
        _agent = agent;
        Socket = socket;
        MetricsUrl = metrics;
    }

    public string Socket { get; }

    /// <summary>The agent's metrics page, when it was started with metrics.</summary>
    public string? MetricsUrl { get; }

    public int Pid => _agent.Id;

    /// <summary>Whether the agent has exited (it never does on its own while serving).</summary>
    public bool HasExited => _agent.HasExited;

    /// <summary>Starts an agent whose files live under <paramref name="dir"/>, serving <paramref name="socket"/>, and waits until it serves.</summary>
    public static SocketAgent Start(string dir, string socket, bool metrics = false, IReadOnlyDictionary<string, string>? environment = null)
    {
        Directory.CreateDirectory(dir);
        var config = Path.Combine(dir, "agent.json");
        File.WriteAllText(config, $$"""
            {"metricsAddress": "{{(metrics ? "127.0.0.1:0" : "off")}}", "runtimeSockets": [], "hostLocal": {"dirs": []}, "cniConfDirs": [],
             "intervalSeconds": 86400, "pluginSocket": "{{JsonEncodedText.Encode(socket)}}"}
            """);
        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var metricsAt = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!metrics) metricsAt.TrySetResult(null);
        var env = new Dictionary<string, string>(Repo.ExecEnvironment);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) env[k] = v;
        var agent = Exec.Start(Repo.Agent, ["run", "--config", config, "--store", Path.Combine(dir, "store", "berth.db")], new ExecOptions
        {
            Environment = ExecOptions.Text(env),
            Unset = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"],
            StdoutLine = line =>
            {
                if (line.Contains("plugin calls on", StringComparison.Ordinal)) serving.TrySetResult();
                if (MetricsLine().Match(line) is { Success: true } m) metricsAt.TrySetResult(m.Groups[1].Value);
            },
            Timeout = TimeSpan.FromDays(1),
        });
        var exited = agent.WaitAsync();
        var ready = Task.WhenAll(serving.Task, metricsAt.Task);
        if (Task.WhenAny(ready, exited, Task.Delay(TimeSpan.FromMinutes(1))).GetAwaiter().GetResult() != ready)
        {
            var why = exited.IsCompleted ? exited.Result.ToString() : "it did not say that it serves within a minute";
            agent.Dispose();
            throw new InvalidOperationException($"berth-agent serving {socket} did not start: {why}");
        }
        return new SocketAgent(agent, socket, metricsAt.Task.Result);
    }

    /// <summary>The metrics page, scraped now.</summary>
    public string Metrics()
    {
        using var http = new HttpClient();
        return http.GetStringAsync(MetricsUrl ?? throw new InvalidOperationException("started without metrics")).GetAwaiter().GetResult();
    }

    /// <summary>One sample of the page, 0 when it is not there.</summary>
    public double Sample(string series)
    {
        foreach (var line in Metrics().Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal)) return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        return 0;
    }

    /// <summary>SIGKILL, wherever it is.</summary>
    public void Kill()
    {
        _agent.Kill();
        _agent.Wait();
    }

    public void Dispose() => _agent.Dispose();

    [GeneratedRegex(@"metrics on (http://\S+/metrics)")]
    private static partial Regex MetricsLine();
}
