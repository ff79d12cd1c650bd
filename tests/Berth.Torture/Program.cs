using System.Globalization;
using Berth.Torture;

// torture modes: killstorm, fuzz (the plugin's input) and agentfuzz (the agent's), each bounded by seconds, each ending with one SUMMARY line.
const string Usage = """
    usage: Berth.Torture killstorm [--seconds N] [--seed S] [--workers W] [--agent-serving]
           Berth.Torture fuzz [--seconds N] [--seed S] [--cases N]
           Berth.Torture agentfuzz [--seconds N] [--seed S] [--cases N]
    --agent-serving: the calls go through a berth-agent answering the plugin's socket, SIGKILLed and restarted all along.
    Runs against artifacts/bin/berth and artifacts/bin/berth-agent (or $BERTH_PLUGIN, $BERTH_AGENT). Needs root.
    Ends with one line: SUMMARY mode=<name> cycles=N acked=N cuts=N violations=N; exit 1 on any violation.
    """;
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}
var mode = args[0];
int? seconds = null, seed = null, workers = null, cases = null;
var agentServing = false;
for (var i = 1; i < args.Length; i++)
{
    int Next() => i + 1 < args.Length && int.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0
        ? v : throw new ArgumentException($"{args[i - 1]} needs a whole number");
    try
    {
        switch (args[i])
        {
            case "--seconds": seconds = Next(); break;
            case "--seed": seed = Next(); break;
            case "--workers": workers = Next(); break;
            case "--cases": cases = Next(); break;
            case "--agent-serving": agentServing = true; break;
            default: throw new ArgumentException($"unknown option {args[i]}");
        }
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"Berth.Torture: {e.Message}\n{Usage}");
        return 2;
    }
}
var chosenSeed = seed ?? Random.Shared.Next(1, int.MaxValue);
Report report;
switch (mode)
{
    case "killstorm":
        report = new KillStorm(new KillStormOptions(seconds ?? 60, chosenSeed, Workers: workers ?? 6) { AgentServing = agentServing }).Run();
        break;
    case "fuzz":
        report = new Fuzzer(new FuzzOptions(seconds ?? 60, chosenSeed, MaxCases: cases)).Run();
        break;
    case "agentfuzz":
        report = new AgentFuzzer(new AgentFuzzOptions(seconds ?? 60, chosenSeed, MaxCases: cases)).Run();
        break;
    default:
        Console.Error.WriteLine($"Berth.Torture: unknown mode {mode}\n{Usage}");
        return 2;
}
if (report.Violations.Count > 0) Console.WriteLine($"{mode}: {report.Violations.Count} violations; reproduce with: {mode} --seed {report.Seed}" + (seconds is { } s ? $" --seconds {s}" : "") + (agentServing ? " --agent-serving" : ""));
Console.WriteLine(report.Summary);
return report.Violations.Count == 0 ? 0 : 1;
