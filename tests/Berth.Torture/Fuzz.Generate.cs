using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Torture;

/// <summary>
/// Generates one plugin invocation from a seeded random source: a host-local-style network config (ranges,
/// legacy subnet, usePodCidr with flannel's subnet file, rangeStart/End, gateway, routes, resolvConf, dataDir,
/// cniVersion variants, prevResult, runtimeConfig, args), mutated as a tree and then as bytes; and the CNI_*
/// environment, each variable kept, dropped, emptied, made huge, binary or odd unicode. Every dataDir points inside the sandbox.
/// </summary>
internal sealed class CaseGenerator(Random random, Sandbox sandbox)
{
    private static readonly string[] Versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
    private static readonly string[] Commands = ["ADD", "ADD", "ADD", "ADD", "DEL", "DEL", "DEL", "CHECK", "GC", "STATUS", "VERSION"];
    private static readonly string[] OddStrings =
    [
        "", " ", "\u202e\u0041\u200b", "é", "日本語", "🦀🦀", "a\u0000b", "..", "../../etc", "-rf", "%s%n", "\t\n",
        "\ufeff", "\u00a0", "A\u030a", "ǅ", "ﬀ", "\ud800", "\\", "\"", "'; DROP TABLE leases; --",
    ];

    private T Pick<T>(IReadOnlyList<T> list) => list[random.Next(list.Count)];
    private bool Chance(double p) => random.NextDouble() < p;

    public FuzzCase Next(int index)
    {
        for (var attempt = 0; ; attempt++)
        {
            // A third of the cases change nothing after generation, so that many get past validation to the store.
            var clean = Chance(0.35);
            var command = Chance(0.02) ? Pick(["add", "FROB", "", "ADD ", "VERSION\n", "DEL\0"]) : Pick(Commands);
            var container = Pick(sandbox.Containers);
            var config = Config(out var description);
            for (var m = clean ? 0 : random.Next(0, 4); m > 0; m--) description += " " + MutateTree(config);
            var stdin = Encoding.UTF8.GetBytes(config.ToJsonString());
            if (!clean && Chance(0.3)) description += " " + MutateBytes(ref stdin);
            if (!sandbox.IsSafe(stdin)) continue;
            var env = new Dictionary<string, byte[]>
            {
                ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"u8.ToArray(),
                ["CNI_COMMAND"] = Encoding.UTF8.GetBytes(command),
                ["CNI_CONTAINERID"] = Encoding.UTF8.GetBytes(container),
                ["CNI_NETNS"] = Encoding.UTF8.GetBytes(Pick(["/var/run/netns/fuzz-none", "/proc/self/ns/net", "/proc/1/ns/net", sandbox.AFile])),
                ["CNI_IFNAME"] = Encoding.UTF8.GetBytes(Pick(["eth0", "eth0", "net1", "e"])),
                ["CNI_ARGS"] = Encoding.UTF8.GetBytes(clean ? "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" : CniArgs()),
                ["CNI_PATH"] = "/opt/cni/bin:/usr/lib/cni"u8.ToArray(),
            };
            foreach (var name in env.Keys.Where(k => k != "PATH").ToList())
            {
                if (clean || !Chance(0.1)) continue;
                var (value, what) = OddValue();
                if (value is null) env.Remove(name);
                else env[name] = value;
                description += $" {name}:{what}";
            }
            if (Chance(0.03))
            {
                env["BERTH_BOOT_ID_FILE"] = Encoding.UTF8.GetBytes(Pick([sandbox.BootIdOther, sandbox.AFile, sandbox.Missing, sandbox.ADirectory]));
                description += " boot-id-file";
            }
            // Half the cases go through the serving agent (the prelude's encoder, the agent's decoder, its kept stores); a
            // few name a socket that cannot be one, which the prelude must pass over to the plugin.
            if (Chance(0.04))
            {
                var (socket, what) = HostileSocket();
                env["BERTH_PLUGIN_SOCKET"] = socket;
                description += $" socket:{what}";
            }
            else if (Chance(0.5))
            {
                env["BERTH_PLUGIN_SOCKET"] = Encoding.UTF8.GetBytes(sandbox.ServingSocket);
                description += " served";
            }
            return new FuzzCase(index, description.Trim(), env, stdin);
        }
    }

