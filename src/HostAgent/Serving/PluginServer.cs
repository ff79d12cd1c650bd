using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Shared.Cni;
using Berth.Shared.Evidence;
using Berth.Shared.Platform;
using Berth.Shared.Plugin;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent.Serving;

/// <summary>
/// Answers the plugin's calls on its socket (<see cref="PluginSocket"/>) with the plugin's own dispatcher and verbs,
/// on stores kept open, committing exactly as the plugin does. One call per connection, served from accept to answer by
/// one of a few worker threads, which stand in the store's writer line like any plugin process; the request must come
/// whole within <see cref="ReadTimeout"/>, or the peer is dropped. A peer that is not root (nor
/// this agent's own user) is refused; so is anything that is not a request frame. Whatever it refuses, the plugin
/// does itself.
/// </summary>
internal sealed class PluginServer(string socketPath, IBootClock clock, TimeProvider time, ILogger logger) : BackgroundService
{
    /// <summary>How long a peer has to send its request, and to take the answer.</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connections served at once, each on its own thread from accept to answer: a store's transactions take turns on
    /// its connection anyway; more workers let the next calls' reading and parsing overlap a commit, and a few silent
    /// peers (root's, the only ones that can connect) delay nobody.
    /// </summary>
    private const int Workers = 8;

    private readonly CallClock _clock = new(clock);
    private StoreKeeper? _stores;
    private Socket? _listener;
    private Node.GuardLocks? _lock;

    /// <summary>What was served and refused (the metrics page).</summary>
    public ServedCalls Served { get; } = new();

    /// <summary>Whether this agent serves the socket (false when another agent on the node does, or it could not listen).</summary>
    public bool Serving => _listener is not null;

