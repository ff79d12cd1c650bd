using Berth.HostAgent.Serving;
using Berth.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Tests.HostAgent.Serving;

/// <summary>The plugin server on sockets it cannot serve: it says so and serves nothing, and the agent goes on.</summary>
public sealed class PluginServerTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Fact]
    public async Task A_socket_path_longer_than_a_unix_socket_can_have_is_not_served_and_does_not_stop_the_agent()
    {
        // BERTH_PLUGIN_SOCKET can name what agent.json refuses; before, the host's start threw and the agent died.
        var socket = _dir.File(new string('x', 120) + "/plugin.sock");
        using var server = new PluginServer(socket, new FakeBootClock("boot-1"), TimeProvider.System, NullLogger.Instance);

        await server.StartAsync(default);

        Assert.False(server.Serving);
        Assert.False(File.Exists(socket));
        await server.StopAsync(default);
    }

    public void Dispose() => _dir.Dispose();
}
