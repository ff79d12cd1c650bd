using Microsoft.Win32.SafeHandles;
using Berth.Shared.Platform;

namespace Berth.HostAgent.Pools;

/// <summary>
/// Reads a small file that others write on the node (a CNI config, flannel's subnet file) without trusting it to
/// be one: the open never waits (a FIFO in the conf dir would otherwise hang the metrics page that reads it), and
/// anything but a regular file is refused before a byte is read. Symlinks are followed, as the runtime's CNI
/// library follows them.
/// </summary>
internal static class NodeFile
{
    /// <summary>The file's bytes; an <see cref="IOException"/> saying what is wrong (gone, not a regular file, larger than <paramref name="maxBytes"/>).</summary>
    public static byte[] Read(string path, int maxBytes)
    {
        var fd = Libc.open(path, Libc.ORdonly | Libc.ONonblock | Libc.OCloexec, 0);
        if (fd < 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.ENoent) throw new FileNotFoundException("gone", path);
            throw new IOException($"cannot be opened: {Libc.Message(errno)}");
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (!IsRegular(fd)) throw new IOException("not a regular file");
        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 1);
        var buffer = new byte[maxBytes + 1];
        int total = 0, read;
        while (total < buffer.Length && (read = stream.Read(buffer, total, buffer.Length - total)) > 0) total += read;
        if (total > maxBytes) throw new IOException($"larger than {maxBytes / 1024} KiB");
        return buffer[..total];
    }

    /// <summary>Whether a path names a regular file (after symlinks); false when it is gone.</summary>
    public static bool IsRegularFile(string path)
    {
        var fd = Libc.open(path, Libc.ORdonly | Libc.ONonblock | Libc.OCloexec, 0);
        if (fd < 0) return false;
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        return IsRegular(fd);
    }

    private static bool IsRegular(int fd) => Libc.FileType(fd) == Libc.SIfreg;
}
