using System.CommandLine;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Operator;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Cni;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Microsoft.Extensions.Hosting;

namespace Berth.HostAgent;

/// <summary>berth-agent's commands. Exit codes: 0 success, 1 error, 2 usage, 3 refused.</summary>
internal static partial class Cli
{
    public const int Ok = 0, Error = 1, Usage = 2, Refused = 3;

    /// <summary>Who the agent's own releases are by, in the history.</summary>
    public const string Actor = "berth-agent";

    private static readonly Option<string?> StoreOption = new("--store")
    {
        Description = $"The lease store (default: \"store\" in the config, else {AgentConfig.DefaultStore})",
        Recursive = true,
    };

    private static readonly Option<string?> ConfigOption = new("--config")
    {
        Description = $"The agent's config file (default: {AgentConfig.DefaultPath}, optional)",
        Recursive = true,
    };

    private static readonly Option<bool> DryRunOption = new("--dry-run") { Description = "Decide and print, change nothing" };

    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print JSON for scripts instead of text for people" };

    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("berth-agent: boot recovery, reconcile and operator commands for the berth CNI IPAM plugin");
        root.Options.Add(StoreOption);
        root.Options.Add(ConfigOption);

        var recover = new Command("recover", "Release the leases that did not survive a reboot; once per boot (run before the container runtime starts)") { DryRunOption };
        recover.SetAction((parse, ct) => GuardAsync(() => RecoverAsync(parse, ct)));
        root.Subcommands.Add(recover);

        var run = new Command("run", "The service: recovery if this boot has not had it, then reconcile every interval; systemd Type=notify");
        run.SetAction((parse, ct) => GuardAsync(() => RunDaemonAsync(parse, ct)));
        root.Subcommands.Add(run);

        var reconcile = new Command("reconcile", "One reconcile pass now with the service's rules, printing each decision and its evidence") { DryRunOption, JsonOption };
        reconcile.SetAction((parse, ct) => GuardAsync(() => ReconcileAsync(parse, ct)));
        root.Subcommands.Add(reconcile);

