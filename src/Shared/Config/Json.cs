using System.Text.Json;
using Berth.Shared.Cni;

namespace Berth.Shared.Config;

/// <summary>Typed reads from a config document; a wrong type is error 7 naming the JSON path.</summary>
internal static class Json
{
    public static CniException Invalid(string path, string problem) =>
        new(ErrorCodes.InvalidConfig, $"invalid network config: {path}: {problem}");

    public static JsonElement? Property(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string? String(JsonElement obj, string name, string path)
    {
        if (Property(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.String) throw Invalid($"{path}.{name}", $"expected a string, found {Kind(v)}");
        return v.GetString();
    }

    public static int? Int(JsonElement obj, string name, string path)
    {
        if (Property(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i)) throw Invalid($"{path}.{name}", "expected a whole number");
        return i;
    }

    public static JsonElement? Object(JsonElement obj, string name, string path)
    {
        if (Property(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Invalid($"{path}.{name}", $"expected an object, found {Kind(v)}");
        return v;
    }

    public static IReadOnlyList<JsonElement> Array(JsonElement obj, string name, string path, int max)
    {
        if (Property(obj, name) is not { } v) return [];
        if (v.ValueKind != JsonValueKind.Array) throw Invalid($"{path}.{name}", $"expected an array, found {Kind(v)}");
        if (v.GetArrayLength() > max) throw Invalid($"{path}.{name}", $"more than {max} entries");
        return [.. v.EnumerateArray()];
    }

    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
