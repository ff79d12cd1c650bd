using Berth.Shared.Platform;

namespace Berth.CniIpam;

/// <summary>
/// A standard stream as any program has it: read(2) and write(2) on the descriptor. A FileStream on a regular file
/// reads and writes at offsets of its own (pread/pwrite from where it started), which neither moves nor honours
/// the offset the descriptor shares with other processes: in `(berth; echo END) > log` the next writer would land
/// on top of berth's result. System.Console would do it right, but sets up the terminal first, which a plugin
/// talking to a runtime over pipes pays for nothing.
/// </summary>
internal sealed class StandardStream(int fd, bool writable) : Stream
{
    public override bool CanRead => !writable;
    public override bool CanWrite => writable;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var into = buffer.AsSpan(offset, count);
        if (into.IsEmpty) return 0;
        while (true)
        {
            var n = Libc.read(fd, into, into.Length);
            if (n >= 0) return (int)n;
            var errno = Libc.Errno;
            if (errno != Libc.EIntr) throw new IOException($"cannot read standard input: {Libc.Message(errno)}");
        }
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        // A pipe or a file may take less than all of it at once: the rest follows.
        var left = (ReadOnlySpan<byte>)buffer.AsSpan(offset, count);
        while (!left.IsEmpty)
        {
            var n = Libc.write(fd, left, left.Length);
            if (n >= 0)
            {
                left = left[(int)n..];
                continue;
            }
            var errno = Libc.Errno;
            if (errno != Libc.EIntr) throw new IOException($"cannot write to descriptor {fd}: {Libc.Message(errno)}");
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
