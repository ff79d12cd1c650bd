using Berth.Shared.Cni;

namespace Berth.Shared.Config;

/// <summary>
/// The <c>CNI_ARGS</c> environment variable: <c>K=V;K=V</c>. Keys berth does not use are ignored (runtimes
/// send many); a pair without '=' is a bad environment.
/// </summary>
public sealed class CniArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    /// <summary>Empty arguments.</summary>
    public static readonly CniArgs Empty = new();

    private CniArgs() { }

    /// <summary>Parses the variable's text; throws error 4 for a malformed pair.</summary>
    public static CniArgs Parse(string? text)
    {
        var args = new CniArgs();
        if (string.IsNullOrEmpty(text)) return args;
        if (text.Length > 65536)
        {
            throw new CniException(ErrorCodes.InvalidEnvironment, "CNI_ARGS is longer than 64 KiB");
        }
        foreach (var pair in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
            {
                throw new CniException(ErrorCodes.InvalidEnvironment, $"CNI_ARGS: invalid pair \"{pair}\": expected KEY=VALUE");
            }
            args._values[pair[..eq]] = pair[(eq + 1)..];
        }
        return args;
    }

    /// <summary>The value of a key, or null.</summary>
    public string? this[string key] => _values.TryGetValue(key, out var v) && v.Length > 0 ? v : null;

    /// <summary>The Kubernetes pod namespace the runtime passes (K8S_POD_NAMESPACE).</summary>
    public string? PodNamespace => this["K8S_POD_NAMESPACE"];

    /// <summary>The Kubernetes pod name (K8S_POD_NAME).</summary>
    public string? PodName => this["K8S_POD_NAME"];

    /// <summary>The Kubernetes pod UID (K8S_POD_UID).</summary>
    public string? PodUid => this["K8S_POD_UID"];

    /// <summary>Requested addresses from IP=, comma-separated.</summary>
    public string? Ip => this["IP"];
}
