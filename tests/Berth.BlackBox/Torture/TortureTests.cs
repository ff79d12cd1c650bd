using Berth.Torture;

namespace Berth.BlackBox.Torture;

/// <summary>
/// Short versions of the torture modes (tests/Berth.Torture, torture/killstorm.sh and torture/fuzz.sh run the
/// long ones), each with a negative control that shows its checks can fail.
/// </summary>
[Collection("heavy")]
public sealed class TortureTests
{
    [Fact]
    public void A_short_kill_storm_with_a_concurrent_reconcile_breaks_no_invariant()
    {
        var log = new StringWriter();

        var report = new KillStorm(new KillStormOptions(Seconds: 16, Seed: 7, Workers: 4, ContainersPerWorker: 6, RoundSeconds: 4, Log: log)).Run();

        Assert.True(report.Violations.Count == 0, log.ToString());
        Assert.True(report.Cuts >= 30 && report.Acked >= 100, $"the storm was too small to mean anything: {report.Summary}\n{log}");
    }

    [Fact]
    public void A_short_kill_storm_through_an_agent_killed_and_restarted_all_along_breaks_no_invariant()
    {
        var log = new StringWriter();

        var report = new KillStorm(new KillStormOptions(Seconds: 16, Seed: 9, Workers: 4, ContainersPerWorker: 6, RoundSeconds: 4, Log: log) { AgentServing = true }).Run();

        Assert.True(report.Violations.Count == 0, log.ToString());
        Assert.True(report.Cuts >= 30 && report.Acked >= 100, $"the storm was too small to mean anything: {report.Summary}\n{log}");
        // The agent's deaths were felt: some plugins found it gone mid-call or not yet back, and did their calls themselves.
        Assert.Matches(@"fallbacks while the agent was killed and restarted: .*(closed|refused|absent) [1-9]", log.ToString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_kill_storm_notices_an_acknowledged_lease_that_disappeared(bool agentServing)
    {
        var log = new StringWriter();
        var options = new KillStormOptions(Seconds: 3, Seed: 8, Workers: 2, ContainersPerWorker: 3, KillChance: 0, RoundSeconds: 3, Log: log)
        {
            AgentServing = agentServing,
            KeepOnViolation = false,
            // Behind berth's back: the storm's leases are gone. All of them, not one: under load a container's last
            // call may have failed (busy), and a container whose state is not known is not checked, so a single
            // deletion could land where nothing is expected and the control would prove nothing.
            BeforeCheck = store => Exec.Must("sqlite3", store, "DELETE FROM leases WHERE container_id LIKE 'ks%'"),
        };

        var report = new KillStorm(options).Run();

        Assert.Contains(report.Violations, v => v.Contains("should hold", StringComparison.Ordinal));
    }

    [Fact]
    public void A_few_hundred_fuzz_inputs_and_damaged_stores_find_no_violation()
    {
        var log = new StringWriter();

        var report = new Fuzzer(new FuzzOptions(Seconds: 50, Seed: 11, MaxCases: 400, Log: log)).Run();

        Assert.True(report.Violations.Count == 0, log.ToString());
        Assert.True(report.Cycles >= 150 && report.Acked >= 20, $"too few cases to mean anything: {report.Summary}\n{log}");
    }

    [Fact]
    public void The_fuzzer_notices_a_plugin_that_crashes()
    {
        using var dir = new TempDir();
        var plugin = dir.File("crashing-berth");
        // The real plugin, except that a run for container c3 ends with SIGSEGV after it answered.
        File.WriteAllText(plugin, $"#!/bin/bash\n\"{Repo.Plugin}\"; rc=$?\n[ \"$CNI_CONTAINERID\" = c3 ] && kill -SEGV $$\nexit $rc\n");
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var log = new StringWriter();

        var report = new Fuzzer(new FuzzOptions(Seconds: 30, Seed: 12, MaxCases: 60, Log: log) { Plugin = plugin, KeepOnViolation = false }).Run();

        Assert.Contains(report.Violations, v => v.Contains("ended by signal 11", StringComparison.Ordinal));
    }

    [Fact]
    public void A_few_hundred_agent_fuzz_cases_find_no_violation()
    {
        var log = new StringWriter();

        // A plugin-socket case (one in six) runs a plugin twice and a fake agent: 45 s keep the count meaningful under load.
        var report = new AgentFuzzer(new AgentFuzzOptions(Seconds: 45, Seed: 21, MaxCases: 150, Log: log)).Run();

        Assert.True(report.Violations.Count == 0, log.ToString());
        Assert.True(report.Cycles >= 30 && report.Acked >= 20, $"too few cases to mean anything: {report.Summary}\n{log}");
    }

    [Fact]
    public void The_agent_fuzzer_notices_an_agent_that_deletes_a_ready_sandboxs_file()
    {
        using var dir = new TempDir();
        var agent = dir.File("careless-agent");
        // The real agent, except that a reconcile then deletes the lease files of every sandbox the fuzz made live.
        File.WriteAllText(agent, $$"""
            #!/bin/bash
            "{{Repo.Agent}}" "$@"; rc=$?
            args=("$@")
            for ((i = 0; i < $#; i++)); do [ "${args[i]}" = --store ] && store=${args[i+1]}; done
            if [ "$1" = reconcile ]; then grep -lrs '^live-' "$(dirname "$(dirname "$store")")/networks" | while read -r f; do rm -f "$f"; done; fi
            exit $rc
            """);
        File.SetUnixFileMode(agent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var log = new StringWriter();

        var report = new AgentFuzzer(new AgentFuzzOptions(Seconds: 25, Seed: 22, MaxCases: 40, Log: log) { Agent = agent, KeepOnViolation = false }).Run();

        Assert.Contains(report.Violations, v => v.Contains("is listed as ready", StringComparison.Ordinal));
    }
}
