using System.Net.Sockets;

namespace Berth.HostAgent.HostLocal;

/// <summary>
/// Whether a container runtime has run in this boot, answered without any clock. host-local's files record no
/// boot, and a file's mtime cannot tell an earlier boot from this one (after a lost RTC the clock jumps). What can:
/// runtimes pin every pod's network namespace under /run/netns (or /var/run/netns), and /run is a tmpfs, empty at
/// boot; a pin outlives its runtime until the pod is stopped. So when no pin exists and no runtime socket accepts a
/// connection, no pod has been set up in this boot, and every host-local lease file on disk is from an earlier one.
/// </summary>
internal static class BootProof
{
    /// <summary>Where runtimes pin network namespaces (containerd, CRI-O, ip netns).</summary>
    public static readonly IReadOnlyList<string> DefaultNetnsDirs = ["/run/netns", "/var/run/netns"];

    /// <summary>Null when proven that no runtime has run in this boot; otherwise why that cannot be said.</summary>
    public static async Task<string?> RuntimeMayHaveRunAsync(IReadOnlyList<string> netnsDirs, IReadOnlyList<string> sockets, TimeSpan timeout, CancellationToken cancellationToken)
    {
        foreach (var dir in netnsDirs)
        {
            try
            {
                if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).FirstOrDefault() is { } pin)
                {
                    return $"{dir} holds network namespace pins ({Path.GetFileName(pin)})";
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"{dir} cannot be read ({e.Message})";
            }
        }
        foreach (var socket in sockets)
        {
            if (!File.Exists(socket)) continue;
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            try
            {
                await client.ConnectAsync(new UnixDomainSocketEndPoint(socket), deadline.Token).ConfigureAwait(false);
                return $"runtime socket {socket} answers";
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
            {
                // A socket file nobody listens on: no runtime is up behind it.
            }
            catch (SocketException e)
            {
                return $"runtime socket {socket} cannot be checked ({e.Message})";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return $"runtime socket {socket} did not answer within {timeout.TotalSeconds:0} s";
            }
        }
        return null;
    }
}
