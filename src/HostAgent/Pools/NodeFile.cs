using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.HostAgent.Pools;

/// <summary>
/// Reads a small file that others write on the node (a CNI config, flannel's subnet file) without trusting it to
/// be one: the open never waits (a FIFO in the conf dir would otherwise hang the metrics page that reads it), and
/// anything but a regular file is refused before a byte is read. Symlinks are followed, as the runtime's CNI
/// library follows them.
/// </summary>
internal static partial class NodeFile
{
    private const int ORdonly = 0, ONonblock = 0x800, OCloexec = 0x80000;
    private const int AtEmptyPath = 0x1000, StatxType = 0x1;
    private const int SIfmt = 0xF000, SIfreg = 0x8000;

    /// <summary>The file's bytes; an <see cref="IOException"/> saying what is wrong (gone, not a regular file, larger than <paramref name="maxBytes"/>).</summary>
    public static byte[] Read(string path, int maxBytes)
    {
        var fd = open(path, ORdonly | ONonblock | OCloexec, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 2) throw new FileNotFoundException("gone", path);
            throw new IOException($"cannot be opened: {Marshal.GetPInvokeErrorMessage(errno)}");
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
        var fd = open(path, ORdonly | ONonblock | OCloexec, 0);
        if (fd < 0) return false;
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        return IsRegular(fd);
    }

    private static unsafe bool IsRegular(int fd)
    {
        // struct statx is the same on every architecture (unlike struct stat): stx_mode is the u16 at offset 28.
        var buffer = stackalloc byte[256];
        if (statx(fd, "", AtEmptyPath, StatxType, buffer) != 0) return false;
        var mode = *(ushort*)(buffer + 28);
        return (mode & SIfmt) == SIfreg;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
