using System.Text.RegularExpressions;

namespace Berth.BlackBox.HostAgent;

/// <summary>
/// The output of `leases` and `check`, pinned byte for byte (the README calls it stable): berth's leases of this
/// and an earlier boot, alive and dead, and guarded host-local files seen in an earlier boot, not yet seen, empty,
/// and an entry skipped with a warning. Only what moves with the clocks is masked: ages and creation times.
/// </summary>
public sealed partial class OperatorOutputTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Netns _live = new();

    public OperatorOutputTests()
    {
        File.WriteAllText(_dir.File("boot_id"), "boot-pin-1\n");
        Directory.CreateDirectory(_dir.File("hl/net-hl"));
        Directory.CreateDirectory(_dir.File("net.d"));
        File.WriteAllText(_dir.File("agent.json"), $$$"""{"runtimeSockets": [], "hostLocal": {"dirs": ["{{{_dir.File("hl")}}}"], "netnsDirs": []}, "cniConfDirs": ["{{{_dir.File("net.d")}}}"]}""");
    }

    private string Store => _dir.File("data/berth.db");
    private Dictionary<string, string> Env => new() { ["BERTH_BOOT_ID_FILE"] = _dir.File("boot_id") };

    private void Add(string id, string netns) =>
        Assert.Equal(0, PluginRun.Run(Repo.Plugin, "ADD", Configs.Json("""[[{"subnet":"10.64.0.0/29"}]]""", _dir.File("data")), id, netns: netns,
            cniArgs: $"K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pod-{id}", extraEnvironment: Env).ExitCode);

    private string Agent(int exitCode, params string[] args)
    {
        var run = PluginRun.Agent(Env, [.. args, "--store", Store, "--config", _dir.File("agent.json")]);
        Assert.Equal(exitCode, run.ExitCode);
        return Mask(run.Stdout + "--- stderr\n" + run.Stderr);
    }

    /// <summary>The test's own paths as names, and what moves with the clocks as a mark.</summary>
    private string Mask(string text)
    {
        text = text.Replace(_live.Path, "{live}").Replace(_dir.Path, "{dir}");
        text = AgeSeconds().Replace(text, "\"ageSeconds\": N");
        text = Timestamp().Replace(text, "$1\"T\"");
        // The table's AGE column: its width follows the ages, so the spaces around it are normalised too.
        return TableAge().Replace(text, "AGE  ");
    }

    [GeneratedRegex("\"ageSeconds\": [0-9]+")]
    private static partial Regex AgeSeconds();

    [GeneratedRegex("(\"(?:createdAt|firstSeenAt)\": )\"[0-9T:.+Z-]+\"")]
    private static partial Regex Timestamp();

    [GeneratedRegex("(?<= )(?:[0-9]+[smhd](?:[0-9]+[mh])?|-|AGE) +(?=current|previous|unseen|BOOT)")]
    private static partial Regex TableAge();

    [Fact]
    public void Leases_and_check_print_what_they_printed_before_their_logic_moved()
    {
        // Boot 1: a host-local file the agent sees, and two pods of berth's, one of which will stay alive.
        File.WriteAllText(_dir.File("hl/net-hl/10.70.0.2"), "cid-seen\r\neth0");
        Add("alive", _live.Path);
        Add("dead", "/var/run/netns/gone-dead");
        Agent(0, "reconcile");
        // Boot 2: a new pod, a file the agent has not seen yet, an empty file and an entry it skips.
        File.WriteAllText(_dir.File("boot_id"), "boot-pin-2\n");
        Add("fresh", "/var/run/netns/gone-fresh");
        File.WriteAllText(_dir.File("hl/net-hl/10.70.0.3"), "cid-unseen\r\neth1");
        File.WriteAllText(_dir.File("hl/net-hl/10.70.0.4"), "");
        Directory.CreateDirectory(_dir.File("hl/net-hl/10.70.0.5"));

        var actual = string.Join("\n=== ", "leases --json", Agent(0, "leases", "--json"), "leases", Agent(0, "leases"),
            "check --json", Agent(1, "check", "--json"), "check", Agent(1, "check"));

        Assert.Equal(Expected, actual);
    }

    private const string Expected = """
    leases --json
    === {
      "leases": [
        {
          "store": "berth",
          "network": "net1",
          "address": "10.64.0.2",
          "owner": "shop/pod-alive",
          "containerId": "alive",
          "ifname": "eth0",
          "podNamespace": "shop",
          "podName": "pod-alive",
          "podUid": null,
          "boot": "previous",
          "bootId": "boot-pin-1",
          "createdAt": "T",
          "ageSeconds": N,
          "netns": "{live}",
          "origin": "cni-add",
          "evidence": "netns",
          "evidenceDetail": "netns {live} is the same namespace"
        },
        {
          "store": "berth",
          "network": "net1",
          "address": "10.64.0.3",
          "owner": "shop/pod-dead",
          "containerId": "dead",
          "ifname": "eth0",
          "podNamespace": "shop",
          "podName": "pod-dead",
          "podUid": null,
          "boot": "previous",
          "bootId": "boot-pin-1",
          "createdAt": "T",
          "ageSeconds": N,
          "netns": "/var/run/netns/gone-dead",
          "origin": "cni-add",
          "evidence": "none",
          "evidenceDetail": "netns /var/run/netns/gone-dead gone, no process in it, no ready sandbox dead"
        },
        {
          "store": "berth",
          "network": "net1",
          "address": "10.64.0.4",
          "owner": "shop/pod-fresh",
          "containerId": "fresh",
          "ifname": "eth0",
          "podNamespace": "shop",
          "podName": "pod-fresh",
          "podUid": null,
          "boot": "current",
          "bootId": "boot-pin-2",
          "createdAt": "T",
          "ageSeconds": N,
          "netns": "/var/run/netns/gone-fresh",
          "origin": "cni-add",
          "evidence": "none",
          "evidenceDetail": "netns /var/run/netns/gone-fresh gone, no process in it, no ready sandbox fresh"
        },
        {
          "store": "host-local",
          "dir": "{dir}/hl",
          "network": "net-hl",
          "address": "10.70.0.2",
          "owner": "cid-seen/eth0",
          "containerId": "cid-seen",
          "ifname": "eth0",
          "podNamespace": null,
          "podName": null,
          "podUid": null,
          "boot": "previous",
          "bootId": "boot-pin-1",
          "firstSeenAt": "T",
          "ageSeconds": N,
          "netns": "",
          "origin": "host-local",
          "evidence": "none",
          "evidenceDetail": "netns (none) gone, no process in it, no ready sandbox cid-seen"
        },
        {
          "store": "host-local",
          "dir": "{dir}/hl",
          "network": "net-hl",
          "address": "10.70.0.3",
          "owner": "cid-unseen/eth1",
          "containerId": "cid-unseen",
          "ifname": "eth1",
          "podNamespace": null,
          "podName": null,
          "podUid": null,
          "boot": "unseen",
          "bootId": null,
          "firstSeenAt": null,
          "ageSeconds": null,
          "netns": "",
          "origin": "host-local",
          "evidence": "none",
          "evidenceDetail": "netns (none) gone, no process in it, no ready sandbox cid-unseen"
        }
      ],
      "warnings": [
        "{dir}/hl/net-hl/10.70.0.5: a directory where a lease file should be; skipped"
      ]
    }
    --- stderr
    berth-agent: warning: {dir}/hl/net-hl/10.70.0.5: a directory where a lease file should be; skipped

    === leases
    === ADDRESS    NETWORK  STORE       OWNER            AGE  BOOT      EVIDENCE
    10.64.0.2  net1     berth       shop/pod-alive   AGE  previous  netns
    10.64.0.3  net1     berth       shop/pod-dead    AGE  previous  none
    10.64.0.4  net1     berth       shop/pod-fresh   AGE  current   none
    10.70.0.2  net-hl   host-local  cid-seen/eth0    AGE  previous  none
    10.70.0.3  net-hl   host-local  cid-unseen/eth1  AGE  unseen    none
    --- stderr
    berth-agent: warning: {dir}/hl/net-hl/10.70.0.5: a directory where a lease file should be; skipped

    === check --json
    === {
      "healthy": false,
      "findings": [
        {
          "kind": "previous-boot",
          "network": "net1",
          "address": null,
          "message": "network net1: 2 leases from earlier boots remain (has \u0027berth-agent recover\u0027 run this boot?)"
        },
        {
          "kind": "host-local-previous-boot",
          "network": "net-hl",
          "address": null,
          "message": "host-local network net-hl in {dir}/hl: 1 lease files from earlier boots remain (has \u0027berth-agent recover\u0027 run this boot?)"
        },
        {
          "kind": "host-local-skipped",
          "network": null,
          "address": null,
          "message": "{dir}/hl/net-hl/10.70.0.5: a directory where a lease file should be; skipped"
        },
        {
          "kind": "host-local-empty",
          "network": "net-hl",
          "address": null,
          "message": "{dir}/hl/net-hl/10.70.0.4: empty: names no container (host-local\u0027s write did not reach the disk before a power cut?): berth-agent frees it at its next pass, under host-local\u0027s lock"
        },
        {
          "kind": "host-local-size-unknown",
          "network": "net-hl",
          "address": null,
          "message": "host-local network net-hl in {dir}/hl: its size is unknown, only the addresses it holds are exported: no CNI config in {dir}/net.d names network net-hl with host-local ipam and dataDir {dir}/hl (set cniConfDirs to the runtime\u0027s CNI config dir)",
          "note": true
        }
      ]
    }
    --- stderr

    === check
    === previous-boot: network net1: 2 leases from earlier boots remain (has 'berth-agent recover' run this boot?)
    host-local-previous-boot: host-local network net-hl in {dir}/hl: 1 lease files from earlier boots remain (has 'berth-agent recover' run this boot?)
    host-local-skipped: {dir}/hl/net-hl/10.70.0.5: a directory where a lease file should be; skipped
    host-local-empty: {dir}/hl/net-hl/10.70.0.4: empty: names no container (host-local's write did not reach the disk before a power cut?): berth-agent frees it at its next pass, under host-local's lock
    note: host-local-size-unknown: host-local network net-hl in {dir}/hl: its size is unknown, only the addresses it holds are exported: no CNI config in {dir}/net.d names network net-hl with host-local ipam and dataDir {dir}/hl (set cniConfDirs to the runtime's CNI config dir)
    4 finding(s) in {dir}/data/berth.db
    --- stderr

    """;

    public void Dispose()
    {
        _live.Dispose();
        _dir.Dispose();
    }
}
