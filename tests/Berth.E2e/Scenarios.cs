using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Berth.E2e;

/// <summary>What one IPAM did through the reboots: the row of the table.</summary>
internal sealed record Outcome(string Ipam, int PodsCreated, int PodsFailed, int Reboots, int LeakedAfterLastReboot, int LeakedAfterStop, int AddressRange, string? FirstFailure);

/// <summary>The checks of the run; a broken promise is a violation, and any violation fails the run.</summary>
internal sealed class Verdicts
{
    public List<string> Violations { get; } = [];

    public void Expect(bool holds, string promise)
    {
        Console.WriteLine($"e2e:   {(holds ? "ok  " : "FAIL")} {promise}");
        if (!holds) Violations.Add(promise);
    }
}

internal static class Scenarios
{
    /// <summary>
    /// A pod's life (address, lease with the pod's name, release on stop and remove), then boots with
    /// <paramref name="podsPerBoot"/> new pods each, separated by hard reboots; berth's node runs
    /// `berth-agent recover` before the runtime starts again, as berth-recover.service does.
    /// </summary>
    public static async Task<(Outcome Outcome, List<Pod> Running)> RebootsAsync(Node node, int podsPerBoot, int reboots, int rangeSize, bool recover, Verdicts v)
    {
        var berth = node.Ipam == "berth";
        var guarded = node.Protected;
        Console.WriteLine($"e2e: {node.Label}: a pod's life");
        var (life, error) = await node.RunPodAsync("lifecycle");
        v.Expect(life is { Ip.Length: > 0 }, $"{node.Label}: RunPodSandbox gives the pod an address ({life?.Ip ?? error})");
        if (life is not null)
        {
            v.Expect(node.HeldAddresses().Contains(life.Ip), $"{node.Label}: the IPAM holds the address the runtime reports ({life.Ip})");
            if (berth)
            {
                var lease = node.Leases().SingleOrDefault(l => l.Address == life.Ip);
                v.Expect(lease is { PodNamespace: Node.PodNamespace, PodName: "lifecycle" } && life.SandboxId.StartsWith(lease.ContainerId, StringComparison.Ordinal),
                    $"berth: `berth-agent leases` names the pod {Node.PodNamespace}/lifecycle and its sandbox");
            }
            await node.StopAndRemoveAsync(life);
            v.Expect(!node.HeldAddresses().Contains(life.Ip), $"{node.Label}: StopPodSandbox and RemovePodSandbox release {life.Ip}");
        }

        int created = 1, failed = life is null ? 1 : 0, leaked = 0;
        string? firstFailure = error;
        var running = new List<Pod>();
        for (var boot = 1; boot <= reboots + 1; boot++)
        {
            Console.WriteLine($"e2e: {node.Label}: boot {boot} ({node.BootId}): {podsPerBoot} new pods");
            running.Clear();
            for (var i = 1; i <= podsPerBoot; i++)
            {
                var (pod, podError) = await node.RunPodAsync($"boot{boot}-pod{i}");
                created++;
                if (pod is null)
                {
                    failed++;
                    firstFailure ??= podError;
                    Console.WriteLine($"e2e:   boot{boot}-pod{i}: no address: {podError}");
                    continue;
                }
                running.Add(pod);
                if (berth) v.Expect(node.Leases().Any(l => l.Address == pod.Ip && l.PodName == pod.Name), $"berth: boot{boot}-pod{i} has {pod.Ip}, leased to it");
            }
            await ExpectNothingHeldTwiceAsync(node, v);
            if (guarded) v.Expect(running.Count == podsPerBoot, $"{node.Label}: every pod of boot {boot} got an address");
            if (boot > reboots) break;

            Console.WriteLine($"e2e: {node.Label}: hard reboot {boot}");
            await node.HardRebootAsync(async () =>
            {
                if (!guarded || !recover) return;
                var recovery = Host.Run(node.Agent, ["recover", "--config", node.AgentConfig()], node.AgentEnvironment);
                Console.Write(string.Concat(recovery.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(1).Select(l => $"e2e:   berth-agent recover: {l}\n")));
                v.Expect(recovery.ExitCode == 0, $"{node.Label}: berth-agent recover exits 0 ({recovery.Stderr.Trim()})");
                await Task.CompletedTask;
            });
            var ready = (await node.ReadyPodsAsync()).Select(p => p.Ip).ToHashSet();
            leaked = node.HeldAddresses().Count(a => !ready.Contains(a));
            Console.WriteLine($"e2e:   after reboot {boot}: {leaked} addresses held for pods that no longer exist");
            if (guarded) v.Expect(leaked == 0, $"{node.Label}: no address of a pod lost in reboot {boot} stays leased");
        }

        // A kubelet that still knows the lost pods stops and removes their sandboxes; containerd sends a DEL for
        // each, without a netns. Pods deleted while the node was down are never stopped: that is the leak above.
        var lost = await node.NotReadySandboxesAsync();
        var cleanupErrors = 0;
        using (var cri = node.Runtime.Cri())
        {
            foreach (var id in lost)
            {
                try
                {
                    await cri.StopPodSandboxAsync(id);
                    await cri.RemovePodSandboxAsync(id);
                }
                catch (Grpc.Core.RpcException e)
                {
                    cleanupErrors++;
                    Console.WriteLine($"e2e:   stopping lost sandbox {id[..12]}: {e.Status.Detail}");
                }
            }
        }
        var readyNow = (await node.ReadyPodsAsync()).Select(p => p.Ip).ToHashSet();
        var leakedAfterStop = node.HeldAddresses().Count(a => !readyNow.Contains(a));
        Console.WriteLine($"e2e:   after stopping and removing the {lost.Count} lost sandboxes: {leakedAfterStop} addresses held for pods that no longer exist");
        v.Expect(cleanupErrors == 0, $"{node.Label}: the lost sandboxes can be stopped and removed");
        if (guarded) v.Expect(leakedAfterStop == 0, $"{node.Label}: stopping the lost sandboxes later is harmless (nothing released twice, nothing leaked)");
        return (new Outcome(node.Label, created, failed, reboots, leaked, leakedAfterStop, rangeSize, firstFailure), running);
    }

