using Berth.Shared.Cni;
using Berth.Shared.Platform;

namespace Berth.Shared.Evidence;

/// <summary>
/// The boot clock of this machine: the boot ID from <c>/proc/sys/kernel/random/boot_id</c>, or from the file
/// the environment variable <c>BERTH_BOOT_ID_FILE</c> names (tests use it to fake a reboot).
/// </summary>
public sealed class SystemBootClock : IBootClock
{
    /// <summary>The environment variable that names another boot ID file.</summary>
    public const string BootIdFileVariable = "BERTH_BOOT_ID_FILE";

    private const string KernelBootIdFile = "/proc/sys/kernel/random/boot_id";
    private readonly string _bootIdFile;
    private string? _bootId;

    /// <summary>Reads the override from the given environment.</summary>
    public SystemBootClock(Func<string, string?> environment)
    {
        _bootIdFile = environment(BootIdFileVariable) is { Length: > 0 } file ? file : KernelBootIdFile;
    }

    /// <inheritdoc />
    public string BootId => _bootId ??= ReadBootId();

    /// <inheritdoc />
    public TimeSpan SinceBoot
    {
        get
        {
            if (Libc.clock_gettime(Libc.ClockBoottime, out var ts) != 0) return TimeSpan.FromMilliseconds(Environment.TickCount64);
            return TimeSpan.FromTicks(ts.Seconds * TimeSpan.TicksPerSecond + ts.Nanoseconds / 100);
        }
    }

    private string ReadBootId()
    {
        // Opened without blocking and read only when it is a regular file (/proc's boot_id is one): a FIFO or a
        // device named by BERTH_BOOT_ID_FILE would otherwise hold the call, or the agent's worker answering it, for good.
        var fd = Libc.open(_bootIdFile, Libc.ORdonly | Libc.ONonblock | Libc.OCloexec, 0);
        if (fd < 0) throw Unreadable(Libc.Message(Libc.Errno));
        string text;
        try
        {
            if (Libc.FileType(fd) != Libc.SIfreg) throw Unreadable("not a regular file");
            Span<byte> buffer = stackalloc byte[128];
            var n = Libc.read(fd, buffer, buffer.Length);
            if (n < 0) throw Unreadable(Libc.Message(Libc.Errno));
            text = System.Text.Encoding.UTF8.GetString(buffer[..(int)n]).Trim();
        }
        finally
        {
            _ = Libc.close(fd);
        }
        if (text.Length is 0 or > 64 || !text.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            throw new CniException(ErrorCodes.InvalidEnvironment, $"{_bootIdFile} does not hold a boot ID");
        }
        return text;
    }

    private CniException Unreadable(string why) => new(ErrorCodes.InvalidEnvironment, $"cannot read the boot ID from {_bootIdFile}: {why}");
}
