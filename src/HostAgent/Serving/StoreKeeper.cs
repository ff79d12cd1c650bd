using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Berth.Shared.Leases;
using Berth.Shared.Plugin;

namespace Berth.HostAgent.Serving;

/// <summary>
/// The stores the served calls use, kept open by path, at most <see cref="MaxKept"/> (a node has one or two; more are
/// closed least recently used first). A store whose file was replaced or removed since it was opened (an operator
/// moved it aside) is opened again: a commit into a file nobody reads would be a lost acknowledged write. A store no
/// longer kept is closed when the last call using it is done.
/// </summary>
internal sealed partial class StoreKeeper(CallClock clock) : IStoreKeeper, IDisposable
{
    public const int MaxKept = 16;

    private sealed class Kept(SqliteLeaseStore store, (ulong, ulong) id)
    {
        public SqliteLeaseStore Store { get; } = store;
        public (ulong, ulong) Id { get; } = id;
        public int Uses { get; set; }
        public bool Retired { get; set; }
        public long LastUsed { get; set; }
    }

    private readonly Dictionary<string, Kept> _kept = new(StringComparer.Ordinal);
    private readonly Dictionary<SqliteLeaseStore, Kept> _inUse = [];
    private readonly Lock _lock = new();
    private long _tick;

    public SqliteLeaseStore Get(string path, StoreOptions options)
    {
        lock (_lock)
        {
            var id = FileId(path);
            if (_kept.TryGetValue(path, out var kept) && (kept.Id != id || id == default))
            {
                Retire(path, kept);
                kept = null;
            }
            if (kept is null)
            {
                var store = SqliteLeaseStore.Open(path, options with { BootClock = clock });
                kept = new Kept(store, FileId(path));
                _kept[path] = kept;
                while (_kept.Count > MaxKept) Retire(_kept.MinBy(k => k.Value.LastUsed).Key, _kept.MinBy(k => k.Value.LastUsed).Value);
            }
            kept.Uses++;
            kept.LastUsed = ++_tick;
            _inUse[kept.Store] = kept;
            return kept.Store;
        }
    }

    public void Done(SqliteLeaseStore store)
    {
        lock (_lock)
        {
            if (!_inUse.TryGetValue(store, out var kept)) return;
            if (--kept.Uses > 0) return;
            _inUse.Remove(store);
            if (kept.Retired) store.Dispose();
        }
    }

    /// <summary>How many stores are kept open.</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _kept.Count;
        }
    }

    private void Retire(string path, Kept kept)
    {
        _kept.Remove(path);
        kept.Retired = true;
        if (kept.Uses == 0) kept.Store.Dispose();
    }

    /// <summary>The file's device and inode (statx: the same layout on every architecture), or default when it is not there.</summary>
    private static (ulong, ulong) FileId(string path)
    {
        const int AtFdcwd = -100, StatxIno = 0x100;
        Span<byte> buffer = stackalloc byte[256];
        if (statx(AtFdcwd, path, 0, StatxIno, buffer) != 0) return default;
        // stx_ino is the u64 at byte 32; stx_dev_major and stx_dev_minor the u32s at 136 and 140.
        var device = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(buffer[136..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(buffer[140..]);
        return (device, BinaryPrimitives.ReadUInt64LittleEndian(buffer[32..]));
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, Span<byte> buffer);

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var (path, kept) in _kept.ToList()) Retire(path, kept);
        }
    }
}
