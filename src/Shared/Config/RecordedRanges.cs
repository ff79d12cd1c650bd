using System.Text.Json;
using Berth.Shared.Cni;

namespace Berth.Shared.Config;

/// <summary>The range sets the plugin recorded for a network at its last ADD, read back through the config parser.</summary>
public static class RecordedRanges
{
    /// <summary>The range sets, or null when the recorded text no longer parses.</summary>
    public static IReadOnlyList<RangeSet>? Parse(string network, string json)
    {
        try
        {
            var text = $"{{\"name\":\"{JsonEncodedText.Encode(network)}\",\"ipam\":{{\"ranges\":{json}}}}}";
            using var doc = JsonDocument.Parse(text);
            return ConfigParser.Parse(doc.RootElement, "1.0.0", CniArgs.Empty).RangeSets;
        }
        catch (Exception e) when (e is JsonException or CniException)
        {
            return null;
        }
    }
}
