namespace Berth.Testing;

/// <summary>Paths in the repository and on the machine that the black-box tests, the e2e and the torture use.</summary>
public static class Repo
{
    private static readonly Lazy<string> FoundRoot = new(FindRoot);

    /// <summary>The directory that holds Cni.sln, above this assembly or the working directory.</summary>
    public static string Root => FoundRoot.Value;

    /// <summary>The published plugin (`make build`); BERTH_PLUGIN names another (the torture's negative control, a guest).</summary>
    public static string Plugin => Environment.GetEnvironmentVariable("BERTH_PLUGIN") ?? Path.Combine(Root, "artifacts", "bin", "berth");

    /// <summary>The published agent; BERTH_AGENT names another.</summary>
    public static string Agent => Environment.GetEnvironmentVariable("BERTH_AGENT") ?? Path.Combine(Root, "artifacts", "bin", "berth-agent");

    /// <summary>
    /// More environment for every run of the executables under test, from BERTH_EXEC_ENV (<c>NAME=VALUE;…</c>), empty
    /// unless set. `make arm64-test` sets DOTNET_GCRegionRange there: under qemu-user 7.2 the GC's default 256 GiB
    /// address-space reservation costs each emulated process about 0.4 s (qemu marks the range page by page).
    /// </summary>
    public static IReadOnlyDictionary<string, string> ExecEnvironment { get; } =
        (Environment.GetEnvironmentVariable("BERTH_EXEC_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "");

    /// <summary>
    /// Debian's containernetworking-plugins: bridge, loopback, host-local…; BERTH_CNI_DIR names another build of
    /// them (the arm64 ones that `make arm64-test` runs under qemu-user beside the arm64 berth).
    /// </summary>
    public static string DebianCniDir => Environment.GetEnvironmentVariable("BERTH_CNI_DIR") ?? "/usr/lib/cni";

    public static string HostLocal => Path.Combine(DebianCniDir, "host-local");

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Cni.sln"))) return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (Cni.sln); set BERTH_PLUGIN and BERTH_AGENT");
    }

    /// <summary>Fails with what to do when the executables under test were not built.</summary>
    public static void RequireBuilt()
    {
        foreach (var f in new[] { Plugin, Agent })
        {
            if (!File.Exists(f)) throw new InvalidOperationException($"{f} does not exist: run `make build` first");
        }
    }
}
