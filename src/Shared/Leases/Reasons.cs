namespace Berth.Shared.Leases;

/// <summary>Why a lease was made or released: the vocabulary of the history.</summary>
public static class Reasons
{
    /// <summary>Allocated by a CNI ADD.</summary>
    public const string CniAdd = "cni-add";
    /// <summary>Released by a CNI DEL.</summary>
    public const string CniDel = "cni-del";
    /// <summary>Released by a CNI GC: not among the runtime's valid attachments.</summary>
    public const string CniGc = "cni-gc";
    /// <summary>Released by the once-per-boot recovery: made in an earlier boot, no live evidence.</summary>
    public const string BootRecovery = "boot-recovery";
    /// <summary>Released by the agent's reconcile: no live evidence past the grace period.</summary>
    public const string Reconcile = "reconcile";
    /// <summary>Released by an ADD that found its range full: an earlier boot's lease whose netns is gone.</summary>
    public const string ExhaustedReclaim = "exhausted-reclaim";
    /// <summary>Released by an operator.</summary>
    public const string Manual = "manual";
    /// <summary>A host-local lease file deleted by the agent's once-per-boot recovery: a file of an earlier boot.</summary>
    public const string HostLocalBootRecovery = "host-local-boot-recovery";
    /// <summary>A host-local lease file deleted by the agent's reconcile: no ready sandbox past the grace period.</summary>
    public const string HostLocalReconcile = "host-local-reconcile";
    /// <summary>Taken over from host-local's files.</summary>
    public const string Import = "import";
}
