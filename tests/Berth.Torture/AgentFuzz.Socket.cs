using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Berth.Shared.Plugin;

namespace Berth.Torture;

/// <summary>
/// The plugin's socket, both ways (issue 26): hostile frames sent to a serving berth-agent (random bytes, mutated and
/// truncated requests, lengths past the limit, a peer that stops mid-frame, calls naming a FIFO, /dev/zero or a
/// directory for their netns or boot ID file), after which the agent must still answer a real ADD itself; and a fake
/// agent answering the plugin with garbage (wrong magic, wrong kind, lengths past the limit, truncated or trailing
/// bodies, a refusal, a hang-up), after which the plugin must have done the ADD itself, exactly as alone.
/// </summary>
public sealed partial class AgentFuzzer
{
    private static readonly TimeSpan HostileBound = TimeSpan.FromSeconds(20);
    private SocketAgent? _serving;

    private string SocketCase(int index, int seed)
    {
        var random = new Random(seed);
        var dir = Path.Combine(_root, "socket-" + index.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var bootId = Path.Combine(dir, "boot_id");
        File.WriteAllText(bootId, "fuzz-boot\n");
        Exec.Must("mkfifo", Path.Combine(dir, "fifo"));
        _serving ??= SocketAgent.Start(Path.Combine(_root, "serving"), Path.Combine(_root, "run", "plugin.sock"));
        var problems = new List<string>();
        var kinds = new List<string>();

        // Random frames, then always one call that names a file of the wrong kind for its netns or boot ID (a FIFO
        // among them often): the kind that can hold a worker, so every case tries it.
        var frames = Enumerable.Range(0, random.Next(1, 4)).Select(_ => HostileFrame(random, dir, random.Next(8))).Append(HostileFrame(random, dir, 5));
        foreach (var (kind, frame, stopAfter) in frames)
        {
            kinds.Add(kind);
            if (Exchange(_serving.Socket, frame, stopAfter) is { } why) problems.Add($"hostile frame {kind}: {why}");
        }
        // The agent must still be there, and answer a real call itself.
        var fallbacks = Fallbacks(_serving.Socket);
        var served = Add(dir, "served", _serving.Socket, bootId);
        if (served.ExitCode != 0) problems.Add($"an ADD after the hostile frames failed: {served}");
        else if (Fallbacks(_serving.Socket) != fallbacks) problems.Add("the agent did not answer the ADD after the hostile frames: the plugin did it itself");

        // A fake agent answering garbage: the plugin does the call itself.
        var fake = Path.Combine(dir, "fake", "plugin.sock");
        Directory.CreateDirectory(Path.GetDirectoryName(fake)!);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(fake));
        listener.Listen(4);
        var (answerKind, answer) = GarbageAnswer(random);
        kinds.Add("answer " + answerKind);
        var faking = Task.Run(() =>
        {
            using var peer = listener.Accept();
            peer.ReceiveTimeout = 10_000;
            var buffer = new byte[1 << 16];
            // Take the whole request, as an agent would, then answer.
            var header = new byte[CallFrames.HeaderBytes];
            if (ReadFully(peer, header) && CallFrames.ReadHeader(header, CallFrames.MaxRequestBytes, CallFrames.Request) is var (_, length))
            {
                for (var left = length; left > 0;)
                {
                    var n = peer.Receive(buffer, 0, Math.Min(buffer.Length, left), SocketFlags.None);
                    if (n == 0) break;
                    left -= n;
                }
            }
            if (answer.Length > 0) peer.Send(answer);
        });
        var alone = Add(dir, "faked", fake, bootId);
        if (!faking.Wait(HostileBound)) problems.Add("the plugin never called the fake agent");
        if (alone.ExitCode != 0 || !alone.Stdout.Contains("\"ips\"", StringComparison.Ordinal)) problems.Add($"the plugin did not do the ADD itself after a garbage answer: {alone}");
        else if (SqliteCli.Column(Path.Combine(dir, "data", "berth.db"), "SELECT count(*) FROM leases WHERE container_id = 'faked'").SingleOrDefault() != "1")
        {
            problems.Add("the plugin answered the ADD but the store holds no lease for it");
        }
        foreach (var run in new[] { served, alone })
        {
            foreach (var sign in new[] { "Unhandled exception", "internal error", "   at " })
            {
                if (run.Stdout.Contains(sign, StringComparison.Ordinal) || run.Stderr.Contains(sign, StringComparison.Ordinal)) problems.Add($"\"{sign.Trim()}\" in the output");
            }
        }
        if (problems.Count > 0) _report.Violation($"case {index} (plugin socket: {string.Join(", ", kinds)}): {string.Join("; ", problems)}\n  seed {options.Seed} case seed {seed}, dir {dir}");
        else
        {
            _report.Acked++;
            Directory.Delete(dir, recursive: true);
        }
        return "plugin-socket";
    }

    /// <summary>The serving agent's counters of the calls the plugin did itself, in all.</summary>
    private static long Fallbacks(string socket) =>
        Directory.GetFiles(Path.GetDirectoryName(socket)!, Path.GetFileName(socket) + ".fallback-*").Sum(f => new FileInfo(f).Length);

    private ExecResult Add(string dir, string container, string socket, string bootId)
    {
        var config = $$$"""{"cniVersion":"1.0.0","name":"fuzz","type":"bridge","ipam":{"type":"berth","dataDir":"{{{Path.Combine(dir, "data")}}}","ranges":[[{"subnet":"10.79.0.0/24"}]]}}""";
        return PluginRun.Run(Repo.Plugin, "ADD", config, container, netns: "/var/run/netns/fuzz-none", timeout: TimeSpan.FromSeconds(120),
            extraEnvironment: new Dictionary<string, string> { ["BERTH_PLUGIN_SOCKET"] = socket, ["BERTH_BOOT_ID_FILE"] = bootId });
    }

