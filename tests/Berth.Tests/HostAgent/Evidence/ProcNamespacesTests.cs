using Berth.HostAgent.Evidence;

namespace Berth.Tests.HostAgent.Evidence;

/// <summary>The process evidence read from a /proc of the test's own (the real one, and its capabilities, in the black-box ProcessEvidenceTests).</summary>
public sealed class ProcNamespacesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_fake_proc_gives_the_inodes_of_its_links_and_skips_processes_that_are_gone()
    {
        var proc = Directory.CreateDirectory(_dir.File("proc")).FullName;
        Directory.CreateDirectory(Path.Combine(proc, "10", "ns"));
        File.CreateSymbolicLink(Path.Combine(proc, "10", "ns", "net"), "net:[4026532301]");
        Directory.CreateDirectory(Path.Combine(proc, "11")); // exited: no ns/net any more
        Directory.CreateDirectory(Path.Combine(proc, "self"));

        Assert.Equal([4026532301UL], new ProcNamespaces(proc).NetnsInodes());
    }
}
