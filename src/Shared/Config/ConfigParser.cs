using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Berth.Shared.Allocation;
using Berth.Shared.Cni;

namespace Berth.Shared.Config;

/// <summary>
/// Reads host-local's network configuration unchanged (with <c>"type": "berth"</c>) and canonicalises it as
/// host-local does: gateway = network + 1, rangeStart = network + 1, rangeEnd = the last address (IPv4: the
/// one before broadcast). Stricter where host-local would hand out an address no one should get: a range
/// may not start at the network address nor, for IPv4, end at the broadcast address.
/// </summary>
public static class ConfigParser
{
    /// <summary>The most stdin the plugin reads; a network config is a few KiB.</summary>
    public const int MaxStdinBytes = 1 << 20;

    private const int MaxRangeSets = 16;
    private const int MaxRangesPerSet = 64;

    /// <summary>Parses stdin as a JSON object; error 6 when it is not one.</summary>
    public static JsonElement ParseObject(ReadOnlyMemory<byte> stdin)
    {
        // The JSON reader checks the structure but not the bytes inside strings: text that is not UTF-8 would
        // only fail later, as an internal error, where a value is read.
        if (!System.Text.Unicode.Utf8.IsValid(stdin.Span))
        {
            throw new CniException(ErrorCodes.DecodingFailure, "stdin is not valid UTF-8: the runtime must pass the network config as JSON text");
        }
        JsonElement root;
        try
        {
            // An element that owns plain arrays, not a JsonDocument renting from the shared array pool: the pool's
            // first use costs a short-lived plugin process a calibration of its CPU-number cache.
            var reader = new Utf8JsonReader(stdin.Span, new JsonReaderOptions { MaxDepth = 32 });
            root = JsonElement.ParseValue(ref reader);
            // Anything after the value (a second value, stray characters) fails here, as JsonDocument.Parse would.
            reader.Read();
        }
        catch (JsonException e)
        {
            throw new CniException(ErrorCodes.DecodingFailure, "stdin is not valid JSON: the runtime must pass the network config", e.Message);
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new CniException(ErrorCodes.DecodingFailure, "stdin is not a JSON object: the runtime must pass the network config");
        }
        if (!IsText(root))
        {
            throw new CniException(ErrorCodes.DecodingFailure, "stdin holds a string that is not Unicode text (an unpaired \\uD800-\\uDFFF escape): the runtime must pass the network config");
        }
        return root;
    }

