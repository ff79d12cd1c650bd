namespace Berth.BlackBox.HostAgent.Node;

/// <summary>The published agent's install-cni, as the DaemonSet's init container runs it, installing the published plugin.</summary>
public sealed class CniInstallCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _bin;

    public CniInstallCommandTests()
    {
        Repo.RequireBuilt();
        _bin = Directory.CreateDirectory(_dir.File("bin")).FullName;
    }

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("false", 0, "install-cni is off")]
    [InlineData("yes", 2, "--enabled must be \"true\" or \"false\"")]
    [InlineData("true", 0, "installed ")]
    public void The_command_takes_the_ConfigMaps_switch_as_it_comes(string enabled, int exit, string says)
    {
        var r = PluginRun.Agent(new Dictionary<string, string>(), "install-cni", "--to", _bin, "--from", Repo.Plugin, "--enabled", enabled);

        Assert.True(r.ExitCode == exit, r.ToString());
        Assert.Contains(says, r.Stdout + r.Stderr);
        Assert.Equal(enabled == "true", File.Exists(Path.Combine(_bin, "berth")));
    }
}
