using System.Buffers;
using System.Text.Json;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Cni;
using Berth.Shared.Config;

namespace Berth.HostAgent.Pools;

/// <summary>
/// A network whose CNI config names host-local, as the node's config describes it: the file, and its range sets,
/// or why they cannot be had (a <c>usePodCidr</c> range while flannel's subnet file is missing, an invalid range).
/// </summary>
internal sealed record HostLocalNetworkConfig(string DataDir, string Network, string File, IReadOnlyList<RangeSet>? Sets, string? Problem);

/// <summary>
/// The ranges of the networks host-local serves on this node, read from the runtime's CNI config directories
/// (<c>cniConfDirs</c>): the network is the config's <c>name</c>, its files are under the host-local
/// <c>ipam</c> section's <c>dataDir</c> (host-local's default /var/lib/cni/networks), its ranges are that
/// section's, read by the plugin's own parser, <c>usePodCidr</c> from flannel's subnet file as the plugin reads
/// it; flannel's plugin (k3s) delegates to host-local with the ranges of its subnet file. Files are taken as the
/// runtime's CNI library takes them (.conf, .conflist, .json, by name); the first file
/// that describes a network wins. Every file is someone else's: one that cannot be read or parsed is skipped with
/// a warning, and never stops the reading of the others.
/// </summary>
internal sealed record NodeCniConfigs(IReadOnlyDictionary<(string DataDir, string Network), HostLocalNetworkConfig> Networks, IReadOnlyList<string> Warnings)
{
    /// <summary>Where containerd and CRI-O read CNI configs unless told otherwise (k3s: /var/lib/rancher/k3s/agent/etc/cni/net.d).</summary>
    public static readonly IReadOnlyList<string> DefaultDirs = ["/etc/cni/net.d"];

    /// <summary>A conf dir holds a handful of files; more than this many is not one, and the rest are skipped.</summary>
    public const int MaxFilesPerDir = 256;

    private static readonly string[] Extensions = [".conf", ".conflist", ".json"];

    /// <summary>The config a guarded directory's network is described by, or null when no config names it.</summary>
    public HostLocalNetworkConfig? Find(string dataDir, string network) => Networks.GetValueOrDefault((Normalize(dataDir), network));

