namespace Berth.Testing;

/// <summary>
/// Runs a CNI plugin executable as a runtime does (CNI_* in the environment, nothing else inherited but PATH,
/// the network config on stdin), and the agent with arguments, through the one runner.
/// </summary>
public static class PluginRun
{
    public static ExecResult Run(string executable, string command, string config, string containerId = "", string ifName = "eth0",
        string netns = "", string cniArgs = "", IReadOnlyDictionary<string, string>? extraEnvironment = null, TimeSpan? timeout = null) =>
        Start(executable, command, config, containerId, ifName, netns, cniArgs, extraEnvironment, timeout).Wait();

    /// <summary>Started and left running, for tests that start many at once or kill them.</summary>
    public static Running Start(string executable, string command, string config, string containerId = "", string ifName = "eth0",
        string netns = "", string cniArgs = "", IReadOnlyDictionary<string, string>? extraEnvironment = null, TimeSpan? timeout = null)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_IFNAME"] = ifName,
            ["CNI_NETNS"] = netns,
            ["CNI_ARGS"] = cniArgs,
            ["CNI_PATH"] = $"{Path.GetDirectoryName(Repo.Plugin)}:{Repo.DebianCniDir}",
        };
        foreach (var (k, v) in Repo.ExecEnvironment) env[k] = v;
        foreach (var (k, v) in extraEnvironment ?? new Dictionary<string, string>()) env[k] = v;
        return Exec.Start(executable, [], Plugin(env, config, timeout ?? TimeSpan.FromSeconds(60)));
    }

    /// <summary>
    /// What a runtime hands a plugin: exactly this environment (and PATH), the config on stdin; and the socket of the
    /// agent serving this test run, or one that does not exist (<see cref="ServingAgent"/>), unless the test names one.
    /// </summary>
    public static ExecOptions Plugin(IReadOnlyDictionary<string, string> environment, string stdin, TimeSpan timeout) => new()
    {
        Environment = ExecOptions.Text(new Dictionary<string, string>(ServingAgent.PluginEnvironment.Concat(environment).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value))
        {
            ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
        }),
        OnlyThisEnvironment = true,
        Stdin = System.Text.Encoding.UTF8.GetBytes(stdin),
        Timeout = timeout,
    };

    /// <summary>The published agent with arguments and extra environment, to completion.</summary>
    public static ExecResult Agent(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var env = new Dictionary<string, string>(Repo.ExecEnvironment);
        foreach (var (k, v) in environment) env[k] = v;
        return Exec.Run(Repo.Agent, args, new ExecOptions { Environment = ExecOptions.Text(env) });
    }
}
