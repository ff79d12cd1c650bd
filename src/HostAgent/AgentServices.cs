using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.HostAgent.Operator;
using Berth.HostAgent.Reconcile;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent;

/// <summary>
/// The agent's one composition root: the store, the clocks, the probes, the runtime's sandbox list and the
/// host-local guardian, built in one place from <see cref="AgentConfig"/> and the environment, and handed to the
/// service (<see cref="AgentDaemon"/>) and to every command. Tests build one from fakes with the constructor.
/// </summary>
internal sealed class AgentServices(
    AgentConfig config, SqliteLeaseStore store, IBootClock clock, TimeProvider time, INetnsProbe netns, IProcessNamespaces processes, ISandboxSource runtime)
{
    private readonly Lazy<HostLocalGuard?> _guard = new(() => HostLocalGuard.For(config, store, clock, Cli.Actor, time));

    /// <summary>This boot's ID and the time since boot: BERTH_BOOT_ID_FILE, else the kernel's.</summary>
    public static SystemBootClock NodeClock { get; } = new(Environment.GetEnvironmentVariable);

    /// <summary>The wall clock and the timers of every wait.</summary>
    public static TimeProvider NodeTime => TimeProvider.System;

    public AgentConfig Config => config;

    public SqliteLeaseStore Store => store;

    public IBootClock Clock => clock;

    public TimeProvider Time => time;

    /// <summary>The guardian of host-local's files the config asks for (one per services), or null when <c>hostLocal.dirs</c> is [].</summary>
    public HostLocalGuard? Guard => _guard.Value;

    /// <summary>The config and the store, for a command that needs nothing else.</summary>
    public void Deconstruct(out AgentConfig agentConfig, out SqliteLeaseStore leaseStore)
    {
        agentConfig = config;
        leaseStore = store;
    }

    /// <summary>Opens the store the config names with this node's clocks, probes and runtime.</summary>
    public static AgentServices Open(AgentConfig config, bool create, bool readOnly)
    {
        var store = SqliteLeaseStore.Open(config.Store, new StoreOptions(NodeClock, NodeTime) { Create = create, ReadOnly = readOnly });
        return OnNode(config, store);
    }

    /// <summary>The same store with a changed config (the service's, once it knows which directories it guards).</summary>
    public AgentServices With(AgentConfig changed) => OnNode(changed, store);

    private static AgentServices OnNode(AgentConfig config, SqliteLeaseStore store) =>
        new(config, store, NodeClock, NodeTime, new NetnsProbe(), new ProcNamespaces(), new CriSandboxSource(config.RuntimeSockets, config.RuntimeTimeout, NodeTime));

    /// <summary>Every kind of evidence, gathered now.</summary>
    public Task<EvidenceSnapshot> GatherAsync(CancellationToken cancellationToken) => EvidenceSnapshot.GatherAsync(netns, processes, runtime, cancellationToken);

    /// <summary>Boot recovery with the agent's rules (<see cref="Recovery.RunAsync"/>).</summary>
    public Task<RecoveryResult> RecoverAsync(bool dryRun, CancellationToken cancellationToken) =>
        Recovery.RunAsync(store, clock, netns, Guard, () => GatherAsync(cancellationToken), dryRun, Cli.Actor, cancellationToken);

    /// <summary>The reconcile pass with the agent's rules.</summary>
    public Reconciler Reconciler() => new(store, clock, netns, processes, runtime, config.GracePeriod, Cli.Actor, time, Guard);

    /// <summary>`berth-agent release`.</summary>
    public ManualRelease Release() => new(store, clock, netns, processes, runtime, config.HostLocalDirs, time);
}
