using System.Net.Sockets;
using System.Text;

namespace Berth.HostAgent.Systemd;

/// <summary>
/// The sd_notify protocol: one datagram per message to the Unix socket named by NOTIFY_SOCKET ('@' at the
/// start means the abstract namespace). Microsoft.Extensions.Hosting.Systemd is not available here, and
/// this is all of it that the agent needs.
/// </summary>
internal sealed class SystemdNotifier : ISystemdNotifier, IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endpoint;

    public SystemdNotifier(string? socketPath)
    {
        if (string.IsNullOrEmpty(socketPath)) return;
        _endpoint = new UnixDomainSocketEndPoint(socketPath[0] == '@' ? "\0" + socketPath[1..] : socketPath);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    public static SystemdNotifier FromEnvironment() => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>How often systemd wants WATCHDOG=1 (half its WatchdogSec), or null when it does not.</summary>
    public static TimeSpan? WatchdogInterval(Func<string, string?> environment)
    {
        if (!long.TryParse(environment("WATCHDOG_USEC"), out var usec) || usec <= 0) return null;
        if (int.TryParse(environment("WATCHDOG_PID"), out var pid) && pid != Environment.ProcessId) return null;
        return TimeSpan.FromMicroseconds(usec / 2.0);
    }

    public void Notify(string state)
    {
        if (_socket is null) return;
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), _endpoint!);
        }
        catch (SocketException)
        {
            // systemd went away (shutdown) or the socket was never ours: notifying is best effort.
        }
    }

    public void Dispose() => _socket?.Dispose();
}
