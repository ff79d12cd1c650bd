namespace Berth.HostAgent.Evidence;

/// <summary>
/// What the container runtimes say: the IDs of the pod sandboxes they list as ready. <see cref="SandboxList.Known"/>
/// is false when that could not be learned (a socket down, refused, too slow): unknown never releases a lease.
/// </summary>
internal interface ISandboxSource
{
    Task<SandboxList> ReadySandboxesAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The ready sandbox IDs, or Known = false with the reason. <see cref="Unusable"/>: a runtime was up and answered,
/// but not with a list that could be used (garbled, too large, too slow): a skipped entry, counted as such.
/// </summary>
internal sealed record SandboxList(bool Known, IReadOnlySet<string> ReadyIds, string? Problem = null, bool Unusable = false)
{
    public static SandboxList Unknown(string problem, bool unusable = false) => new(false, new HashSet<string>(), problem, unusable);
}
