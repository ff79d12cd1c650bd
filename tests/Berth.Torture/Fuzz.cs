using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Berth.Torture;

public sealed record FuzzOptions(int Seconds, int Seed, int? MaxCases = null, TextWriter? Log = null)
{
    /// <summary>The plugin to run instead of artifacts/bin/berth (a negative control runs a broken one).</summary>
    public string? Plugin { get; init; }

    /// <summary>Keep the sandbox for inspection when there are violations (the test suite's negative controls do not).</summary>
    public bool KeepOnViolation { get; init; } = true;
}

/// <summary>The files and paths a fuzz run may touch, all under one temporary directory.</summary>
internal sealed class Sandbox
{
    public Sandbox()
    {
        Root = System.IO.Directory.CreateTempSubdirectory("berth-fuzz-").FullName;
        Stores = Path.Combine(Root, "stores");
        System.IO.Directory.CreateDirectory(Path.Combine(Stores, "main"));
        System.IO.Directory.CreateDirectory(Path.Combine(Stores, "second"));
        System.IO.Directory.CreateDirectory(Path.Combine(Stores, "dbdir", "berth.db"));
        System.IO.File.WriteAllText(Path.Combine(Stores, "file"), "a regular file where a directory should be");
        AFile = Path.Combine(Root, "regular-file");
        System.IO.File.WriteAllText(AFile, "not a namespace");
        Missing = Path.Combine(Root, "missing");
        ADirectory = Path.Combine(Root, "a-directory");
        System.IO.Directory.CreateDirectory(ADirectory);
        ServingSocket = Path.Combine(Root, "run", "plugin.sock");
        AFifo = Path.Combine(Root, "a-fifo");
        Exec.Must("mkfifo", AFifo);
        BootIdOther = Path.Combine(Root, "boot-id");
        System.IO.File.WriteAllText(BootIdOther, "0f0e0d0c-0b0a-4908-8706-050403020100\n");
        var resolv = Path.Combine(Root, "resolv.conf");
        System.IO.File.WriteAllText(resolv, "nameserver 10.90.0.53\nsearch example.com svc.cluster.local\noptions ndots:5\n");
        var big = Path.Combine(Root, "resolv-big.conf");
        System.IO.File.WriteAllText(big, string.Concat(Enumerable.Repeat("nameserver 10.90.0.53\n", 5000)));
        var binary = Path.Combine(Root, "resolv-binary.conf");
        var bytes = new byte[4096];
        new Random(1).NextBytes(bytes);
        System.IO.File.WriteAllBytes(binary, bytes);
        ResolvConfs = [resolv, resolv, big, binary, "/dev/null", "/dev/zero", Missing, ADirectory, "relative.conf"];
        // flannel's subnet file for "usePodCidr": a good one, and each way it can be wrong.
        var subnetEnv = Path.Combine(Root, "subnet.env");
        System.IO.File.WriteAllText(subnetEnv, "FLANNEL_NETWORK=10.91.0.0/16\nFLANNEL_SUBNET=10.91.1.1/24\nFLANNEL_IPV6_NETWORK=fd91::/56\nFLANNEL_IPV6_SUBNET=fd91::1/120\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
        var noKeys = Path.Combine(Root, "subnet-nokeys.env");
        System.IO.File.WriteAllText(noKeys, "FLANNEL_NETWORK=10.91.0.0/16\n");
        var malformed = Path.Combine(Root, "subnet-malformed.env");
        System.IO.File.WriteAllText(malformed, "FLANNEL_SUBNET=10.91.1/24\nFLANNEL_IPV6_SUBNET=10.91.1.1/24\n");
        var tiny = Path.Combine(Root, "subnet-tiny.env");
        System.IO.File.WriteAllText(tiny, "FLANNEL_SUBNET=10.91.1.1/32\nFLANNEL_IPV6_SUBNET=fd91::1/128\n");
        var bigEnv = Path.Combine(Root, "subnet-big.env");
        System.IO.File.WriteAllText(bigEnv, string.Concat(Enumerable.Repeat("FLANNEL_SUBNET=10.91.1.1/24\n", 5000)));
        SubnetFiles = [subnetEnv, subnetEnv, subnetEnv, noKeys, malformed, tiny, bigEnv, binary, "/dev/zero", Missing, ADirectory, "relative.env"];
        DataDirs =
        [
            S("main"), S("main"), S("main"), S("main"), S("main") + "/", Stores + "/./main", Stores + "/../stores/main",
            S("second"), S("nested/a/b"), S("file"), S("file/sub"), S("dbdir"), "relative/dir", "", "stores/main",
        ];
        string S(string p) => Path.Combine(Stores, p);
    }

    public string Root { get; }

    /// <summary>Every store a case may create or change is under here.</summary>
    public string Stores { get; }

    public string AFile { get; }
    public string Missing { get; }
    public string ADirectory { get; }
    public string AFifo { get; }

    /// <summary>The socket of the berth-agent the fuzzer runs: the cases that name it go through the forwarding prelude and the agent.</summary>
    public string ServingSocket { get; }
    public string BootIdOther { get; }
    public IReadOnlyList<string> ResolvConfs { get; }
    public IReadOnlyList<string> SubnetFiles { get; }
    public IReadOnlyList<string> DataDirs { get; }
    public IReadOnlyList<string> Containers { get; } = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "fz-a.b_c", "0"];

