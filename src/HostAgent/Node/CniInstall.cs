using Berth.Shared.Platform;

namespace Berth.HostAgent.Node;

/// <summary>
/// `berth-agent install-cni --to DIR`: the DaemonSet's init container puts the plugin into the host's CNI bin
/// directory (the image has no shell, so no `cp`). A runtime may exec DIR/berth at any moment, so the file is never
/// seen half-written: the bytes go to DIR/.berth.new (created 0755, truncated if a killed install left one), are
/// fsynced, then renamed over DIR/berth (rename(2) replaces atomically: a running ADD keeps the old inode), and
/// the directory is fsynced so the rename itself survives a power cut. An identical file already in place is left
/// as it is (the pod restarts on every boot; nothing is rewritten then).
/// </summary>
internal static class CniInstall
{
    public const string Name = "berth";

    /// <summary>The plugin is about 4 MiB; anything past this is not it.</summary>
    private const int MaxPluginBytes = 64 << 20;
    private const string Temporary = ".berth.new";

    /// <summary>The plugin inside the image (and beside berth-agent in a package install).</summary>
    public static string DefaultSource => Path.Combine(AppContext.BaseDirectory, Name);

    public sealed record Result(string Target, bool Changed, long Bytes);

    public static Result Install(string source, string toDir)
    {
        if (!Path.IsPathFullyQualified(toDir)) throw new CniInstallException($"install-cni: --to {toDir} must be an absolute path");
        if (!Directory.Exists(toDir)) throw new CniInstallException($"install-cni: {toDir} does not exist: mount the host's CNI bin directory there (hostPath, type Directory)");
        byte[] bytes;
        try
        {
            // Bounded: a --from that names /dev/zero (or a file still growing) is an error, not the agent's memory.
            bytes = Shared.Config.SmallFile.Read(source, MaxPluginBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniInstallException($"install-cni: cannot read the plugin {source}: {e.Message}");
        }
        if (bytes.Length < 4 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
        {
            throw new CniInstallException($"install-cni: {source} is not an executable (ELF) file");
        }
        var target = Path.Combine(toDir, Name);
        if (Same(target, bytes)) return new Result(target, false, bytes.Length);

        var temporary = Path.Combine(toDir, Temporary);
        try
        {
            const UnixFileMode executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
            // A symlink planted at the temporary name is replaced, not followed: delete first, then create new.
            File.Delete(temporary);
            using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = executable }))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temporary, executable);
            File.Move(temporary, target, overwrite: true);
            SyncDirectory(toDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Left behind; the next install truncates it. The error below is what matters.
            }
            throw new CniInstallException($"install-cni: cannot install {target}: {e.Message}");
        }
        return new Result(target, true, bytes.Length);
    }

    private static bool Same(string target, byte[] bytes)
    {
        try
        {
            var info = new FileInfo(target);
            if (info.LinkTarget is not null || !info.Exists || info.Length != bytes.Length) return false;
            return File.ReadAllBytes(target).AsSpan().SequenceEqual(bytes) && (File.GetUnixFileMode(target) & UnixFileMode.OtherExecute) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void SyncDirectory(string dir)
    {
        var fd = Libc.open(dir, Libc.ORdonly | Libc.ODirectory | Libc.OCloexec, 0);
        if (fd < 0) throw new IOException($"cannot open {dir} to sync it (errno {Libc.Errno})");
        try
        {
            if (Libc.fsync(fd) != 0) throw new IOException($"cannot sync {dir} (errno {Libc.Errno})");
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }


}

/// <summary>install-cni cannot do what it was asked; the message says why and what to do.</summary>
internal sealed class CniInstallException(string message) : Exception(message);
