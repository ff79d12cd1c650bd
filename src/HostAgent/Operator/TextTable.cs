using System.Text;

namespace Berth.HostAgent.Operator;

/// <summary>Columns padded to their widest cell, for people; scripts use --json.</summary>
internal static class TextTable
{
    public static string Render(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in all)
        {
            for (var i = 0; i < row.Count; i++)
            {
                text.Append(i == row.Count - 1 ? row[i] : row[i].PadRight(widths[i] + 2));
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
