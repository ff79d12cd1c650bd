using System.Text;
using System.Text.Json;

namespace Berth.Testing;

/// <summary>How one process ended: exit code (128 + N when signal N ended it), its output, and whether we gave up on it.</summary>
public sealed record ExecResult(int ExitCode, bool TimedOut, byte[] StdoutBytes, string Stderr, TimeSpan Elapsed)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    /// <summary>Ended by a signal rather than by exiting.</summary>
    public bool Signalled => !TimedOut && ExitCode > 128;

    public JsonElement Json => JsonDocument.Parse(StdoutBytes).RootElement;

    /// <summary>The code of the CNI error printed on stdout, or null when stdout holds none (success, or no JSON).</summary>
    public int? ErrorCode
    {
        get
        {
            if (ExitCode == 0) return null;
            try
            {
                using var doc = JsonDocument.Parse(StdoutBytes);
                return doc.RootElement.TryGetProperty("code", out var code) && code.TryGetInt32(out var c) ? c : null;
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                return null;
            }
        }
    }

    /// <summary>The "ips[].address" values of a CNI ADD result.</summary>
    public IReadOnlyList<string> Addresses => [.. Json.GetProperty("ips").EnumerateArray().Select(ip => ip.GetProperty("address").GetString()!)];

    public override string ToString() =>
        $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalMilliseconds:F0} ms\nstdout: {Clip(Stdout)}\nstderr: {Clip(Stderr)}";

    private static string Clip(string s) => s.Length > 2000 ? s[..2000] + "…" : s;
}