    /// <summary>
    /// Sends <paramref name="frame"/> (the first <paramref name="stopAfter"/> bytes, when given, and then nothing more)
    /// and reads until the agent closes: null when it did, else why not.
    /// </summary>
    private static string? Exchange(string socket, byte[] frame, int? stopAfter)
    {
        using var peer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            peer.Connect(new UnixDomainSocketEndPoint(socket));
        }
        catch (SocketException e)
        {
            return $"cannot connect: {e.Message}";
        }
        try
        {
            peer.Send(frame.AsSpan(0, Math.Min(frame.Length, stopAfter ?? frame.Length)));
            if (stopAfter is null) peer.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // The agent closed first: it may, once it has seen enough to refuse.
        }
        peer.ReceiveTimeout = (int)HostileBound.TotalMilliseconds;
        var buffer = new byte[4096];
        try
        {
            while (peer.Receive(buffer) > 0)
            {
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            return $"the agent kept the connection open for {HostileBound.TotalSeconds} s";
        }
        catch (SocketException)
        {
            // Reset by the agent: closed.
        }
        return null;
    }

    private static bool ReadFully(Socket peer, byte[] into)
    {
        for (var done = 0; done < into.Length;)
        {
            var n = peer.Receive(into, done, into.Length - done, SocketFlags.None);
            if (n == 0) return false;
            done += n;
        }
        return true;
    }

    private static (string Kind, byte[] Frame, int? StopAfter) HostileFrame(Random random, string dir, int variant)
    {
        var config = Encoding.UTF8.GetBytes($$$"""{"cniVersion":"1.0.0","name":"fuzz","type":"bridge","ipam":{"type":"berth","dataDir":"{{{Path.Combine(dir, "hostile")}}}","ranges":[[{"subnet":"10.79.1.0/24"}]]}}""");
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = "hostile",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_NETNS"] = "/var/run/netns/fuzz-none",
            ["BERTH_BOOT_ID_FILE"] = Path.Combine(dir, "boot_id"),
        };
        byte[] Valid() => CallFrames.EncodeRequest(k => env.GetValueOrDefault(k), config);
        switch (variant)
        {
            case 0:
                var bytes = new byte[random.Next(0, 4096)];
                random.NextBytes(bytes);
                return ("random bytes", bytes, null);
            case 1:
                var flipped = Valid();
                for (var i = random.Next(1, 8); i > 0; i--) flipped[random.Next(flipped.Length)] ^= (byte)random.Next(1, 256);
                return ("mutated request", flipped, null);
            case 2:
                var whole = Valid();
                return ("truncated request", whole[..random.Next(whole.Length)], null);
            case 3:
                var huge = Valid()[..CallFrames.HeaderBytes];
                BitConverter.TryWriteBytes(huge.AsSpan(5), random.Next(2) == 0 ? uint.MaxValue : (uint)CallFrames.MaxRequestBytes + 1);
                return ("length past the limit", huge, null);
            case 4:
                var started = Valid();
                return ("peer stops mid-frame", started, random.Next(started.Length));
            case 5:
                var name = Pick(random, "CNI_NETNS", "BERTH_BOOT_ID_FILE");
                var target = Pick(random, Path.Combine(dir, "fifo"), Path.Combine(dir, "fifo"), "/dev/zero", dir, "/proc/self/mem");
                env[name] = target;
                return ($"{name} {Path.GetFileName(target)}", Valid(), null);
            case 6:
                env["CNI_COMMAND"] = Pick(random, "DEL", "CHECK", "GC", "STATUS", "VERSION", "add", "");
                env["CNI_IFNAME"] = Pick(random, "eth0", "", ".", "a/b", new string('x', 16), "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9");
                config = random.Next(2) == 0 ? Encoding.UTF8.GetBytes("{\"cniVersion\":") : config;
                return ("odd call", Valid(), null);
            default:
                return ("silent peer", [], 0);
        }
    }

    private static (string Kind, byte[] Frame) GarbageAnswer(Random random)
    {
        var good = CallFrames.EncodeResult(0, "{\"cniVersion\":\"1.0.0\"}"u8, []);
        switch (random.Next(8))
        {
            case 0:
                var bytes = new byte[random.Next(1, 2048)];
                random.NextBytes(bytes);
                return ("random bytes", bytes);
            case 1:
                var magic = (byte[])good.Clone();
                magic[0] = (byte)'X';
                return ("wrong magic", magic);
            case 2:
                var kind = (byte[])good.Clone();
                kind[4] = (byte)'Q';
                return ("wrong kind", kind);
            case 3:
                var huge = (byte[])good.Clone();
                BitConverter.TryWriteBytes(huge.AsSpan(5), (uint)CallFrames.MaxAnswerBytes + 1);
                return ("length past the limit", huge);
            case 4:
                return ("truncated", good[..random.Next(1, good.Length)]);
            case 5:
                var trailing = (byte[])good.Clone();
                BitConverter.TryWriteBytes(trailing.AsSpan(5), (uint)(good.Length - CallFrames.HeaderBytes + 3));
                return ("body shorter than its length", trailing);
            case 6:
                return ("refusal", CallFrames.EncodeRefusal("fuzzed refusal"));
            default:
                return ("hang-up", []);
        }
    }
}
