using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Berth.Torture;

public sealed record AgentFuzzOptions(int Seconds, int Seed, int? MaxCases = null, TextWriter? Log = null)
{
    /// <summary>The agent to run instead of artifacts/bin/berth-agent (a negative control runs a broken one).</summary>
    public string? Agent { get; init; }

    /// <summary>Keep the sandbox for inspection when there are violations.</summary>
    public bool KeepOnViolation { get; init; } = true;
}

/// <summary>
/// Seeded fuzzing of what the published agent reads from the world: guarded host-local directories (names of
/// every shape, contents, FIFOs, sockets, directories, symlinks in and out, huge and binary files, names with
/// newlines), agent.json documents, a CRI runtime's answers (a fake runtime on a socket: good lists, garbled
/// protobuf, huge lists, missing fields, errors, a runtime that hangs) and store rows berth did not write. Each
/// case runs one of recover, reconcile, reconcile --dry-run, leases --json, check --json, history.
/// Invariants: no hang, no signal, no .NET unhandled exception, no internal error; exit codes only as documented
/// (0, 1, 2, 3; 0 for recover, reconcile and leases with a good config); nothing removed or changed but
/// address-named lease files, and never one of a sandbox the runtime lists as ready; nothing outside the guarded
/// directories touched; every real lease file listed by leases.
/// </summary>
public sealed partial class AgentFuzzer(AgentFuzzOptions options)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(20);
    private static readonly string[] Commands = ["recover", "reconcile", "reconcile --dry-run", "leases --json", "check --json", "history", "install-cni"];
    private readonly TextWriter _log = options.Log ?? Console.Out;
    private readonly string _root = Directory.CreateTempSubdirectory("berth-agentfuzz-").FullName;
    private Report _report = null!;

    /// <summary>What the fake runtime answers ListPodSandbox with in the current case.</summary>
    private volatile FakeCriServer.Answer _answer = new(null, 14, "not set");
    private volatile bool _hang;

    public Report Run() => RunAsync().GetAwaiter().GetResult();

    private async Task<Report> RunAsync()
    {
        Repo.RequireBuilt();
        _report = new Report("agentfuzz", options.Seed) { Log = _log };
        _log.WriteLine($"agentfuzz: seed {options.Seed}, {options.Seconds} s{(options.MaxCases is { } m ? $", at most {m} cases" : "")}, sandbox {_root}");
        var socket = Path.Combine(_root, "cri.sock");
        await using var runtime = await FakeCriServer.StartAsync(socket, async (method, _, aborted) =>
        {
            if (method != "ListPodSandbox") return new FakeCriServer.Answer(null, 12, "not in this fake");
            if (_hang) await Task.Delay(Timeout.Infinite, aborted);
            return _answer;
        });
        var clock = Stopwatch.StartNew();
        var master = new Random(options.Seed);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var index = 0; clock.Elapsed.TotalSeconds < options.Seconds && (options.MaxCases is not { } max || index < max); index++)
        {
            var caseSeed = master.Next();
            // One case in six is the plugin's socket (AgentFuzz.Socket.cs); the others, what the agent reads from the node.
            var kind = master.Next(6) == 0 ? SocketCase(index, caseSeed) : await CaseAsync(index, caseSeed, socket);
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
            _report.Cycles++;
        }
        _log.WriteLine($"agentfuzz: {_report.Cycles} cases in {clock.Elapsed.TotalSeconds:F0} s ({string.Join(", ", counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Value} {c.Key}"))}), {_report.Acked} exited 0, seed {options.Seed}");
        _serving?.Dispose();
        if (_report.Violations.Count == 0 || !options.KeepOnViolation) Directory.Delete(_root, recursive: true);
        else _log.WriteLine($"agentfuzz: sandbox kept for inspection in {_root}");
        return _report;
    }

    /// <summary>One case in its own directory; returns its kind for the counts.</summary>
    private async Task<string> CaseAsync(int index, int seed, string socket)
    {
        var random = new Random(seed);
        var dir = Path.Combine(_root, "case-" + index.ToString(CultureInfo.InvariantCulture));
        var world = new World(dir, random);
        world.Build();
        // The store exists, as on any node where the agent ran once: made by a recovery that swept nothing.
        var made = Agent(new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = world.BootIdFile }, world, world.EmptyConfig(), "recover");
        if (made.ExitCode != 0) throw new InvalidOperationException($"case {index}: cannot make the store: {made}");
        var runtimeKind = Pick(random, "none", "ready", "ready", "ready", "garbled", "huge", "missing-fields", "error", "hang");
        var live = world.LiveOwners;
        _hang = runtimeKind == "hang";
        _answer = runtimeKind switch
        {
            "ready" => new FakeCriServer.Answer(null, Raw: Protobuf.SandboxList(live.Select(id => (id, 0)).Concat(world.GoneOwners.Take(2).Select(id => (id, 1))))),
            "garbled" => new FakeCriServer.Answer(null, Raw: Garbled(random)),
            "huge" => new FakeCriServer.Answer(null, Raw: Protobuf.SandboxList(Enumerable.Range(0, 300_000).Select(i => ($"sandbox-{i:x32}", i % 2)))),
            "missing-fields" => new FakeCriServer.Answer(null, Raw: Protobuf.SandboxList(live.Select(_ => ("", 0)), omitState: random.Next(2) == 0)),
            "error" => new FakeCriServer.Answer(null, random.Next(1, 17), "fuzzed failure"),
            _ => new FakeCriServer.Answer(null, 14, "unused"),
        };
        // Live owners exist only where a runtime is asked and answers a usable list that names them.
        var protectedOwners = runtimeKind == "none" ? new HashSet<string>() : live.ToHashSet(StringComparer.Ordinal);
        var sockets = runtimeKind == "none" ? "[]" : $"[\"{socket}\"]";
        var (config, configKind) = world.AgentJson(sockets);
        var command = Commands[random.Next(Commands.Length)];
        var storeKind = random.Next(10) == 0 ? "bad-rows" : "good";

        // Seen in an earlier boot first, often: the files of that boot are then proven old by the ledger.
        var env = new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = world.BootIdFile };
        if (random.Next(3) > 0 && configKind == "good")
        {
            world.Boot("earlier");
            var first = Agent(env, world, config, "reconcile");
            if (first.ExitCode != 0) _report.Violation($"case {index}: the earlier boot's reconcile failed\n  seed {options.Seed} case seed {seed}\n  {first}");
            world.Boot("now");
            world.AddCurrentBootFiles();
            live = world.LiveOwners;
            protectedOwners = runtimeKind == "none" ? [] : live.ToHashSet(StringComparer.Ordinal);
            if (runtimeKind == "ready") _answer = new FakeCriServer.Answer(null, Raw: Protobuf.SandboxList(live.Select(id => (id, 0))));
        }
        if (storeKind == "bad-rows") world.BadRows(random);
        var install = command == "install-cni" ? world.InstallCase(random) : default;
        var before = world.Snapshot();
        world.RecordOwners(before);
        var result = command == "install-cni" ? InstallCni(env, install, random) : Agent(env, world, config, command);
        _hang = false;
        var after = world.Snapshot();

        var problems = new List<string>();
        if (result.TimedOut) problems.Add($"hung (killed after {RunTimeout.TotalSeconds} s)");
        else if (result.Signalled) problems.Add($"ended by signal {result.ExitCode - 128}");
        foreach (var sign in new[] { "Unhandled exception", "internal error", "   at " })
        {
            if (result.Stderr.Contains(sign, StringComparison.Ordinal) || result.Stdout.Contains(sign, StringComparison.Ordinal)) problems.Add($"\"{sign.Trim()}\" in the output");
        }
        if (result.ExitCode is not (0 or 1 or 2 or 3)) problems.Add($"exit {result.ExitCode}, not one of 0, 1, 2, 3");
        else if (configKind == "good" && command.Split(' ')[0] is "recover" or "reconcile" or "leases" or "history" && result.ExitCode != 0) problems.Add($"exit {result.ExitCode} with a good config");
        else if (configKind != "good" && command != "install-cni" && result.ExitCode == 0 && result.Stderr.Length == 0 && configKind != "harmless") problems.Add($"a {configKind} agent.json was taken without a word");
        if (result.ExitCode == 0) _report.Acked++;
        problems.AddRange(world.Judge(before, after, protectedOwners));
        if (configKind == "good" && command == "leases --json" && result.ExitCode == 0) problems.AddRange(world.AllListed(before, result.Stdout));
        if (command == "install-cni") problems.AddRange(world.JudgeInstall(result));
        if (problems.Count > 0)
        {
            _report.Violation($"case {index}: {string.Join("; ", problems)}\n  {command}, runtime {runtimeKind}, config {configKind}, store {storeKind}, seed {options.Seed} case seed {seed}, dir {dir}\n  {result}");
        }
        else
        {
            world.Dispose();
        }
        return $"{runtimeKind} runtime";
    }

    /// <summary>
    /// The DaemonSet's init container: the target directory and the plugin to install of every shape (missing, a file,
    /// a symlink out, a directory where the plugin should be, an empty source, /dev/zero), --enabled of any word.
    /// </summary>
    private ExecResult InstallCni(Dictionary<string, string> env, (string To, string From) install, Random random)
    {
        var (to, from) = install;
        var enabled = Pick(random, "true", "true", "false", "", "yes", "TRUE", "true\n");
        return Exec.Run(options.Agent ?? Repo.Agent, ["install-cni", "--to", to, "--from", from, "--enabled", enabled],
            new ExecOptions { Environment = ExecOptions.Text(env), Timeout = RunTimeout });
    }

    private ExecResult Agent(Dictionary<string, string> env, World world, string config, string command) =>
        Exec.Run(options.Agent ?? Repo.Agent, [.. command.Split(' '), "--store", world.Store, "--config", config],
            new ExecOptions { Environment = ExecOptions.Text(env), Timeout = RunTimeout });

    private static byte[] Garbled(Random random)
    {
        var good = Protobuf.SandboxList([("abc", 0), ("def", 1)]);
        switch (random.Next(4))
        {
            case 0:
                var bytes = new byte[random.Next(1, 200)];
                random.NextBytes(bytes);
                return bytes;
            case 1:
                return good[..random.Next(1, good.Length)];
            case 2:
                var flipped = (byte[])good.Clone();
                flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                return flipped;
            default:
                // A length prefix that runs past the end.
                return [0x0a, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x01, 0x41];
        }
    }

    private static string Pick(Random random, params string[] choices) => choices[random.Next(choices.Length)];

    /// <summary>The few protobuf encodings the fake runtime needs (runtime.v1 ListPodSandboxResponse).</summary>
    private static class Protobuf
    {
        public static byte[] SandboxList(IEnumerable<(string Id, int State)> sandboxes, bool omitState = false)
        {
            var list = new MemoryStream();
            foreach (var (id, state) in sandboxes)
            {
                var sandbox = new MemoryStream();
                if (id.Length > 0) Field(sandbox, 1, Encoding.UTF8.GetBytes(id));
                if (!omitState && state != 0) { sandbox.WriteByte(3 << 3); Varint(sandbox, (ulong)state); }
                Field(list, 1, sandbox.ToArray());
            }
            return list.ToArray();
        }

        private static void Field(Stream s, int number, byte[] bytes)
        {
            s.WriteByte((byte)((number << 3) | 2));
            Varint(s, (ulong)bytes.Length);
            s.Write(bytes);
        }

        private static void Varint(Stream s, ulong value)
        {
            while (value >= 0x80)
            {
                s.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }
            s.WriteByte((byte)value);
        }
    }

    /// <summary>One case's world: guarded directories, an outside directory, netns pins, a store, a boot ID.</summary>
    private sealed class World(string root, Random random) : IDisposable
    {
        private readonly List<string> _live = [];
        private readonly List<string> _gone = [];
        private int _next = 1;

        public string Networks => Path.Combine(root, "networks");
        public string Outside => Path.Combine(root, "outside");
        public string Pins => Path.Combine(root, "netns");
        public string Store => Path.Combine(root, "store", "berth.db");
        public string BootIdFile => Path.Combine(root, "boot_id");
        public string ConfDir => Path.Combine(root, "net.d");
        public IReadOnlyList<string> LiveOwners => _live;
        public IReadOnlyList<string> GoneOwners => _gone;
        private readonly List<string> _networkDirs = [];

        public void Boot(string id) => File.WriteAllText(BootIdFile, $"agentfuzz-{id}\n");

        public void Build()
        {
            Directory.CreateDirectory(Networks);
            Directory.CreateDirectory(Outside);
            Directory.CreateDirectory(Pins);
            Boot("now");
            // A runtime pinned pods in this boot, or not: recovery's proof depends on it.
            if (random.Next(2) == 0) File.WriteAllText(Path.Combine(Pins, "cni-pinned"), "");
            // Lease files outside: reached only through a symlink, never to be touched.
            File.WriteAllText(Path.Combine(Outside, "10.77.9.1"), "gone-outside\r\neth0");
            File.WriteAllText(Path.Combine(Outside, "10.77.9.2"), "");
            var networks = random.Next(1, 4);
            for (var n = 0; n < networks; n++)
            {
                var name = n == 0 ? "cbr0" : Pick(random, "k8s-pod-network", "net" + n, "fuzz.net-" + n);
                var dir = Path.Combine(Networks, name);
                if (Directory.Exists(dir)) continue;
                Directory.CreateDirectory(dir);
                _networkDirs.Add(dir);
                File.WriteAllText(Path.Combine(dir, "lock"), "");
                for (var i = random.Next(0, 6); i > 0; i--) Lease(dir, n);
                for (var i = random.Next(0, 8); i > 0; i--) Hostile(dir, n);
            }
            // What the top of a data directory may hold besides networks.
            for (var i = random.Next(0, 4); i > 0; i--)
            {
                var name = Pick(random, "notanet", "a b", "net\nline", "..x", "-", new string('n', 255));
                var path = Path.Combine(Networks, name);
                if (Path.Exists(path)) continue;
                switch (random.Next(4))
                {
                    case 0: File.WriteAllText(path, "not a network"); break;
                    case 1:
                        // A directory whose name a CNI network may have is a network to host-local, and so to the guardian.
                        Directory.CreateDirectory(path);
                        File.WriteAllText(Path.Combine(path, "10.77.8.1"), "c-odd\r\neth0");
                        if (char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
                        {
                            _networkDirs.Add(path);
                            _gone.Add("c-odd");
                        }
                        break;
                    case 2: File.CreateSymbolicLink(path, Outside); break;
                    default: Exec.Must("mkfifo", path); break;
                }
            }
            if (random.Next(4) == 0 && !Path.Exists(Path.Combine(Networks, "outside-link"))) File.CreateSymbolicLink(Path.Combine(Networks, "outside-link"), Outside);
            CniConfigs();
        }

        /// <summary>
        /// The node's CNI configs the agent sizes guarded networks from (read by check and the metrics page): good ones
        /// for host-local and for flannel with its subnet file, and every way a config or subnet file can be wrong.
        /// </summary>
        private void CniConfigs()
        {
            Directory.CreateDirectory(ConfDir);
            var subnet = Path.Combine(root, "subnet.env");
            switch (random.Next(8))
            {
                case 0: File.WriteAllText(subnet, "FLANNEL_NETWORK=10.71.0.0/16\nFLANNEL_SUBNET=010.71.0.1/24\n"); break;
                case 1: File.WriteAllBytes(subnet, new byte[(64 << 10) + 1]); break;
                case 2: Exec.Must("mkfifo", subnet); break;
                case 3: Directory.CreateDirectory(subnet); break;
                case 4: File.CreateSymbolicLink(subnet, "/dev/zero"); break;
                case 5: break;
                default: File.WriteAllText(subnet, "FLANNEL_NETWORK=10.71.0.0/16\nFLANNEL_SUBNET=10.71.0.1/16\nFLANNEL_MTU=1450\n"); break;
            }
            File.WriteAllText(Path.Combine(ConfDir, "10-cbr0.conflist"), $$$"""
                {"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.70.0.0/16"}]],"dataDir":"{{{Networks}}}"}}]}
                """);
            File.WriteAllText(Path.Combine(ConfDir, "20-net1.conflist"), $$$"""
                {"cniVersion":"1.0.0","name":"net1","plugins":[{"type":"flannel","subnetFile":"{{{subnet}}}","delegate":{"hairpinMode":true}}]}
                """);
            for (var i = random.Next(0, 5); i > 0; i--)
            {
                var path = Path.Combine(ConfDir, $"{30 + i}-{Pick(random, "bad", "odd", "x")}.{Pick(random, "conf", "conflist", "json")}");
                if (Path.Exists(path)) continue;
                switch (random.Next(10))
                {
                    case 0: Exec.Must("mkfifo", path); break;
                    case 1: Directory.CreateDirectory(path); break;
                    case 2: File.CreateSymbolicLink(path, "/dev/zero"); break;
                    case 3: File.WriteAllBytes(path, new byte[(1 << 20) + random.Next(1, 4096)]); break;
                    case 4: File.WriteAllText(path, new string('[', 100_000)); break;
                    case 5: File.WriteAllText(path, """{"cniVersion":"0.3.1","name":"fuzz.net-1","plugins":5}"""); break;
                    case 6: File.WriteAllText(path, """{"cniVersion":"0.3.1","name":"fuzz.net-1","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"010.72.0.0/16"}]]}}]}"""); break;
                    case 7: File.WriteAllText(path, """{"cniVersion":"0.3.1","name":"../../etc","type":"bridge","ipam":{"type":"host-local","subnet":"10.73.0.0/16"}}"""); break;
                    case 8:
                        var bytes = new byte[random.Next(1, 500)];
                        random.NextBytes(bytes);
                        File.WriteAllBytes(path, bytes);
                        break;
                    default: File.WriteAllText(path, """{"cniVersion":"0.3.1","name":"k8s-pod-network","type":"calico","ipam":{"type":"host-local","ranges":[[{"subnet":"usePodCidr"}]]}}"""); break;
                }
            }
        }

        /// <summary>Files of pods set up in the current boot, after the earlier boot's pass saw the rest.</summary>
        public void AddCurrentBootFiles()
        {
            foreach (var dir in _networkDirs)
            {
                for (var i = random.Next(0, 3); i > 0; i--) Lease(dir, _networkDirs.IndexOf(dir), currentBoot: true);
            }
        }

        private void Lease(string dir, int network, bool currentBoot = false)
        {
            var address = $"10.{70 + network}.{random.Next(0, 4)}.{_next++ % 250 + 2}";
            var path = Path.Combine(dir, address);
            if (Path.Exists(path)) return;
            // Live owners only among this boot's pods: a sandbox never outlives the kernel it ran under.
            var live = currentBoot && random.Next(2) == 0;
            var id = (live ? "live-" : "gone-") + random.Next(1_000_000).ToString("x", CultureInfo.InvariantCulture);
            (live ? _live : _gone).Add(id);
            File.WriteAllText(path, random.Next(5) == 0 ? id : $"{id}\r\neth{random.Next(3)}");
        }

        private void Hostile(string dir, int network)
        {
            string[] names =
            [
                "10.77.0.09", "010.77.0.1", "10.77.00.1", "10.77.0.1.", "10.77.0.1\nx", "\n", "fe80::1%eth0", "::ffff:10.77.0.1",
                "FD00::1", "fd00::0001", "10.77.0.256", "10.77.0.1 ", " 10.77.0.1", new string('9', 255), "last_reserved_ip.0",
                "last_reserved_ip.x", "lock2", "10.77.0." + random.Next(2, 250), "fd00::" + random.Next(2, 999).ToString("x", CultureInfo.InvariantCulture),
                "ünïcode", "*", "10.77.0.1\r", "1", "-1",
            ];
            var name = names[random.Next(names.Length)];
            var path = Path.Combine(dir, name);
            if (Path.Exists(path)) return;
            switch (random.Next(11))
            {
                case 0: Exec.Must("mkfifo", path); break;
                case 1 when path.Length < 100:
                    using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)) s.Bind(new UnixDomainSocketEndPoint(path));
                    break;
                case 2: Directory.CreateDirectory(path); break;
                case 3: File.CreateSymbolicLink(path, Path.Combine(Outside, "10.77.9.1")); break;
                case 4: File.CreateSymbolicLink(path, Path.Combine(dir, "lock")); break;
                case 5: File.WriteAllBytes(path, new byte[random.Next(4097, 1 << 20)]); break;
                case 6:
                    var bytes = new byte[random.Next(1, 64)];
                    random.NextBytes(bytes);
                    File.WriteAllBytes(path, bytes);
                    break;
                case 7: File.WriteAllText(path, Pick(random, "", "a/b\r\neth0", "ok\r\neth0\r\nthird", "ok\r\n" + new string('e', 16), "ok\r\neth 0", "\r\n", "ok\n\neth0")); break;
                case 8: File.CreateSymbolicLink(path, "/nonexistent/target"); break;
                default:
                    var id = "gone-h" + random.Next(1_000_000).ToString("x", CultureInfo.InvariantCulture);
                    _gone.Add(id);
                    File.WriteAllText(path, $"{id}\r\neth0");
                    break;
            }
        }

        public string CniBin => Path.Combine(root, "cni-bin");

        /// <summary>The target and source of an install-cni case, made in this case's directory.</summary>
        public (string To, string From) InstallCase(Random r)
        {
            var source = Path.Combine(root, "plugin");
            switch (r.Next(6))
            {
                case 0: break;
                case 1: File.WriteAllBytes(source, []); break;
                case 2: Directory.CreateDirectory(source); break;
                case 3: File.CreateSymbolicLink(source, "/dev/zero"); break;
                default: File.Copy(Repo.Plugin, source); break;
            }
            var to = CniBin;
            switch (r.Next(7))
            {
                case 0: break;
                case 1: File.WriteAllText(to, "a file where the bin directory should be"); break;
                case 2:
                    Directory.CreateDirectory(to);
                    Exec.Must("mkfifo", Path.Combine(to, "berth"));
                    break;
                case 3:
                    Directory.CreateDirectory(to);
                    Directory.CreateDirectory(Path.Combine(to, "berth"));
                    break;
                case 4:
                    Directory.CreateDirectory(to);
                    File.WriteAllText(Path.Combine(to, "berth"), "an older plugin");
                    File.WriteAllText(Path.Combine(to, "host-local"), "another plugin");
                    break;
                default: Directory.CreateDirectory(to); break;
            }
            return (to, source);
        }

        /// <summary>
        /// What install-cni may change: only DIR/berth, and only to be the whole plugin it was given; nothing half-written
        /// beside it. (Everything outside DIR is the general judge's: unchanged.)
        /// </summary>
        public IEnumerable<string> JudgeInstall(ExecResult result)
        {
            if (!Directory.Exists(CniBin) || new FileInfo(CniBin).LinkTarget is not null) yield break;
            foreach (var entry in Directory.EnumerateFileSystemEntries(CniBin))
            {
                if (Path.GetFileName(entry) is not ("berth" or "host-local")) yield return $"install-cni left {Show(entry)} behind";
            }
            var installed = Path.Combine(CniBin, "berth");
            var source = Path.Combine(root, "plugin");
            if (result.ExitCode == 0 && result.Stdout.StartsWith("installed", StringComparison.Ordinal)
                && (!File.Exists(installed) || !File.Exists(source) || !File.ReadAllBytes(installed).AsSpan().SequenceEqual(File.ReadAllBytes(source))))
            {
                yield return "install-cni said it installed the plugin, but the file there is not the plugin";
            }
        }

        /// <summary>A config that guards nothing and asks no runtime: for making the store.</summary>
        public string EmptyConfig()
        {
            var path = Path.Combine(root, "empty.json");
            File.WriteAllText(path, """{"runtimeSockets": [], "metricsAddress": "off", "hostLocal": {"dirs": []}}""");
            return path;
        }

        /// <summary>agent.json: most often good; else each way it can be wrong. "harmless": odd but valid.</summary>
        public (string Path, string Kind) AgentJson(string sockets)
        {
            var path = Path.Combine(root, "agent.json");
            var good = $$$"""
                {"runtimeSockets": {{{sockets}}}, "runtimeTimeoutSeconds": 1, "metricsAddress": "off", "gracePeriodSeconds": 0,
                 "cniConfDirs": ["{{{ConfDir}}}"],
                 "hostLocal": {"dirs": ["{{{Networks}}}", "{{{Path.Combine(root, "missing")}}}"], "netnsDirs": ["{{{Pins}}}"]}}
                """;
            if (random.Next(5) > 0)
            {
                File.WriteAllText(path, good);
                return (path, "good");
            }
            var kind = random.Next(12);
            switch (kind)
            {
                case 0: File.WriteAllText(path, good[..random.Next(good.Length)]); return (path, "truncated");
                case 1: File.WriteAllText(path, good.Replace("\"gracePeriodSeconds\": 0", "\"gracePeriodSeconds\": " + Pick(random, "-1", "\"0\"", "null", "1e400", "[]", "{}", "true", "99999999999999999999"))); return (path, "bad-value");
                case 2 when random.Next(2) == 0: File.WriteAllText(path, good.Replace("\"runtimeSockets\"", "\"runtimeSocket\"")); return (path, "unknown-key");
                case 2: File.WriteAllText(path, good.Replace($"\"cniConfDirs\": [\"{ConfDir}\"]", "\"cniConfDirs\": " + Pick(random, "\"/etc/cni/net.d\"", "[5]", "null", "[\"relative\"]", "{}"))); return (path, "bad-conf-dirs");
                case 3:
                    var bytes = new byte[random.Next(0, 300)];
                    random.NextBytes(bytes);
                    File.WriteAllBytes(path, bytes);
                    return (path, "garbage");
                case 4: File.WriteAllText(path, new string('[', 100_000)); return (path, "deep");
                case 5: return (Networks, "a-directory");
                case 6: return (Path.Combine(root, "no-such.json"), "missing");
                case 7: File.WriteAllText(path, good.Replace("\"hostLocal\": {", "\"hostLocal\": {\"dirs\": 5, ")); return (path, "duplicate-key");
                case 8: File.WriteAllText(path, good.Replace("\"metricsAddress\": \"off\"", "\"metricsAddress\": \"" + Pick(random, "nonsense", "127.0.0.1:99999", ":", "[::1]:x") + "\"")); return (path, "bad-address");
                case 9: return ("/dev/zero", "endless");
                case 10:
                    File.WriteAllText(path, good.Replace("\"metricsAddress\"", "\"pluginSocket\": " + Pick(random, "\"plugin.sock\"", "5", "null", "[]", "\"\"",
                        $"\"/run/berth/{new string('x', 100)}.sock\"") + ", \"metricsAddress\""));
                    return (path, "bad-plugin-socket");
                default: File.WriteAllText(path, "/dev/zero"); return (path, "not-json");
            }
        }

        /// <summary>Rows a damaged or hand-edited store may hold, written with sqlite3 after the store exists.</summary>
        public void BadRows(Random r)
        {
            if (!File.Exists(Store)) return;
            string[] rows =
            [
                "INSERT INTO leases VALUES ('cbr0', X'040A4D0063', '10.77.0.099', 0, '10.77.0.0/24', 'c', 'eth0', '', NULL, NULL, NULL, NULL, 'b', 0, 'x', 'berth')",
                "INSERT INTO leases VALUES ('cbr0', X'040A4D0064', 'garbage', 0, '10.77.0.0/24', 'c2', 'eth0', '', NULL, NULL, NULL, NULL, 'b', -5, '2026-01-01T00:00:00.000Z', 'berth')",
                "INSERT INTO guarded_files VALUES ('/nowhere', 'cbr0', '10.77.0.09', 'c', 'eth0', 'b', 0, 'not a time', 0)",
                "INSERT INTO guarded_files VALUES ('" + Networks + "', 'cbr0', 'x', 'c', 'eth0', 'b', 0, '2026-01-01T00:00:00.000Z', 0)",
                "INSERT INTO history (at, boot_id, since_boot_ns, action, reason, actor, network, address, container_id, ifname) VALUES ('never', 'b', 0, 'release', 'manual', 'x', 'cbr0', '10.77.0.6', 'c', 'eth0')",
                "INSERT INTO recoveries VALUES ('agentfuzz-now', 'host-local:/x', 'garbage', 0)",
                "INSERT INTO networks VALUES ('cbr0', '{not json', 'x')",
                "INSERT INTO cursors VALUES ('cbr0', 0, '10.77.0.0009')",
            ];
            var sql = string.Join(";\n", rows.Where(_ => r.Next(2) == 0));
            if (sql.Length > 0) Exec.Run("sqlite3", [Store, sql + ";"]);
        }

        /// <summary>Every entry under the case's directory (the store aside): its type, and for a regular file its bytes' hash.</summary>
        public Dictionary<string, string> Snapshot()
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            // find tells FIFOs and sockets from files, which .NET does not; NUL-separated, for names with newlines.
            var listing = Exec.Run("find", [root, "-mindepth", "1", "(", "-path", Path.Combine(root, "store"), "-o", "-path", CniBin, ")", "-prune", "-o", "-printf", "%y %p\\0"]);
            if (listing.ExitCode != 0) throw new InvalidOperationException($"cannot list {root}: {listing}");
            foreach (var entry in listing.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries))
            {
                var (type, path) = (entry[0], entry[2..]);
                result[path] = type switch
                {
                    'f' => "file " + Hash(path),
                    'd' => "dir",
                    'l' => "symlink " + new FileInfo(path).LinkTarget,
                    'p' => "fifo",
                    's' => "socket",
                    _ => "special " + type,
                };
            }
            return result;
        }

        private static string Hash(string path)
        {
            try
            {
                using var stream = File.OpenRead(path);
                return Convert.ToHexString(SHA256.HashData(stream))[..16];
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return "unreadable";
            }
        }

        /// <summary>What a run may have removed or changed: only address-named lease files of owners that are not live.</summary>
        public IEnumerable<string> Judge(Dictionary<string, string> before, Dictionary<string, string> after, IReadOnlySet<string> live)
        {
            foreach (var (path, what) in before)
            {
                if (after.TryGetValue(path, out var now))
                {
                    if (now != what) yield return $"{Show(path)} changed ({what} -> {now})";
                    continue;
                }
                var parent = Path.GetDirectoryName(path)!;
                var name = Path.GetFileName(path);
                if (!_networkDirs.Contains(parent)) yield return $"{Show(path)} removed, outside a guarded network directory";
                else if (!what.StartsWith("file ", StringComparison.Ordinal)) yield return $"{Show(path)} removed, a {what.Split(' ')[0]}";
                else if (!System.Net.IPAddress.TryParse(name, out var address) || address.ToString() != name) yield return $"{Show(path)} removed, not an address-named file";
                else if (_contents.TryGetValue(path, out var owner) && live.Contains(owner)) yield return $"{Show(path)} removed: its sandbox {owner} is listed as ready";
            }
            foreach (var path in after.Keys.Where(p => !before.ContainsKey(p)))
            {
                if (Path.GetFileName(path) != "lock" || !_networkDirs.Contains(Path.GetDirectoryName(path)!)) yield return $"{Show(path)} appeared";
            }
        }

        /// <summary>Each real lease file that was there is listed by leases --json.</summary>
        public IEnumerable<string> AllListed(Dictionary<string, string> before, string stdout)
        {
            var listed = new HashSet<(string, string, string)>();
            using (var doc = JsonDocument.Parse(stdout))
            {
                foreach (var l in doc.RootElement.GetProperty("leases").EnumerateArray())
                {
                    if (l.TryGetProperty("dir", out var d)) listed.Add((d.GetString()!, l.GetProperty("network").GetString()!, l.GetProperty("address").GetString()!));
                }
            }
            foreach (var (path, owner) in _contents)
            {
                if (!before.ContainsKey(path) || !File.Exists(path)) continue;
                var key = (Networks, Path.GetFileName(Path.GetDirectoryName(path)!), Path.GetFileName(path));
                if (!listed.Contains(key)) yield return $"the lease file {Show(path)} of {owner} is not listed by leases";
            }
        }

        /// <summary>The owner each real lease file names, by path, as the case stands before the run.</summary>
        private readonly Dictionary<string, string> _contents = new(StringComparer.Ordinal);

        public void RecordOwners(Dictionary<string, string> snapshot)
        {
            _contents.Clear();
            foreach (var (path, what) in snapshot)
            {
                var name = Path.GetFileName(path);
                if (!what.StartsWith("file ", StringComparison.Ordinal) || !_networkDirs.Contains(Path.GetDirectoryName(path)!)
                    || !System.Net.IPAddress.TryParse(name, out var a) || a.ToString() != name || new FileInfo(path).Length > 4096) continue;
                var id = File.ReadAllText(path).Split('\n')[0].TrimEnd('\r');
                if (_live.Contains(id) || _gone.Contains(id)) _contents[path] = id;
            }
        }

        private string Show(string path) => JsonSerializer.Serialize(Path.GetRelativePath(root, path));

        public void Dispose()
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // A case's directory is under the run's root, which goes at the end.
            }
        }
    }
}
