using System.CommandLine;
using Berth.HostAgent.Evidence;
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
    private const string Actor = "berth-agent";

    private static readonly Option<string?> StoreOption = new("--store")
    {
        Description = "The lease store (default: \"store\" in the config, else /var/lib/berth/berth.db)",
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
        recover.SetAction(parse => Guard(() => Recover(parse)));
        root.Subcommands.Add(recover);

        var run = new Command("run", "The service: recovery if this boot has not had it, then reconcile every interval; systemd Type=notify");
        run.SetAction((parse, ct) => GuardAsync(() => RunDaemonAsync(parse, ct)));
        root.Subcommands.Add(run);

        var reconcile = new Command("reconcile", "One reconcile pass now with the service's rules, printing each decision and its evidence") { DryRunOption, JsonOption };
        reconcile.SetAction((parse, ct) => GuardAsync(() => ReconcileAsync(parse, ct)));
        root.Subcommands.Add(reconcile);

        AddOperatorCommands(root);

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) Console.Error.WriteLine($"berth-agent: {e.Message}");
            Console.Error.WriteLine("see 'berth-agent --help'");
            return Usage;
        }
        return await parsed.InvokeAsync().ConfigureAwait(false);
    }

    private static int Recover(ParseResult parse)
    {
        var (config, store) = Open(parse);
        using var _ = store;
        var result = Recovery.Run(store, Clock, new NetnsProbe(), parse.GetValue(DryRunOption) || config.DryRun, Actor);
        if (result.AlreadyDoneAt is { } at)
        {
            Console.WriteLine($"recovery already ran for boot {result.BootId} at {at:u}: nothing to do");
            return Ok;
        }
        foreach (var d in result.Decisions) Console.WriteLine(Log.Line(d, result.DryRun));
        Console.WriteLine($"recovery for boot {result.BootId}: {(result.DryRun ? "would release" : "released")} {result.Released} of {result.Decisions.Count} earlier-boot leases");
        return Ok;
    }

    private static async Task<int> ReconcileAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var (config, store) = Open(parse);
        using var _ = store;
        var reconciler = new Reconciler(store, Clock, new NetnsProbe(), new ProcNamespaces(), Runtime(config), config.GracePeriod, Actor);
        var report = await reconciler.PassAsync(parse.GetValue(DryRunOption) || config.DryRun, cancellationToken).ConfigureAwait(false);
        if (parse.GetValue(JsonOption))
        {
            WriteJson(w =>
            {
                w.WriteBoolean("dryRun", report.DryRun);
                w.WriteNumber("released", report.Released);
                w.WriteNumber("unknown", report.Unknown);
                w.WriteNumber("durationMs", Math.Round(report.Duration.TotalMilliseconds, 1));
                w.WriteStartArray("decisions");
                foreach (var d in report.Decisions)
                {
                    w.WriteStartObject();
                    LeaseFields(w, d.Lease);
                    w.WriteString("verdict", d.Verdict.ToString().ToLowerInvariant());
                    w.WriteString("evidence", d.Evidence.ToString().ToLowerInvariant());
                    w.WriteString("detail", d.Detail);
                    w.WriteNumber("strikes", d.Strikes);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return Ok;
        }
        foreach (var d in report.Decisions) Console.WriteLine(Log.Line(d, report.DryRun));
        Console.WriteLine($"{report.Decisions.Count} leases, {report.Released} {(report.DryRun ? "would be released" : "released")}, {report.Unknown} unknown");
        return Ok;
    }

    private static async Task<int> RunDaemonAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var (config, store) = Open(parse);
        using var _ = store;
        using var host = AgentDaemon.CreateHost(config, store, Clock, new NetnsProbe(), new ProcNamespaces(), Runtime(config),
            new Microsoft.Extensions.Hosting.Systemd.SystemdNotifier(), AgentDaemon.WatchdogInterval(Environment.GetEnvironmentVariable), TimeProvider.System);
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
        return Ok;
    }

    private static SystemBootClock Clock { get; } = new(Environment.GetEnvironmentVariable);

    private static ISandboxSource Runtime(AgentConfig config) => new CriSandboxSource(config.RuntimeSockets, config.RuntimeTimeout);

    private static (AgentConfig, SqliteLeaseStore) Open(ParseResult parse)
    {
        var config = AgentConfig.Load(parse.GetValue(ConfigOption));
        if (parse.GetValue(StoreOption) is { } store) config = config with { Store = Path.GetFullPath(store) };
        return (config, SqliteLeaseStore.Open(config.Store, new StoreOptions(Clock, TimeProvider.System)));
    }

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
    }
}