    /// <summary>
    /// Whether a generated stdin can only touch stores inside the sandbox: every ipam.dataDir is a string, and
    /// an absolute one lies under <see cref="Stores"/>. Without a dataDir berth would use /var/lib/berth.
    /// </summary>
    public bool IsSafe(byte[] stdin)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(stdin, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException)
        {
            return true;
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return true;
            try
            {
                return DataDirsInside(doc.RootElement);
            }
            catch (InvalidOperationException)
            {
                // A key or value that is not UTF-8: it cannot be checked, so it is not run.
                return false;
            }
        }
    }

    private bool DataDirsInside(JsonElement root)
    {
        {
            foreach (var ipam in root.EnumerateObject().Where(p => p.Name == "ipam"))
            {
                if (ipam.Value.ValueKind != JsonValueKind.Object) continue;
                var dirs = ipam.Value.EnumerateObject().Where(p => p.Name == "dataDir").ToList();
                if (dirs.Count == 0) return false;
                foreach (var d in dirs)
                {
                    if (d.Value.ValueKind != JsonValueKind.String) return false;
                    string path;
                    try
                    {
                        path = d.Value.GetString()!;
                    }
                    catch (InvalidOperationException)
                    {
                        // Not UTF-8: what berth would make of it is not worth the risk of a store outside the sandbox.
                        return false;
                    }
                    if (path.Contains('\0')) continue;
                    if (Path.IsPathFullyQualified(path) && !(Path.GetFullPath(path) + "/").StartsWith(Stores + "/", StringComparison.Ordinal)) return false;
                }
            }
            return true;
        }
    }
}

/// <summary>
/// Seeded fuzzing of the published plugin: generated and mutated configs and environments, and damaged
/// stores. Every run must end with exit 0 and a well-formed result, or exit 1 and a well-formed CNI error
/// (code, msg, the request's cniVersion) that changed no store file; never a signal, a .NET unhandled
/// exception, an internal error (999) or a hang. A damaged store must give error 5 naming the file, or
/// work without losing what it held; never a silent reset.
/// </summary>
public sealed class Fuzzer(FuzzOptions options)
{
    internal static readonly string[] SupportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(10);
    private readonly TextWriter _log = options.Log ?? Console.Out;
    private readonly Sandbox _sandbox = new();
    private Report _report = null!;
    private SocketAgent? _serving;
    private byte[] _goldenDb = [];
    private byte[] _goldenWal = [];
    private const int GoldenCheckpointed = 20, GoldenInWal = 5;

