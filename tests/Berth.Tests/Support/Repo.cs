namespace Berth.Tests.Support;

/// <summary>Paths in the repository and on the machine that the black-box tests use.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The published plugin; `make test` builds it before the tests run.</summary>
    public static string Plugin { get; } = Path.Combine(Root, "artifacts", "bin", "berth");

    /// <summary>Debian's containernetworking-plugins: bridge, loopback, host-local…</summary>
    public const string DebianCniDir = "/usr/lib/cni";

    public static string HostLocal => Path.Combine(DebianCniDir, "host-local");

    /// <summary>The published agent.</summary>
    public static string Agent { get; } = Path.Combine(Root, "artifacts", "bin", "berth-agent");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cni.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (Cni.sln) above " + AppContext.BaseDirectory);
    }
}
