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
        string text;
        try
        {
            using var reader = new StreamReader(_bootIdFile);
            var buffer = new char[128];
            text = new string(buffer, 0, reader.ReadBlock(buffer, 0, buffer.Length)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(ErrorCodes.InvalidEnvironment, $"cannot read the boot ID from {_bootIdFile}: {e.Message}");
        }
        if (text.Length is 0 or > 64 || !text.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            throw new CniException(ErrorCodes.InvalidEnvironment, $"{_bootIdFile} does not hold a boot ID");
        }
        return text;
    }
}
