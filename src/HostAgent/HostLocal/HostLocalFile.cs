using System.Net;

namespace Berth.HostAgent.HostLocal;

/// <summary>
/// One host-local lease: the file <c>Dir/Network/Address</c>, holding "containerID\r\nifname" (or only the ID, in
/// files of older host-local versions: <see cref="IfName"/> is then empty).
/// </summary>
internal sealed record HostLocalFile(string Dir, string Network, IPAddress Address, string ContainerId, string IfName)
{
    /// <summary>The file's path, for messages and the history.</summary>
    public string Path => System.IO.Path.Combine(Dir, Network, Address.ToString());
}

/// <summary>A round-robin position host-local keeps in <c>last_reserved_ip.N</c>.</summary>
internal sealed record HostLocalCursor(string Dir, string Network, int RangeSet, IPAddress Last);

/// <summary>
/// What one read of host-local's directories found, and what it skipped, with why. <see cref="Unread"/> holds the
/// directories (DIR, or DIR/NETWORK) that exist but could not be read: what they hold is unknown, not gone.
/// <see cref="EmptyFiles"/> holds the address-named files that are empty: host-local never syncs its writes, and after a
/// power cut ext4 can keep a new file without its data. Such a file names no owner, yet host-local takes its address
/// for reserved forever: it is not a warning but work for the guardian, which deletes it under host-local's lock.
/// </summary>
internal sealed record HostLocalScan(IReadOnlyList<HostLocalFile> Files, IReadOnlyList<HostLocalCursor> Cursors, IReadOnlyList<string> Warnings, IReadOnlySet<string> Unread,
    IReadOnlyList<HostLocalFile> EmptyFiles)
{

    /// <summary>Whether the scan read the network's directory, or found it gone: then a file not in <see cref="Files"/> is gone.</summary>
    public bool Read(string dir, string network) => !Unread.Contains(dir) && !Unread.Contains(System.IO.Path.Combine(dir, network));
}
