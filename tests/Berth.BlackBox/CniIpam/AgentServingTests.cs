using System.Net.Sockets;
using Berth.Shared.Config;
using Berth.Shared.Plugin;

namespace Berth.BlackBox.CniIpam;

/// <summary>
/// berth-agent answering the plugin's calls, and the plugin doing them itself whenever the agent cannot: killed
/// mid-call, a stale socket file, hostile bytes on the socket, a caller that is not root. Every published process is
/// real; the store is read with sqlite3.
/// </summary>
public sealed class AgentServingTests : IDisposable
{
    private readonly TempDir _dir = new();

    private string Socket => _dir.File("run/plugin.sock");

    private string Store => _dir.File("data/berth.db");

    private string Config => Configs.Json("""[[{"subnet":"10.81.0.0/24"}]]""", _dir.File("data"));

    private SocketAgent StartAgent() => SocketAgent.Start(_dir.File("agent"), Socket, metrics: true);

    private ExecResult Call(string command, string container, string? socket = null) =>
        PluginRun.Run(Repo.Plugin, command, Config, container, netns: "/var/run/netns/none",
            extraEnvironment: new Dictionary<string, string> { [ServingAgent.SocketVariable] = socket ?? Socket });

    private static double Served(SocketAgent agent, string verb, string result = "ok") =>
        agent.Sample($"berth_plugin_calls_total{{verb=\"{verb}\",result=\"{result}\"}}");

    private IReadOnlyList<string?> Leases() => SqliteCli.Column(Store, "SELECT container_id || ' ' || address FROM leases ORDER BY address");

    [Fact]
    public void The_black_box_tests_run_against_the_agent_exactly_when_the_switch_is_on()
    {
        var before = ServingAgent.Agent is { } serving ? Served(serving, "ADD") : 0;

        var add = PluginRun.Run(Repo.Plugin, "ADD", Config, "c1", netns: "/var/run/netns/none");

        Assert.True(add.ExitCode == 0, add.ToString());
        if (ServingAgent.Enabled)
        {
            Assert.True(Served(ServingAgent.Agent!, "ADD") > before);
        }
        else
        {
            Assert.Null(ServingAgent.Agent);
            Assert.False(File.Exists(ServingAgent.Socket));
        }
    }

    [Fact]
    public void The_agent_answers_ADD_and_DEL_and_the_plugin_relays_its_answers()
    {
        using var agent = StartAgent();

        var add = Call("ADD", "c1");
        var del = Call("DEL", "c1");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(["10.81.0.2/24"], add.Addresses);
        Assert.True(del.ExitCode == 0, del.ToString());
        Assert.Equal(1, Served(agent, "ADD"));
        Assert.Equal(1, Served(agent, "DEL"));
        Assert.Empty(Leases());
    }

    [Fact]
    public void A_call_the_agent_committed_is_safely_done_again_by_the_plugin_alone()
    {
        // The agent may commit and die before the plugin reads its answer; the plugin then does the call itself.
        using var agent = StartAgent();
        var nowhere = _dir.File("none/plugin.sock");

        var served = Call("ADD", "c1");
        var again = Call("ADD", "c1", nowhere);

        Assert.True(served.ExitCode == 0 && again.ExitCode == 0, $"{served}\n{again}");
        Assert.Equal(served.Addresses, again.Addresses);
        Assert.Equal(["c1 10.81.0.2"], Leases());

        var deleted = Call("DEL", "c1");
        var deletedAgain = Call("DEL", "c1", nowhere);

        Assert.True(deleted.ExitCode == 0 && deletedAgain.ExitCode == 0, $"{deleted}\n{deletedAgain}");
        Assert.Empty(Leases());
        Assert.Equal(1, Served(agent, "ADD"));
        Assert.Equal(1, Served(agent, "DEL"));
    }

