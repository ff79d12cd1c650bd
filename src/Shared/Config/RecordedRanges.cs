using System.Text.Json;
using Berth.Shared.Cni;

namespace Berth.Shared.Config;

/// <summary>
/// The range sets the plugin records for a network at each ADD (for the agent's checks and metrics): written as
/// canonical JSON here, and read back through the config parser, so a recorded range obeys every rule a configured
/// one does.
/// </summary>
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

    /// <summary>The canonical ranges as JSON, recorded per network for the operator checks.</summary>
    public static string Format(IpamConfig config)
    {
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var set in config.RangeSets)
            {
                w.WriteStartArray();
                foreach (var r in set.Ranges)
                {
                    w.WriteStartObject();
                    w.WriteString("subnet", r.Subnet.ToString());
                    w.WriteString("rangeStart", r.Start.ToString());
                    w.WriteString("rangeEnd", r.End.ToString());
                    w.WriteString("gateway", r.Gateway.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
