namespace Berth.Testing;

/// <summary>Network configs for tests, as a runtime hands them to the plugin.</summary>
public static class Configs
{
    public static string Json(string rangesJson, string dataDir = "/var/lib/berth", string version = "1.0.0", string name = "net1", string extra = "") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"{{{name}}}","type":"bridge"{{{extra}}},"ipam":{"type":"berth","dataDir":"{{{dataDir}}}","ranges":{{{rangesJson}}}}}""";
}
