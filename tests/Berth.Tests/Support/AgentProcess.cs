using System.Diagnostics;

namespace Berth.Tests.Support;

/// <summary>Runs the published berth-agent with arguments and extra environment, to completion.</summary>
public static class AgentProcess
{
    public static PluginResult Run(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(Repo.Agent) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment) start.Environment[k] = v;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill();
            throw new TimeoutException($"berth-agent {string.Join(' ', args)} did not exit");
        }
        return new PluginResult(p.ExitCode, stdout.Result, stderr);
    }
}
