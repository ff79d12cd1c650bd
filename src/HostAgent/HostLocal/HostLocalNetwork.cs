using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Shared.Allocation;
using Berth.Shared.Config;

namespace Berth.HostAgent.HostLocal;

/// <summary>
/// One network directory of host-local's (<c>DIR/NETWORK</c>), opened once with O_NOFOLLOW, so that every read and
/// every deletion happens relative to that very directory: a symlink is never followed out of it, whether it
/// stands for the network directory or for a lease file, and a directory swapped in mid-pass is not the one we
/// act on. Only address-named regular files are ever deleted; <c>lock</c> and <c>last_reserved_ip.N</c> are
/// host-local's and are only read.
/// <para>
/// Locking: host-local (containernetworking/plugins, backend/disk) serialises its ADD, DEL and GC with flock on
/// <c>DIR/NETWORK/lock</c>, which it opens with O_CREAT (Debian's 1.1.1, checked with strace); versions before
/// that flocked the network directory itself. <see cref="Lock"/> takes both, so a deletion never races either
/// kind of host-local. It opens <c>lock</c> the way host-local does, creating it empty when only an older
/// host-local ever ran there, so no window is left in which a newer one could create and take it unseen.
/// </para>
/// </summary>
internal sealed partial class HostLocalNetwork : IDisposable
{
    /// <summary>host-local's lease files hold an ID and an interface name: anything longer is not one.</summary>
    public const int MaxLeaseFileBytes = 4096;

    private const string LockFile = "lock";
    private const string CursorPrefix = "last_reserved_ip.";
    private const int ORdonly = 0, OCreat = 0x40, ONonblock = 0x800, ODirectory = 0x10000, ONofollow = 0x20000, OCloexec = 0x80000;
    private const int LockEx = 2, LockNb = 4, LockUn = 8;
    private const int ENoent = 2, EIntr = 4, EWouldBlock = 11, EIsdir = 21;
    private const int Mode0750 = 0x1e8;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;

    private readonly int _fd;
    private int _lockFd = -1;
    private bool _locked;

    private HostLocalNetwork(string dir, string network, int fd)
    {
        Dir = dir;
        Network = network;
        _fd = fd;
    }

    public string Dir { get; }

    public string Network { get; }

    private string Path => System.IO.Path.Combine(Dir, Network);

    /// <summary>Opens <c>dir/network</c>; throws <see cref="HostLocalException"/> when it is gone, a symlink or unreadable.</summary>
    public static HostLocalNetwork Open(string dir, string network)
    {
        if (!ConfigParser.IsIdentifier(network)) throw new HostLocalException($"{System.IO.Path.Combine(dir, network)}: not a CNI network name");
        var path = System.IO.Path.Combine(dir, network);
        var fd = open(path, ORdonly | ODirectory | ONofollow | OCloexec, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new HostLocalException($"{path}: {Error(errno)}", gone: errno == ENoent);
        }
        return new HostLocalNetwork(dir, network, fd);
    }

    /// <summary>The names in the directory, or a <see cref="HostLocalException"/> when it cannot be listed.</summary>
    public IReadOnlyList<string> Names()
    {
        try
        {
            // /proc/self/fd/N is the directory we opened, whatever its path names now.
            return [.. Directory.EnumerateFileSystemEntries($"/proc/self/fd/{_fd}").Select(System.IO.Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostLocalException($"{Path}: cannot be listed: {e.Message}");
        }
    }

    /// <summary>Reads the directory: lease files, empty lease files, cursors, and a warning for everything else that is not host-local's (skipped).</summary>
    public void Scan(List<HostLocalFile> files, List<HostLocalCursor> cursors, List<string> warnings, List<HostLocalFile> emptied)
    {
        foreach (var name in Names())
        {
            if (name == LockFile) continue;
            if (name.StartsWith(CursorPrefix, StringComparison.Ordinal))
            {
                if (int.TryParse(name.AsSpan(CursorPrefix.Length), out var index) && index >= 0 && ReadText(name, out var text) is null
                    && Ip.TryParse(text.Trim(), out var last))
                {
                    cursors.Add(new HostLocalCursor(Dir, Network, index, last));
                }
                continue;
            }
            if (!IsAddressName(name, out var address))
            {
                warnings.Add($"{System.IO.Path.Combine(Path, name)}: not a host-local lease file (its name is not an address); skipped");
                continue;
            }
            var (lease, problem) = ReadLease(address);
            if (lease is not null) files.Add(lease);
            // An empty file is no skipped entry: the guardian frees it (HostLocalGuard.Emptied).
            else if (problem == EmptyFile) emptied.Add(new HostLocalFile(Dir, Network, address, "", ""));
            else warnings.Add($"{System.IO.Path.Combine(Path, name)}: {problem}; skipped");
        }
    }

    /// <summary>Why an empty lease file is skipped: it names no owner (a power cut can leave host-local's new file so).</summary>
    public const string EmptyFile = "empty: names no container (host-local's write did not reach the disk before a power cut?)";

    /// <summary>The lease file of an address as it is now, or null with why it is not a lease file (gone, damaged, not a file).</summary>
    public (HostLocalFile? Lease, string Problem) ReadLease(IPAddress address)
    {
        if (ReadText(address.ToString(), out var text) is { } problem) return (null, problem);
        if (text.Length == 0) return (null, EmptyFile);
        // "ID\r\nifname" since host-local 0.8; only "ID" before.
        var lines = text.Split('\n');
        var id = lines[0].TrimEnd('\r');
        var ifName = lines.Length > 1 ? lines[1].TrimEnd('\r') : "";
        if ((lines.Length > 2 && lines[2].Length > 0) || !ConfigParser.IsIdentifier(id) || !IsIfName(ifName))
        {
            return (null, "does not hold a container ID and an interface name");
        }
        return (new HostLocalFile(Dir, Network, address, id, ifName), "");
    }

    /// <summary>
    /// Takes host-local's own locks on this network (see the type's remarks), waiting at most <paramref name="timeout"/>.
    /// False when host-local kept them that long.
    /// </summary>
    public bool Lock(TimeSpan timeout)
    {
        if (_locked) return true;
        _lockFd = openat(_fd, LockFile, ORdonly | OCreat | ONofollow | OCloexec, Mode0750);
        if (_lockFd < 0) throw new HostLocalException($"{System.IO.Path.Combine(Path, LockFile)}: cannot be opened: {Error(Marshal.GetLastPInvokeError())}");
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        foreach (var fd in new[] { _lockFd, _fd })
        {
            // host-local holds its lock for milliseconds; one that stays held means a stuck process: give up this time.
            while (flock(fd, LockEx | LockNb) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != EWouldBlock && errno != EIntr) throw new HostLocalException($"{Path}: cannot be locked: {Marshal.GetPInvokeErrorMessage(errno)}");
                if (Environment.TickCount64 >= deadline)
                {
                    Unlock();
                    return false;
                }
                Thread.Sleep(5);
            }
        }
        _locked = true;
        return true;
    }

    /// <summary>
    /// Deletes the lease file of <paramref name="expected"/>'s address if, read again now, it still names the same
    /// owner. Must hold <see cref="Lock"/>. False when it is gone or changed hands meanwhile.
    /// </summary>
    public bool DeleteIfSame(HostLocalFile expected)
    {
        if (!_locked) throw new InvalidOperationException("host-local's lock is not held");
        var (now, problem) = ReadLease(expected.Address);
        // An empty file (ContainerId "") is deleted only while it is still empty.
        if (expected.ContainerId.Length == 0 ? problem != EmptyFile
            : now is null || now.ContainerId != expected.ContainerId || now.IfName != expected.IfName) return false;
        // unlinkat never follows the name, and refuses a directory.
        if (unlinkat(_fd, expected.Address.ToString(), 0) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENoent) return false; // host-local's DEL was faster.
            throw new HostLocalException($"{expected.Path}: cannot be deleted: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        return true;
    }

    /// <summary>Whether a name is an address in host-local's spelling (Go's net.IP.String: canonical).</summary>
    private static bool IsAddressName(string name, out IPAddress address) =>
        Ip.TryParse(name, out address!) && address.ToString() == name;

    private static bool IsIfName(string name) =>
        name.Length <= 15 && !name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c));