    /// <summary>A BERTH_PLUGIN_SOCKET that names no socket: never empty (that is the machine's default socket).</summary>
    private (byte[] Value, string What) HostileSocket() => random.Next(7) switch
    {
        0 => (Encoding.UTF8.GetBytes(sandbox.AFile), "file"),
        1 => (Encoding.UTF8.GetBytes(sandbox.ADirectory), "directory"),
        2 => (Encoding.UTF8.GetBytes(sandbox.AFifo), "fifo"),
        3 => (Encoding.UTF8.GetBytes(sandbox.Missing + "/plugin.sock"), "missing"),
        4 => (Encoding.UTF8.GetBytes(sandbox.Root + "/" + new string('s', random.Next(90, 300))), "too-long"),
        5 => ([.. Encoding.UTF8.GetBytes(sandbox.Root + "/"), 0xff, 0xfe, (byte)'s'], "not-utf8"),
        _ => ("plugin.sock"u8.ToArray(), "relative"),
    };

    private string CniArgs() => random.Next(8) switch
    {
        0 => "",
        1 => $"IP={RandomAddress(4)}",
        2 => $"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p{random.Next(10)};K8S_POD_INFRA_CONTAINER_ID=x",
        3 => $"IP={RandomAddress(4)},{RandomAddress(6)}",
        4 => "IP=",
        5 => "IgnoreUnknown=true;FOO=bar",
        6 => "K8S_POD_NAME=a;;;=;IP",
        _ => "IgnoreUnknown=1",
    };

    private (byte[]? Value, string What) OddValue()
    {
        switch (random.Next(6))
        {
            case 0: return (null, "missing");
            case 1: return ([], "empty");
            case 2:
                var huge = new byte[random.Next(4096, 60_000)];
                random.NextBytes(huge);
                for (var i = 0; i < huge.Length; i++) huge[i] = (byte)('a' + huge[i] % 26);
                return (huge, $"huge({huge.Length})");
            case 3:
                var binary = new byte[random.Next(1, 64)];
                random.NextBytes(binary);
                for (var i = 0; i < binary.Length; i++) if (binary[i] == 0) binary[i] = 0xff;
                return (binary, "binary");
            case 4: return (Encoding.UTF8.GetBytes(Pick(OddStrings).Replace("\0", "")), "unicode");
            default: return (Encoding.UTF8.GetBytes(Pick(sandbox.Containers) + Pick(OddStrings).Replace("\0", "")), "suffix");
        }
    }

    private string RandomAddress(int family) => family == 4
        ? $"10.{Pick(new[] { 90, 91, 92 })}.{random.Next(0, 2)}.{Pick(new[] { 0, 1, 2, 3, 5, 9, 100, 254, 255, 256 })}"
        : $"fd9{random.Next(0, 3)}::{random.Next(0, 300):x}";

