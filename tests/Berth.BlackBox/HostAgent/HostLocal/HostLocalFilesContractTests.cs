namespace Berth.BlackBox.HostAgent.HostLocal;

/// <summary>
/// The contract behind the guardian's unit tests: the files HostLocalFiles writes are the files Debian's real
/// host-local writes for the same ADDs and DELs, names, bytes and modes.
/// </summary>
public sealed class HostLocalFilesContractTests : IDisposable
{
    private readonly TempDir _dir = new();

    private string Real => _dir.File("real");

    private string Written => _dir.File("written");

    private string RealAdd(string containerId, string ifName) => HostLocalPlugin.Add(HostLocalPlugin.Config(Real), containerId, ifName);

    private void RealDel(string containerId, string ifName)
    {
        var result = PluginRun.Run(Repo.HostLocal, "DEL", HostLocalPlugin.Config(Real), containerId, ifName);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static string[] Tree(string dataDir)
    {
        var dir = Path.Combine(dataDir, "cbr0");
        return [.. Directory.GetFileSystemEntries(dir).Order(StringComparer.Ordinal).Select(path =>
            $"{Path.GetFileName(path)} {File.GetUnixFileMode(path)} {Convert.ToHexString(File.ReadAllBytes(path))}")
            .Prepend($". {File.GetUnixFileMode(dir)}")];
    }

    [Fact]
    public void The_files_written_for_the_unit_tests_are_the_files_host_local_writes()
    {
        var real = new List<string> { RealAdd("c1", "eth0"), RealAdd("c2", "net1") };
        RealDel("c1", "eth0");
        real.Add(RealAdd("c3", "eth0"));

        var written = new List<string> { HostLocalFiles.Add(Written, "cbr0", "10.77.0.", "c1"), HostLocalFiles.Add(Written, "cbr0", "10.77.0.", "c2", "net1") };
        File.Delete(Path.Combine(Written, "cbr0", written[0]));
        written.Add(HostLocalFiles.Add(Written, "cbr0", "10.77.0.", "c3"));

        Assert.Equal(["10.77.0.2", "10.77.0.3", "10.77.0.4"], real);
        Assert.Equal(real, written);
        Assert.Equal(Tree(Real), Tree(Written));
    }

    public void Dispose() => _dir.Dispose();
}
