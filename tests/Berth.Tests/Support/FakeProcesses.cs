using Berth.HostAgent.Evidence;

namespace Berth.Tests.Support;

/// <summary>The process evidence the test says: the netns inodes processes live in (none unless set), or null for "cannot read /proc".</summary>
public sealed class FakeProcesses : IProcessNamespaces
{
    public HashSet<ulong>? Inodes { get; set; } = [];

    public IReadOnlySet<ulong>? NetnsInodes() => Inodes;
}