    private JsonObject Range(int family, out string text)
    {
        var range = new JsonObject();
        if (Chance(0.1))
        {
            // The node's pod subnet from flannel's subnet file, spelt as Calico passes it or in another case.
            var placeholder = family == 4 ? "usePodCidr" : "usePodCidrIPv6";
            text = Chance(0.2) ? placeholder.ToUpperInvariant() : placeholder;
            range["subnet"] = text;
            return range;
        }
        if (Chance(0.5))
        {
            // A range host-local takes as it is, so that half the configs get as far as the store.
            text = family == 4 ? $"10.{90 + random.Next(3)}.{random.Next(2)}.0/{Pick(new[] { 24, 28 })}" : $"fd9{random.Next(3)}::/{Pick(new[] { 120, 124 })}";
            range["subnet"] = text;
            return range;
        }
        if (family == 4)
        {
            var prefix = Pick(new[] { 24, 28, 29, 30, 31, 32, 16, 8 });
            var third = random.Next(0, 2);
            range["subnet"] = $"10.{90 + random.Next(3)}.{third}.0/{prefix}";
            if (Chance(0.3)) range["rangeStart"] = $"10.9{random.Next(3)}.{third}.{Pick(new[] { 0, 1, 2, 10, 200, 255 })}";
            if (Chance(0.3)) range["rangeEnd"] = $"10.9{random.Next(3)}.{third}.{Pick(new[] { 3, 20, 254, 255, 1 })}";
            if (Chance(0.3)) range["gateway"] = $"10.9{random.Next(3)}.{third}.{Pick(new[] { 1, 2, 254, 0 })}";
        }
        else
        {
            var prefix = Pick(new[] { 120, 124, 126, 127, 128, 64, 112 });
            range["subnet"] = $"fd9{random.Next(3)}::/{prefix}";
            if (Chance(0.3)) range["rangeStart"] = $"fd9{random.Next(3)}::{random.Next(0, 20):x}";
            if (Chance(0.3)) range["rangeEnd"] = $"fd9{random.Next(3)}::{random.Next(0, 300):x}";
            if (Chance(0.3)) range["gateway"] = $"fd9{random.Next(3)}::1";
        }
        text = range["subnet"]!.GetValue<string>();
        return range;
    }

    private JsonObject Config(out string description)
    {
        var version = Chance(0.95) ? Pick(Versions) : Pick(["0.2.0", "0.1.0", "1.1", "2.0.0", "", "1.0.0 "]);
        var ipam = new JsonObject { ["type"] = "berth" };
        var sets = new JsonArray();
        var setCount = Pick(new[] { 1, 1, 1, 2, 2, 3 });
        var subnets = new List<string>();
        for (var s = 0; s < setCount; s++)
        {
            var set = new JsonArray();
            var family = Chance(0.6) ? 4 : 6;
            for (var r = Chance(0.8) ? 1 : 2; r > 0; r--)
            {
                set.Add(Range(family, out var subnet));
                subnets.Add(subnet);
            }
            sets.Add(set);
        }
        if (Chance(0.85)) ipam["ranges"] = sets;
        if (Chance(0.15) || ipam["ranges"] is null)
        {
            var legacy = Range(4, out var subnet);
            foreach (var (k, v) in legacy) ipam[k] = v!.DeepClone();
            subnets.Add(subnet);
        }
        if (Chance(0.3))
        {
            var routes = new JsonArray { new JsonObject { ["dst"] = "0.0.0.0/0" } };
            if (Chance(0.5)) routes.Add(new JsonObject { ["dst"] = "192.168.0.0/16", ["gw"] = "10.90.0.1" });
            if (Chance(0.3)) routes.Add(new JsonObject { ["dst"] = "::/0", ["mtu"] = 1400, ["advmss"] = 1360, ["priority"] = 5, ["table"] = 100, ["scope"] = 0 });
            ipam["routes"] = routes;
        }
        if (Chance(0.25)) ipam["resolvConf"] = Pick(sandbox.ResolvConfs);
        if (Chance(0.3)) ipam["subnetFile"] = Pick(sandbox.SubnetFiles);
        ipam["dataDir"] = Pick(sandbox.DataDirs);
        var root = new JsonObject
        {
            ["cniVersion"] = version,
            ["name"] = Chance(0.95) ? Pick(["fuzznet", "fuzznet", "other-net", "n.1"]) : Pick(["", "a/b", "-x", "ü", new string('n', 300)]),
            ["type"] = "bridge",
            ["ipam"] = ipam,
        };
        if (Chance(0.15))
        {
            root["prevResult"] = new JsonObject
            {
                ["cniVersion"] = version,
                ["ips"] = new JsonArray { new JsonObject { ["address"] = $"{RandomAddress(4)}/24", ["gateway"] = "10.90.0.1" } },
            };
        }
        if (Chance(0.15))
        {
            var rc = new JsonObject();
            if (Chance(0.5)) rc["ips"] = new JsonArray { $"{RandomAddress(4)}/24" };
            if (Chance(0.5)) rc["ipRanges"] = new JsonArray { new JsonArray { Range(Chance(0.5) ? 4 : 6, out _) } };
            root["runtimeConfig"] = rc;
        }
        if (Chance(0.1)) root["args"] = new JsonObject { ["cni"] = new JsonObject { ["ips"] = new JsonArray { RandomAddress(4) } } };
        if (Chance(0.05))
        {
            root["cni.dev/valid-attachments"] = new JsonArray { new JsonObject { ["containerID"] = Pick(sandbox.Containers), ["ifname"] = "eth0" } };
        }
        description = $"v{version} {string.Join(",", subnets)}";
        return root;
    }

