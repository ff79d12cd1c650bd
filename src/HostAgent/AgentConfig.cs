using System.Net;
using System.Text.Json;

namespace Berth.HostAgent;

/// <summary>
/// /etc/berth/agent.json. Every key is optional; no file at the default path means every default. A file
/// that is not valid, or a key that is unknown or of the wrong type, is an error naming it: a typo in a
/// setting that decides what gets released must not pass silently. Not the configuration binder: its JSON
/// provider turns every value into a string and [] into nothing (docs/design.md has what was measured).
/// </summary>
internal sealed record AgentConfig
{
    public const string DefaultPath = "/etc/berth/agent.json";

    /// <summary>The store the plugin writes when its config names no dataDir.</summary>
    public static readonly string DefaultStore = Path.Combine(Shared.Config.IpamConfig.DefaultDataDir, Shared.Config.IpamConfig.StoreFileName);

    public string Store { get; init; } = DefaultStore;
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromMinutes(5);
    public IReadOnlyList<string> RuntimeSockets { get; init; } =
        ["/run/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock", "/var/run/crio/crio.sock"];
    public IPEndPoint MetricsAddress { get; init; } = new(IPAddress.Loopback, 9617);
    public bool MetricsEnabled { get; init; } = true;
    public bool DryRun { get; init; }
    public TimeSpan RuntimeTimeout { get; init; } = TimeSpan.FromSeconds(5);
    public int HistoryKeepEvents { get; init; } = 100_000;
    public TimeSpan HistoryKeepAge { get; init; } = TimeSpan.FromDays(30);

    /// <summary>host-local's data directories the guardian protects; [] turns it off. Directories that do not exist are skipped.</summary>
    public IReadOnlyList<string> HostLocalDirs { get; init; } = [global::Berth.HostAgent.HostLocal.HostLocalDirs.Default];

    /// <summary>Where runtimes pin network namespaces: an entry there means a runtime has run in this boot (see BootProof).</summary>
    public IReadOnlyList<string> NetnsDirs { get; init; } = global::Berth.HostAgent.HostLocal.BootProof.DefaultNetnsDirs;

    /// <summary>The runtime's CNI config dirs, where the ranges of guarded host-local networks are read (see Pools.NodeCniConfigs).</summary>
    public IReadOnlyList<string> CniConfDirs { get; init; } = global::Berth.HostAgent.Pools.NodeCniConfigs.DefaultDirs;

    /// <summary>
    /// Where `run` answers the plugin's calls, or null for nowhere ("off"): the plugin's own default
    /// (<see cref="Shared.Plugin.PluginSocket"/>, BERTH_PLUGIN_SOCKET in the environment), unless the file says.
    /// </summary>
    public string? PluginSocket { get; init; } = Shared.Plugin.PluginSocket.Path(Environment.GetEnvironmentVariable);

    /// <summary>Loads the file; <paramref name="explicitPath"/> (from --config) must exist, the default need not.</summary>
    /// <summary>agent.json holds a dozen settings: anything past this is not one.</summary>
    public const int MaxBytes = 1 << 20;