    public Report Run()
    {
        Repo.RequireBuilt();
        _report = new Report("fuzz", options.Seed) { Log = _log };
        _log.WriteLine($"fuzz: seed {options.Seed}, {options.Seconds} s{(options.MaxCases is { } m ? $", at most {m} cases" : "")}, sandbox {_sandbox.Root}");
        var clock = Stopwatch.StartNew();
        MakeGolden();
        // Half the cases go to this agent through the plugin's forwarding prelude (CaseGenerator, DamageCase): the same
        // checks hold whichever answers.
        _serving = SocketAgent.Start(Path.Combine(_sandbox.Root, "serving"), _sandbox.ServingSocket);
        var master = new Random(options.Seed);
        int inputs = 0, damaged = 0;
        for (var index = 0; clock.Elapsed.TotalSeconds < options.Seconds && (options.MaxCases is not { } max || index < max); index++)
        {
            var caseSeed = master.Next();
            var random = new Random(caseSeed);
            if (random.NextDouble() < 0.15)
            {
                damaged++;
                DamageCase(index, random);
            }
            else
            {
                inputs++;
                InputCase(new CaseGenerator(random, _sandbox).Next(index));
            }
            _report.Cycles++;
            if (index % 250 == 249) Integrity();
        }
        Integrity();
        if (_serving.HasExited) _report.Violation($"the serving berth-agent died during the run, seed {options.Seed}");
        // Coverage, not a verdict on a call: cases sent to the agent that it never answered tested only the fallback.
        var fellBack = Directory.GetFiles(Path.GetDirectoryName(_sandbox.ServingSocket)!, "plugin.sock.fallback-*").Sum(f => new FileInfo(f).Length);
        if (_served >= 20 && fellBack >= _served) _report.Violation($"the serving berth-agent answered none of the {_served} cases sent to it ({Fallbacks()}), seed {options.Seed}");
        _serving.Dispose();
        _log.WriteLine($"fuzz: {_report.Cycles} cases ({inputs} inputs, {damaged} damaged stores; {_served} sent to the serving agent, which left {Fallbacks()} to the plugin) in {clock.Elapsed.TotalSeconds:F0} s, {_report.Acked} succeeded, seed {options.Seed}");
        if (_report.Violations.Count == 0 || !options.KeepOnViolation) Directory.Delete(_sandbox.Root, recursive: true);
        else _log.WriteLine($"fuzz: sandbox kept for inspection in {_sandbox.Root}");
        return _report;
    }

    private void Integrity()
    {
        foreach (var db in Directory.EnumerateFiles(_sandbox.Stores, "berth.db", SearchOption.AllDirectories))
        {
            var rows = SqliteCli.TryQuery(db, "PRAGMA integrity_check", out var error);
            if (rows is null || rows.Count != 1 || rows[0].Values.Single() != "ok")
            {
                _report.Violation($"integrity_check of {db} after successful runs: {error}{string.Join("; ", rows?.SelectMany(r => r.Values) ?? [])}");
            }
        }
    }

    private int _served;

    /// <summary>The calls the plugin did itself although the serving agent's socket was named, by reason (the counter files beside it).</summary>
    private string Fallbacks() => string.Join(", ", Directory.GetFiles(Path.GetDirectoryName(_sandbox.ServingSocket)!, "plugin.sock.fallback-*")
        .Select(f => (Reason: Path.GetFileName(f)["plugin.sock.fallback-".Length..], new FileInfo(f).Length)).Where(r => r.Length > 0).Select(r => $"{r.Reason} {r.Length}"));

