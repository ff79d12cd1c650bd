using Berth.Shared.Allocation;
using Berth.Shared.Cni;
using Berth.Shared.Config;
using Berth.Shared.Leases;

namespace Berth.Shared.Plugin;

/// <summary>The verbs, each short: load the config, open the store, act in one transaction, print.</summary>
internal sealed class Verbs(PluginServices services, TextWriter stdout)
{
    public void Add(Request request)
    {
        var config = Parse(request);
        // Everything that can fail on input is read before the store is touched.
        var dns = ReadDns(config);
        // An unreadable boot ID is a bad environment: find out before a store is created for nothing.
        _ = services.BootClock.BootId;
        var who = new Attachment(config.Network, request.ContainerId, request.IfName, request.Netns, services.Netns.Inode(request.Netns),
            request.Args.PodNamespace, request.Args.PodName, request.Args.PodUid);
        using var store = Open(config, create: true)!;
        // The result is made inside the transaction, so that a failure to make it rolls the leases back; it is
        // printed once committed with synchronous=FULL, describing leases already on disk.
        var result = store.Store.Write(tx =>
        {
            services.Proceed?.Invoke();
            var text = new StringWriter();
            Results.WriteAdd(text, config, Allocator(tx).Allocate(config, who), dns);
            tx.RecordRanges(config.Network, RecordedRanges.Format(config));
            return text.ToString();
        });
        stdout.Write(result);
    }

    public void Del(Request request)
    {
        var config = Parse(request, PodCidrResolution.Ignore);
        using var store = Open(config, create: false);
        // SPEC: DEL succeeds when there is nothing to release, however often it is called.
        store?.Store.Write(tx =>
        {
            services.Proceed?.Invoke();
            return Allocator(tx).Release(config.Network, request.ContainerId, request.IfName, Reasons.CniDel);
        });
    }

    public void Check(Request request)
    {
        var config = Parse(request, PodCidrResolution.Ignore);
        var expected = ConfigParser.PrevResultAddresses(request.Config);
        using var store = Open(config, create: false);
        var held = store?.Store.Read(tx => tx.LeasesOf(config.Network, request.ContainerId, request.IfName)) ?? [];
        if (held.Count == 0)
        {
            throw new CniException(ErrorCodes.UnknownContainer, $"no address is leased to container {request.ContainerId} ({request.IfName}) in network {config.Network}");
        }
        foreach (var address in expected ?? [])
        {
            if (!held.Any(l => l.Address.Equals(address)))
            {
                throw new CniException(ErrorCodes.UnknownContainer,
                    $"prevResult address {address} is not leased to container {request.ContainerId} ({request.IfName}) in network {config.Network}; it holds {string.Join(", ", held.Select(l => l.Address))}");
            }
        }
    }

    public void Gc(Request request)
    {
        var config = Parse(request, PodCidrResolution.Ignore);
        var valid = ConfigParser.ValidAttachments(request.Config)
            ?? throw new CniException(ErrorCodes.InvalidConfig, "GC without \"cni.dev/valid-attachments\": refusing to guess which attachments are valid");
        using var store = Open(config, create: false);
        store?.Store.Write(tx =>
        {
            services.Proceed?.Invoke();
            return Allocator(tx).Collect(config.Network, valid);
        });
    }

    public void Status(Request request)
    {
        // A config that is wrong is error 7; one that is right but names a usePodCidr flannel has not written
        // yet is "not ready for ADD" (50): the node's network is not up, which is what STATUS reports.
        _ = Parse(request, PodCidrResolution.Ignore);
        IpamConfig config;
        try
        {
            config = Parse(request);
        }
        catch (CniException e) when (e.Code == ErrorCodes.InvalidConfig)
        {
            throw new CniException(ErrorCodes.NotAvailable, $"berth cannot serve ADD yet: {e.Message}");
        }
        string? problem;
        try
        {
            using var store = Open(config, create: true)!;
            problem = store.Store.Read(tx => Allocator(tx).WhyNotReady(config));
        }
        catch (CniException e) when (e.Code is ErrorCodes.IoFailure or ErrorCodes.TryAgainLater)
        {
            problem = e.Message;
        }
        if (problem is not null) throw new CniException(ErrorCodes.NotAvailable, $"berth cannot serve ADD for network {config.Network}: {problem}");
    }

    private IpamConfig Parse(Request request, PodCidrResolution podCidrs = PodCidrResolution.Resolve) =>
        ConfigParser.Parse(request.Config, request.CniVersion, request.Args, podCidrs, services.CallerFile);

    private Allocator Allocator(ILeaseTransaction tx) => new(tx, services.BootClock, services.Time, services.Netns);

    private OpenStore? Open(IpamConfig config, bool create)
    {
        if (!create && !File.Exists(config.StorePath))
        {
            // Nothing leased yet, unless the path can never hold a store: that is a broken config, not "nothing to do".
            RefuseUnusablePath(config.StorePath);
            return null;
        }
        var options = new StoreOptions(services.BootClock, services.Time);
        return services.Stores is { } kept ? new OpenStore(kept.Get(config.StorePath, options), kept) : new OpenStore(SqliteLeaseStore.Open(config.StorePath, options), null);
    }

    /// <summary>A store for one call: closed after it when the call opened it, handed back when it is kept.</summary>
    private sealed record OpenStore(SqliteLeaseStore Opened, IStoreKeeper? Keeper) : IDisposable
    {
        /// <summary>The store as the plugin sees it: only what the plugin uses.</summary>
        public ILeaseStore<IStoreTransaction> Store => Opened;

        public void Dispose()
        {
            if (Keeper is null) Opened.Dispose();
            else Keeper.Done(Opened);
        }
    }

    private static void RefuseUnusablePath(string storePath)
    {
        if (Directory.Exists(storePath))
        {
            throw new CniException(ErrorCodes.IoFailure, $"store {storePath} cannot be used: it is a directory; move it aside or fix ipam.dataDir");
        }
        // The nearest existing ancestor of the data directory must be a directory, or no store can ever be made there.
        for (var dir = Path.GetDirectoryName(storePath); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            if (Directory.Exists(dir)) return;
            if (File.Exists(dir))
            {
                throw new CniException(ErrorCodes.IoFailure, $"store {storePath} cannot be used: {dir} is a file, not a directory; fix ipam.dataDir or move the file aside");
            }
        }
    }

    private const int MaxResolvConfBytes = 65536;

    private Dns ReadDns(IpamConfig config)
    {
        if (config.ResolvConf is null) return Dns.None;
        try
        {
            return Dns.ParseResolvConf(System.Text.Encoding.UTF8.GetString(SmallFile.Read(services.CallerFile(config.ResolvConf), MaxResolvConfBytes)).TrimStart('\uFEFF'));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CniException(ErrorCodes.InvalidConfig, $"invalid network config: ipam.resolvConf: cannot read {ConfigParser.Clip(config.ResolvConf)}: {e.Message}");
        }
    }
}
