namespace Berth.Shared.Cni;

/// <summary>The CNI specification versions berth speaks, and what each one allows.</summary>
public static class CniVersion
{
    /// <summary>The newest version implemented.</summary>
    public const string Latest = "1.1.0";

    /// <summary>Every version accepted in a network configuration, oldest first.</summary>
    public static readonly IReadOnlyList<string> Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>Whether <paramref name="version"/> is one of <see cref="Supported"/>.</summary>
    public static bool IsSupported(string? version) => version is not null && Supported.Contains(version);

    /// <summary>Whether a supported <paramref name="version"/> is at least <paramref name="minimum"/>.</summary>
    public static bool AtLeast(string version, string minimum) =>
        Supported.IndexOf(version) >= Supported.IndexOf(minimum);

    /// <summary>Results before 1.0.0 carry "version": "4"|"6" in each ip entry (SPEC 0.3.x, 0.4.0).</summary>
    public static bool HasIpVersionField(string version) => !AtLeast(version, "1.0.0");

    /// <summary>Route attributes beyond dst and gw (mtu, advmss, priority, table, scope) exist from 1.1.0 on.</summary>
    public static bool HasExtendedRoutes(string version) => AtLeast(version, "1.1.0");

    /// <summary>
    /// The first version that defines a verb: CHECK came with 0.4.0, GC and STATUS with 1.1.0; ADD, DEL and
    /// VERSION are in every supported version.
    /// </summary>
    public static string FirstWith(string command) => command switch
    {
        "CHECK" => "0.4.0",
        "GC" or "STATUS" => "1.1.0",
        _ => Supported[0],
    };

    private static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == value) return i;
        }
        return -1;
    }
}
