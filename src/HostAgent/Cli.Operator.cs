using System.CommandLine;
using System.Globalization;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Operator;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent;

/// <summary>The operator commands: leases, history, release, check, import-host-local.</summary>
internal static partial class Cli
{
    private static readonly Option<string?> NetworkFilter = new("--network") { Description = "Only this network" };

    private static void AddOperatorCommands(RootCommand root)
    {
        var leases = new Command("leases", "Every lease: address, network, owner, age, boot, and the evidence found now") { NetworkFilter, JsonOption };
        leases.SetAction((parse, ct) => GuardAsync(() => LeasesAsync(parse, ct)));
        root.Subcommands.Add(leases);

        var ip = new Option<string?>("--ip") { Description = "Only this address" };
        var since = new Option<string?>("--since") { Description = "Only events since a duration ago (30m, 6h, 2d) or a time (2026-11-22T10:00:00Z)" };
        var limit = new Option<int>("--limit") { Description = "At most this many events, the newest (default 1000)", DefaultValueFactory = _ => 1000 };
        var history = new Command("history", "Every allocation and release with its reason and actor, oldest first") { ip, NetworkFilter, since, limit, JsonOption };
        history.SetAction(parse => Guard(() => History(parse, parse.GetValue(ip), parse.GetValue(since), parse.GetValue(limit))));
        root.Subcommands.Add(history);

        var address = new Argument<string>("address") { Description = "The address to release" };
        var network = new Option<string>("--network") { Description = "The network the address belongs to", Required = true };
        var owner = new Option<string?>("--owner") { Description = "Refuse unless the holder is this container ID or NAMESPACE/POD" };
        var force = new Option<bool>("--force") { Description = "Release even when the owner shows live evidence or cannot be checked" };
        var release = new Command("release", "Release one address, validated: refused (exit 3) while its owner lives unless --force") { address, network, owner, force, DryRunOption };
        release.SetAction((parse, ct) => GuardAsync(() => ReleaseAsync(parse, parse.GetValue(address)!, parse.GetValue(network)!, parse.GetValue(owner), parse.GetValue(force), ct)));
        root.Subcommands.Add(release);

        var check = new Command("check", "Store integrity, leases outside their ranges, full ranges, leases left from earlier boots; exit 1 with findings") { JsonOption };
        check.SetAction(parse => Guard(() => Check(parse)));
        root.Subcommands.Add(check);

        var dir = new Option<string>("--dir") { Description = "host-local's data directory", DefaultValueFactory = _ => HostLocalDirs.Default };
        var import = new Command("import-host-local", "Take over host-local's leases as leases of this boot, without restarting pods; idempotent") { dir, NetworkFilter, DryRunOption };
        import.SetAction(parse => Guard(() => Import(parse, parse.GetValue(dir)!)));
        root.Subcommands.Add(import);
    }

