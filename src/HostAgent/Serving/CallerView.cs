using Berth.Shared.Evidence;
using Berth.Shared.Leases;
using Berth.Shared.Plugin;

namespace Berth.HostAgent.Serving;

/// <summary>
/// The files of one call as its caller sees them, held against the agent's own view: the agent may run in another
/// mount namespace (a pod, or systemd's sandboxing), where the same path can name another store or another network
/// namespace, and serving the call there would hand out an address twice. When the caller's mount namespace and root
/// are the agent's, every path is the same file, and nothing more is checked. Otherwise the store's directory and the
/// call's netns must be the same file through /proc/PID/root as here; when they are not, or cannot be compared, the
/// call is declined (<see cref="Declined"/>) and the plugin does it itself.
/// </summary>
internal sealed class CallerView(int pid, IStoreKeeper keeper, INetnsProbe probe) : IStoreKeeper, INetnsProbe
{
    private readonly string _root = $"/proc/{pid}/root";
    private bool? _sameView;

    /// <summary>Why the call is not the agent's to serve, once it is found.</summary>
    public string? Declined { get; private set; }

    public SqliteLeaseStore Get(string path, StoreOptions options)
    {
        var dir = Path.GetDirectoryName(path)!;
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent) dir = parent;
        if (!SameView && (StoreKeeper.FileId(dir) is var mine && (mine == default || mine != StoreKeeper.FileId(_root + dir))))
        {
            throw Decline($"the store's directory {dir} is not the caller's");
        }
        return keeper.Get(path, options);
    }

    public void Done(SqliteLeaseStore store) => keeper.Done(store);

    public ulong? Inode(string path)
    {
        var mine = probe.Inode(path);
        if (!SameView && !string.IsNullOrEmpty(path) && mine != probe.Inode(_root + path)) throw Decline($"the network namespace {path} is not the caller's");
        return mine;
    }

    /// <summary>
    /// Where the agent opens a file the call names (<see cref="PluginServices.CallerFile"/>): a relative path in the
    /// caller's working directory; an absolute one as is when the caller's view is the agent's, else through the
    /// caller's root. The caller waits for the answer, so its /proc entry stands while the call runs.
    /// </summary>
    public string CallerFile(string path) =>
        !Path.IsPathRooted(path) ? $"/proc/{pid}/cwd/{path}" : SameView ? path : _root + path;

    /// <summary>The caller's mount namespace and root directory are the agent's.</summary>
    private bool SameView => _sameView ??= OwnMountNamespace.Value is { } mine && mine == Link($"/proc/{pid}/ns/mnt")
        && StoreKeeper.FileId("/") is var root && root != default && root == StoreKeeper.FileId(_root + "/");

    /// <summary>The agent's own mount namespace, read once: a process cannot leave it without calling setns, which berth-agent never does.</summary>
    private static readonly Lazy<string?> OwnMountNamespace = new(() => Link("/proc/self/ns/mnt"));

    private static string? Link(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private DeclinedException Decline(string why)
    {
        Declined ??= why;
        return new DeclinedException(why);
    }
}

/// <summary>A call the agent leaves to the plugin: thrown through the verbs, which roll back and write nothing.</summary>
internal sealed class DeclinedException(string message) : Exception(message);
