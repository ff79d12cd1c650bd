using System.Text.Json;

namespace Berth.Testing;

/// <summary>
/// Reads a berth store from outside, as an operator would: with the sqlite3 command-line tool, so the checks
/// see what is on disk and not what the code under test believes.
/// </summary>
public static class SqliteCli
{
    /// <summary>Rows as text columns (null for SQL NULL); null when sqlite3 cannot read the file (the error is in <paramref name="error"/>).</summary>
    public static List<Dictionary<string, string?>>? TryQuery(string database, string sql, out string error)
    {
        error = "";
        if (!File.Exists(database))
        {
            error = $"no store at {database}";
            return null;
        }
        var r = Exec.Run("sqlite3", ["-json", "-bail", database, sql]);
        if (r.ExitCode != 0 || r.TimedOut)
        {
            error = r.Stderr.Trim();
            return null;
        }
        // sqlite3 -json prints nothing at all for an empty result.
        if (string.IsNullOrWhiteSpace(r.Stdout)) return [];
        // As text: sqlite3 prints a blob column (address_key) as raw bytes, which strict UTF-8 JSON would refuse.
        using var document = JsonDocument.Parse(r.Stdout);
        return [.. document.RootElement.EnumerateArray().Select(row => row.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => p.Value.GetString(),
            _ => p.Value.GetRawText(),
        }))];
    }

    /// <summary>The rows of a query, in the query's order; throws with sqlite3's complaint when it cannot.</summary>
    public static List<Dictionary<string, string?>> Query(string database, string sql) =>
        TryQuery(database, sql, out var error) ?? throw new InvalidOperationException($"sqlite3 {database} \"{sql}\": {error}");

    /// <summary>One column of every row, as text.</summary>
    public static IReadOnlyList<string?> Column(string database, string sql) =>
        [.. Query(database, sql).Select(row => row.Values.Single())];
}
