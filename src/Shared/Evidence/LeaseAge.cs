using Berth.Shared.Leases;

namespace Berth.Shared.Evidence;

/// <summary>
/// The one clock rule for ages, and their one format. Within a boot an age is measured on the boot clock (monotonic;
/// the wall clock may jump). Across boots the boot clock cannot measure anything: what is shown to people then is the
/// wall clock's difference, which after a lost RTC may be wrong; no decision ever reads it (<see cref="Liveness"/>
/// decides a lease of an earlier boot by its boot ID alone, and ages only leases of this boot).
/// </summary>
public static class LeaseAge
{
    /// <summary>How long ago, on the boot clock, something recorded <paramref name="madeSinceBoot"/> after this boot started happened.</summary>
    public static TimeSpan WithinBoot(TimeSpan madeSinceBoot, IBootClock clock) => clock.SinceBoot - madeSinceBoot;

    /// <summary>A lease's age for people: the boot clock within this boot, the wall clock across boots (shown, never compared).</summary>
    public static TimeSpan Shown(Lease lease, Liveness liveness, TimeProvider time) =>
        liveness.IsEarlierBoot(lease.BootId) ? time.GetUtcNow() - lease.CreatedAt : WithinBoot(lease.SinceBoot, liveness.Clock);

    /// <summary>An age in its two largest whole units: 45s, 12m, 3h7m, 2d5h (a negative age, from a wall clock set back, as 0s).</summary>
    public static string Format(TimeSpan t) =>
        t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h"
        : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes}m"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m"
        : $"{(int)Math.Max(0, t.TotalSeconds)}s";
}
