using System.Diagnostics;
using System.Text.Json;

namespace Berth.Tests.Support;

/// <summary>What one run of a CNI plugin process gave back.</summary>
public sealed record PluginResult(int ExitCode, string Stdout, string Stderr)
{
    public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;

    /// <summary>The CNI error code printed on stdout, or null on success.</summary>
    public int? ErrorCode => ExitCode != 0 && Stdout.TrimStart().StartsWith('{') && Json.TryGetProperty("code", out var c) ? c.GetInt32() : null;

    /// <summary>The "ips[].address" values of an ADD result.</summary>
    public IReadOnlyList<string> Addresses => [.. Json.GetProperty("ips").EnumerateArray().Select(ip => ip.GetProperty("address").GetString()!)];

    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>
/// Runs a CNI plugin executable as a runtime does: CNI_* in the environment, the network config on stdin.
/// </summary>
public static class PluginRun
{
    public static PluginResult Run(string executable, string command, string config, string containerId = "", string ifName = "eth0",
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
        foreach (var (k, v) in extraEnvironment ?? new Dictionary<string, string>()) env[k] = v;
        return Exec(executable, env, config, timeout ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>Runs with exactly this environment (nothing inherited but PATH) and stdin.</summary>
    public static PluginResult Exec(string executable, IReadOnlyDictionary<string, string> environment, string stdin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var (k, v) in environment) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The plugin may exit before reading all of stdin (it refuses oversized input).
        }
        if (!process.WaitForExit(timeout))
        {
            process.Kill();
            throw new TimeoutException($"{executable} did not exit within {timeout}");
        }
        return new PluginResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
