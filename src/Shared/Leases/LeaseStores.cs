namespace Berth.Shared.Leases;

/// <summary>
/// Where a lease lives, as the history and the operator commands name it: <c>berth</c> (berth's own store), or
/// <c>host-local:DIR</c> (a host-local file under DIR that berth-agent guards).
/// </summary>
public static class LeaseStores
{
    /// <summary>berth's own store.</summary>
    public const string Berth = "berth";

    private const string HostLocalPrefix = "host-local:";

    /// <summary>host-local's files under <paramref name="dir"/>.</summary>
    public static string HostLocal(string dir) => HostLocalPrefix + dir;

    /// <summary>The directory of a host-local store, or null for berth's.</summary>
    public static string? HostLocalDir(string store) => store.StartsWith(HostLocalPrefix, StringComparison.Ordinal) ? store[HostLocalPrefix.Length..] : null;

    /// <summary>"berth" or "host-local", for tables.</summary>
    public static string Kind(string store) => HostLocalDir(store) is null ? Berth : "host-local";
}
