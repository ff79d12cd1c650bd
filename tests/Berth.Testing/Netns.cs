namespace Berth.Testing;

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

    /// <summary>The link's IPv4 addresses inside the namespace, as `ip -o -4 addr show` prints them.</summary>
    public string Ipv4Addresses(string ifName) => Ip("-n", Name, "-o", "-4", "addr", "show", "dev", ifName);

    /// <summary>Whether the namespace holds a link of that name.</summary>
    public bool HasLink(string ifName)
    {
        try
        {
            Ip("-n", Name, "link", "show", ifName);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

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
