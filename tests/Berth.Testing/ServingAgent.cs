using System.Runtime.CompilerServices;

namespace Berth.Testing;

/// <summary>
/// The switch that runs every black-box plugin test a second time with berth-agent answering the plugin's calls:
/// with <see cref="Switch"/>=1 in the environment, the first plugin run starts one `berth-agent run` serving a socket
/// of its own for the rest of the test run, and every plugin the harness runs is pointed at it. Without the switch
/// the plugin is pointed at a socket that does not exist, so it does each call itself after one failed connect, as
/// on a node without the agent. Either way the plugin's answers must be the same: the tests do not know which ran.
/// </summary>
public static class ServingAgent
{
    /// <summary>The environment variable that turns the agent on for a test run (`make test` runs the plugin's tests both ways).</summary>
    public const string Switch = "BERTH_TEST_AGENT";

    /// <summary>The plugin's and the agent's socket variable (Shared.Plugin.PluginSocket.Variable).</summary>
    public const string SocketVariable = "BERTH_PLUGIN_SOCKET";

    public static bool Enabled => Environment.GetEnvironmentVariable(Switch) == "1";

    private static readonly Lazy<(string Socket, SocketAgent? Agent)> Started = new(Start);

    /// <summary>The socket every plugin run by the harness is given: the serving agent's, or one that never exists.</summary>
    public static string Socket => Started.Value.Socket;

    /// <summary>The agent serving this test run, or null without the switch.</summary>
    public static SocketAgent? Agent => Started.Value.Agent;

    /// <summary>What a plugin run gets in its environment for this mode.</summary>
    public static IReadOnlyDictionary<string, string> PluginEnvironment => new Dictionary<string, string> { [SocketVariable] = Socket };

    /// <summary>
    /// Every process the tests start inherits "off" unless it is given a socket: an agent a test starts serves no
    /// socket, and a plugin started without the harness's environment forwards nothing, so nothing a test starts
    /// answers another test's calls, nor those of a berth-agent installed on the machine.
    /// </summary>
#pragma warning disable CA2255 // A module initializer in a library: every test project's processes must inherit it before any starts.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void NothingServesByDefault()
    {
        if (Environment.GetEnvironmentVariable(SocketVariable) is null) Environment.SetEnvironmentVariable(SocketVariable, "off");
    }

    private static (string, SocketAgent?) Start()
    {
        // Without the switch: a socket in a directory that is never made.
        if (!Enabled) return (Path.Combine(Path.GetTempPath(), $"berth-no-agent-{Guid.NewGuid():N}", "plugin.sock"), null);
        var dir = Directory.CreateTempSubdirectory("berth-serving-agent-").FullName;
        var agent = SocketAgent.Start(dir, Path.Combine(dir, "run", "plugin.sock"), metrics: true);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            agent.Dispose();
            Directory.Delete(dir, recursive: true);
        };
        return (agent.Socket, agent);
    }
}
