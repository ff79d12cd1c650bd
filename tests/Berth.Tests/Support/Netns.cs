namespace Berth.Tests.Support;

/// <summary>A real network namespace made with `ip netns add`, deleted at the end of the test.</summary>
public sealed class Netns : IDisposable
{
    public Netns(string? name = null)
    {
        Name = name ?? "berth-t-" + Guid.NewGuid().ToString("N")[..10];
        Ip("netns", "add", Name);
    }

    public string Name { get; }

    public string Path => "/var/run/netns/" + Name;

    /// <summary>Runs `ip ARGS` and returns stdout; throws with stderr when it fails.</summary>
    public static string Ip(params string[] args) => Exec.Must("ip", args);

    public void Dispose()
    {
        try
        {
            Ip("netns", "delete", Name);
        }
        catch (InvalidOperationException)
        {
            // Already deleted by the test.
        }
    }
}
