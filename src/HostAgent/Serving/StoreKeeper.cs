using System.Buffers.Binary;
using Berth.Shared.Leases;
using Berth.Shared.Platform;
using Berth.Shared.Plugin;

namespace Berth.HostAgent.Serving;

/// <summary>
/// The stores the served calls use, kept open by path, at most <see cref="MaxKept"/> (a node has one or two; more are
/// closed least recently used first). A store whose file changed since the last call took it (replaced, removed,
/// truncated, written by anything but a WAL commit: a checkpoint, a restored backup, damage) is opened again, as every
/// plugin process opens it: a commit into a file nobody reads would be a lost acknowledged write, and a damaged file
/// must get the plugin's own error. A store no longer kept is closed when the last call using it is done.
/// </summary>
internal sealed class StoreKeeper(CallClock clock) : IStoreKeeper, IDisposable
{
    public const int MaxKept = 16;

    private sealed class Kept(SqliteLeaseStore store, Stamp id)
    {
        public SqliteLeaseStore Store { get; } = store;
        public Stamp Id { get; set; } = id;
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
            var id = StampOf(path);
            if (_kept.TryGetValue(path, out var kept) && (kept.Id != id || id == default))
            {
                Retire(path, kept);
                kept = null;
            }
            if (kept is null)
            {
                var store = SqliteLeaseStore.Open(path, options with { BootClock = clock, WalTruncateBytes = StoreOptions.KeptWalTruncateBytes });
                kept = new Kept(store, StampOf(path));
                _kept[path] = kept;
            }
            kept.Uses++;
            kept.LastUsed = ++_tick;
            while (_kept.Count > MaxKept)
            {
                var oldest = _kept.MinBy(k => k.Value.LastUsed);
                Retire(oldest.Key, oldest.Value);
            }
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

    /// <summary>A file's identity and the marks a write leaves on it.</summary>
    internal readonly record struct Stamp(ulong Device, ulong Inode, ulong Size, long Modified, long Changed);

    /// <summary>The file's device and inode (statx: the same layout on every architecture), or default when it is not there.</summary>
    internal static (ulong, ulong) FileId(string path) => StampOf(path) is var s ? (s.Device, s.Inode) : default;

    private static Stamp StampOf(string path)
    {
        Span<byte> b = stackalloc byte[256];
        if (Libc.statx(Libc.AtFdcwd, path, 0, Libc.StatxBasicStats, b) != 0) return default;
        // struct statx: stx_ino u64 at 32, stx_size u64 at 40, stx_ctime at 96 and stx_mtime at 112 (i64 seconds,
        // u32 nanoseconds), stx_dev_major and stx_dev_minor u32 at 136 and 140.
        static long Time(ReadOnlySpan<byte> t) => BinaryPrimitives.ReadInt64LittleEndian(t) * 1_000_000_000 + BinaryPrimitives.ReadUInt32LittleEndian(t[8..]);
        var device = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(b[136..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(b[140..]);
        return new Stamp(device, BinaryPrimitives.ReadUInt64LittleEndian(b[32..]), BinaryPrimitives.ReadUInt64LittleEndian(b[40..]), Time(b[112..]), Time(b[96..]));
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var (path, kept) in _kept.ToList()) Retire(path, kept);
        }
    }
}