        AddOperatorCommands(root);
        AddNodeCommands(root);

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) Console.Error.WriteLine($"berth-agent: {e.Message}");
            Console.Error.WriteLine("see 'berth-agent --help'");
            return Usage;
        }
        return await parsed.InvokeAsync().ConfigureAwait(false);
    }

    private static async Task<int> RecoverAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        // A node that never had a store boots cleanly: recovery creates it (and has nothing of berth's to release).
        var agent = Open(parse, StoreAccess.Create);
        using var _ = agent.Store;
        var result = await agent.RecoverAsync(parse.GetValue(DryRunOption) || agent.Config.DryRun, cancellationToken).ConfigureAwait(false);
        foreach (var d in result.Decisions) Console.WriteLine(Log.Line(d, result.DryRun));
        foreach (var w in result.Warnings ?? []) Console.Error.WriteLine($"berth-agent: warning: {w}");
        Console.WriteLine(result.Summary);
        return Ok;
    }

    private static async Task<int> ReconcileAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var agent = Open(parse, StoreAccess.Write);
        using var _ = agent.Store;
        var report = await agent.Reconciler().PassAsync(parse.GetValue(DryRunOption) || agent.Config.DryRun, cancellationToken).ConfigureAwait(false);
        foreach (var w in report.Warnings) Console.Error.WriteLine($"berth-agent: warning: {w}");
        if (parse.GetValue(JsonOption))
        {
            OperatorJson.ToStdout(w =>
            {
                w.WriteBoolean("dryRun", report.DryRun);
                w.WriteNumber("released", report.Released);
                w.WriteNumber("unknown", report.Unknown);
                w.WriteNumber("durationMs", Math.Round(report.Duration.TotalMilliseconds, 1));
                w.WriteStartArray("decisions");
                foreach (var d in report.Decisions)
                {
                    w.WriteStartObject();
                    OperatorJson.LeaseFields(w, d.Lease, d.Store);
                    w.WriteString("verdict", d.Verdict.ToString().ToLowerInvariant());
                    w.WriteString("evidence", d.Evidence.ToString().ToLowerInvariant());
                    w.WriteString("detail", d.Detail);
                    w.WriteNumber("strikes", d.Strikes);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                OperatorJson.Warnings(w, report.Warnings);
            });
            return Ok;
        }
        foreach (var d in report.Decisions) Console.WriteLine(Log.Line(d, report.DryRun));
        Console.WriteLine(report.Summary);
        return Ok;
    }

    private static async Task<int> RunDaemonAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var newStore = Node.AgentStartup.IsNewStore(StorePath(parse));
        var agent = Open(parse, StoreAccess.Create);
        using var _ = agent.Store;
        // One guardian per host-local directory on the node: a directory another agent holds is left to it.
        using var locks = Node.GuardLocks.Take(agent.Config.HostLocalDirs);
        agent = agent.With(agent.Config with { HostLocalDirs = [.. agent.Config.HostLocalDirs.Where(d => !locks.Aside.Contains(d))] });
        using var host = AgentDaemon.CreateHost(agent, new Microsoft.Extensions.Hosting.Systemd.SystemdNotifier(), AgentDaemon.WatchdogInterval(Environment.GetEnvironmentVariable),
            new Node.AgentStartup(agent.Config.Store, newStore, locks), agent.Config.PluginSocket);
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
        return Ok;
    }

    private static IBootClock Clock => AgentServices.NodeClock;

    /// <summary>The wall clock, for people only (history times, --since): never for a decision to release.</summary>
    private static TimeProvider Time => AgentServices.NodeTime;

    /// <summary>What a command may do to the store: only read it (also on a read-only filesystem), write it, or create it when missing.</summary>
    private enum StoreAccess { Read, Write, Create }

    /// <summary>The store a command will open (--store, else the config's), before it is opened.</summary>
    private static string StorePath(ParseResult parse) =>
        parse.GetValue(StoreOption) is { } store ? Path.GetFullPath(store) : AgentConfig.Load(parse.GetValue(ConfigOption)).Store;

    /// <summary>
    /// Opens the store. Only boot recovery, the service and the import create a missing one: an operator command
    /// given a mistyped --store says that no store is there, and creates nothing.
    /// </summary>
    private static AgentServices Open(ParseResult parse, StoreAccess access)
    {
        var config = AgentConfig.Load(parse.GetValue(ConfigOption));
        if (parse.GetValue(StoreOption) is { } store) config = config with { Store = Path.GetFullPath(store) };
        var agent = AgentServices.Open(config, create: access == StoreAccess.Create, readOnly: access == StoreAccess.Read);
        _opened = agent.Store;
        return agent;
    }

    /// <summary>The store the command opened, so that rows it skipped are told (<see cref="GuardAsync"/>).</summary>
    private static SqliteLeaseStore? _opened;

    /// <summary>Synchronous commands go through the same catch-all.</summary>
    private static Task<int> Guard(Func<int> command) => GuardAsync(() => Task.FromResult(command()));

    /// <summary>The one catch-all of the process: known failures become a message and exit 1.</summary>
    private static async Task<int> GuardAsync(Func<Task<int>> command)
    {
        try
        {
            return await command().ConfigureAwait(false);
        }
        catch (Exception e) when (e is CniException or AgentConfigException)
        {
            Console.Error.WriteLine($"berth-agent: {e.Message}");
            return Error;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Never a stack trace and an abort: the one catch-all of the process says what broke, and exits 1.
            Console.Error.WriteLine($"berth-agent: internal error: {e.GetType().Name}: {e.Message} (a bug in berth-agent; please report it with this line)");
            return Error;
        }
        finally
        {
            // Rows of the store this build did not write so were skipped: say which (recover and reconcile told already).
            foreach (var why in _opened?.TakeSkipped() ?? []) Console.Error.WriteLine($"berth-agent: warning: {why}");
        }
    }
}
