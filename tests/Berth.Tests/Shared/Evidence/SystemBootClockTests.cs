using Berth.Shared.Cni;
using Berth.Shared.Evidence;

namespace Berth.Tests.Shared.Evidence;

/// <summary>The boot ID file BERTH_BOOT_ID_FILE names, of every shape: read when it is a regular file, refused at once otherwise.</summary>
public sealed class SystemBootClockTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static SystemBootClock For(string file) => new(name => name == SystemBootClock.BootIdFileVariable ? file : null);

    [Fact]
    public void A_regular_file_gives_its_boot_id()
    {
        File.WriteAllText(_dir.File("boot_id"), "5d2e0c3a-boot\n");

        Assert.Equal("5d2e0c3a-boot", For(_dir.File("boot_id")).BootId);
    }

    [Fact]
    public void The_kernels_boot_id_is_read_without_the_variable()
    {
        var kernel = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();

        Assert.Equal(kernel, new SystemBootClock(_ => null).BootId);
    }

    [Theory]
    [InlineData("fifo", "not a regular file")]
    [InlineData("dir", "not a regular file")]
    [InlineData("/dev/zero", "not a regular file")]
    [InlineData("missing", "No such file")]
    [InlineData("junk", "does not hold a boot ID")]
    public void Anything_else_is_refused_at_once_as_a_bad_environment(string name, string why)
    {
        Exec.Must("mkfifo", _dir.File("fifo"));
        Directory.CreateDirectory(_dir.File("dir"));
        File.WriteAllText(_dir.File("junk"), "not/a boot id");
        var path = name.StartsWith('/') ? name : _dir.File(name);

        // A FIFO without a writer would block an open that waits: this returns (the test would hang otherwise).
        var e = Assert.Throws<CniException>(() => For(path).BootId);

        Assert.Equal(ErrorCodes.InvalidEnvironment, e.Code);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();
}