    [Fact]
    public async Task An_agent_killed_in_the_middle_of_an_ADD_leaves_it_to_the_plugin_which_gets_one_lease()
    {
        Assert.True(Call("ADD", "c0", _dir.File("none/plugin.sock")).ExitCode == 0);
        using var agent = StartAgent();
        var lockFile = Store + ".lock";
        Running add;
        // The store's writer lock held from outside: the agent takes the call and stands in line behind it.
        using (FileLock.Take(lockFile))
        {
            add = PluginRun.Start(Repo.Plugin, "ADD", Config, "c1", netns: "/var/run/netns/none",
                extraEnvironment: new Dictionary<string, string> { [ServingAgent.SocketVariable] = Socket });
            await WaitForLockWaiter(agent.Pid, lockFile);
            agent.Kill();
            // The plugin saw the connection close before an answer, and does the call itself: in the same line.
            await WaitForLockWaiter(add.Id, lockFile);
        }
        using (add)
        {
            var result = await add.WaitAsync();

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(["10.81.0.3/24"], result.Addresses);
        }
        Assert.Equal(["c0 10.81.0.2", "c1 10.81.0.3"], Leases());
        Assert.Equal(["ok"], SqliteCli.Column(Store, "PRAGMA integrity_check"));
        Assert.Equal(1, new FileInfo(PluginSocketFallback("closed")).Length);
    }

    private string PluginSocketFallback(string reason) => $"{Socket}.fallback-{reason}";

