namespace Berth.BlackBox.HostAgent;

/// <summary>The packaged units naming the published agent, as systemd reads them.</summary>
public sealed class SystemdUnitTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Fact]
    public void The_units_pass_systemd_analyze_verify()
    {
        foreach (var unit in new[] { "berth-recover.service", "berth-agent.service" })
        {
            var text = File.ReadAllText(Path.Combine(Repo.Root, "packaging", "systemd", unit)).Replace("/usr/bin/berth-agent", Repo.Agent);
            File.WriteAllText(_dir.File(unit), text);
        }

        // Throws with systemd-analyze's complaints when a unit is wrong.
        Exec.Must("systemd-analyze", "verify", _dir.File("berth-recover.service"), _dir.File("berth-agent.service"));
    }

    public void Dispose() => _dir.Dispose();
}
