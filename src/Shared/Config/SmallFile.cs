namespace Berth.Shared.Config;

/// <summary>A small file that the config names and someone else writes (resolv.conf, flannel's subnet file).</summary>
public static class SmallFile
{
    /// <summary>
    /// The file's bytes; an <see cref="IOException"/> saying so when it holds more than <paramref name="maxBytes"/>.
    /// Never reads more than one byte past the limit: a size from stat says nothing of /dev/zero or a file still
    /// growing.
    /// </summary>
    public static byte[] Read(string path, int maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        var buffer = new byte[maxBytes + 1];
        int total = 0, read;
        while (total < buffer.Length && (read = stream.Read(buffer, total, buffer.Length - total)) > 0) total += read;
        if (total > maxBytes) throw new IOException($"larger than {maxBytes / 1024} KiB");
        return buffer[..total];
    }
}