    [Fact]
    public void A_socket_file_nobody_listens_on_is_a_fallback_and_counted()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Socket)!);
        // Bound by a process that then died, as an agent killed by SIGKILL leaves it (.NET would remove it on close).
        Exec.Must("python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", Socket);
        File.WriteAllBytes(PluginSocketFallback("refused"), []);
        Assert.True(File.Exists(Socket));

        var add = Call("ADD", "c1");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(["10.81.0.2/24"], add.Addresses);
        Assert.Equal(1, new FileInfo(PluginSocketFallback("refused")).Length);
        // The agent that starts later replaces the stale file, and answers.
        using var agent = StartAgent();
        Assert.True(Call("DEL", "c1").ExitCode == 0);
        Assert.Equal(1, Served(agent, "DEL"));
        Assert.Empty(Leases());
    }

    [Fact]
    public async Task Hostile_bytes_on_the_socket_get_a_refusal_and_the_agent_keeps_answering()
    {
        using var agent = StartAgent();
        // A peer that says nothing holds one worker for its time to speak: calls go on beside it.
        using var silent = await Connect();
        foreach (var bytes in new[]
        {
            "GET / HTTP/1.1\r\n\r\n"u8.ToArray(),
            [.. "BRTHQ"u8, 0xff, 0xff, 0xff, 0x7f],
            [.. "BRTHR"u8, 0, 0, 0, 0],
            [.. "BRTHQ"u8, 5, 0, 0, 0, 9, 1, 2, 3, 4],
            [.. "BRTHQ"u8, 6, 0, 0, 0, 1, 200, 0, 0, 0, 0],
        })
        {
            using var peer = await Connect();
            await peer.SendAsync(bytes);
            var answer = await ReadToEnd(peer);
            Assert.StartsWith("BRTHN", System.Text.Encoding.ASCII.GetString(answer));
        }
        using (var cut = await Connect())
        {
            await cut.SendAsync("BRTHQ"u8.ToArray());
            cut.Shutdown(SocketShutdown.Send);
            Assert.StartsWith("BRTHN", System.Text.Encoding.ASCII.GetString(await ReadToEnd(cut)));
        }

        var add = Call("ADD", "c1");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(1, Served(agent, "ADD"));
        Assert.Equal(6, agent.Sample("berth_plugin_calls_refused_total{reason=\"malformed\"}"));
        // The silent peer is dropped once its time to speak is over.
        Assert.Empty(await ReadToEnd(silent));
        Assert.Equal(1, agent.Sample("berth_plugin_calls_refused_total{reason=\"slow\"}"));
    }

    [Fact]
    public void A_caller_that_is_not_root_is_refused_and_the_agent_changes_nothing()
    {
        using var agent = StartAgent();
        // Opened up by hand, as a careless operator might: the peer's credentials still decide.
        File.SetUnixFileMode(Path.GetDirectoryName(Socket)!, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Socket, (UnixFileMode)0b110_110_110);
        var config = _dir.File("config.json");
        File.WriteAllText(config, Config);
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(config, (UnixFileMode)0b110_100_100);

        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = "c1", ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/var/run/netns/none",
            [ServingAgent.SocketVariable] = Socket,
        };
        var result = Exec.Run("/bin/sh", ["-c", $"exec setpriv --reuid 65534 --regid 65534 --clear-groups {Repo.Plugin} < {config}"],
            PluginRun.Plugin(env, "", TimeSpan.FromSeconds(60)));

        Assert.Equal(1, agent.Sample("berth_plugin_calls_refused_total{reason=\"peer\"}"));
        Assert.Equal(0, Served(agent, "ADD") + Served(agent, "ADD", "error"));
        // The plugin did the call itself, as the user it runs as: that user cannot write the store.
        Assert.True(result.ExitCode == 1 && result.ErrorCode == 5, result.ToString());
        Assert.False(File.Exists(Store));
    }

    [Fact]
    public async Task The_plugin_sends_the_call_as_CallFrames_encodes_it_and_relays_the_answer_byte_for_byte()
    {
        // The request comes from the forwarding prelude (C, before the runtime starts); the agent reads it with
        // CallFrames: the two must agree on every byte, variables and bounds alike.
        using var fake = FakeAgent.Listen(_dir.File("fake/plugin.sock"));
        var stdout = new byte[] { 0x7b, 0x22, 0xff, 0x00, 0x0a, 0x7d };
        var answering = fake.AnswerOnce(CallFrames.EncodeResult(7, stdout, "a warning\n"u8));
        var extra = new Dictionary<string, string>
        {
            [ServingAgent.SocketVariable] = fake.Socket, ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id"), ["UNRELATED"] = "not sent",
        };

        var run = PluginRun.Run(Repo.Plugin, "DEL", Config, "c1", netns: "/var/run/netns/x", cniArgs: "K8S_POD_NAME=p;IgnoreUnknown=1", extraEnvironment: extra);
        var request = await answering;

        var sent = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "DEL", ["CNI_CONTAINERID"] = "c1", ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/var/run/netns/x",
            ["CNI_ARGS"] = "K8S_POD_NAME=p;IgnoreUnknown=1", ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id"),
        };
        Assert.Equal(CallFrames.EncodeRequest(sent.GetValueOrDefault, System.Text.Encoding.UTF8.GetBytes(Config)), request);
        Assert.Equal(7, run.ExitCode);
        Assert.Equal(stdout, run.StdoutBytes);
        Assert.Equal("a warning\n", run.Stderr);
    }

    [Fact]
    public async Task Stdin_at_the_plugins_limit_is_forwarded_whole_and_one_byte_more_is_left_to_the_plugin()
    {
        using var fake = FakeAgent.Listen(_dir.File("fake/plugin.sock"));
        var atLimit = Config.PadRight(ConfigParser.MaxStdinBytes);
        var answering = fake.AnswerOnce(CallFrames.EncodeResult(0, "{}"u8, []));
        var extra = new Dictionary<string, string> { [ServingAgent.SocketVariable] = fake.Socket };

        var forwarded = PluginRun.Run(Repo.Plugin, "ADD", atLimit, "c1", extraEnvironment: extra);
        var request = await answering;

        Assert.True(forwarded.ExitCode == 0 && forwarded.Stdout == "{}", forwarded.ToString());
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(atLimit), request[^ConfigParser.MaxStdinBytes..]);
        Assert.Equal(ConfigParser.MaxStdinBytes, BitConverter.ToInt32(request, request.Length - ConfigParser.MaxStdinBytes - 4));

        // One byte more: the prelude reads it, hangs up without a request, and the plugin answers as it always did.
        var hungUp = fake.AnswerOnce([]);
        var tooLarge = PluginRun.Run(Repo.Plugin, "ADD", atLimit + " ", "c1", extraEnvironment: extra);
        var alone = PluginRun.Run(Repo.Plugin, "ADD", atLimit + " ", "c1", extraEnvironment: new Dictionary<string, string> { [ServingAgent.SocketVariable] = "off" });

        Assert.Empty(await hungUp);
        Assert.True(tooLarge.ExitCode == 1 && tooLarge.ErrorCode == 6, tooLarge.ToString());
        Assert.Equal(alone.Stdout, tooLarge.Stdout);
        Assert.False(File.Exists(Store));
    }

    public static TheoryData<string, byte[]> Answers => new()
    {
        { "declined", CallFrames.EncodeRefusal("not mine") },
        { "malformed", "HTTP/1.1 200 OK\r\n\r\n"u8.ToArray() },
        // Its stderr block cut short within the announced length; an exit code past 255.
        { "malformed", [.. "BRTHR"u8, 12, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, (byte)'{', (byte)'}', 0, 0] },
        { "malformed", [.. "BRTHR"u8, 12, 0, 0, 0, 44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
        { "malformed", [.. "BRTHR"u8, 0xff, 0xff, 0xff, 0x7f] },
        { "closed", CallFrames.EncodeResult(0, "{}"u8, [])[..^3] },
        { "closed", [] },
    };

    [Theory]
    [MemberData(nameof(Answers))]
    public async Task An_answer_that_is_no_result_leaves_the_call_to_the_plugin_and_is_counted_by_reason(string reason, byte[] answer)
    {
        using var fake = FakeAgent.Listen(Socket);
        foreach (var r in PluginSocketReasons) File.WriteAllBytes(PluginSocketFallback(r), []);
        var answering = fake.AnswerOnce(answer);

        var add = Call("ADD", "c1");
        await answering;

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(["10.81.0.2/24"], add.Addresses);
        Assert.Equal(["c1 10.81.0.2"], Leases());
        Assert.Equal(PluginSocketReasons.Select(r => r == reason ? 1L : 0L), PluginSocketReasons.Select(r => new FileInfo(PluginSocketFallback(r)).Length));
    }

    private static readonly string[] PluginSocketReasons = ["absent", "refused", "denied", "closed", "malformed", "declined", "timeout"];

    [Fact]
    public void A_call_that_is_not_served_never_looks_for_the_agent()
    {
        // No socket, but its directory with the counters: any attempt to connect would count "absent".
        Directory.CreateDirectory(Path.GetDirectoryName(Socket)!);
        File.WriteAllBytes(PluginSocketFallback("absent"), []);
        var extra = new Dictionary<string, string> { [ServingAgent.SocketVariable] = Socket };

        var version = Exec.Run(Repo.Plugin, ["--version"], PluginRun.Plugin(new Dictionary<string, string>(extra) { ["CNI_COMMAND"] = "ADD" }, Config, TimeSpan.FromSeconds(60)));
        var cniVersion = PluginRun.Run(Repo.Plugin, "VERSION", Config, extraEnvironment: extra);
        var add = Call("ADD", "c1");

        Assert.True(version.ExitCode == 0 && version.Stdout.StartsWith("berth ", StringComparison.Ordinal), version.ToString());
        Assert.True(cniVersion.ExitCode == 0 && cniVersion.Stdout.Contains("supportedVersions", StringComparison.Ordinal), cniVersion.ToString());
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(1, new FileInfo(PluginSocketFallback("absent")).Length);
    }

    [Fact]
    public void The_files_a_call_names_are_read_as_its_caller_sees_them()
    {
        // A caller in a mount namespace of its own (a pod, a unit with PrivateTmp=) can see another file at the same
        // path than the agent does; a relative path is the caller's working directory's. The agent must answer with
        // the caller's file, as the plugin alone would, not with its own.
        using var agent = StartAgent();
        var path = _dir.File("dns/resolv.conf");
        var callers = _dir.File("caller/resolv.conf");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Directory.CreateDirectory(Path.GetDirectoryName(callers)!);
        File.WriteAllText(path, "nameserver 10.0.0.1\n");
        File.WriteAllText(callers, "nameserver 10.0.0.2\n");
        IReadOnlyList<string?> Nameservers(string resolvConf, string container, string shell)
        {
            var add = AddThrough(shell, $$$"""{"cniVersion":"1.0.0","name":"net1","type":"bridge","ipam":{"type":"berth","dataDir":"{{{_dir.File("data")}}}","resolvConf":"{{{resolvConf}}}","ranges":[[{"subnet":"10.81.0.0/24"}]]}}""", container);
            Assert.True(add.ExitCode == 0, add.ToString());
            return [.. add.Json.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(n => n.GetString())];
        }

        var ownNamespace = Nameservers(path, "c1", $"unshare --mount --propagation private sh -c 'mount --bind {callers} {path} && exec {Repo.Plugin}'");
        var relative = Nameservers("resolv.conf", "c2", $"cd {Path.GetDirectoryName(callers)} && exec {Repo.Plugin}");

        // flannel's subnet file, for a range of "usePodCidr".
        var subnetFile = _dir.File("flannel/subnet.env");
        var callersSubnet = _dir.File("caller/subnet.env");
        Directory.CreateDirectory(Path.GetDirectoryName(subnetFile)!);
        File.WriteAllText(subnetFile, "FLANNEL_SUBNET=10.82.1.1/24\n");
        File.WriteAllText(callersSubnet, "FLANNEL_SUBNET=10.82.2.1/24\n");
        var podCidr = $$$"""{"cniVersion":"1.0.0","name":"net2","type":"bridge","ipam":{"type":"berth","dataDir":"{{{_dir.File("data")}}}","subnetFile":"{{{subnetFile}}}","ranges":[[{"subnet":"usePodCidr"}]]}}""";
        var inPodCidr = AddThrough($"unshare --mount --propagation private sh -c 'mount --bind {callersSubnet} {subnetFile} && exec {Repo.Plugin}'", podCidr, "c3");

        Assert.Equal(["10.0.0.2"], ownNamespace);
        Assert.Equal(["10.0.0.2"], relative);
        Assert.True(inPodCidr.ExitCode == 0, inPodCidr.ToString());
        Assert.Equal(["10.82.2.2/24"], inPodCidr.Addresses);
        Assert.Equal(3, Served(agent, "ADD"));
    }

    /// <summary>An ADD to the agent's socket by a plugin that <paramref name="shell"/> (a /bin/sh command line) starts.</summary>
    private ExecResult AddThrough(string shell, string config, string container)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = container, ["CNI_IFNAME"] = "eth0", ["CNI_NETNS"] = "/var/run/netns/none",
            [ServingAgent.SocketVariable] = Socket,
        };
        return Exec.Run("/bin/sh", ["-c", shell], PluginRun.Plugin(env, config, TimeSpan.FromSeconds(60)));
    }

    /// <summary>A listener on a socket that answers one call with the given bytes and hands back the request it read.</summary>
    private sealed class FakeAgent : IDisposable
    {
        private readonly System.Net.Sockets.Socket _listener;

        private FakeAgent(string socket, System.Net.Sockets.Socket listener)
        {
            Socket = socket;
            _listener = listener;
        }

        public string Socket { get; }

        public static FakeAgent Listen(string socket)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
            var listener = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(socket));
            listener.Listen(4);
            return new FakeAgent(socket, listener);
        }

        /// <summary>Accepts one connection, reads all the plugin sends until its request is whole or it hangs up, then answers.</summary>
        public async Task<byte[]> AnswerOnce(byte[] answer)
        {
            using var peer = await _listener.AcceptAsync();
            var request = new MemoryStream();
            var buffer = new byte[1 << 16];
            while (Whole(request) is false)
            {
                var n = await peer.ReceiveAsync(buffer);
                if (n == 0) break;
                request.Write(buffer, 0, n);
            }
            if (answer.Length > 0) await peer.SendAsync(answer);
            return request.ToArray();
        }

        private static bool Whole(MemoryStream request) =>
            request.Length >= CallFrames.HeaderBytes && request.Length >= CallFrames.HeaderBytes + BitConverter.ToUInt32(request.GetBuffer(), 5);

        public void Dispose() => _listener.Dispose();
    }

    private async Task<System.Net.Sockets.Socket> Connect()
    {
        var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket));
        return s;
    }

    private static async Task<byte[]> ReadToEnd(System.Net.Sockets.Socket s)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) all.Write(buffer, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // The agent closed with bytes of ours it never read: the kernel says so after its answer.
        }
        return all.ToArray();
    }

    /// <summary>Until <paramref name="pid"/> waits for the flock on <paramref name="file"/> (a "->" line of /proc/locks).</summary>
    private static async Task WaitForLockWaiter(int pid, string file)
    {
        var inode = Exec.Must("stat", "-c", "%i", file).Trim();
        using var give = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (!File.ReadAllLines("/proc/locks").Any(l => l.Contains("->", StringComparison.Ordinal) && l.Contains($" {pid} ", StringComparison.Ordinal) && l.Contains($":{inode} ", StringComparison.Ordinal)))
        {
            await Task.Delay(20, give.Token);
        }
    }

    public void Dispose() => _dir.Dispose();
}
