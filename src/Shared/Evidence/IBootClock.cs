namespace Berth.Shared.Evidence;

/// <summary>
/// Which boot this is and how long ago it started. Ages that must survive a reboot are measured on this
/// clock, never on the wall clock, which may jump.
/// </summary>
public interface IBootClock
{
    /// <summary>The kernel's boot ID: a new value on every boot.</summary>
    string BootId { get; }

    /// <summary>Time since boot (CLOCK_BOOTTIME: monotonic, counts suspend).</summary>
    TimeSpan SinceBoot { get; }
}
