using System.Runtime.InteropServices;

namespace Berth.Shared.Platform;

/// <summary>
/// Every libc call berth makes, and the constants they take, declared once. Values are Linux's on x86-64 and
/// arm64 (the two architectures berth ships for), where they are the same. LibraryImport: source-generated
/// marshalling, nothing for NativeAOT to resolve by reflection; the plugin binds "libc" at link time
/// (DirectPInvoke in CniIpam.csproj).
/// </summary>
public static partial class Libc
{
    /// <summary>errno values.</summary>
    public const int EPerm = 1, ENoent = 2, ESrch = 3, EIntr = 4, EWouldBlock = 11, EAcces = 13, ENotdir = 20, EIsdir = 21, ERofs = 30, ELoop = 40, EConnrefused = 111;

    /// <summary>open(2) flags.</summary>
    public const int ORdonly = 0, OWronly = 0x1, ORdwr = 0x2, OCreat = 0x40, OAppend = 0x400, ONonblock = 0x800, ODirectory = 0x10000, ONofollow = 0x20000, OCloexec = 0x80000;

    /// <summary>flock(2) operations.</summary>
    public const int LockEx = 2, LockNb = 4, LockUn = 8;

    /// <summary>access(2)'s write check.</summary>
    public const int WOk = 2;

    /// <summary>clock_gettime(2)'s clock that counts time since boot, suspend included.</summary>
    public const int ClockBoottime = 7;

    /// <summary>File types in a mode (S_IFMT and its values).</summary>
    public const int SIfmt = 0xF000, SIfifo = 0x1000, SIfchr = 0x2000, SIfdir = 0x4000, SIfblk = 0x6000, SIfreg = 0x8000, SIfsock = 0xC000;

    /// <summary>Unix stream sockets: socket(2), setsockopt(2) and send(2) arguments.</summary>
    public const int AfUnix = 1, SockStream = 1, SockCloexec = 0x80000, SolSocket = 1, SoPeercred = 17, SoRcvtimeo = 20, SoSndtimeo = 21, MsgNosignal = 0x4000;

    /// <summary>statx(2): the descriptor meaning "relative to the working directory", and the basic fields' mask.</summary>
    public const int AtFdcwd = -100;

    /// <summary>statx(2)'s mask of the basic fields.</summary>
    public const uint StatxBasicStats = 0x7ff;

    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;

    /// <summary>The errno of the last call made here.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>strerror's text for an errno.</summary>
    public static string Message(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>
    /// The file type (<c>mode &amp; S_IFMT</c>) of an open descriptor, or null with errno set. statx, because its
    /// layout is the same on every architecture (struct stat's is not): stx_mode is the u16 at byte 28.
    /// </summary>
    public static int? FileType(int fd)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (statx(fd, "", AtEmptyPath, StatxType, buffer) != 0) return null;
        return MemoryMarshal.Read<ushort>(buffer[28..]) & SIfmt;
    }

    /// <summary>open(2).</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    /// <summary>openat(2).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int openat(int dirfd, string path, int flags, int mode);

    /// <summary>close(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    /// <summary>read(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, Span<byte> buffer, nint count);

    /// <summary>write(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, ReadOnlySpan<byte> buffer, nint count);

    /// <summary>pread(2) of one 64-bit value.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pread(int fd, out long buffer, nint count, long offset);

    /// <summary>pread(2) into a buffer.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pread(int fd, Span<byte> buffer, nint count, long offset);

    /// <summary>pwrite(2) of one 64-bit value.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pwrite(int fd, ref long buffer, nint count, long offset);

    /// <summary>fsync(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    /// <summary>flock(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    /// <summary>unlinkat(2).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlinkat(int dirfd, string path, int flags);

    /// <summary>access(2).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int access(string path, int mode);

    /// <summary>readlink(2).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint readlink(string path, byte[] buffer, nint size);

    /// <summary>stat(2) into a buffer of at least 144 bytes.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int stat(string path, Span<byte> buffer);

    /// <summary>statfs(2) into a buffer of at least 120 bytes.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statfs(string path, Span<byte> buffer);

    /// <summary>statx(2) into a buffer of at least 256 bytes.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statx(int dirfd, string path, int flags, uint mask, Span<byte> buffer);

    /// <summary>socket(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    /// <summary>connect(2) to a struct sockaddr given as bytes.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int connect(int fd, byte[] address, int length);

    /// <summary>setsockopt(2) of a struct timeval (two longs).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, long[] value, int length);

    /// <summary>send(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, ReadOnlySpan<byte> buffer, nint count, int flags);

    /// <summary>geteuid(2).</summary>
    [LibraryImport("libc")]
    public static partial uint geteuid();

    /// <summary>clock_gettime(2).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int clock_gettime(int clockId, out TimeSpec ts);

    /// <summary>struct timespec on a 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        /// <summary>tv_sec.</summary>
        public long Seconds;

        /// <summary>tv_nsec.</summary>
        public long Nanoseconds;
    }
}
