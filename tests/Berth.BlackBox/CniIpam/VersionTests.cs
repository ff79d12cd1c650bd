
namespace Berth.BlackBox.CniIpam;

public sealed class VersionTests
{
    [Fact]
    public void Version_lists_every_supported_version_and_echoes_the_requested_one()
    {
        var result = PluginRun.Run(Repo.Plugin, "VERSION", """{"cniVersion":"0.4.0"}""");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("0.4.0", result.Json.GetProperty("cniVersion").GetString());
        Assert.Equal(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
            result.Json.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
    }
}
