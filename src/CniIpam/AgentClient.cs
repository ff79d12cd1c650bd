using System.Text;
using Berth.Shared.Config;
using Berth.Shared.Platform;
using Berth.Shared.Plugin;

namespace Berth.CniIpam;

/// <summary>
/// Hands a call to berth-agent over its socket and relays the answer; says "not forwarded" whenever the agent cannot
/// answer, and the plugin then does the work itself with the same stdin. When nothing listens, the decision costs one
/// failed connect. Raw libc rather than System.Net.Sockets: the plugin pays for every byte of its image and every
/// static constructor on every call, and needs only connect, write and read here.
/// </summary>
internal static class AgentClient
{
    /// <summary>
    /// How long the plugin waits for an answer: longer than the store's writer lock lets any call stand in line
    /// (10 s without a hand-over, 60 s in all), so a healthy agent is never abandoned; only a wedged one is.
    /// Giving up is safe: the agent checks that its caller is still there before it commits, an ADD repeated for the
    /// same attachment returns the lease it holds, and a DEL may be repeated.
    /// </summary>
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(90);


    /// <summary>
    /// The agent's exit code once its answer is relayed to <paramref name="stdout"/> and <paramref name="stderr"/>;
    /// null when the call was not forwarded, with <paramref name="input"/> the stdin the plugin reads instead (what
    /// was read already, then the rest).
    /// </summary>
    public static int? TryForward(string socketPath, Func<string, string?> environment, Stream stdin, Stream stdout, Stream stderr, out Stream input)
    {
        input = stdin;
        var fd = Connect(socketPath, out var failure);
        if (fd < 0)
        {
            Count(socketPath, failure);
            return null;
        }
        try
        {
            var (read, complete) = ReadBounded(stdin);
            input = complete ? new MemoryStream(read, writable: false) : new Replay(read, stdin);
            // Too large or unreadable: the plugin says so itself, exactly as it always did.
            if (!complete) return null;
            if (!Send(fd, CallFrames.EncodeRequest(environment, read)))
            {
                Count(socketPath, "closed");
                return null;
            }
            var answer = Receive(fd, out var why);
            if (answer is null)
            {
                Count(socketPath, why);
                return null;
            }
            stdout.Write(answer.Stdout);
            stderr.Write(answer.Stderr);
            return answer.ExitCode;
        }
        finally
        {
            Libc.close(fd);
        }
    }

    private static int Connect(string path, out string? failure)
    {
        failure = null;
        if (!PluginSocket.Fits(path)) return -1;
        var name = Encoding.UTF8.GetBytes(path);
        var address = new byte[2 + PluginSocket.MaxPathBytes + 1];
        address[0] = Libc.AfUnix;
        name.CopyTo(address, 2);
        var fd = Libc.socket(Libc.AfUnix, Libc.SockStream | Libc.SockCloexec, 0);
        if (fd < 0) return -1;
        while (Libc.connect(fd, address, 2 + name.Length + 1) != 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.EIntr) continue;
            Libc.close(fd);
            failure = errno switch
            {
                Libc.ENoent or Libc.ENotdir => "absent",
                Libc.EConnrefused => "refused",
                Libc.EAcces or Libc.EPerm => "denied",
                _ => "refused",
            };
            return -1;
        }
        var timeout = new long[] { (long)AnswerTimeout.TotalSeconds, 0 };
        _ = Libc.setsockopt(fd, Libc.SolSocket, Libc.SoRcvtimeo, timeout, 16);
        _ = Libc.setsockopt(fd, Libc.SolSocket, Libc.SoSndtimeo, timeout, 16);
        return fd;
    }

    /// <summary>stdin up to one byte past the plugin's limit; not complete when it is larger, or cannot be read.</summary>
    private static (byte[] Read, bool Complete) ReadBounded(Stream stdin)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        try
        {
            int n;
            while ((n = stdin.Read(chunk, 0, chunk.Length)) > 0)
            {
                buffer.Write(chunk, 0, n);
                if (buffer.Length > ConfigParser.MaxStdinBytes) return (buffer.ToArray(), false);
            }
        }
        catch (IOException)
        {
            return (buffer.ToArray(), false);
        }
        return (buffer.ToArray(), true);
    }

    private static bool Send(int fd, byte[] frame)
    {
        var left = (ReadOnlySpan<byte>)frame;
        while (!left.IsEmpty)
        {
            var n = Libc.send(fd, left, left.Length, Libc.MsgNosignal);
            if (n > 0)
            {
                left = left[(int)n..];
                continue;
            }
            if (n < 0 && Libc.Errno == Libc.EIntr) continue;
            return false;
        }
        return true;
    }

    private static CallFrames.Answer? Receive(int fd, out string why)
    {
        why = "";
        var header = new byte[CallFrames.HeaderBytes];
        if (ReadExactly(fd, header, out why) is false) return null;
        try
        {
            var (kind, length) = CallFrames.ReadHeader(header, CallFrames.MaxAnswerBytes, CallFrames.Result, CallFrames.Refusal);
            var body = new byte[length];
            if (ReadExactly(fd, body, out why) is false) return null;
            if (kind == CallFrames.Refusal)
            {
                why = "declined";
                return null;
            }
            return CallFrames.DecodeResult(body);
        }
        catch (FormatException)
        {
            why = "malformed";
            return null;
        }
    }

    private static bool ReadExactly(int fd, byte[] into, out string why)
    {
        why = "";
        var done = 0;
        while (done < into.Length)
        {
            var n = Libc.read(fd, into.AsSpan(done), into.Length - done);
            if (n > 0)
            {
                done += (int)n;
                continue;
            }
            if (n == 0)
            {
                why = "closed";
                return false;
            }
            var errno = Libc.Errno;
            if (errno == Libc.EIntr) continue;
            why = errno == Libc.EWouldBlock ? "timeout" : "closed";
            return false;
        }
        return true;
    }

    /// <summary>
    /// One byte onto the reason's counter file beside the socket, which the agent made: when it never ran on this
    /// node there is no file, and nothing is counted. Never fsynced, never fatal: it is a figure for people.
    /// </summary>
    private static void Count(string socketPath, string? reason)
    {
        if (reason is null) return;
        var fd = Libc.open(PluginSocket.FallbackFile(socketPath, reason), Libc.OWronly | Libc.OAppend | Libc.OCloexec, 0);
        if (fd < 0) return;
        // Deliberately ignored: a failed count changes nothing about the call.
        _ = Libc.write(fd, "x"u8, 1);
        Libc.close(fd);
    }

    /// <summary>What was read already, then the rest of stdin.</summary>
    private sealed class Replay(byte[] prefix, Stream rest) : Stream
    {
        private int _at;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_at >= prefix.Length) return rest.Read(buffer, offset, count);
            var n = Math.Min(count, prefix.Length - _at);
            Array.Copy(prefix, _at, buffer, offset, n);
            _at += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
