using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Berth.Shared.Cni;
using Berth.Shared.Config;
using Berth.Shared.Allocation;

namespace Berth.Shared.Plugin;

/// <summary>
/// What the plugin prints, shaped by the requested version (SPEC.md "Result"): before 1.0.0 each ip entry
/// carries "version"; route attributes beyond dst and gw exist only in 1.1.0.
/// </summary>
internal static class Results
{
    private static readonly JsonWriterOptions Options = new() { Indented = true };

    public static void WriteAdd(TextWriter output, IpamConfig config, IReadOnlyList<Shared.Allocation.Allocation> allocations, Dns dns)
    {
        Write(output, w =>
        {
            w.WriteString("cniVersion", config.CniVersion);
            w.WriteStartArray("ips");
            foreach (var (lease, range) in allocations)
            {
                w.WriteStartObject();
                if (CniVersion.HasIpVersionField(config.CniVersion))
                {
                    w.WriteString("version", lease.Address.AddressFamily == AddressFamily.InterNetwork ? "4" : "6");
                }
                w.WriteString("address", $"{lease.Address}/{range.Subnet.PrefixLength}");
                w.WriteString("gateway", range.Gateway.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (config.Routes.Count > 0)
            {
                var extended = CniVersion.HasExtendedRoutes(config.CniVersion);
                w.WriteStartArray("routes");
                foreach (var route in config.Routes)
                {
                    w.WriteStartObject();
                    w.WriteString("dst", route.Destination);
                    if (route.Gateway is not null) w.WriteString("gw", route.Gateway.ToString());
                    if (extended)
                    {
                        WriteOptional(w, "mtu", route.Mtu);
                        WriteOptional(w, "advmss", route.AdvMss);
                        WriteOptional(w, "priority", route.Priority);
                        WriteOptional(w, "table", route.Table);
                        WriteOptional(w, "scope", route.Scope);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteStartObject("dns");
            WriteList(w, "nameservers", dns.Nameservers);
            if (dns.Domain is not null) w.WriteString("domain", dns.Domain);
            WriteList(w, "search", dns.Search);
            WriteList(w, "options", dns.Options);
            w.WriteEndObject();
        });
    }

    public static void WriteVersion(TextWriter output, string version) => Write(output, w =>
    {
        w.WriteString("cniVersion", version);
        w.WriteStartArray("supportedVersions");
        foreach (var v in CniVersion.Supported) w.WriteStringValue(v);
        w.WriteEndArray();
    });

    public static void WriteError(TextWriter output, string version, CniException e) => Write(output, w =>
    {
        w.WriteString("cniVersion", version);
        w.WriteNumber("code", e.Code);
        w.WriteString("msg", e.Message);
        if (!string.IsNullOrEmpty(e.Details)) w.WriteString("details", e.Details);
    });

    private static void Write(TextWriter output, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Options))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
    }

    private static void WriteList(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        if (values.Count == 0) return;
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
