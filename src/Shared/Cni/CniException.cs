namespace Berth.Shared.Cni;

/// <summary>
/// A protocol error that reaches the runtime as CNI error JSON (SPEC.md "Error"). The one exception type
/// the plugin throws on purpose; anything else is turned into an internal error by the dispatcher.
/// </summary>
public sealed class CniException(int code, string message, string? details = null) : Exception(message)
{
    /// <summary>The CNI error code: 1-99 are the spec's, 100 and up are berth's own.</summary>
    public int Code { get; } = code;

    /// <summary>Longer context for the error, printed as the JSON "details" field.</summary>
    public string? Details { get; } = details;
}
