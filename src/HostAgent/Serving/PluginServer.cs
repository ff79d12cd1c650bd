using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using Berth.Shared.Cni;
using Berth.Shared.Evidence;
using Berth.Shared.Plugin;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Berth.HostAgent.Serving;

/// <summary>
/// Answers the plugin's calls on its socket (<see cref="PluginSocket"/>) with the plugin's own dispatcher and verbs,
/// on stores kept open, committing exactly as the plugin does. One call per connection: the request is read within
/// <see cref="ReadTimeout"/> (a silent or slow peer is dropped, and holds no worker meanwhile), then run by one of a
/// few worker threads, which stand in the store's writer line like any plugin process. A peer that is not root (nor
/// this agent's own user) is refused; so is anything that is not a request frame. Whatever it refuses, the plugin
/// does itself.
/// </summary>
internal sealed partial class PluginServer(string socketPath, IBootClock clock, ILogger logger) : BackgroundService
{
    /// <summary>How long a peer has to send its request, and to take the answer.</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Calls run at once: a store's transactions take turns on its connection anyway; more workers let another store's call, or the next call's parsing, overlap.</summary>
    private const int Workers = 4;

    private readonly CallClock _clock = new(clock);
    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = false });
    private StoreKeeper? _stores;
    private Socket? _listener;
    private int _lockFd = -1;

    /// <summary>What was served and refused (the metrics page).</summary>
    public ServedCalls Served { get; } = new();

    /// <summary>Whether this agent serves the socket (false when another agent on the node does, or it could not listen).</summary>
    public bool Serving => _listener is not null;

    public string SocketPath => socketPath;

    private sealed record Work(CallFrames.Call Call, Socket Peer, int Pid, TaskCompletionSource<byte[]?> Answer);

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
    /// The socket's directory is root's alone (0700), the socket 0600. One agent per socket: a lock file beside it,
    /// held for the agent's life, says which; a socket file left by a dead agent is replaced.
    /// </summary>
    private void Listen()
    {
        var directory = Path.GetDirectoryName(socketPath)!;
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _lockFd = open(socketPath + ".lock", ORdwr | OCreat | OCloexec, 0x180);
        if (_lockFd < 0) throw new IOException($"{socketPath}.lock cannot be opened: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        if (flock(_lockFd, LockEx | LockNb) != 0)
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
        for (var i = 0; i < Workers; i++) new Thread(() => Serve(stop)) { IsBackground = true, Name = $"berth plugin call {i}" }.Start();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var peer = await listener.AcceptAsync(stop).ConfigureAwait(false);
                _ = Task.Run(() => HandleAsync(peer, stop), CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _queue.Writer.TryComplete();
            // Stop taking calls first: a plugin that connects from now on finds no socket and does its call itself.
            // A call in flight finishes on its worker, or dies with the process: uncommitted, and its plugin, finding
            // the connection closed, does it itself.
            listener.Dispose();
            File.Delete(socketPath);
        }
    }

    private async Task HandleAsync(Socket peer, CancellationToken stop)
    {
        using (peer)
        {
            byte[]? answer;
            try
            {
                var (pid, refused) = Peer(peer);
                if (refused is { } who)
                {
                    Served.Refused("peer");
                    logger.LogWarning("plugin calls: refused a peer: {Who}", who);
                    await SendAsync(peer, CallFrames.EncodeRefusal($"berth-agent serves root only; {who}")).ConfigureAwait(false);
                    return;
                }
                CallFrames.Call call;
                try
                {
                    call = await ReadRequestAsync(peer, stop).ConfigureAwait(false);
                }
                catch (FormatException e)
                {
                    Served.Refused("malformed");
                    await SendAsync(peer, CallFrames.EncodeRefusal($"not a call: {e.Message}")).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    Served.Refused("slow");
                    return;
                }
                var work = new Work(call, peer, pid, new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously));
                if (!_queue.Writer.TryWrite(work))
                {
                    Served.Refused("stopping");
                    await SendAsync(peer, CallFrames.EncodeRefusal("berth-agent is stopping")).ConfigureAwait(false);
                    return;
                }
                answer = await work.Answer.Task.ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer went away, or the agent is stopping: the plugin does the call itself.
                return;
            }
            if (answer is not null)
            {
                try
                {
                    await SendAsync(peer, answer).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                {
                    // The plugin gave up after the commit: its own retry returns the same lease (ADD) or frees nothing more (DEL).
                }
            }
        }
    }

    /// <summary>The peer's pid, and why it may not call, or null when it may: root, or this agent's own user (SO_PEERCRED).</summary>
    private static (int Pid, string? Refused) Peer(Socket peer)
    {
        const int SolSocket = 1, SoPeercred = 17;
        Span<byte> cred = stackalloc byte[12];
        if (peer.GetRawSocketOption(SolSocket, SoPeercred, cred) < 12) return (0, "the peer's credentials cannot be read");
        var pid = MemoryMarshal.Read<int>(cred);
        var uid = MemoryMarshal.Read<uint>(cred[4..]);
        return (pid, uid == 0 || uid == geteuid() ? null : $"pid {pid} runs as uid {uid}");
    }

    private static async Task<CallFrames.Call> ReadRequestAsync(Socket peer, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(ReadTimeout);
        var header = new byte[CallFrames.HeaderBytes];
        await ReadExactlyAsync(peer, header, timeout.Token).ConfigureAwait(false);
        var (_, length) = CallFrames.ReadHeader(header, CallFrames.MaxRequestBytes, CallFrames.Request);
        var body = new byte[length];
        await ReadExactlyAsync(peer, body, timeout.Token).ConfigureAwait(false);
        return CallFrames.DecodeRequest(body);
    }

    private static async Task ReadExactlyAsync(Socket peer, Memory<byte> into, CancellationToken cancel)
    {
        while (!into.IsEmpty)
        {
            var n = await peer.ReceiveAsync(into, SocketFlags.None, cancel).ConfigureAwait(false);
            if (n == 0) throw new FormatException("the peer closed before its request was complete");
            into = into[n..];
        }
    }

    private static async Task SendAsync(Socket peer, byte[] frame)
    {
        using var timeout = new CancellationTokenSource(ReadTimeout);
        var left = frame.AsMemory();
        while (!left.IsEmpty)
        {
            var n = await peer.SendAsync(left, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            left = left[n..];
        }
    }

    private void Serve(CancellationToken stop)
    {
        while (true)
        {
            Work work;
            try
            {
                if (!_queue.Reader.WaitToReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult()) return;
                if (!_queue.Reader.TryRead(out work!)) continue;
            }
            catch (ChannelClosedException)
            {
                return;
            }
            try
            {
                work.Answer.TrySetResult(stop.IsCancellationRequested ? CallFrames.EncodeRefusal("berth-agent is stopping") : Run(work));
            }
            catch (Exception e)
            {
                // A bug outside the dispatcher's own catch-all: no answer, and the plugin does the call itself.
                logger.LogError("plugin calls: {Type}: {Message} (a bug in berth-agent; please report it with this line)", e.GetType().Name, e.Message);
                Served.Refused("internal");
                work.Answer.TrySetResult(null);
            }
        }
    }

    /// <summary>The call, run by the plugin's dispatcher on a kept store: the answer to send, or null when the caller left before the commit.</summary>
    private byte[]? Run(Work work)
    {
        var call = work.Call;
        string? Environment(string name) => call.Environment.GetValueOrDefault(name);
        var callClock = new SystemBootClock(Environment);
        var gone = false;
        var view = new CallerView(work.Pid, _stores!, new NetnsProbe());
        var services = new PluginServices(callClock, view, TimeProvider.System)
        {
            Stores = view,
            // Nothing is committed for a caller that is gone: it may be retrying the call itself, or the runtime may
            // have given up on it and be deleting the attachment already.
            Proceed = () =>
            {
                if (!PeerGone(work.Peer)) return;
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
        if (_lockFd >= 0) close(_lockFd);
        _lockFd = -1;
    }

    public override void Dispose()
    {
        base.Dispose();
        _listener?.Dispose();
        _stores?.Dispose();
        Release();
    }

    private const int ORdwr = 2, OCreat = 0x40, OCloexec = 0x80000, LockEx = 2, LockNb = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
