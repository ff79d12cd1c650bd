using System.Text.Json;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>
/// The operator commands' --json documents (a format the README calls stable): one object, indented, and a newline;
/// and the fields a lease is written with wherever one appears (leases, reconcile's decisions).
/// </summary>
internal static class OperatorJson
{
    /// <summary>Writes one document to <paramref name="output"/>: <paramref name="body"/> writes its fields.</summary>
    public static void Document(Stream output, Action<Utf8JsonWriter> body)
    {
        using (var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }

    /// <summary>Writes the document to standard output.</summary>
    public static void ToStdout(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        Document(stdout, body);
    }

    /// <summary>The fields that say which lease, where it is kept, and who holds it.</summary>
    public static void LeaseFields(Utf8JsonWriter w, Lease lease, string store)
    {
        w.WriteString("store", LeaseStores.Kind(store));
        if (LeaseStores.HostLocalDir(store) is { } dir) w.WriteString("dir", dir);
        w.WriteString("network", lease.Network);
        w.WriteString("address", lease.Address.ToString());
        w.WriteString("owner", lease.Owner);
        w.WriteString("containerId", lease.ContainerId);
        w.WriteString("ifname", lease.IfName);
        w.WriteString("podNamespace", lease.PodNamespace);
        w.WriteString("podName", lease.PodName);
        w.WriteString("podUid", lease.PodUid);
    }

    /// <summary>The entries skipped, each with why.</summary>
    public static void Warnings(Utf8JsonWriter w, IReadOnlyList<string> warnings)
    {
        w.WriteStartArray("warnings");
        foreach (var warning in warnings) w.WriteStringValue(warning);
        w.WriteEndArray();
    }
}