    /// <summary>Reads a small file of this directory without following a symlink; null, or what is wrong with it.</summary>
    private unsafe string? ReadText(string name, out string text)
    {
        text = "";
        var fd = openat(_fd, name, ORdonly | ONofollow | ONonblock | OCloexec, 0);
        if (fd < 0) return Error(Marshal.GetLastPInvokeError());
        try
        {
            // A FIFO or a device opens (O_NONBLOCK) and reads as empty: it would pass for an empty lease file, which the
            // guardian deletes. Only a regular file is host-local's.
            if (!IsRegular(fd, out var type)) return type;
            var buffer = new byte[MaxLeaseFileBytes + 1];
            var total = 0;
            fixed (byte* p = buffer)
            {
                while (total < buffer.Length)
                {
                    var n = read(fd, p + total, buffer.Length - total);
                    if (n < 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno == EIntr) continue;
                        return errno == EIsdir ? "a directory where a lease file should be" : $"cannot be read: {Marshal.GetPInvokeErrorMessage(errno)}";
                    }
                    if (n == 0) break;
                    total += (int)n;
                }
            }
            if (total > MaxLeaseFileBytes) return $"larger than {MaxLeaseFileBytes} bytes, not a lease file";
            try
            {
                text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, total);
            }
            catch (DecoderFallbackException)
            {
                return "not text";
            }
            return null;
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Whether the open descriptor is a regular file; else what it is, for the warning.</summary>
    private static bool IsRegular(int fd, out string what)
    {
        // statx's layout is the same on every architecture (struct stat's is not): stx_mode is the u16 at byte 28.
        Span<byte> buffer = stackalloc byte[256];
        if (statx(fd, "", AtEmptyPath, StatxType, buffer) != 0)
        {
            what = $"cannot be examined: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
            return false;
        }
        var type = MemoryMarshal.Read<ushort>(buffer[28..]) & 0xF000;
        what = type switch
        {
            0x8000 => "",
            0x1000 => "a FIFO, not a lease file",
            0x2000 or 0x6000 => "a device, not a lease file",
            0xC000 => "a socket, not a lease file",
            0x4000 => "a directory where a lease file should be",
            _ => "not a regular file",
        };
        return type == 0x8000;
    }

    private static string Error(int errno) => errno switch
    {
        2 => "gone",
        40 => "a symlink, not followed",
        20 => "not a directory",
        _ => Marshal.GetPInvokeErrorMessage(errno),
    };

    private void Unlock()
    {
        if (_lockFd >= 0)
        {
            close(_lockFd);
            _lockFd = -1;
        }
        // Deliberately ignored: unlocking a descriptor that holds no lock is harmless.
        _ = flock(_fd, LockUn);
        _locked = false;
    }

    public void Dispose()
    {
        Unlock();
        close(_fd);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, Span<byte> buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}

/// <summary>
/// A host-local directory or file that cannot be used: the message names it; the guardian skips it with a warning.
/// <see cref="Gone"/>: it does not exist (any more).
/// </summary>
internal sealed class HostLocalException(string message, bool gone = false) : Exception(message)
{
    public bool Gone { get; } = gone;
}
