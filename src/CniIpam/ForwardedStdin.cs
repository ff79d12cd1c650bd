using System.Runtime.InteropServices;

namespace Berth.CniIpam;

/// <summary>
/// The plugin's stdin after the forwarding prelude (native/forward.c) ran: by the time managed code runs, the call was
/// not forwarded (a forwarded call exits in the prelude), and the prelude may have read some or all of stdin before
/// the agent turned out unable to answer. The plugin then reads those bytes first, and the rest from the descriptor.
/// </summary>
internal static partial class ForwardedStdin
{
    public static Stream Input(Stream stdin)
    {
        var state = berth_forwarded_stdin(out var data, out var length);
        if (state < 0) return stdin;
        var read = new byte[checked((int)length)];
        Marshal.Copy(data, read, 0, read.Length);
        return state == 1 ? new MemoryStream(read, writable: false) : new Replay(read, stdin);
    }

    /// <summary>-1: stdin untouched; 1: all of it read; 0: read in part (too large, or a read failed), the rest still on the descriptor.</summary>
    [LibraryImport("berth_forward")]
    private static partial int berth_forwarded_stdin(out nint data, out nuint length);

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