    /// <summary>One structural change anywhere in the tree: a key dropped, a value replaced by another type or an odd one.</summary>
    private string MutateTree(JsonObject root)
    {
        var nodes = new List<(JsonNode Parent, object Key)>();
        Walk(root, nodes);
        if (nodes.Count == 0) return "";
        var (parent, key) = Pick(nodes);
        var what = random.Next(3);
        if (what == 0 && parent is JsonObject o && key is string name && name != "dataDir")
        {
            o.Remove(name);
            return $"-{name}";
        }
        if (key is string n && n == "dataDir")
        {
            ((JsonObject)parent)["dataDir"] = Pick(sandbox.DataDirs);
            return "dataDir";
        }
        var value = OddJson();
        if (parent is JsonObject obj) obj[(string)key] = value;
        else ((JsonArray)parent)[(int)key] = value;
        return $"{key}={Clip(value?.ToJsonString() ?? "null")}";
    }

    private static string Clip(string s) => s.Length > 40 ? s[..40] + "…" : s;

    private static void Walk(JsonNode node, List<(JsonNode, object)> into)
    {
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o.ToList())
            {
                into.Add((o, k));
                if (v is not null) Walk(v, into);
            }
        }
        else if (node is JsonArray a)
        {
            for (var i = 0; i < a.Count; i++)
            {
                into.Add((a, i));
                if (a[i] is { } v) Walk(v, into);
            }
        }
    }

    private JsonNode? OddJson()
    {
        switch (random.Next(14))
        {
            case 0: return null;
            case 1: return JsonValue.Create(Pick(new[] { 0, -1, 1, int.MaxValue, int.MinValue }));
            case 2: return JsonValue.Create(Pick(new[] { 1e308, -0.0, 3.5, 1e-300 }));
            case 3: return JsonValue.Create(Chance(0.5));
            case 4: return JsonValue.Create(Pick(OddStrings));
            case 5: return JsonValue.Create(new string('x', random.Next(300, 70_000)));
            case 6: return new JsonArray();
            case 7: return new JsonObject();
            case 8:
                JsonNode deep = new JsonArray();
                for (var i = random.Next(20, 80); i > 0; i--) deep = new JsonArray(deep);
                return deep;
            case 9: return JsonValue.Create(RandomAddress(Chance(0.5) ? 4 : 6) + Pick(new[] { "", "/24", "/33", "/129", "/-1", "/" }));
            case 10: return JsonValue.Create(Pick(new[] { "10.90.0.0/24", "fd90::/120", "::ffff:10.90.0.1", "10.90.0.1%eth0", "0x0a.1.2.3", "010.090.000.001", "1.2.3", "::" }));
            case 11: return new JsonArray(Enumerable.Range(0, random.Next(1, 200)).Select(_ => (JsonNode?)new JsonArray(new JsonObject { ["subnet"] = $"10.{random.Next(256)}.{random.Next(256)}.0/24" })).ToArray());
            case 12: return JsonValue.Create(Pick(new[] { "ADD", "berth", "host-local", "1.1.0", "0.4.0" }));
            default: return JsonValue.Create(Pick(sandbox.Containers));
        }
    }

    /// <summary>A byte-level change of the serialized config: flips, cuts, splices, odd bytes.</summary>
    private string MutateBytes(ref byte[] bytes)
    {
        var b = bytes.ToList();
        string what;
        switch (random.Next(7))
        {
            case 0:
                for (var i = random.Next(1, 6); i > 0 && b.Count > 0; i--) b[random.Next(b.Count)] ^= (byte)(1 << random.Next(8));
                what = "bitflips";
                break;
            case 1:
                var cut = random.Next(b.Count + 1);
                b.RemoveRange(cut, b.Count - cut);
                what = $"cut@{cut}";
                break;
            case 2:
                var at = random.Next(b.Count + 1);
                b.InsertRange(at, Pick(new byte[][] { [0xff, 0xfe], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0], [0xef, 0xbb, 0xbf], "\\u0000"u8.ToArray(), "\\ud800"u8.ToArray(), ",,"u8.ToArray(), "}"u8.ToArray() }));
                what = $"insert@{at}";
                break;
            case 3:
                b.InsertRange(0, new byte[] { 0xef, 0xbb, 0xbf });
                what = "bom";
                break;
            case 4:
                // A duplicate key: the same pair again at the start of the object.
                var text = Encoding.UTF8.GetString([.. b]);
                var key = Pick(new[] { "cniVersion", "name", "ipam", "type" });
                text = text.Length > 1 ? "{\"" + key + "\":" + Pick(new[] { "\"0.4.0\"", "\"x\"", "{}", "1" }) + "," + text[1..] : text;
                b = [.. Encoding.UTF8.GetBytes(text)];
                what = $"dup-{key}";
                break;
            case 5:
                if (b.Count > 2)
                {
                    var from = random.Next(b.Count);
                    var length = random.Next(1, Math.Min(64, b.Count - from) + 1);
                    b.InsertRange(random.Next(b.Count), b.GetRange(from, length));
                }
                what = "splice";
                break;
            default:
                var random1 = new byte[random.Next(1, 32)];
                random.NextBytes(random1);
                if (b.Count > 0) b.RemoveRange(random.Next(b.Count), 0);
                b.InsertRange(random.Next(b.Count + 1), random1);
                what = "garbage";
                break;
        }
        bytes = [.. b];
        return what;
    }
}

