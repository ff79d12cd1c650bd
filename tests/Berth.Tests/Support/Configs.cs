using System.Text.Json;
using Berth.Shared.Config;

namespace Berth.Tests.Support;

/// <summary>Network configs for tests, parsed by the real parser so they are canonicalised as in production.</summary>
public static class Configs
{
    public static string Json(string rangesJson, string dataDir = "/var/lib/berth", string version = "1.0.0", string name = "net1", string extra = "") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"{{{name}}}","type":"bridge"{{{extra}}},"ipam":{"type":"berth","dataDir":"{{{dataDir}}}","ranges":{{{rangesJson}}}}}""";

    public static IpamConfig Ipam(string rangesJson, string? cniArgs = null, string extra = "")
    {
        using var doc = JsonDocument.Parse(Json(rangesJson, extra: extra));
        return ConfigParser.Parse(doc.RootElement.Clone(), "1.0.0", CniArgs.Parse(cniArgs));
    }
}
