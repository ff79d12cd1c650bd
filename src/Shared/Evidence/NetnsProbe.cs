using System.Runtime.InteropServices;
using Berth.Shared.Platform;

namespace Berth.Shared.Evidence;

/// <summary>
/// Probes namespace files with stat(2) and statfs(2): a live namespace pinned at /var/run/netns/X or seen
/// through /proc/PID/ns/net is a file of the nsfs filesystem whose inode names the namespace.
/// </summary>
public sealed class NetnsProbe : INetnsProbe
{
    private const long NsfsMagic = 0x6e736673;

    /// <inheritdoc />
    public ulong? Inode(string path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\0')) return null;
        // struct stat and struct statfs are read through buffers: st_ino sits at offset 8 and f_type at 0
        // on every 64-bit Linux ABI, which is all we need from them.
        Span<byte> stat = stackalloc byte[256];
        Span<byte> fs = stackalloc byte[256];
        if (Libc.stat(path, stat) != 0 || Libc.statfs(path, fs) != 0) return null;
        if (MemoryMarshal.Read<long>(fs) != NsfsMagic) return null;
        return MemoryMarshal.Read<ulong>(stat[8..]);
    }
}
