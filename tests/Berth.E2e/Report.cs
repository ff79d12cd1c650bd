using System.Text;
using System.Text.RegularExpressions;

namespace Berth.E2e;

/// <summary>The table of the run, for the terminal, artifacts/e2e/e2e.md and the README.</summary>
internal static class Report
{
    public const string Begin = "<!-- e2e table: written by make e2e -->";
    public const string End = "<!-- end of e2e table -->";

    public static string Table(IReadOnlyList<Outcome> outcomes, Options options, string containerd)
    {
        var t = new StringBuilder();
        t.AppendLine("| IPAM | pods created | hard reboots | addresses leaked after the last reboot | pods that got no address | leaked after the lost sandboxes were stopped |");
        t.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var o in outcomes)
            t.AppendLine($"| {o.Ipam} | {o.PodsCreated} | {o.Reboots} | {o.LeakedAfterLastReboot} of {o.AddressRange} | {o.PodsFailed} | {o.LeakedAfterStop} |");
        t.AppendLine();
        t.AppendLine($"containerd {containerd} with Debian's bridge plugin, one /28 ({Node.RangeSize} pod addresses) per IPAM, " +
                     $"{options.Pods} pods per boot; each simulated hard reboot kills the runtime, its shims and the sandboxes, empties /run and changes the boot ID; " +
                     "berth's node, and the node whose CNI config keeps host-local while berth-agent guards its files (`hostLocal.dirs`), " +
                     "run `berth-agent recover` before containerd starts. The fourth node keeps host-local too, and berth-agent runs as the pod of " +
                     "`deploy/kubernetes/berth.yaml`'s DaemonSet (its settings taken from the parsed manifest, through CRI as a kubelet would), started after " +
                     "containerd and after the boot's first pod in every boot, its store in the node's /var/lib/cni; each of its pods also joins a second network " +
                     "naming berth with that store (as with flannel naming berth), where no lease of a lost pod is left after the late recovery; its leaks are counted once the agent has had " +
                     $"its grace period ({PodScenarios.GraceSeconds} s, intervalSeconds {PodScenarios.IntervalSeconds}). Nothing stops the lost sandboxes during the reboots; " +
                     "the last column is after the run stops and removes them, as a kubelet that still knows the pods would.");
        var failure = outcomes.FirstOrDefault(o => o.FirstFailure is not null);
        if (failure is not null) t.AppendLine().AppendLine($"{failure.Ipam}'s first failed pod: `{Shorten(failure.FirstFailure!)}`");
        return t.ToString();
    }

    public static void IntoReadme(string readme, string table)
    {
        var text = File.ReadAllText(readme);
        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin) throw new E2eFailure($"{readme} has no '{Begin}' ... '{End}' block for the table");
        File.WriteAllText(readme, text[..(begin + Begin.Length)] + "\n" + table + text[end..]);
    }

    /// <summary>The runtime's message without the socket path and call name, sandbox IDs cut to 12 characters.</summary>
    private static string Shorten(string message)
    {
        var status = Regex.Match(message, @"status \d+: (.*)$", RegexOptions.Singleline);
        return Regex.Replace(status.Success ? status.Groups[1].Value : message, "([0-9a-f]{12})[0-9a-f]{52}", "$1");
    }
}
