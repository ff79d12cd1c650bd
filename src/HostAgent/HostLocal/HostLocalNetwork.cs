using System.Net;
using System.Text;
using Berth.Shared.Allocation;
using Berth.Shared.Config;
using Berth.Shared.Platform;

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
internal sealed class HostLocalNetwork : IDisposable
{
    /// <summary>How long a deletion waits for host-local's lock (held for milliseconds per call) by default.</summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(5);

    /// <summary>host-local's lease files hold an ID and an interface name: anything longer is not one.</summary>
    public const int MaxLeaseFileBytes = 4096;

    private const string LockFile = "lock";
    private const string CursorPrefix = "last_reserved_ip.";
    private const int Mode0750 = 0x1e8;

    private readonly int _fd;
    private readonly int[] _lockFds = [-1, -1];
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
        var fd = Libc.open(path, Libc.ORdonly | Libc.ODirectory | Libc.ONofollow | Libc.OCloexec, 0);
        if (fd < 0)
        {
            var errno = Libc.Errno;
            throw new HostLocalException($"{path}: {Error(errno)}", gone: errno == Libc.ENoent);
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
        // "ID\r\nifname" since host-local 0.8; only "ID" before (no interface name then).
        var lines = text.Split('\n');
        var id = lines[0].TrimEnd('\r');
        var ifName = lines.Length > 1 ? lines[1].TrimEnd('\r') : "";
        if ((lines.Length > 2 && lines[2].Length > 0) || !ConfigParser.IsIdentifier(id) || (ifName.Length > 0 && !ConfigParser.IsIfName(ifName)))
        {
            return (null, "does not hold a container ID and an interface name");
        }
        return (new HostLocalFile(Dir, Network, address, id, ifName), "");
    }

    /// <summary>
    /// Takes host-local's own locks on this network (see the type's remarks), waiting at most <paramref name="timeout"/>
    /// on <paramref name="time"/>. False when host-local kept them that long: host-local holds its lock for
    /// milliseconds, so one that stays held means a stuck process; the caller gives up this time.
    /// </summary>
    public bool Lock(TimeSpan timeout, TimeProvider time)
    {
        if (_locked) return true;
        // A descriptor of each for the lock alone (FlockWait owns it while it waits): the lock file, and the
        // directory opened anew (flock on another open of the same directory contends with host-local's all the same).
        _lockFds[0] = OpenForLock(LockFile, Libc.ORdonly | Libc.OCreat | Libc.ONofollow | Libc.OCloexec);
        _lockFds[1] = OpenForLock(".", Libc.ORdonly | Libc.ODirectory | Libc.OCloexec);
        var started = time.GetTimestamp();
        for (var i = 0; i < _lockFds.Length; i++)
        {
            var wait = FlockWait.Begin(_lockFds[i], "berth host-local lock");
            if (!wait.Wait(timeout - time.GetElapsedTime(started), time) && wait.Abandon())
            {
                _lockFds[i] = -1; // the wait closes it
                Unlock();
                return false;
            }
            if (wait.Errno != 0)
            {
                _lockFds[i] = -1;
                Unlock();
                throw new HostLocalException($"{Path}: cannot be locked: {Libc.Message(wait.Errno)}");
            }
        }
        _locked = true;
        return true;
    }

    private int OpenForLock(string name, int flags)
    {
        var fd = Libc.openat(_fd, name, flags, Mode0750);
        if (fd >= 0) return fd;
        var errno = Libc.Errno;
        Unlock();
        throw new HostLocalException($"{System.IO.Path.Combine(Path, name)}: cannot be opened: {Error(errno)}");
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
        if (Libc.unlinkat(_fd, expected.Address.ToString(), 0) != 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.ENoent) return false; // host-local's DEL was faster.
            throw new HostLocalException($"{expected.Path}: cannot be deleted: {Libc.Message(errno)}");
        }
        return true;
    }

    /// <summary>Whether a name is an address in host-local's spelling (Go's net.IP.String: canonical).</summary>
    private static bool IsAddressName(string name, out IPAddress address) =>
        Ip.TryParse(name, out address!) && address.ToString() == name;

    /// <summary>Reads a small file of this directory without following a symlink; null, or what is wrong with it.</summary>
    private string? ReadText(string name, out string text)
    {
        text = "";
        var fd = Libc.openat(_fd, name, Libc.ORdonly | Libc.ONofollow | Libc.ONonblock | Libc.OCloexec, 0);
        if (fd < 0) return Error(Libc.Errno);
        try
        {
            // A FIFO or a device opens (O_NONBLOCK) and reads as empty: it would pass for an empty lease file, which the
            // guardian deletes. Only a regular file is host-local's.
            if (!IsRegular(fd, out var type)) return type;
            var buffer = new byte[MaxLeaseFileBytes + 1];
            var total = 0;
            while (total < buffer.Length)
            {
                var n = Libc.read(fd, buffer.AsSpan(total), buffer.Length - total);
                if (n < 0)
                {
                    var errno = Libc.Errno;
                    if (errno == Libc.EIntr) continue;
                    return errno == Libc.EIsdir ? "a directory where a lease file should be" : $"cannot be read: {Libc.Message(errno)}";
                }
                if (n == 0) break;
                total += (int)n;
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
            _ = Libc.close(fd);
        }
    }

    /// <summary>Whether the open descriptor is a regular file; else what it is, for the warning.</summary>
    private static bool IsRegular(int fd, out string what)
    {
        if (Libc.FileType(fd) is not { } type)
        {
            what = $"cannot be examined: {Libc.Message(Libc.Errno)}";
            return false;
        }
        what = type switch
        {
            Libc.SIfreg => "",
            Libc.SIfifo => "a FIFO, not a lease file",
            Libc.SIfchr or Libc.SIfblk => "a device, not a lease file",
            Libc.SIfsock => "a socket, not a lease file",
            Libc.SIfdir => "a directory where a lease file should be",
            _ => "not a regular file",
        };
        return type == Libc.SIfreg;
    }

    private static string Error(int errno) => errno switch
    {
        Libc.ENoent => "gone",
        Libc.ELoop => "a symlink, not followed",
        Libc.ENotdir => "not a directory",
        _ => Libc.Message(errno),
    };

    private void Unlock()
    {
        // Closing a descriptor lets go of its lock.
        for (var i = 0; i < _lockFds.Length; i++)
        {
            if (_lockFds[i] >= 0) _ = Libc.close(_lockFds[i]);
            _lockFds[i] = -1;
        }
        _locked = false;
    }

    public void Dispose()
    {
        Unlock();
        _ = Libc.close(_fd);
    }
}

/// <summary>
/// A host-local directory or file that cannot be used: the message names it; the guardian skips it with a warning.
/// <see cref="Gone"/>: it does not exist (any more).
/// </summary>
internal sealed class HostLocalException(string message, bool gone = false) : Exception(message)
{
    public bool Gone { get; } = gone;
}
