using System.CommandLine;
using Berth.HostAgent.Node;

namespace Berth.HostAgent;

/// <summary>The commands of the node add-on (deploy/kubernetes): what the DaemonSet's containers run besides `run`.</summary>
internal static partial class Cli
{
    private static void AddNodeCommands(RootCommand root)
    {
        var to = new Option<string>("--to") { Description = "The host's CNI bin directory, as mounted in the container (e.g. /host/opt/cni/bin)", Required = true };
        var from = new Option<string?>("--from") { Description = $"The plugin to install (default: {CniInstall.DefaultSource})" };
        var enabled = new Option<string?>("--enabled") { Description = "\"true\" or \"false\" (the DaemonSet passes its ConfigMap's installCni here); false installs nothing" };
        var install = new Command("install-cni", "Install the berth plugin into a CNI bin directory atomically (written beside, synced, renamed); the DaemonSet's init container") { to, from, enabled };
        install.SetAction(parse => Guard(() =>
        {
            switch (parse.GetValue(enabled))
            {
                case null or "true":
                    break;
                case "false":
                    Console.WriteLine($"install-cni is off (--enabled false: the ConfigMap's installCni): nothing installed in {parse.GetValue(to)}");
                    return Ok;
                case var other:
                    Console.Error.WriteLine($"berth-agent: install-cni: --enabled must be \"true\" or \"false\", not \"{other}\" (the ConfigMap's installCni)");
                    return Usage;
            }
            try
            {
                var result = CniInstall.Install(parse.GetValue(from) ?? CniInstall.DefaultSource, parse.GetValue(to)!);
                Console.WriteLine(result.Changed ? $"installed {result.Target} ({result.Bytes} bytes)" : $"{result.Target} is already this berth: nothing to do");
                return Ok;
            }
            catch (CniInstallException e)
            {
                Console.Error.WriteLine($"berth-agent: {e.Message}");
                return Error;
            }
        }));
        root.Subcommands.Add(install);
    }
}