    /// <summary>
    /// Whether every key and string value decodes: JSON allows an escaped lone surrogate ("\uD800") that .NET
    /// refuses only when the string is read, which would otherwise surface as an internal error.
    /// </summary>
    private static bool IsText(JsonElement element)
    {
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var p in element.EnumerateObject())
                    {
                        _ = p.Name;
                        if (!IsText(p.Value)) return false;
                    }
                    return true;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        if (!IsText(item)) return false;
                    }
                    return true;
                case JsonValueKind.String:
                    _ = element.GetString();
                    return true;
                default:
                    return true;
            }
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Checks a network name as the CNI library does: a letter or digit, then letters, digits, _ . -</summary>
    public static string ValidateNetworkName(string? name)
    {
        if (string.IsNullOrEmpty(name)) throw Json.Invalid("name", "missing network name");
        if (name.Length > 255 || !IsIdentifier(name)) throw Json.Invalid("name", $"\"{Clip(name)}\" may hold only letters, digits, '_', '.' and '-', starting with a letter or digit");
        return name;
    }

    /// <summary>Whether text matches <c>[A-Za-z0-9][A-Za-z0-9_.-]*</c>, the CNI rule for IDs and names.</summary>
    public static bool IsIdentifier(string text) =>
        text.Length > 0 && char.IsAsciiLetterOrDigit(text[0]) && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>
    /// Whether text can name a network interface, by the rules of the CNI skeleton (libcni's ValidateInterfaceName,
    /// which are the kernel's): 1 to 15 bytes (IFNAMSIZ less its NUL), not "." or "..", without '/', ':' or
    /// whitespace; control characters are refused too. The plugin checks CNI_IFNAME with it, and the guardian the
    /// names in host-local's files: host-local gets its CNI_IFNAME through the same skeleton, and a name the kernel
    /// refuses never named an attachment, so a file holding one is not host-local's record (it is skipped, never deleted).
    /// </summary>
    public static bool IsIfName(string text) =>
        text.Length > 0 && System.Text.Encoding.UTF8.GetByteCount(text) <= 15 && text is not ("." or "..")
        && !text.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c));

    /// <summary>The subnets that stand for the node's pod subnets, as Calico spells them (it compares without case).</summary>
    public const string UsePodCidr = "usePodCidr", UsePodCidrIPv6 = "usePodCidrIPv6";

    /// <summary>
    /// Parses and canonicalises the IPAM config; error 7 for anything invalid, 4 for a bad CNI_ARGS IP. A range
    /// whose subnet is <see cref="UsePodCidr"/> or <see cref="UsePodCidrIPv6"/> takes the node's subnet from
    /// flannel's subnet file (<c>ipam.subnetFile</c>, default <see cref="FlannelSubnetFile.DefaultPath"/>), or is
    /// left out, as <paramref name="podCidrs"/> says; that file is opened where <paramref name="callerFile"/> says
    /// (PluginServices.CallerFile).
    /// </summary>
    public static IpamConfig Parse(JsonElement root, string cniVersion, CniArgs args, PodCidrResolution podCidrs = PodCidrResolution.Resolve,
        Func<string, string>? callerFile = null)
    {
        var network = ValidateNetworkName(Json.String(root, "name", "$"));
        var ipam = Json.Object(root, "ipam", "$") ?? throw Json.Invalid("ipam", "missing: the config needs an \"ipam\" section");

        var dataDir = Json.String(ipam, "dataDir", "ipam") ?? IpamConfig.DefaultDataDir;
        if (!Path.IsPathFullyQualified(dataDir) || dataDir.Contains('\0'))
        {
            throw Json.Invalid("ipam.dataDir", $"\"{Clip(dataDir)}\" is not an absolute path");
        }

        var subnetFile = Json.String(ipam, "subnetFile", "ipam") ?? FlannelSubnetFile.DefaultPath;
        if (!Path.IsPathFullyQualified(subnetFile) || subnetFile.Contains('\0'))
        {
            throw Json.Invalid("ipam.subnetFile", $"\"{Clip(subnetFile)}\" is not an absolute path");
        }

        var rawSets = new List<(JsonElement[] Ranges, string Path)>();
        var runtimeConfig = Json.Object(root, "runtimeConfig", "$");
        // host-local's order: runtime-given ipRanges first, then the legacy single range, then "ranges".
        if (runtimeConfig is { } rc)
        {
            var i = 0;
            foreach (var set in Json.Array(rc, "ipRanges", "runtimeConfig", MaxRangeSets))
            {
                rawSets.Add((RangesOf(set, $"runtimeConfig.ipRanges[{i}]"), $"runtimeConfig.ipRanges[{i}]"));
                i++;
            }
        }
        if (Json.Property(ipam, "subnet") is not null) rawSets.Add(([ipam], "ipam"));
        var j = 0;
        foreach (var set in Json.Array(ipam, "ranges", "ipam", MaxRangeSets))
        {
            rawSets.Add((RangesOf(set, $"ipam.ranges[{j}]"), $"ipam.ranges[{j}]"));
            j++;
        }
        if (rawSets.Count == 0) throw Json.Invalid("ipam", "no ranges: give \"ranges\" (or the legacy \"subnet\")");
        if (rawSets.Count > MaxRangeSets) throw Json.Invalid("ipam.ranges", $"more than {MaxRangeSets} range sets");

        var sets = new List<RangeSet>();
        for (var index = 0; index < rawSets.Count; index++)
        {
            var (ranges, path) = rawSets[index];
            var parsed = new List<AddressRange>();
            for (var k = 0; k < ranges.Length; k++)
            {
                var rangePath = ranges.Length == 1 && path == "ipam" ? path : $"{path}[{k}]";
                var podCidrKey = PodCidrKey(ranges[k], rangePath);
                if (podCidrKey is not null && podCidrs == PodCidrResolution.Ignore) continue;
                var range = ParseRange(ranges[k], rangePath, podCidrKey is null ? null : PodSubnet(subnetFile, podCidrKey, rangePath, callerFile));
                if (parsed.Count > 0 && parsed[0].Family != range.Family) throw Json.Invalid(rangePath, "mixes IPv4 and IPv6 in one range set");
                if (parsed.FirstOrDefault(range.Overlaps) is { } other) throw Json.Invalid(rangePath, $"range {range} overlaps with range {other}");
                parsed.Add(range);
            }
            // The index is the set's place in the config, also when an ignored usePodCidr range emptied a set before it.
            if (parsed.Count > 0) sets.Add(new RangeSet(index, parsed));
        }
        for (var a = 0; a < sets.Count; a++)
        {
            for (var b = a + 1; b < sets.Count; b++)
            {
                if (sets[a].Ranges.Any(x => sets[b].Ranges.Any(x.Overlaps))) throw Json.Invalid("ipam.ranges", $"range set {a} overlaps with range set {b}");
            }
        }

        var routes = Json.Array(ipam, "routes", "ipam", 1024).Select((r, i) => ParseRoute(r, $"ipam.routes[{i}]")).ToList();
        var resolvConf = Json.String(ipam, "resolvConf", "ipam");
        return new IpamConfig(cniVersion, network, dataDir, sets, routes, resolvConf, RequestedAddresses(root, runtimeConfig, args));
    }

    private static JsonElement[] RangesOf(JsonElement set, string path)
    {
        if (set.ValueKind != JsonValueKind.Array) throw Json.Invalid(path, $"expected an array of ranges, found {Json.Kind(set)}");
        var count = set.GetArrayLength();
        if (count == 0) throw Json.Invalid(path, "empty range set");
        if (count > MaxRangesPerSet) throw Json.Invalid(path, $"more than {MaxRangesPerSet} ranges");
        return [.. set.EnumerateArray()];
    }

    /// <summary>The subnet file's key a usePodCidr range stands for, or null for an ordinary range.</summary>
    private static string? PodCidrKey(JsonElement r, string path)
    {
        if (r.ValueKind != JsonValueKind.Object) return null;
        var subnet = Json.String(r, "subnet", path);
        if (string.Equals(subnet, UsePodCidr, StringComparison.OrdinalIgnoreCase)) return FlannelSubnetFile.Ipv4Key;
        if (string.Equals(subnet, UsePodCidrIPv6, StringComparison.OrdinalIgnoreCase)) return FlannelSubnetFile.Ipv6Key;
        return null;
    }

    private static string PodSubnet(string subnetFile, string key, string path, Func<string, string>? callerFile)
    {
        var placeholder = key == FlannelSubnetFile.Ipv4Key ? UsePodCidr : UsePodCidrIPv6;
        IPNetwork subnet;
        try
        {
            subnet = FlannelSubnetFile.Subnet(subnetFile, key, callerFile);
        }
        catch (FormatException e)
        {
            throw Json.Invalid($"{path}.subnet", $"\"{placeholder}\" is the node's pod subnet from flannel: {e.Message}");
        }
        // Said here, where the message can name the file; the same limit as any range's.
        if (subnet.PrefixLength > Ip.Bits(subnet.BaseAddress.AddressFamily) - 2)
        {
            throw Json.Invalid($"{path}.subnet", $"\"{placeholder}\" is the node's pod subnet from flannel: {key} in {Clip(subnetFile)} is {subnet}, too small to allocate from");
        }
        return subnet.ToString();
    }

    private static AddressRange ParseRange(JsonElement r, string path, string? podSubnet)
    {
        if (r.ValueKind != JsonValueKind.Object) throw Json.Invalid(path, $"expected a range object, found {Json.Kind(r)}");
        var subnetText = podSubnet ?? Json.String(r, "subnet", path) ?? throw Json.Invalid(path, "missing \"subnet\"");
        if (!Ip.TryParseCidr(subnetText, out var baseAddress, out var prefix))
        {
            throw Json.Invalid($"{path}.subnet", $"\"{Clip(subnetText)}\" is not a CIDR such as 10.42.0.0/24 or fd00:42::/64");
        }
        var family = baseAddress.AddressFamily;
        var bits = Ip.Bits(family);
        if (prefix > bits - 2) throw Json.Invalid($"{path}.subnet", $"network {subnetText} is too small to allocate from");
        var subnet = Ip.NetworkOf(baseAddress, prefix);
        if (!subnet.BaseAddress.Equals(baseAddress))
        {
            throw Json.Invalid($"{path}.subnet", $"{subnetText} has host bits set: the network address is {subnet}");
        }
        var network = subnet.BaseAddress;
        var last = Ip.LastOf(subnet);

        var gateway = AddressIn(r, "gateway", path, subnet) ?? Ip.Next(network)!;
        var start = AddressIn(r, "rangeStart", path, subnet) ?? Ip.Next(network)!;
        var end = AddressIn(r, "rangeEnd", path, subnet) ?? (family == AddressFamily.InterNetwork ? Ip.Previous(last)! : last);
        if (start.Equals(network)) throw Json.Invalid($"{path}.rangeStart", $"{start} is the network address of {subnet}");
        if (family == AddressFamily.InterNetwork && end.Equals(last)) throw Json.Invalid($"{path}.rangeEnd", $"{end} is the broadcast address of {subnet}");
        if (Ip.Compare(start, end) > 0) throw Json.Invalid(path, $"rangeStart {start} is after rangeEnd {end}");
        return new AddressRange(subnet, start, end, gateway);
    }

    private static IPAddress? AddressIn(JsonElement r, string name, string path, IPNetwork subnet)
    {
        var text = Json.String(r, name, path);
        if (text is null) return null;
        if (!Ip.TryParse(text, out var address)) throw Json.Invalid($"{path}.{name}", $"\"{Clip(text)}\" is not an IP address");
        if (!Ip.Contains(subnet, address)) throw Json.Invalid($"{path}.{name}", $"{address} is not in network {subnet}");
        return address;
    }

    private static Route ParseRoute(JsonElement r, string path)
    {
        if (r.ValueKind != JsonValueKind.Object) throw Json.Invalid(path, $"expected a route object, found {Json.Kind(r)}");
        var dst = Json.String(r, "dst", path) ?? throw Json.Invalid(path, "missing \"dst\"");
        if (!Ip.TryParseCidr(dst, out _, out _)) throw Json.Invalid($"{path}.dst", $"\"{Clip(dst)}\" is not a CIDR");
        IPAddress? gw = null;
        if (Json.String(r, "gw", path) is { } gwText && !Ip.TryParse(gwText, out gw)) throw Json.Invalid($"{path}.gw", $"\"{Clip(gwText)}\" is not an IP address");
        return new Route(dst, gw, Json.Int(r, "mtu", path), Json.Int(r, "advmss", path), Json.Int(r, "priority", path), Json.Int(r, "table", path), Json.Int(r, "scope", path));
    }

    /// <summary>
    /// Requested addresses. <c>args.cni.ips</c> in the config wins over CNI_ARGS <c>IP=</c> (the CNI
    /// conventions: args in the config take precedence over the environment); <c>runtimeConfig.ips</c>
    /// (capability "ips") is added to either.
    /// </summary>
    private static List<IPAddress> RequestedAddresses(JsonElement root, JsonElement? runtimeConfig, CniArgs args)
    {
        var result = new List<IPAddress>();
        void Add(IPAddress a)
        {
            if (!result.Contains(a)) result.Add(a);
        }

        var fromArgs = Json.Object(root, "args", "$") is { } a && Json.Object(a, "cni", "args") is { } cni
            ? Json.Array(cni, "ips", "args.cni", 64)
            : [];
        for (var i = 0; i < fromArgs.Count; i++) Add(RequestedIp(fromArgs[i], $"args.cni.ips[{i}]"));
        if (fromArgs.Count == 0 && args.Ip is { } env)
        {
            foreach (var text in env.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!TryRequested(text, out var ip)) throw new CniException(ErrorCodes.InvalidEnvironment, $"CNI_ARGS: IP=\"{Clip(text)}\" is not an IP address");
                Add(ip);
            }
        }
        if (runtimeConfig is { } rc)
        {
            var ips = Json.Array(rc, "ips", "runtimeConfig", 64);
            for (var i = 0; i < ips.Count; i++) Add(RequestedIp(ips[i], $"runtimeConfig.ips[{i}]"));
        }
        return result;
    }

    private static IPAddress RequestedIp(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.String || !TryRequested(e.GetString(), out var ip))
        {
            throw Json.Invalid(path, "expected an IP address such as \"10.42.0.7\" (a /prefix is allowed and ignored)");
        }
        return ip;
    }

    private static bool TryRequested(string? text, out IPAddress ip) =>
        Ip.TryParse(text, out ip) || Ip.TryParseCidr(text, out ip, out _);

    /// <summary>
    /// The addresses of <c>prevResult.ips</c> (CHECK). Null when there is no prevResult.
    /// </summary>
    public static IReadOnlyList<IPAddress>? PrevResultAddresses(JsonElement root)
    {
        if (Json.Object(root, "prevResult", "$") is not { } prev) return null;
        var ips = Json.Array(prev, "ips", "prevResult", 1024);
        var result = new List<IPAddress>();
        for (var i = 0; i < ips.Count; i++)
        {
            var text = Json.String(ips[i], "address", $"prevResult.ips[{i}]");
            if (!Ip.TryParseCidr(text, out var ip, out _)) throw Json.Invalid($"prevResult.ips[{i}].address", "expected an address with prefix such as 10.42.0.7/24");
            result.Add(ip);
        }
        return result;
    }

    /// <summary>
    /// The attachments a GC must keep: <c>cni.dev/valid-attachments</c>, or the older <c>cni.dev/attachments</c>.
    /// Null when neither is present: a GC without the list releases nothing rather than everything.
    /// </summary>
    public static IReadOnlySet<(string ContainerId, string IfName)>? ValidAttachments(JsonElement root)
    {
        var key = Json.Property(root, "cni.dev/valid-attachments") is not null ? "cni.dev/valid-attachments"
            : Json.Property(root, "cni.dev/attachments") is not null ? "cni.dev/attachments" : null;
        if (key is null) return null;
        var set = new HashSet<(string, string)>();
        var list = Json.Array(root, key, "$", 1 << 20);
        for (var i = 0; i < list.Count; i++)
        {
            var path = $"{key}[{i}]";
            if (list[i].ValueKind != JsonValueKind.Object) throw Json.Invalid(path, "expected {\"containerID\", \"ifname\"}");
            var id = Json.String(list[i], "containerID", path) ?? throw Json.Invalid(path, "missing containerID");
            var ifName = Json.String(list[i], "ifname", path) ?? throw Json.Invalid(path, "missing ifname");
            set.Add((id, ifName));
        }
        return set;
    }

    /// <summary>Shortens hostile text before it goes into a message.</summary>
    public static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
