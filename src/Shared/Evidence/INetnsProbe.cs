namespace Berth.Shared.Evidence;

/// <summary>Tells whether a path is a network namespace and which one.</summary>
public interface INetnsProbe
{
    /// <summary>
    /// The inode of the network namespace at <paramref name="path"/>, or null when the path does not exist or
    /// is not a namespace (for example a plain file left on disk after a reboot).
    /// </summary>
    ulong? Inode(string path);
}