    private ExecResult Run(IReadOnlyDictionary<string, byte[]> env, byte[] stdin)
    {
        if (env.TryGetValue("BERTH_PLUGIN_SOCKET", out var socket) && socket.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(_sandbox.ServingSocket))) _served++;
        // The plugin alone, unless a case names a socket: an agent on this machine's default socket must not answer.
        if (!env.ContainsKey("BERTH_PLUGIN_SOCKET")) env = new Dictionary<string, byte[]>(env) { ["BERTH_PLUGIN_SOCKET"] = "off"u8.ToArray() };
        using var child = Exec.Start(options.Plugin ?? Repo.Plugin, [], new ExecOptions { Environment = env, OnlyThisEnvironment = true, Stdin = stdin });
        return child.Wait(RunTimeout);
    }

    private void InputCase(FuzzCase c)
    {
        var before = StoreReader.Snapshot(_sandbox.Stores);
        var result = Run(c.Environment, c.Stdin);
        var problems = Judge(c.Command, c.RequestVersion, result, out var succeeded);
        if (succeeded) _report.Acked++;
        else problems.AddRange(ChangesOnError(before, StoreReader.Snapshot(_sandbox.Stores)));
        if (problems.Count > 0) _report.Violation($"{string.Join("; ", problems)}\n  seed {options.Seed} {c.Reproduction}\n  {result}");
    }

    /// <summary>
    /// What a failed run changed. Byte for byte for the stores that existed; a store the run created (an ADD
    /// that failed after opening, for one) must hold no rows: no lease, no history, no cursor, no network.
    /// </summary>
    private static IEnumerable<string> ChangesOnError(Dictionary<string, byte[]> before, Dictionary<string, byte[]> after)
    {
        var created = after.Keys.Where(f => !before.ContainsKey(f) && f.EndsWith("/berth.db", StringComparison.Ordinal)).ToList();
        foreach (var db in created)
        {
            var rows = SqliteCli.TryQuery(db, "SELECT (SELECT count(*) FROM leases) + (SELECT count(*) FROM history) + (SELECT count(*) FROM cursors) + (SELECT count(*) FROM networks) AS n", out var error);
            if (rows is null) yield return $"a failed run created {db}, which sqlite3 cannot read: {error}";
            else if (rows[0]["n"] != "0") yield return $"a failed run created {db} holding {rows[0]["n"]} rows";
        }
        foreach (var change in StoreReader.Diff(before, after).Where(d => !created.Any(db => d.StartsWith(db + " ", StringComparison.Ordinal) || d.StartsWith(db + "-wal ", StringComparison.Ordinal))))
        {
            yield return "store changed on error: " + change;
        }
    }

    /// <summary>The protocol checks every run must pass; <paramref name="succeeded"/> is exit 0.</summary>
    private static List<string> Judge(string command, string? requestVersion, ExecResult result, out bool succeeded)
    {
        var problems = new List<string>();
        succeeded = false;
        if (result.TimedOut) problems.Add($"hung (killed after {RunTimeout.TotalSeconds} s)");
        else if (result.Signalled) problems.Add($"ended by signal {result.ExitCode - 128}");
        if (result.Stderr.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase)) problems.Add("a .NET unhandled exception on stderr");
        if (problems.Count > 0) return problems;
        JsonDocument? doc = null;
        try
        {
            if (result.StdoutBytes.AsSpan().Trim(" \t\r\n"u8).Length > 0) doc = JsonDocument.Parse(result.StdoutBytes);
        }
        catch (JsonException e)
        {
            problems.Add($"stdout is not JSON ({e.Message})");
            return problems;
        }
        using (doc)
        {
            var json = doc?.RootElement;
            if (result.ExitCode == 0)
            {
                succeeded = true;
                switch (command)
                {
                    case "ADD":
                        if (json is not { ValueKind: JsonValueKind.Object } add || !add.TryGetProperty("ips", out var ips) || ips.ValueKind != JsonValueKind.Array || ips.GetArrayLength() == 0)
                        {
                            problems.Add("ADD exited 0 without a result holding ips");
                        }
                        else if (!add.TryGetProperty("cniVersion", out var v) || v.GetString() != requestVersion)
                        {
                            problems.Add($"ADD result cniVersion {(add.TryGetProperty("cniVersion", out var x) ? x.GetRawText() : "missing")}, the request said {requestVersion ?? "none"}");
                        }
                        break;
                    case "VERSION":
                        if (json is not { ValueKind: JsonValueKind.Object } ver || !ver.TryGetProperty("supportedVersions", out _)) problems.Add("VERSION exited 0 without supportedVersions");
                        break;
                    case "DEL" or "CHECK" or "GC" or "STATUS":
                        if (json is not null) problems.Add($"{command} exited 0 but printed something");
                        break;
                }
                return problems;
            }
            if (result.ExitCode != 1) problems.Add($"exit {result.ExitCode}, not 1");
            if (json is not { ValueKind: JsonValueKind.Object } error)
            {
                problems.Add("failed without an error JSON object on stdout");
                return problems;
            }
            if (!error.TryGetProperty("code", out var code) || code.ValueKind != JsonValueKind.Number || !code.TryGetInt32(out var n)) problems.Add("error without an integer code");
            else if (n == 999) problems.Add("internal error 999 (a bug)");
            if (!error.TryGetProperty("msg", out var msg) || msg.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(msg.GetString())) problems.Add("error without a msg");
            if (!error.TryGetProperty("cniVersion", out var version) || version.ValueKind != JsonValueKind.String) problems.Add("error without a cniVersion");
            else if (requestVersion is not null && version.GetString() != requestVersion) problems.Add($"error carries cniVersion {version.GetString()} but the request said {requestVersion}");
            else if (!SupportedVersions.Contains(version.GetString())) problems.Add($"error carries unsupported cniVersion {version.GetString()}");
        }
        return problems;
    }

    private static string DamageConfig(string dataDir) =>
        $$$"""{"cniVersion":"1.0.0","name":"dmgnet","type":"bridge","ipam":{"type":"berth","dataDir":"{{{dataDir}}}","ranges":[[{"subnet":"10.95.0.0/24"}]]}}""";

    private static Dictionary<string, byte[]> Env(string command, string container) => new()
    {
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"u8.ToArray(),
        ["CNI_COMMAND"] = Encoding.UTF8.GetBytes(command),
        ["CNI_CONTAINERID"] = Encoding.UTF8.GetBytes(container),
        ["CNI_IFNAME"] = "eth0"u8.ToArray(),
        ["CNI_NETNS"] = "/var/run/netns/fuzz-none"u8.ToArray(),
    };

    /// <summary>A real store: 20 leases checkpointed into the file, then 5 more that only the WAL holds.</summary>
    private void MakeGolden()
    {
        var dir = Path.Combine(_sandbox.Root, "golden");
        var db = Path.Combine(dir, "berth.db");
        for (var i = 0; i < GoldenCheckpointed + GoldenInWal; i++)
        {
            if (i == GoldenCheckpointed) Exec.Must("sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE)");
            var r = Run(Env("ADD", $"g{i}"), Encoding.UTF8.GetBytes(DamageConfig(dir)));
            if (r.ExitCode != 0) throw new InvalidOperationException($"cannot build the golden store: {r}");
        }
        _goldenDb = File.ReadAllBytes(db);
        _goldenWal = File.ReadAllBytes(db + "-wal");
        if (_goldenWal.Length == 0) throw new InvalidOperationException("the golden store's WAL is empty");
    }

    private static readonly string[] Damages =
    [
        "header-flip", "page-flip", "zeroed-page", "truncated", "truncated-at-page", "zero-bytes", "zero-bytes-with-wal",
        "wal-garbage", "wal-flip", "wal-truncated", "shm-garbage", "all-garbage", "lock-garbage", "lock-fifo",
    ];

    /// <summary>
    /// A failed transaction may have written WAL frames before SQLite found the damage (a commit that
    /// stopped half-way): that is no change as long as the file is untouched and no frame after the old end
    /// of the WAL marks a commit (bytes 4-7 of a frame header, the database size after a commit, are zero).
    /// </summary>
    private static bool UncommittedWalFrames(string db, Dictionary<string, byte[]> before, Dictionary<string, byte[]> after, string change)
    {
        var walPath = db + "-wal";
        if (!change.StartsWith(walPath + " ", StringComparison.Ordinal) || !after.TryGetValue(walPath, out var wal) || wal.Length < 32) return false;
        var old = before.GetValueOrDefault(walPath) ?? [];
        if (old.Length > 0 && !wal.AsSpan(0, Math.Min(old.Length, wal.Length)).SequenceEqual(old)) return false;
        var pageSize = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(wal.AsSpan(8, 4));
        if (pageSize is < 512 or > 65536) return false;
        var frame = 24 + pageSize;
        var start = Math.Max(32, old.Length);
        for (var at = 32; at + frame <= wal.Length; at += frame)
        {
            if (at + frame > start && System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(wal.AsSpan(at + 4, 4)) != 0) return false;
        }
        return true;
    }

    /// <summary>Words of the advice an error 5 gives (README: "the message names the file").</summary>
    private static readonly string[] WhatToDo = ["will not reset", "berth-agent check", "restore", "install the newer berth", "free space", "permissions"];

    private void DamageCase(int index, Random random)
    {
        var damage = Damages[random.Next(Damages.Length)];
        var withWal = damage is "zero-bytes-with-wal" or "wal-garbage" or "wal-flip" or "wal-truncated" || (damage != "zero-bytes" && random.Next(2) == 0);
        var dir = Path.Combine(_sandbox.Root, "damage", index.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var db = Path.Combine(dir, "berth.db");
        var bytes = (byte[])_goldenDb.Clone();
        var wal = withWal ? (byte[])_goldenWal.Clone() : null;
        var detail = "";
        switch (damage)
        {
            case "header-flip":
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    var at = random.Next(100);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    detail += $" @{at}";
                }
                break;
            case "page-flip":
                for (var i = random.Next(1, 9); i > 0; i--)
                {
                    var at = random.Next(100, bytes.Length);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    detail += $" @{at}";
                }
                break;
            case "zeroed-page":
                var page = random.Next(1, bytes.Length / 4096);
                Array.Clear(bytes, page * 4096, 4096);
                detail = $" page {page + 1}";
                break;
            case "truncated":
                var length = random.Next(1, bytes.Length);
                bytes = bytes[..length];
                detail = $" to {length}";
                break;
            case "truncated-at-page":
                var pages = random.Next(1, bytes.Length / 4096);
                bytes = bytes[..(pages * 4096)];
                detail = $" to {pages} pages";
                break;
            case "zero-bytes" or "zero-bytes-with-wal":
                bytes = [];
                break;
            case "wal-garbage":
                wal = new byte[random.Next(1, 40_000)];
                random.NextBytes(wal);
                detail = $" {wal.Length} bytes";
                break;
            case "wal-flip":
                for (var i = random.Next(1, 9); i > 0; i--)
                {
                    var at = random.Next(wal!.Length);
                    wal[at] ^= (byte)(1 << random.Next(8));
                    detail += $" @{at}";
                }
                break;
            case "wal-truncated":
                var walLength = random.Next(0, wal!.Length);
                wal = wal[..walLength];
                detail = $" to {walLength}";
                break;
            case "shm-garbage":
                var shm = new byte[32768];
                random.NextBytes(shm);
                File.WriteAllBytes(db + "-shm", shm);
                break;
            // berth.db.lock holds no lease data, only the writers' counters (WriterLock), which a writer reads: any
            // bytes, or no regular file at all, must not stop an intact store from working.
            case "lock-garbage":
                var counters = new byte[random.Next(0, 40)];
                random.NextBytes(counters);
                File.WriteAllBytes(db + ".lock", counters);
                detail = $" {counters.Length} bytes";
                break;
            case "lock-fifo":
                Exec.Must("mkfifo", db + ".lock");
                break;
            default:
                random.NextBytes(bytes);
                break;
        }
        File.WriteAllBytes(db, bytes);
        if (wal is not null) File.WriteAllBytes(db + "-wal", wal);
        var op = random.Next(10) switch { < 5 => ("ADD", "dmg-new"), < 8 => ("DEL", "g3"), _ => ("CHECK", "g5") };
        var what = $"damaged store case {index}: {damage}{detail}{(withWal ? " (with WAL)" : "")}, {op.Item1} {op.Item2}, seed {options.Seed}, store {db}";

        var env = Env(op.Item1, op.Item2);
        if (random.Next(2) == 0)
        {
            env["BERTH_PLUGIN_SOCKET"] = Encoding.UTF8.GetBytes(_sandbox.ServingSocket);
            what += ", served";
        }
        var before = StoreReader.Snapshot(dir);
        var result = Run(env, Encoding.UTF8.GetBytes(DamageConfig(dir)));
        var problems = Judge(op.Item1, "1.0.0", result, out var succeeded);
        if (damage.StartsWith("lock", StringComparison.Ordinal))
        {
            // The store itself is intact: every operation works as on the golden store (CHECK of a held lease included).
            if (succeeded) _report.Acked++;
            else problems.Add($"the lock file's contents stopped {op.Item1} on an intact store: {result.ErrorCode}");
        }
        else if (damage == "zero-bytes")
        {
            // A zero-byte file without a WAL is a new store (README): ADD and DEL work, CHECK finds no lease.
            var code = succeeded ? 0 : result.ErrorCode;
            if (code != (op.Item1 == "CHECK" ? 3 : 0)) problems.Add($"a zero-byte store is not taken as a new one: {op.Item1} answered {code}");
            if (succeeded) _report.Acked++;
        }
        else if (succeeded)
        {
            _report.Acked++;
            // Worked: then nothing it held may be gone. What only a damaged WAL held SQLite cannot tell from a torn write.
            var held = damage is "zero-bytes" ? 0 : GoldenCheckpointed + (withWal && !damage.StartsWith("wal", StringComparison.Ordinal) ? GoldenInWal : 0);
            if (op.Item1 == "DEL" && held > 0) held--;
            if (op.Item1 == "ADD") held++;
            var rows = SqliteCli.TryQuery(db, "SELECT count(*) AS n FROM leases", out _);
            if (rows is not null && int.Parse(rows[0]["n"]!, System.Globalization.CultureInfo.InvariantCulture) is var n && n < held)
            {
                problems.Add($"succeeded but the store now holds {n} of the {held} leases it had: data silently lost");
            }
        }
        else if (problems.Count == 0)
        {
            using var doc = JsonDocument.Parse(result.StdoutBytes);
            var code = doc.RootElement.GetProperty("code").GetInt32();
            var msg = doc.RootElement.GetProperty("msg").GetString()!;
            // A flipped bit inside a row is damage SQLite cannot see (integrity_check says ok): berth may then answer
            // from what the row now says (a range that looks full is 100), as long as it fails and changes nothing.
            var contentOnly = damage is "page-flip" or "zeroed-page" or "header-flip" or "shm-garbage";
            if (code != 5 && !contentOnly) problems.Add($"error {code}, not 5, for a damaged store");
            else if (code != 5) _log.WriteLine($"fuzz: note: damaged store case {index} ({damage}{detail}) answered {code}: {msg}");
            else if (!msg.Contains(db, StringComparison.Ordinal)) problems.Add("error 5 does not name the store file");
            else if (!WhatToDo.Any(w => msg.Contains(w, StringComparison.Ordinal))) problems.Add("error 5 does not say what to do");
            var after = StoreReader.Snapshot(dir);
            problems.AddRange(StoreReader.Diff(before, after).Where(d => !UncommittedWalFrames(db, before, after, d)).Select(d => "store changed on error: " + d));
        }
        if (problems.Count > 0) _report.Violation($"{string.Join("; ", problems)}\n  {what}\n  {result}");
        else Directory.Delete(dir, recursive: true);
    }
}
