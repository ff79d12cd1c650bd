using System.Text;

namespace Berth.HostAgent.Operator;

/// <summary>What `check` found (<see cref="HealthCheck"/>), as its --json document and as lines for people.</summary>
internal sealed record CheckReport(IReadOnlyList<Finding> Findings)
{
    /// <summary>The findings that make the node unhealthy (notes do not).</summary>
    public int Problems => Findings.Count(f => !f.IsNote);

    /// <summary>The --json document.</summary>
    public void WriteJson(Stream output) => OperatorJson.Document(output, w =>
    {
        w.WriteBoolean("healthy", Problems == 0);
        w.WriteStartArray("findings");
        foreach (var f in Findings)
        {
            w.WriteStartObject();
            w.WriteString("kind", f.Kind);
            w.WriteString("network", f.Network);
            w.WriteString("address", f.Address);
            w.WriteString("message", f.Message);
            if (f.IsNote) w.WriteBoolean("note", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    /// <summary>One line per finding, then the verdict on the store at <paramref name="storePath"/>.</summary>
    public string Text(string storePath)
    {
        var text = new StringBuilder();
        foreach (var f in Findings) text.Append($"{(f.IsNote ? "note: " : "")}{f.Kind}: {f.Message}").Append('\n');
        text.Append(Problems == 0 ? $"healthy: {storePath}" : $"{Problems} finding(s) in {storePath}").Append('\n');
        return text.ToString();
    }
}