    public static AgentConfig Load(string? explicitPath)
    {
        var path = explicitPath ?? DefaultPath;
        if (!File.Exists(path))
        {
            if (explicitPath is not null) throw new AgentConfigException($"config {path} does not exist");
            return new AgentConfig();
        }
        byte[] bytes;
        try
        {
            // Bounded: a config path that names /dev/zero or a file still growing is an error, not the agent's memory.
            bytes = Shared.Config.SmallFile.Read(path, MaxBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentConfigException($"config {path} cannot be read: {e.Message}");
        }
        return Parse(bytes, path);
    }

    public static AgentConfig Parse(ReadOnlyMemory<byte> json, string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new AgentConfigException($"config {path} is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new AgentConfigException($"config {path}: expected a JSON object");
            var config = new AgentConfig();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                AgentConfigException Bad(string expected) => new($"config {path}: \"{p.Name}\" {expected}");
                config = p.Name switch
                {
                    "store" => config with { Store = AbsolutePath(p.Value) ?? throw Bad("must be an absolute path") },
                    "intervalSeconds" => config with { Interval = Seconds(p.Value, 1, 86400) ?? throw Bad("must be a number of seconds from 1 to 86400") },
                    "gracePeriodSeconds" => config with { GracePeriod = Seconds(p.Value, 0, 86400 * 7) ?? throw Bad("must be a number of seconds from 0 to 604800") },
                    "runtimeTimeoutSeconds" => config with { RuntimeTimeout = Seconds(p.Value, 1, 300) ?? throw Bad("must be a number of seconds from 1 to 300") },
                    "runtimeSockets" => config with { RuntimeSockets = Paths(p.Value) ?? throw Bad("must be an array of absolute socket paths ([] for a node with no runtime)") },
                    "metricsAddress" => p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is "" or "off"
                        ? config with { MetricsEnabled = false }
                        : config with { MetricsAddress = Endpoint(p.Value) ?? throw Bad("must be \"address:port\" such as \"127.0.0.1:9617\", or \"off\"") },
                    "historyKeepEvents" => config with { HistoryKeepEvents = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var n) && n >= 0 ? n : throw Bad("must be a whole number of events, 0 or more") },
                    "historyKeepDays" => config with { HistoryKeepAge = Seconds(p.Value, 0, 3650) is { } d ? TimeSpan.FromDays(d.TotalSeconds) : throw Bad("must be a number of days from 0 to 3650") },
                    "hostLocal" => ParseHostLocal(config, p.Value, path),
                    "cniConfDirs" => config with { CniConfDirs = Paths(p.Value) ?? throw Bad("must be an array of absolute paths (the runtime's CNI config dirs)") },
                    "pluginSocket" => p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() == Shared.Plugin.PluginSocket.Off
                        ? config with { PluginSocket = null }
                        : config with
                        {
                            PluginSocket = AbsolutePath(p.Value) is { } socket && Shared.Plugin.PluginSocket.Fits(socket) ? socket
                                : throw Bad($"must be the absolute path of a socket, at most {Shared.Plugin.PluginSocket.MaxPathBytes} bytes (a Unix socket's limit), or \"off\""),
                        },
                    "dryRun" => config with { DryRun = p.Value.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad("must be true or false") } },
                    _ => throw new AgentConfigException($"config {path}: unknown key \"{p.Name}\" (known: store, intervalSeconds, gracePeriodSeconds, runtimeSockets, runtimeTimeoutSeconds, metricsAddress, historyKeepEvents, historyKeepDays, hostLocal, cniConfDirs, pluginSocket, dryRun)"),
                };
            }
            return config;
        }
    }

    private static AgentConfig ParseHostLocal(AgentConfig config, JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new AgentConfigException($"config {path}: \"hostLocal\" must be an object such as {{\"dirs\": [\"/var/lib/cni/networks\"]}}");
        foreach (var p in e.EnumerateObject())
        {
            config = p.Name switch
            {
                "dirs" => config with { HostLocalDirs = Paths(p.Value) ?? throw new AgentConfigException($"config {path}: \"hostLocal.dirs\" must be an array of absolute paths ([] turns the guardian off)") },
                "netnsDirs" => config with { NetnsDirs = Paths(p.Value) ?? throw new AgentConfigException($"config {path}: \"hostLocal.netnsDirs\" must be an array of absolute paths") },
                _ => throw new AgentConfigException($"config {path}: unknown key \"hostLocal.{p.Name}\" (known: dirs, netnsDirs)"),
            };
        }
        return config;
    }

    private static string? AbsolutePath(JsonElement e) =>
        e.ValueKind == JsonValueKind.String && e.GetString() is { } s && Path.IsPathFullyQualified(s) ? s : null;

    private static TimeSpan? Seconds(JsonElement e, double min, double max) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var d) && d >= min && d <= max ? TimeSpan.FromSeconds(d) : null;

    private static List<string>? Paths(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array) return null;
        var paths = new List<string>();
        foreach (var item in e.EnumerateArray())
        {
            if (AbsolutePath(item) is not { } p) return null;
            paths.Add(p);
        }
        return paths;
    }

    private static IPEndPoint? Endpoint(JsonElement e) =>
        e.ValueKind == JsonValueKind.String && IPEndPoint.TryParse(e.GetString()!, out var ep) ? ep : null;
}

/// <summary>The agent's configuration is unusable; the message names the file and the key.</summary>
internal sealed class AgentConfigException(string message) : Exception(message);
