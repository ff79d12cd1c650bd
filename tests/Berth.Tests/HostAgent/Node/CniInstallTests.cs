using Berth.HostAgent.Node;

namespace Berth.Tests.HostAgent.Node;

/// <summary>install-cni, the DaemonSet's init container: the plugin lands whole, executable, and only where it was asked to.</summary>
public sealed class CniInstallTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _bin;
    private readonly string _source;

    public CniInstallTests()
    {
        _bin = Directory.CreateDirectory(_dir.File("bin")).FullName;
        _source = _dir.File("berth-src");
        File.WriteAllBytes(_source, [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3, 4, 5]);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_plugin_is_installed_executable_and_a_second_install_changes_nothing()
    {
        var first = CniInstall.Install(_source, _bin);
        var target = Path.Combine(_bin, "berth");

        Assert.True(first.Changed);
        Assert.Equal(File.ReadAllBytes(_source), File.ReadAllBytes(target));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(target));
        Assert.Equal(["berth"], Directory.EnumerateFileSystemEntries(_bin).Select(Path.GetFileName));
        var inode = new FileInfo(target).LastWriteTimeUtc;

        var second = CniInstall.Install(_source, _bin);

        Assert.False(second.Changed);
        Assert.Equal(inode, new FileInfo(target).LastWriteTimeUtc);
    }

    [Fact]
    public void An_older_plugin_is_replaced_by_rename_so_an_open_copy_keeps_its_bytes()
    {
        var target = Path.Combine(_bin, "berth");
        File.WriteAllBytes(target, [0x7f, (byte)'E', (byte)'L', (byte)'F', 9]);
        using var running = File.OpenRead(target);

        Assert.True(CniInstall.Install(_source, _bin).Changed);

        Assert.Equal(File.ReadAllBytes(_source), File.ReadAllBytes(target));
        var old = new byte[5];
        running.ReadExactly(old);
        Assert.Equal(9, old[4]);
    }

    [Fact]
    public void A_symlink_left_at_the_temporary_name_is_replaced_not_followed()
    {
        var outside = _dir.File("outside");
        File.WriteAllText(outside, "untouched");
        File.CreateSymbolicLink(Path.Combine(_bin, ".berth.new"), outside);

        CniInstall.Install(_source, _bin);

        Assert.Equal("untouched", File.ReadAllText(outside));
        Assert.Equal(File.ReadAllBytes(_source), File.ReadAllBytes(Path.Combine(_bin, "berth")));
        Assert.False(File.Exists(Path.Combine(_bin, ".berth.new")) || new FileInfo(Path.Combine(_bin, ".berth.new")).LinkTarget is not null);
    }

    [Theory]
    [InlineData("relative/bin", "must be an absolute path")]
    [InlineData("/nonexistent-berth-test-dir", "does not exist")]
    public void A_wrong_target_is_an_error_that_says_what_to_do(string to, string message)
    {
        var e = Assert.Throws<CniInstallException>(() => CniInstall.Install(_source, to));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_source_that_is_not_an_executable_is_refused_and_nothing_is_written()
    {
        File.WriteAllText(_source, "#!/bin/sh\n");

        var e = Assert.Throws<CniInstallException>(() => CniInstall.Install(_source, _bin));

        Assert.Contains("not an executable", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bin));
    }
}
