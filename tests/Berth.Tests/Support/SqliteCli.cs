using System.Text.Json;

namespace Berth.Tests.Support;

/// <summary>
/// Reads a berth store from outside, as an operator would: with the sqlite3 command-line tool, so the
/// black-box tests see what is on disk and not what the code under test believes.
/// </summary>
public static class SqliteCli
{
    /// <summary>The rows of a query, each column as text (null for SQL NULL), in the query's order.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, string?>> Query(string database, string sql)
    {
        if (!File.Exists(database)) throw new FileNotFoundException("no store to query", database);
        var json = Command.Run("sqlite3", "-json", database, sql);
        // sqlite3 -json prints nothing at all for an empty result.
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.EnumerateArray().Select(Row)];
    }

    /// <summary>One column of every row, as text.</summary>
    public static IReadOnlyList<string?> Column(string database, string sql) =>
        [.. Query(database, sql).Select(row => row.Values.Single())];

    private static IReadOnlyDictionary<string, string?> Row(JsonElement row) =>
        row.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => p.Value.GetString(),
            _ => p.Value.GetRawText(),
        });
}
