namespace Berth.HostAgent.Operator;

/// <summary>Who runs an operator command, for the history: the sudo user when there is one, else the login.</summary>
internal static class OperatorIdentity
{
    public static string Of(Func<string, string?> environment) =>
        environment("SUDO_USER") is { Length: > 0 } sudo ? $"{sudo} (sudo)"
        : environment("USER") is { Length: > 0 } user ? user
        : $"uid {environment("UID") ?? "?"}";
}
