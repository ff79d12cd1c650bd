namespace Berth.HostAgent.Evidence;

/// <summary>
/// What the container runtimes say: the IDs of the pod sandboxes they list as ready. <see cref="SandboxList.Known"/>
/// is false when that could not be learned (a socket down, refused, too slow): unknown never releases a lease.
/// </summary>
internal interface ISandboxSource
{
    Task<SandboxList> ReadySandboxesAsync(CancellationToken cancellationToken);
}

/// <summary>The ready sandbox IDs, or Known = false with the reason.</summary>
internal sealed record SandboxList(bool Known, IReadOnlySet<string> ReadyIds, string? Problem = null)
{
    public static SandboxList Unknown(string problem) => new(false, new HashSet<string>(), problem);
}
