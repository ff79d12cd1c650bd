using System.Globalization;
using Berth.E2e;
using Berth.NodeCri;
using Berth.Testing.Cri;
using Grpc.Core;

// berth-node-cri: the kubelet's side of the node VM (make node-test, torture/node/). One CRI call per command,
// on the node's containerd socket; results on stdout as plain words for the guest's shell scripts:
//   wait SECONDS        until the runtime answers Version (exit 1 if it never does)
//   run NAME            RunPodSandbox of pod NAME (a new UID each time, as a kubelet re-creating it); prints "ID IP"
//   stop ID             StopPodSandbox then RemovePodSandbox (the runtime's two DELs)
//   ready               "ID NAME IP" of every ready sandbox
//   gone                StopPodSandbox + RemovePodSandbox of every sandbox that is not ready (what a kubelet does
//                       with the sandboxes lost in a reboot); prints how many
//   pod DIR ATTEMPT     runs the DaemonSet pod whose CRI requests the e2e wrote into DIR (berth.yaml, parsed; see
//                       tests/Berth.E2e/AgentPod.cs): sandbox, init containers to exit 0, app containers started;
//                       prints "SANDBOX-ID APP-CONTAINER-ID"
//   container ID        "STATE EXIT-CODE" of one container (CONTAINER_RUNNING 0, CONTAINER_EXITED 1, ...)
// `ready` lists the test's pods only (namespace node-test), not the agent's.
// Exit 0 on success; 1 and the runtime's message on stderr when the call failed; 2 on a usage error.
const string Socket = "/run/containerd/containerd.sock";
const string PodNamespace = "node-test";

if (args.Length == 0) return Usage();
using var cri = new KubeletCri(Socket, TimeSpan.FromSeconds(120));
try
{
    switch (args[0])
    {
        case "wait" when args.Length == 2 && int.TryParse(args[1], CultureInfo.InvariantCulture, out var seconds):
            return await WaitAsync(cri, TimeSpan.FromSeconds(seconds));
        case "run" when args.Length == 2:
            var id = await cri.RunPodSandboxAsync(new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = args[1], Namespace = PodNamespace, Uid = Guid.NewGuid().ToString(), Attempt = 0 },
                Hostname = args[1],
                LogDirectory = "/var/log/pods/" + args[1],
                Linux = new LinuxPodSandboxConfig(),
            });
            var status = await cri.PodSandboxStatusAsync(id);
            Console.WriteLine($"{id} {status.Status.Network?.Ip ?? ""}");
            return 0;
        case "stop" when args.Length == 2:
            await cri.StopPodSandboxAsync(args[1]);
            await cri.RemovePodSandboxAsync(args[1]);
            return 0;
        case "ready" when args.Length == 1:
            foreach (var s in await cri.ListPodSandboxAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } }))
            {
                if (s.Metadata.Namespace != PodNamespace) continue;
                var st = await cri.PodSandboxStatusAsync(s.Id);
                Console.WriteLine($"{s.Id} {s.Metadata.Name} {st.Status.Network?.Ip ?? ""}");
            }
            return 0;
        case "gone" when args.Length == 1:
            var lost = await cri.ListPodSandboxAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } });
            foreach (var s in lost)
            {
                await cri.StopPodSandboxAsync(s.Id);
                await cri.RemovePodSandboxAsync(s.Id);
            }
            Console.WriteLine(lost.Count);
            return 0;
        case "pod" when args.Length == 3 && uint.TryParse(args[2], CultureInfo.InvariantCulture, out var attempt):
            return await DaemonSetPod.RunAsync(Socket, args[1], attempt);
        case "container" when args.Length == 2:
            return await DaemonSetPod.StatusAsync(Socket, args[1]);
        default:
            return Usage();
    }
}
catch (RpcException e)
{
    Console.Error.WriteLine($"berth-node-cri {args[0]}: {e.Message}");
    return 1;
}

static async Task<int> WaitAsync(KubeletCri cri, TimeSpan timeout)
{
    // Polled: the runtime's socket gives no signal of its own when its CRI service is up.
    var until = DateTime.UtcNow + timeout;
    while (true)
    {
        try
        {
            await cri.VersionAsync();
            return 0;
        }
        catch (RpcException) when (DateTime.UtcNow < until)
        {
            await Task.Delay(200);
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"berth-node-cri wait: the runtime did not answer in {timeout.TotalSeconds:0} s: {e.Message}");
            return 1;
        }
    }
}

static int Usage()
{
    Console.Error.WriteLine("usage: berth-node-cri wait SECONDS | run NAME | stop ID | ready | gone | pod DIR ATTEMPT | container ID");
    return 2;
}
