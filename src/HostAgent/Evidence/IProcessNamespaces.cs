namespace Berth.HostAgent.Evidence;

/// <summary>The network namespaces that some process lives in, by inode; null when they could not all be read.</summary>
internal interface IProcessNamespaces
{
    IReadOnlySet<ulong>? NetnsInodes();
}
