namespace Berth.Shared.Leases;

/// <summary>A failed SQLite call: its result code (primary code in the low byte) and SQLite's message.</summary>
internal sealed class SqliteError(int code, string message) : Exception(message)
{
    public int Code { get; } = code;
}