    public static NodeCniConfigs Read(IReadOnlyList<string> dirs)
    {
        var networks = new Dictionary<(string, string), HostLocalNetworkConfig>();
        var warnings = new List<string>();
        foreach (var dir in dirs)
        {
            List<string> files;
            try
            {
                if (!Directory.Exists(dir)) continue;
                files = [.. Directory.EnumerateFiles(dir)
                    .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.Ordinal))
                    .Order(StringComparer.Ordinal)];
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                warnings.Add($"CNI config dir {dir}: cannot be listed: {e.Message}; skipped");
                continue;
            }
            if (files.Count > MaxFilesPerDir)
            {
                warnings.Add($"CNI config dir {dir}: {files.Count} config files, more than {MaxFilesPerDir}: only the first {MaxFilesPerDir} are read");
                files = files[..MaxFilesPerDir];
            }
            foreach (var file in files)
            {
                try
                {
                    ReadFile(file, networks, warnings);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CniException)
                {
                    warnings.Add($"CNI config {file}: {e.Message}; skipped");
                }
            }
        }
        return new NodeCniConfigs(networks, warnings);
    }

    private static void ReadFile(string file, Dictionary<(string, string), HostLocalNetworkConfig> networks, List<string> warnings)
    {
        var bytes = NodeFile.Read(file, ConfigParser.MaxStdinBytes);
        JsonElement root;
        try
        {
            root = ConfigParser.ParseObject(bytes);
        }
        catch (CniException)
        {
            warnings.Add($"CNI config {file}: not a JSON object in UTF-8; skipped");
            return;
        }
        if (!root.TryGetProperty("name", out var nameElement) || nameElement.ValueKind != JsonValueKind.String || nameElement.GetString() is not { } name
            || !ConfigParser.IsIdentifier(name))
        {
            warnings.Add($"CNI config {file}: no valid network \"name\"; skipped");
            return;
        }
        // A list's plugins, or the single plugin a .conf is.
        IEnumerable<JsonElement> plugins = root.TryGetProperty("plugins", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray() : [root];
        foreach (var plugin in plugins)
        {
            if (plugin.ValueKind != JsonValueKind.Object) continue;
            JsonElement ipam;
            if (IsString(plugin, "type", "flannel"))
            {
                if (FlannelIpam(plugin) is not { } delegated) continue;
                ipam = delegated;
            }
            else if (!plugin.TryGetProperty("ipam", out ipam) || ipam.ValueKind != JsonValueKind.Object) continue;
            if (!IsString(ipam, "type", "host-local")) continue;
            var dataDir = HostLocalDirs.Default;
            if (ipam.TryGetProperty("dataDir", out var d))
            {
                if (d.ValueKind != JsonValueKind.String || d.GetString() is not { } given || !Path.IsPathFullyQualified(given) || given.Contains('\0'))
                {
                    warnings.Add($"CNI config {file}: network {name}: ipam.dataDir is not an absolute path; skipped");
                    continue;
                }
                dataDir = given;
            }
            var key = (Normalize(dataDir), name);
            if (networks.TryGetValue(key, out var first))
            {
                warnings.Add($"CNI config {file}: network {name} (host-local in {dataDir}) is described by {first.File} already, which is used");
                continue;
            }
            var (sets, problem) = Ranges(name, ipam);
            networks[key] = new HostLocalNetworkConfig(key.Item1, name, file, sets, problem);
        }
    }

    private static bool IsString(JsonElement obj, string name, string value) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() == value;

    /// <summary>
    /// The ipam section flannel's CNI plugin hands its delegate (k3s, RKE2 with flannel): its own <c>ipam</c> (type
    /// host-local when it names none) with the ranges replaced by the node's subnets from its subnet file
    /// (<c>subnetFile</c>, default /run/flannel/subnet.env): <c>FLANNEL_SUBNET</c> and <c>FLANNEL_IPV6_SUBNET</c>,
    /// whichever it holds. Null when it names another IPAM plugin.
    /// </summary>
    private static JsonElement? FlannelIpam(JsonElement plugin)
    {
        JsonElement? given = plugin.TryGetProperty("ipam", out var i) && i.ValueKind == JsonValueKind.Object ? i : null;
        if (given is { } g && g.TryGetProperty("type", out _) && !IsString(g, "type", "host-local")) return null;
        plugin.TryGetProperty("subnetFile", out var subnetFile);
        var path = subnetFile.ValueKind == JsonValueKind.String ? subnetFile.GetString()! : FlannelSubnetFile.DefaultPath;
        var placeholders = new List<string>();
        if (subnetFile.ValueKind is JsonValueKind.String or JsonValueKind.Undefined && Path.IsPathFullyQualified(path) && NodeFile.IsRegularFile(path))
        {
            foreach (var (key, placeholder) in new[] { (FlannelSubnetFile.Ipv4Key, ConfigParser.UsePodCidr), (FlannelSubnetFile.Ipv6Key, ConfigParser.UsePodCidrIPv6) })
            {
                try
                {
                    _ = FlannelSubnetFile.Subnet(path, key);
                    placeholders.Add(placeholder);
                }
                catch (FormatException)
                {
                    // This family is not in the file: flannel gives no range for it.
                }
            }
        }
        // None found: the IPv4 placeholder lets the plugin's parser say why (no file, no key, not a regular file).
        if (placeholders.Count == 0) placeholders.Add(ConfigParser.UsePodCidr);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "host-local");
            if (given is { } gi && gi.TryGetProperty("dataDir", out var dataDir))
            {
                w.WritePropertyName("dataDir");
                dataDir.WriteTo(w);
            }
            w.WritePropertyName("subnetFile");
            if (subnetFile.ValueKind == JsonValueKind.Undefined) w.WriteStringValue(path);
            else subnetFile.WriteTo(w);
            w.WriteStartArray("ranges");
            foreach (var placeholder in placeholders)
            {
                w.WriteStartArray();
                w.WriteStartObject();
                w.WriteString("subnet", placeholder);
                w.WriteEndObject();
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ConfigParser.ParseObject(buffer.WrittenMemory);
    }

    /// <summary>The ipam section's range sets, read by the plugin's parser, or why not.</summary>
    private static (IReadOnlyList<RangeSet>? Sets, string? Problem) Ranges(string name, JsonElement ipam)
    {
        // The subnet file is flanneld's and may be anything: refuse what is not a regular file before the parser
        // opens it (a FIFO would block the read).
        var subnetFile = ipam.TryGetProperty("subnetFile", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : FlannelSubnetFile.DefaultPath;
        if (ipam.GetRawText().Contains(ConfigParser.UsePodCidr, StringComparison.OrdinalIgnoreCase)
            && Path.IsPathFullyQualified(subnetFile) && File.Exists(subnetFile) && !NodeFile.IsRegularFile(subnetFile))
        {
            return (null, $"\"usePodCidr\" is the node's pod subnet from flannel, but flannel's subnet file {ConfigParser.Clip(subnetFile)} is not a regular file");
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WritePropertyName("ipam");
            ipam.WriteTo(w);
            w.WriteEndObject();
        }
        try
        {
            var config = ConfigParser.Parse(ConfigParser.ParseObject(buffer.WrittenMemory), "1.0.0", CniArgs.Empty, PodCidrResolution.Resolve);
            return (config.RangeSets, null);
        }
        catch (CniException e)
        {
            return (null, e.Message);
        }
    }

    private static string Normalize(string dir) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
}
