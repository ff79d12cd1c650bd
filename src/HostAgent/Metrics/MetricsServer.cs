using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.HostAgent.Metrics;

/// <summary>
/// Serves GET /metrics over plain HTTP/1.1 on one address (loopback by default). A few dozen lines instead
/// of a web framework: one request per connection, bounded in size and time. Not prometheus-net: it would add
/// 1.6 MB to the agent and keep a registry of its own, where this page is read from the store at each scrape
/// (docs/design.md has the figures).
/// </summary>
internal sealed class MetricsServer(IPEndPoint address, Func<string> render) : IAsyncDisposable
{
    private readonly TcpListener _listener = new(address);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public IPEndPoint Address => (IPEndPoint)_listener.LocalEndpoint;

    public void Start()
    {
        _listener.Start();
        _loop = AcceptAsync();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            var stream = client.GetStream();
            var request = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
            var line = request.Split("\r\n", 2)[0].Split(' ');
            var (status, type, body) = line is ["GET", "/metrics", _]
                ? ("200 OK", MetricsText.ContentType, Render())
                : ("404 Not Found", "text/plain; charset=utf-8", "berth-agent serves /metrics only\n");
            var payload = Encoding.UTF8.GetBytes(body);
            var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n");
            await stream.WriteAsync(head, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(payload, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or InvalidDataException)
        {
            // A client that went away, was too slow or sent garbage: drop it, serve the next.
        }
    }

    private string Render()
    {
        try
        {
            return render();
        }
        catch (Exception e)
        {
            // The page must not take the agent down; the failure shows on the page itself.
            return $"# berth-agent could not read the store: {e.Message.ReplaceLineEndings(" ")}\nberth_store_readable 0\n";
        }
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (read == 0) break;
            length += read;
            if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0) return Encoding.ASCII.GetString(buffer, 0, length);
        }
        throw new InvalidDataException("request head too large or incomplete");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
