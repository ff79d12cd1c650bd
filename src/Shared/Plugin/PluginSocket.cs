namespace Berth.Shared.Plugin;

/// <summary>
/// Where the agent answers the plugin's calls: <see cref="DefaultPath"/>, a Unix socket (0600) in a directory only
/// root enters (0700), which the packages' units and the DaemonSet both mount; <see cref="Variable"/> names another
/// (tests, a second agent), or "off" for none. Beside it, one counter file per reason the plugin did the work
/// itself although the directory was there (<see cref="FallbackFile"/>): the plugin appends one byte, the agent
/// counts them on its metrics page.
/// </summary>
public static class PluginSocket
{
    /// <summary>The socket the packages and the DaemonSet use.</summary>
    public const string DefaultPath = "/run/berth/plugin.sock";

    /// <summary>The environment variable that names another socket, or "off".</summary>
    public const string Variable = "BERTH_PLUGIN_SOCKET";

    /// <summary>The value of <see cref="Variable"/> that turns forwarding off.</summary>
    public const string Off = "off";

    /// <summary>The socket path this environment names, or null when forwarding is off.</summary>
    public static string? Path(Func<string, string?> environment) => environment(Variable) switch
    {
        null or "" => DefaultPath,
        Off => null,
        var path => path,
    };

    /// <summary>The longest socket path, in bytes: a Unix socket's address holds 108, its terminating NUL included.</summary>
    public const int MaxPathBytes = 107;

    /// <summary>Whether <paramref name="path"/> can name a Unix socket at all.</summary>
    public static bool Fits(string path) => System.Text.Encoding.UTF8.GetByteCount(path) <= MaxPathBytes;

    /// <summary>Why the plugin did a call itself: no socket, nobody listening, no permission, the agent gone mid-call, an answer that is no frame, the agent's refusal, no answer in time.</summary>
    public static readonly string[] FallbackReasons = ["absent", "refused", "denied", "closed", "malformed", "declined", "timeout"];

    /// <summary>The counter file of one reason, beside the socket.</summary>
    public static string FallbackFile(string socketPath, string reason) => $"{socketPath}.fallback-{reason}";
}