    private static async Task<int> LeasesAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var agent = Open(parse, StoreAccess.Read);
        var (config, store) = agent;
        using var _ = store;
        var evidence = await agent.GatherAsync(cancellationToken).ConfigureAwait(false);
        var listing = LeaseListing.Gather(store, config.HostLocalDirs, parse.GetValue(NetworkFilter), evidence, Clock, Time);
        foreach (var w in listing.Warnings) Console.Error.WriteLine($"berth-agent: warning: {w}");
        if (parse.GetValue(JsonOption))
        {
            using var stdout = Console.OpenStandardOutput();
            listing.WriteJson(stdout);
            return Ok;
        }
        Console.Write(listing.Table());
        return Ok;
    }

    private static int History(ParseResult parse, string? ip, string? since, int limit)
    {
        if (limit <= 0) throw new AgentConfigException("--limit must be a positive number");
        // As the store writes it: canonical (fd00::A is fd00::a); a malformed one is an error, not an empty answer.
        if (ip is not null) ip = Shared.Allocation.Ip.TryParse(ip, out var address) ? address.ToString() : throw new AgentConfigException($"--ip \"{ip}\" is not an IP address");
        var from = since is null ? (DateTimeOffset?)null : Since(since) ?? throw new AgentConfigException($"--since \"{since}\": use a duration such as 30m, 6h, 2d or a time such as 2026-11-22T10:00:00Z");
        var (_, store) = Open(parse, StoreAccess.Read);
        using var _ = store;
        var events = store.Query(q => q.History(new HistoryFilter(ip, parse.GetValue(NetworkFilter), from, limit)));
        if (parse.GetValue(JsonOption))
        {
            OperatorJson.ToStdout(w =>
            {
                w.WriteStartArray("events");
                foreach (var e in events)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", e.Id);
                    w.WriteString("at", e.At.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteString("bootId", e.BootId);
                    w.WriteString("action", e.Action);
                    w.WriteString("reason", e.Reason);
                    w.WriteString("actor", e.Actor);
                    w.WriteString("network", e.Network);
                    w.WriteString("address", e.Address);
                    w.WriteString("containerId", e.ContainerId);
                    w.WriteString("ifname", e.IfName);
                    w.WriteString("podNamespace", e.PodNamespace);
                    w.WriteString("podName", e.PodName);
                    w.WriteString("detail", e.Detail);
                    w.WriteString("store", e.Store);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return Ok;
        }
        Console.Write(TextTable.Render(["TIME", "ACTION", "REASON", "ACTOR", "NETWORK", "STORE", "ADDRESS", "OWNER", "DETAIL"],
            events.Select(e => (IReadOnlyList<string>)[e.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), e.Action, e.Reason, e.Actor, e.Network, LeaseStores.Kind(e.Store), e.Address,
                e.PodName is not null ? $"{e.PodNamespace}/{e.PodName}" : $"{e.ContainerId}/{e.IfName}", e.Detail ?? ""])));
        return Ok;
    }

    private static async Task<int> ReleaseAsync(ParseResult parse, string address, string network, string? owner, bool force, CancellationToken cancellationToken)
    {
        var agent = Open(parse, StoreAccess.Write);
        using var _ = agent.Store;
        var release = agent.Release();
        var outcome = await release.RunAsync(address, network, owner, force, parse.GetValue(DryRunOption), OperatorIdentity.Of(Environment.GetEnvironmentVariable), cancellationToken).ConfigureAwait(false);
        var code = outcome.Status switch
        {
            ReleaseStatus.Released or ReleaseStatus.AlreadyFree => Ok,
            ReleaseStatus.Refused => Refused,
            _ => Error,
        };
        (code == Ok ? Console.Out : Console.Error).WriteLine(code == Ok ? outcome.Message : $"berth-agent: {outcome.Message}");
        return code;
    }

    private static int Check(ParseResult parse)
    {
        var (config, store) = Open(parse, StoreAccess.Read);
        using var _ = store;
        var report = new CheckReport(HealthCheck.Run(store, Clock, config.HostLocalDirs, config.CniConfDirs));
        if (parse.GetValue(JsonOption))
        {
            using var stdout = Console.OpenStandardOutput();
            report.WriteJson(stdout);
        }
        else
        {
            Console.Write(report.Text(store.Path));
        }
        return report.Problems == 0 ? Ok : Error;
    }

    private static int Import(ParseResult parse, string directory)
    {
        var (_, store) = Open(parse, StoreAccess.Create);
        using var _ = store;
        var dryRun = parse.GetValue(DryRunOption);
        var report = new HostLocalImport(store, Clock, Time).Run(directory, parse.GetValue(NetworkFilter), dryRun, OperatorIdentity.Of(Environment.GetEnvironmentVariable));
        var verb = dryRun ? "would import" : "imported";
        foreach (var line in report.Imported) Console.WriteLine($"{verb} {line}");
        foreach (var line in report.Cursors) Console.WriteLine(line);
        foreach (var line in report.Conflicts) Console.WriteLine($"conflict: {line}");
        foreach (var line in report.Skipped) Console.WriteLine($"skipped: {line}");
        Console.WriteLine($"{verb} {report.Imported.Count}, already held {report.Already.Count}, conflicts {report.Conflicts.Count}, skipped {report.Skipped.Count}");
        return Ok;
    }

    private static DateTimeOffset? Since(string text)
    {
        if (text.Length > 1 && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
        {
            TimeSpan? span = text[^1] switch { 's' => TimeSpan.FromSeconds(n), 'm' => TimeSpan.FromMinutes(n), 'h' => TimeSpan.FromHours(n), 'd' => TimeSpan.FromDays(n), _ => null };
            if (span is { } s) return Time.GetUtcNow() - s;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : null;
    }
}