    public string SocketPath => socketPath;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            Listen();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SocketException)
        {
            logger.LogError("plugin calls: cannot serve {Socket}: {Why}; the plugin does its calls itself", socketPath, e.Message);
            Release();
        }
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// The socket's directory is root's alone (0700), the socket 0600. One agent per socket: the directory's flock,
    /// held for the agent's life, says which; a socket file left by a dead agent is replaced.
    /// </summary>
    private void Listen()
    {
        // BERTH_PLUGIN_SOCKET may name what agent.json could not: a path no Unix socket can have.
        if (!PluginSocket.Fits(socketPath)) throw new IOException($"the path is longer than a Unix socket's ({PluginSocket.MaxPathBytes} bytes)");
        var directory = Path.GetDirectoryName(socketPath)!;
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // The directory's flock, as one guardian per host-local directory is decided (Node.GuardLocks).
        _lock = Node.GuardLocks.Take([directory]);
        if (_lock.Guarded.Count == 0)
        {
            logger.LogWarning("plugin calls: another berth-agent serves {Socket}; this one does not", socketPath);
            Release();
            return;
        }
        File.Delete(socketPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(1024);
        foreach (var reason in PluginSocket.FallbackReasons)
        {
            using var _ = new FileStream(PluginSocket.FallbackFile(socketPath, reason),
                new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        }
        _stores = new StoreKeeper(_clock);
        _listener = listener;
        logger.LogInformation("plugin calls on {Socket}", socketPath);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        if (_listener is not { } listener) return;
        for (var i = 0; i < Workers; i++) new Thread(() => Serve(listener, stop)) { IsBackground = true, Name = $"berth plugin calls {i}" }.Start();
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            // Stop taking calls first: a plugin that connects from now on finds no socket and does its call itself.
            // A call in flight finishes on its worker, or dies with the process: uncommitted, and its plugin, finding
            // the connection closed, does it itself.
            listener.Dispose();
            File.Delete(socketPath);
        }
    }

    /// <summary>
    /// One worker: accepts a connection and serves it to the end on this thread, with no hand-over between threads
    /// (each one costs a wake-up, which on a loaded node is most of a call's time).
    /// </summary>
    private void Serve(Socket listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket peer;
            try
            {
                peer = listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (stop.IsCancellationRequested || e is ObjectDisposedException) return;
                continue;
            }
            try
            {
                Handle(peer, stop);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                // The peer went away: the plugin does the call itself.
            }
            catch (Exception e)
            {
                // A bug outside the dispatcher's own catch-all: no answer, and the plugin does the call itself.
                logger.LogError("plugin calls: {Type}: {Message} (a bug in berth-agent; please report it with this line)", e.GetType().Name, e.Message);
                Served.Refused("internal");
            }
            finally
            {
                peer.Dispose();
            }
        }
    }

    private void Handle(Socket peer, CancellationToken stop)
    {
        peer.SendTimeout = (int)ReadTimeout.TotalMilliseconds;
        var (pid, refused) = Peer(peer);
        if (refused is { } who)
        {
            Served.Refused("peer");
            logger.LogWarning("plugin calls: refused a peer: {Who}", who);
            Send(peer, CallFrames.EncodeRefusal($"berth-agent serves root only; {who}"));
            return;
        }
        CallFrames.Call call;
        try
        {
            call = ReadRequest(peer);
        }
        catch (FormatException e)
        {
            Served.Refused("malformed");
            Send(peer, CallFrames.EncodeRefusal($"not a call: {e.Message}"));
            return;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            Served.Refused("slow");
            return;
        }
        if (stop.IsCancellationRequested)
        {
            Served.Refused("stopping");
            Send(peer, CallFrames.EncodeRefusal("berth-agent is stopping"));
            return;
        }
        if (Run(call, peer, pid) is { } answer)
        {
            try
            {
                Send(peer, answer);
            }
            catch (SocketException)
            {
                // The plugin gave up after the commit: its own retry returns the same lease (ADD) or frees nothing more (DEL).
            }
        }
    }

    /// <summary>The peer's pid, and why it may not call, or null when it may: root, or this agent's own user (SO_PEERCRED).</summary>
    private static (int Pid, string? Refused) Peer(Socket peer)
    {
        Span<byte> cred = stackalloc byte[12];
        if (peer.GetRawSocketOption(Libc.SolSocket, Libc.SoPeercred, cred) < 12) return (0, "the peer's credentials cannot be read");
        var pid = MemoryMarshal.Read<int>(cred);
        var uid = MemoryMarshal.Read<uint>(cred[4..]);
        return (pid, uid == 0 || uid == Libc.geteuid() ? null : $"pid {pid} runs as uid {uid}");
    }

    /// <summary>The request, read within <see cref="ReadTimeout"/> in all however slowly it comes.</summary>
    private CallFrames.Call ReadRequest(Socket peer)
    {
        var started = time.GetTimestamp();
        var header = new byte[CallFrames.HeaderBytes];
        ReadExactly(peer, header, started);
        var (_, length) = CallFrames.ReadHeader(header, CallFrames.MaxRequestBytes, CallFrames.Request);
        var body = new byte[length];
        ReadExactly(peer, body, started);
        return CallFrames.DecodeRequest(body);
    }

    private void ReadExactly(Socket peer, Span<byte> into, long started)
    {
        while (!into.IsEmpty)
        {
            var left = (long)(ReadTimeout - time.GetElapsedTime(started)).TotalMilliseconds;
            if (left <= 0) throw new SocketException((int)SocketError.TimedOut);
            peer.ReceiveTimeout = (int)left;
            var n = peer.Receive(into);
            if (n == 0) throw new FormatException("the peer closed before its request was complete");
            into = into[n..];
        }
    }

    private static void Send(Socket peer, byte[] frame)
    {
        var left = (ReadOnlySpan<byte>)frame;
        while (!left.IsEmpty) left = left[peer.Send(left)..];
    }

    /// <summary>The call, run by the plugin's dispatcher on a kept store: the answer to send, or null when the caller left before the commit.</summary>
    private byte[]? Run(CallFrames.Call call, Socket peer, int pid)
    {
        string? Environment(string name) => call.Environment.GetValueOrDefault(name);
        var gone = false;
        var view = new CallerView(pid, _stores!, new NetnsProbe());
        // The boot ID file a call names is the caller's, as is every file it names.
        var callClock = new SystemBootClock(name => Environment(name) is { Length: > 0 } value && name == SystemBootClock.BootIdFileVariable ? view.CallerFile(value) : Environment(name));
        var services = new PluginServices(callClock, view, time)
        {
            Stores = view,
            CallerFile = view.CallerFile,
            // Nothing is committed for a caller that is gone: it may be retrying the call itself, or the runtime may
            // have given up on it and be deleting the attachment already.
            Proceed = () =>
            {
                if (!PeerGone(peer)) return;
                gone = true;
                throw new OperationCanceledException("the plugin that made this call is gone");
            },
        };
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        int exit;
        using (CallClock.Enter(callClock))
        using (var stdoutText = new StreamWriter(stdout, Utf8, leaveOpen: true))
        using (var stderrText = new StreamWriter(stderr, Utf8, leaveOpen: true) { AutoFlush = true })
        {
            exit = new Dispatcher(Environment, new MemoryStream(call.Stdin, writable: false), stdoutText, stderrText, services).Run();
        }
        var verb = call.Environment.GetValueOrDefault("CNI_COMMAND") ?? "";
        if (gone)
        {
            Served.Refused("caller-gone");
            return null;
        }
        if (view.Declined is { } declined)
        {
            Served.Refused("view");
            return CallFrames.EncodeRefusal($"berth-agent does not see the caller's files: {declined}");
        }
        // Failures that can come from where the agent runs rather than from the call (a file it cannot read or write,
        // a boot ID file it cannot see): the plugin answers those itself, so that its answer is the one it always gave.
        if (exit != 0 && ErrorCode(stdout) is ErrorCodes.IoFailure or ErrorCodes.InvalidConfig or ErrorCodes.InvalidEnvironment or ErrorCodes.NotAvailable or ErrorCodes.Internal)
        {
            Served.Refused("error");
            return CallFrames.EncodeRefusal("the plugin answers this error itself");
        }
        Served.Call(verb, exit == 0);
        if (stdout.Length > CallFrames.MaxOutputBytes || stderr.Length > CallFrames.MaxOutputBytes) return CallFrames.EncodeRefusal("answer too large for a frame");
        return CallFrames.EncodeResult(exit, stdout.GetBuffer().AsSpan(0, (int)stdout.Length), stderr.GetBuffer().AsSpan(0, (int)stderr.Length));
    }

    /// <summary>The "code" of the CNI error the dispatcher wrote, or null.</summary>
    private static int? ErrorCode(MemoryStream stdout)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(stdout.GetBuffer().AsMemory(0, (int)stdout.Length));
            return doc.RootElement.TryGetProperty("code", out var code) && code.TryGetInt32(out var c) ? c : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>The peer hung up: it sends nothing after its request, so a readable socket with nothing to read is its end.</summary>
    private static bool PeerGone(Socket peer)
    {
        try
        {
            return peer.Poll(0, SelectMode.SelectRead) && peer.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    private static readonly UTF8Encoding Utf8 = new(false);

    /// <summary>The fallbacks the plugin counted beside the socket, by reason: one byte each.</summary>
    public IReadOnlyList<(string Reason, long Count)> Fallbacks() =>
        [.. PluginSocket.FallbackReasons.Select(r => (r, Size(PluginSocket.FallbackFile(socketPath, r))))];

    private static long Size(string file)
    {
        try
        {
            return new FileInfo(file) is { Exists: true } f ? f.Length : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void Release()
    {
        _lock?.Dispose();
        _lock = null;
    }

    public override void Dispose()
    {
        base.Dispose();
        _listener?.Dispose();
        _stores?.Dispose();
        Release();
    }
}
