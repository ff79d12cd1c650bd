namespace Berth.Shared.Evidence;

/// <summary>What was found about a lease's owner: the first kind of live evidence, none, or unknown.</summary>
public enum EvidenceKind
{
    /// <summary>Its netns path is the same namespace as at ADD.</summary>
    Netns,
    /// <summary>A process lives in its namespace.</summary>
    Process,
    /// <summary>A container runtime lists its sandbox as ready.</summary>
    Runtime,
    /// <summary>Every source answered, and none knows it.</summary>
    None,
    /// <summary>A source could not answer (runtime down, permission): never a reason to release a lease of this boot.</summary>
    Unknown,
}
