using System.Text.Json;
using Berth.Shared.Config;

namespace Berth.Tests.Support;

/// <summary>A network config of <see cref="Configs.Json"/> parsed by the real parser, so it is canonicalised as in production.</summary>
public static class ParsedConfig
{
    public static IpamConfig Ipam(string rangesJson, string? cniArgs = null, string extra = "")
    {
        using var doc = JsonDocument.Parse(Configs.Json(rangesJson, extra: extra));
        return ConfigParser.Parse(doc.RootElement.Clone(), "1.0.0", CniArgs.Parse(cniArgs));
    }
}
