using System.Diagnostics;

namespace Berth.Tests.Support;

/// <summary>
/// A plugin process started and left running, for tests that start many at once or kill them: start, then
/// await the exit (or kill first).
/// </summary>
public sealed class PluginProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;

    private PluginProcess(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public static PluginProcess Start(string command, string config, string containerId, string netns = "/var/run/netns/none",
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(Repo.Plugin)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Clear();
        start.Environment["CNI_COMMAND"] = command;
        start.Environment["CNI_CONTAINERID"] = containerId;
        start.Environment["CNI_IFNAME"] = "eth0";
        start.Environment["CNI_NETNS"] = netns;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        var process = Process.Start(start)!;
        try
        {
            process.StandardInput.Write(config);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // Killed before it read its input.
        }
        return new PluginProcess(process);
    }

    /// <summary>SIGKILL, wherever the process is.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill();
        }
        catch (InvalidOperationException)
        {
            // It had already exited.
        }
    }

    public async Task<PluginResult> ExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        return new PluginResult(_process.ExitCode, await _stdout, await _stderr);
    }

    /// <summary>True when the process was ended by a signal rather than by exiting.</summary>
    public bool Signalled => _process.HasExited && _process.ExitCode >= 128;

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
