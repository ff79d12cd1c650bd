using Berth.Shared.Cni;
using Berth.Shared.Platform;

namespace Berth.Shared.Leases;

/// <summary>Turns SQLite's failures into CNI errors that tell an operator what happened and what to do.</summary>
internal static class StoreErrors
{
    private const int Busy = 5, Locked = 6, ReadOnly = 8, IoErr = 10, Corrupt = 11, Full = 13, CantOpen = 14, Constraint = 19, NotADb = 26, Perm = 3;

    public static CniException From(SqliteError e, string path) => (e.Code & 0xff) switch
    {
        Busy or Locked => new CniException(ErrorCodes.TryAgainLater,
            $"store {path} is busy: another process held its write lock past the wait limit; retry"),
        Corrupt or NotADb => new CniException(ErrorCodes.IoFailure,
            $"store {path} is damaged ({e.Message.TrimEnd('.')}): berth will not reset it; stop berth-agent, move the file aside and run 'berth-agent check', or restore it from a backup",
            e.Message),
        Full => new CniException(ErrorCodes.IoFailure, $"store {path}: the disk is full; free space on its filesystem", e.Message),
        ReadOnly or Perm or CantOpen when OnReadOnlyFilesystem(path) => ReadOnlyFilesystem(path, e.Message),
        ReadOnly or Perm or CantOpen => new CniException(ErrorCodes.IoFailure,
            $"store {path} cannot be opened for writing ({e.Message.TrimEnd('.')}): the plugin runs as root; check the directory and file permissions", e.Message),
        IoErr => new CniException(ErrorCodes.IoFailure, $"store {path}: I/O error ({e.Message.TrimEnd('.')}); check the disk", e.Message),
        Constraint => new CniException(ErrorCodes.IoFailure,
            $"store {path} refused a change that would lease an address twice ({e.Message.TrimEnd('.')}); run 'berth-agent check'", e.Message),
        _ => new CniException(ErrorCodes.IoFailure,
            $"store {path} cannot be used ({e.Message.TrimEnd('.')}): berth will not reset it; run 'berth-agent check', move the file aside or restore it from a backup",
            e.Message),
    };

    public static CniException From(Exception e, string path) => OnReadOnlyFilesystem(path)
        ? ReadOnlyFilesystem(path, e.Message)
        : new(ErrorCodes.IoFailure, $"store {path} cannot be used: {e.Message}", e.GetType().Name);

    /// <summary>The store cannot be written because its filesystem is mounted read-only (a rescue boot, a failing disk).</summary>
    public static CniException ReadOnlyFilesystem(string path, string? details = null) => new(ErrorCodes.IoFailure,
        $"store {path} is on a read-only filesystem: remount it read-write (berth-agent leases, history and check can still read it)", details);

    /// <summary>Whether the store's directory (or the nearest one that exists) is on a read-only filesystem (EROFS).</summary>
    public static bool OnReadOnlyFilesystem(string path)
    {
        for (var dir = Path.GetDirectoryName(Path.GetFullPath(path)); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (!Directory.Exists(dir)) continue;
            return Libc.access(dir, Libc.WOk) != 0 && Libc.Errno == Libc.ERofs;
        }
        return false;
    }
}
