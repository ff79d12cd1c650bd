using System.Text;
using Berth.HostAgent;

namespace Berth.Tests.HostAgent;

public sealed class AgentConfigTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static AgentConfig Parse(string json) => AgentConfig.Parse(Encoding.UTF8.GetBytes(json), "/etc/berth/agent.json");

    [Fact]
    public void Every_key_is_optional_with_the_documented_defaults()
    {
        var config = Parse("{}");

        Assert.Equal("/var/lib/berth/berth.db", config.Store);
        Assert.Equal(TimeSpan.FromSeconds(60), config.Interval);
        Assert.Equal(TimeSpan.FromMinutes(5), config.GracePeriod);
        Assert.Equal(["/run/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock", "/var/run/crio/crio.sock"], config.RuntimeSockets);
        Assert.Equal("127.0.0.1:9617", config.MetricsAddress.ToString());
        Assert.Equal(["/etc/cni/net.d"], config.CniConfDirs);
        Assert.False(config.DryRun);
    }

    [Fact]
    public void The_plugin_socket_is_a_path_or_off()
    {
        Assert.Equal("/srv/berth/plugin.sock", Parse("""{"pluginSocket":"/srv/berth/plugin.sock"}""").PluginSocket);
        Assert.Null(Parse("""{"pluginSocket":"off"}""").PluginSocket);
    }

    [Fact]
    public void A_missing_default_file_means_defaults_but_a_missing_named_file_is_an_error()
    {
        Assert.Equal(new AgentConfig().Store, AgentConfig.Load(null).Store);
        Assert.Contains("does not exist", Assert.Throws<AgentConfigException>(() => AgentConfig.Load(_dir.File("nope.json"))).Message);
    }

    [Fact]
    public void Settings_are_read()
    {
        var config = Parse("""{"store":"/srv/b.db","intervalSeconds":5,"gracePeriodSeconds":30,"runtimeSockets":[],"metricsAddress":"[::1]:9000","dryRun":true}""");

        Assert.Equal(("/srv/b.db", 5.0, 30.0, 0, "[::1]:9000", true),
            (config.Store, config.Interval.TotalSeconds, config.GracePeriod.TotalSeconds, config.RuntimeSockets.Count, config.MetricsAddress.ToString(), config.DryRun));
        Assert.False(Parse("""{"metricsAddress":"off"}""").MetricsEnabled);
        Assert.Equal(["/var/lib/rancher/k3s/agent/etc/cni/net.d", "/etc/cni/net.d"],
            Parse("""{"cniConfDirs":["/var/lib/rancher/k3s/agent/etc/cni/net.d","/etc/cni/net.d"]}""").CniConfDirs);
    }

    [Theory]
    [InlineData("""{"gracePeriod":5}""", "unknown key \"gracePeriod\"")]
    [InlineData("""{"intervalSeconds":0}""", "\"intervalSeconds\"")]
    [InlineData("""{"intervalSeconds":"60"}""", "\"intervalSeconds\"")]
    [InlineData("""{"store":"relative.db"}""", "\"store\"")]
    [InlineData("""{"runtimeSockets":"/run/containerd/containerd.sock"}""", "\"runtimeSockets\"")]
    [InlineData("""{"metricsAddress":"localhost"}""", "\"metricsAddress\"")]
    [InlineData("""{"dryRun":"yes"}""", "\"dryRun\"")]
    [InlineData("""{"cniConfDirs":"/etc/cni/net.d"}""", "\"cniConfDirs\"")]
    [InlineData("""{"pluginSocket":"run/plugin.sock"}""", "\"pluginSocket\"")]
    [InlineData("""{"pluginSocket":false}""", "\"pluginSocket\"")]
    [InlineData("""{"pluginSocket":"/run/berth/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock"}""", "at most 107 bytes")]
    [InlineData("""{"cniConfDirs":["net.d"]}""", "\"cniConfDirs\"")]
    [InlineData("""[1]""", "expected a JSON object")]
    [InlineData("""{"store": """, "not valid JSON")]
    public void An_invalid_file_is_an_error_naming_the_key(string json, string message)
    {
        Assert.Contains(message, Assert.Throws<AgentConfigException>(() => Parse(json)).Message);
    }

    public void Dispose() => _dir.Dispose();
}