    /// <summary>Every ready pod's address is held by the IPAM, and no two ready pods share one.</summary>
    internal static async Task ExpectNothingHeldTwiceAsync(Node node, Verdicts v)
    {
        var ready = await node.ReadyPodsAsync();
        var held = node.HeldAddresses();
        v.Expect(ready.Select(p => p.Ip).Distinct().Count() == ready.Count && held.Distinct().Count() == held.Count,
            $"{node.Label}: no address is held twice ({ready.Count} ready pods, {held.Count} addresses held)");
        v.Expect(ready.All(p => held.Contains(p.Ip)), $"{node.Label}: every ready pod's address is held by the IPAM");
    }

    /// <summary>
    /// The agent's live path: a sandbox dies without a DEL while containerd keeps running; `berth-agent run`
    /// (short interval and grace period) releases its address once it is older than the grace period (a berth
    /// lease, or on a guarded node host-local's file), and touches no running pod's.
    /// </summary>
    public static async Task LiveReconcileAsync(Node node, IReadOnlyList<Pod> running, Verdicts v)
    {
        const int grace = 8;
        Console.WriteLine($"e2e: {node.Label}: a sandbox dies without a DEL while berth-agent run watches (grace period {grace} s)");
        var config = node.AgentConfig(intervalSeconds: 1, gracePeriodSeconds: grace);
        var (victim, error) = await node.RunPodAsync("live-victim");
        if (victim is null) throw new E2eFailure($"{node.Label}: no address for the live reconcile's pod: {error}");
        var before = node.HeldAddresses();
        var contents = HeldFiles(node);
        var log = Path.Combine(node.Dir, "agent.log");
        using var agent = Exec.Start("/bin/sh", ["-c", "exec \"$0\" run --config \"$1\" >\"$2\" 2>&1", node.Agent, config, log], new ExecOptions
        {
            Environment = ExecOptions.Text(node.AgentEnvironment),
            Unset = ["NOTIFY_SOCKET"],
            Timeout = Timeout.InfiniteTimeSpan,
        });
        try
        {
            await node.KillSandboxAsync(victim);
            await Host.AwaitAsync(() => agent.HasExited ? throw new E2eFailure($"berth-agent run exited {agent.Wait().ExitCode}; see {log}") : !node.HeldAddresses().Contains(victim.Ip),
                TimeSpan.FromSeconds(120), $"berth-agent run to release {victim.Ip} of the dead sandbox {victim.Name}");
            var after = node.HeldAddresses();
            v.Expect(before.Where(a => a != victim.Ip).All(after.Contains) && after.Count == before.Count - 1,
                $"{node.Label}: the dead sandbox's address {victim.Ip} is released; the {running.Count} running pods' addresses are untouched");
            if (node.Guarded)
            {
                var untouched = HeldFiles(node);
                v.Expect(contents.Where(f => f.Key != victim.Ip).All(f => untouched.TryGetValue(f.Key, out var c) && c == f.Value),
                    $"{node.Label}: the running pods' host-local files are byte for byte as host-local wrote them");
            }
            var history = Host.Run(node.Agent, ["history", "--json", "--store", node.Store], node.AgentEnvironment);
            using var doc = JsonDocument.Parse(history.Stdout);
            var events = doc.RootElement.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("address").GetString() == victim.Ip).ToList();
            var released = events.LastOrDefault(e => e.GetProperty("action").GetString() == "release");
            var reason = node.Guarded ? "host-local-reconcile" : "reconcile";
            var found = released.ValueKind == JsonValueKind.Object && released.GetProperty("reason").GetString() == reason;
            // A berth lease's age counts from its ADD; a host-local file's from when the agent first saw it.
            var allocated = node.Guarded ? (JsonElement?)null : events.LastOrDefault(e => e.GetProperty("action").GetString() == "allocate");
            var held = found && allocated is { ValueKind: JsonValueKind.Object } a2
                ? DateTimeOffset.Parse(released.GetProperty("at").GetString()!, CultureInfo.InvariantCulture) - DateTimeOffset.Parse(a2.GetProperty("at").GetString()!, CultureInfo.InvariantCulture)
                : TimeSpan.FromSeconds(grace);
            v.Expect(found && held >= TimeSpan.FromSeconds(grace),
                $"{node.Label}: the history records the agent's release ({reason}){(node.Guarded ? "" : $", {held.TotalSeconds:0.0} s after the ADD, not within the grace period")}");
        }
        finally
        {
            if (!agent.HasExited) Host.Terminate(agent.Id);
        }
        // Killed (and marked timed out) when it does not stop within 30 s of SIGTERM.
        var stopped = agent.Wait(TimeSpan.FromSeconds(30));
        v.Expect(stopped is { ExitCode: 0, TimedOut: false }, $"{node.Label}: berth-agent run stops cleanly on SIGTERM ({stopped})");
    }

    /// <summary>host-local's lease files on a guarded node, by address, with their bytes.</summary>
    private static Dictionary<string, string> HeldFiles(Node node) => node.Guarded
        ? node.HeldAddresses().ToDictionary(a => a, a => File.ReadAllText(Path.Combine(node.DataDir, node.Network, a)))
        : [];
}