/// <summary>One generated invocation.</summary>
internal sealed record FuzzCase(int Index, string Description, Dictionary<string, byte[]> Environment, byte[] Stdin)
{
    public string Command => Environment.TryGetValue("CNI_COMMAND", out var c) ? Encoding.UTF8.GetString(c) : "";

    /// <summary>The cniVersion an error must carry: the request's, when stdin is a JSON object naming a supported one.</summary>
    public string? RequestVersion
    {
        get
        {
            if (Stdin.Length > (1 << 20)) return null;
            try
            {
                using var doc = JsonDocument.Parse(Stdin, new JsonDocumentOptions { MaxDepth = 32 });
                return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("cniVersion", out var v)
                    && v.ValueKind == JsonValueKind.String && Fuzzer.SupportedVersions.Contains(v.GetString()) ? v.GetString() : null;
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                return null;
            }
        }
    }

    public string Reproduction
    {
        get
        {
            var env = string.Join(" ", Environment.Select(kv => $"{kv.Key}={Escape(kv.Value)}"));
            return $"case {Index} [{Description}]\n  env: {env}\n  stdin ({Stdin.Length} bytes): {Escape(Stdin)}";
        }
    }

    private static string Escape(byte[] bytes)
    {
        var s = new StringBuilder();
        foreach (var b in bytes.Take(1500)) s.Append(b is >= 0x20 and < 0x7f and not (byte)'\\' ? ((char)b).ToString() : $"\\x{b:x2}");
        if (bytes.Length > 1500) s.Append($"…(+{bytes.Length - 1500} bytes)");
        return s.ToString();
    }
}
