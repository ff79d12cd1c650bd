using System.Globalization;
using System.Runtime.InteropServices;
using Berth.E2e;

// make e2e: berth and host-local, each under its own private containerd, through the same pods and the same
// hard reboots; the table at the end is the product's headline evidence (make e2e writes it into the README).
// Options: --reboots N, --pods N (per boot), --out DIR, --readme FILE, --bin DIR; --no-recover leaves out
// berth-agent recover, to see the run catch the leak it then makes; --pause-image FILE only writes the sandbox
// image's OCI tar to FILE (make node-test puts it into its VM image). Runs as root.
Options options;
try
{
    options = Options.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    return Fail(e.Message);
}
if (options.PauseImage is { } pauseImage)
{
    var dir = Directory.CreateTempSubdirectory("berth-pause-").FullName;
    try
    {
        File.Copy(PauseImage.Build(dir), pauseImage, overwrite: true);
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
    Console.WriteLine($"e2e: wrote the sandbox image {PauseImage.Name} to {pauseImage}");
    return 0;
}
if (options.PodSpec is { } podSpec)
{
    PodScenarios.WriteNodeVmSpec(podSpec);
    Console.WriteLine($"e2e: wrote deploy/kubernetes's DaemonSet pod for the node VM into {podSpec}");
    return 0;
}
if (Environment.UserName != "root") return Fail("run as root: it starts containerd, mounts namespaces and makes bridges");

var work = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
var nodes = new List<Node>();
async Task CleanUpAsync()
{
    Host.BeginCleanup();
    foreach (var node in nodes) await node.DisposeAsync();
    try
    {
        Host.RemoveTree(work);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or E2eFailure)
    {
        Console.Error.WriteLine($"e2e: cannot remove {work}: {e.Message}");
    }
}
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    Console.Error.WriteLine($"e2e: {context.Signal}: stopping at the next step, then cleaning up");
    Host.RequestStop();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

var verdicts = new Verdicts();
var outcomes = new List<Outcome>();
var clock = System.Diagnostics.Stopwatch.StartNew();
var containerd = "?";
try
{
    // iproute2 makes /run/netns a mount of its own the first time it adds a namespace; done while containerd
    // holds pins there, that mount hides them and containerd cannot remove them. Make it before containerd starts.
    var probe = "berth-e2e-" + Environment.ProcessId;
    Host.Check("ip", "netns", "add", probe);
    Host.Check("ip", "netns", "delete", probe);
    var image = PauseImage.Build(work);
    containerd = Host.Check("containerd", "--version").Split(' ').ElementAtOrDefault(2)?.Trim() ?? "?";
    Console.WriteLine($"e2e: containerd {containerd}, {options.Reboots} hard reboots, {options.Pods} pods per boot, a /28 per node ({Node.RangeSize} addresses)");
    // The third node keeps host-local in its CNI config, as RKE2's Canal does, and berth-agent guards its files.
    // The fourth keeps host-local too, and berth-agent runs as deploy/kubernetes's DaemonSet pod, started after containerd.
    var plan = new (int Row, string Ipam, string Subnet, string Bridge, bool Guarded, bool Pod)[]
    {
        (1, "berth", "10.88.1.0/28", "berthe2e1", false, false),
        (2, "host-local", "10.88.2.0/28", "berthe2e2", false, false),
        (3, "host-local", "10.88.3.0/28", "berthe2e3", true, false),
        (4, "host-local", "10.88.4.0/28", "berthe2e4", false, true),
    };
    foreach (var (row, ipam, subnet, bridge, guarded, pod) in plan.Where(p => options.Rows.Contains(p.Row)))
    {
        var node = new Node(ipam, Path.Combine(work, pod ? "pod" : guarded ? "guarded" : ipam), subnet, bridge, Path.Combine(options.Bin, "berth"), Path.Combine(options.Bin, "berth-agent"), guarded, pod);
        nodes.Add(node);
        await node.StartAsync(image);
        if (pod)
        {
            if (!File.Exists(options.Image)) throw new E2eFailure($"{options.Image} does not exist: run make image");
            node.Runtime.Import(options.Image);
            var (podOutcome, podRunning, agentPod) = await PodScenarios.RebootsAsync(node, options.Pods, options.Reboots, Node.RangeSize, verdicts);
            outcomes.Add(podOutcome);
            await PodScenarios.OneAgentAndLiveReconcileAsync(node, agentPod, podRunning, verdicts);
        }
        else
        {
            var (outcome, running) = await Scenarios.RebootsAsync(node, options.Pods, options.Reboots, Node.RangeSize, !options.NoRecover, verdicts);
            outcomes.Add(outcome);
            if (node.Protected) await Scenarios.LiveReconcileAsync(node, running, verdicts);
        }
        await node.DisposeAsync();
        nodes.Remove(node);
    }
}
catch (Exception e)
{
    verdicts.Violations.Add(e.Message);
    Console.WriteLine($"e2e: FAIL {e}");
}
finally
{
    await CleanUpAsync();
}

var table = Report.Table(outcomes, options, containerd);
Console.WriteLine();
Console.WriteLine(table);
Directory.CreateDirectory(options.Out);
File.WriteAllText(Path.Combine(options.Out, "e2e.md"), table);
if (verdicts.Violations.Count > 0)
{
    Console.WriteLine($"e2e: {verdicts.Violations.Count} checks failed in {clock.Elapsed.TotalSeconds:0} s:");
    foreach (var violation in verdicts.Violations) Console.WriteLine($"e2e:   {violation}");
    return 1;
}
if (options.Readme is { } readme) Report.IntoReadme(readme, table);
Console.WriteLine($"e2e: every check passed in {clock.Elapsed.TotalSeconds:0} s{(options.Readme is null ? "" : $"; table written into {options.Readme}")}");
return 0;

static int Fail(string message)
{
    Console.Error.WriteLine($"e2e: {message}");
    return 2;
}

internal sealed record Options(int Reboots, int Pods, string Out, string? Readme, string Bin, bool NoRecover, string? PauseImage = null)
{
    /// <summary>The rows to run (1 berth, 2 host-local, 3 guarded, 4 the agent as a pod); the README is written only with all four.</summary>
    public IReadOnlySet<int> Rows { get; init; } = new HashSet<int> { 1, 2, 3, 4 };

    /// <summary>Only write the DaemonSet pod's CRI requests for make node-test's VM into this directory.</summary>
    public string? PodSpec { get; init; }

    /// <summary>The image of make image, for the fourth row.</summary>
    public string Image { get; init; } = $"artifacts/image/berth-{File.ReadAllText(Path.Combine(Repo.Root, "VERSION")).Trim()}.oci.tar";

    public static Options Parse(string[] args)
    {
        var o = new Options(4, 5, "artifacts/e2e", null, "artifacts/bin", false);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (args[i] == "--no-recover")
            {
                o = o with { NoRecover = true };
                i--;
                continue;
            }
            if (i + 1 == args.Length) throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--reboots" => o with { Reboots = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--pods" => o with { Pods = int.Parse(args[i + 1], CultureInfo.InvariantCulture) },
                "--out" => o with { Out = args[i + 1] },
                "--readme" => o with { Readme = args[i + 1] },
                "--bin" => o with { Bin = args[i + 1] },
                "--pause-image" => o with { PauseImage = Path.GetFullPath(args[i + 1]) },
                "--rows" => o with { Rows = args[i + 1].Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture) is var n and >= 1 and <= 4 ? n : throw new ArgumentException($"--rows: {r} is not a row (1 to 4)")).ToHashSet() },
                "--image" => o with { Image = args[i + 1] },
                "--pod-spec" => o with { PodSpec = Path.GetFullPath(args[i + 1]) },
                _ => throw new ArgumentException($"unknown option {args[i]} (known: --reboots, --pods, --out, --readme, --bin, --no-recover, --pause-image, --rows, --image, --pod-spec)"),
            };
        }
        if (o.Readme is not null && o.Rows.Count < 4) throw new ArgumentException("--readme takes the table of all four rows: leave out --rows");
        return o with { Bin = Path.GetFullPath(o.Bin), Image = Path.GetFullPath(o.Image) };
    }
}
