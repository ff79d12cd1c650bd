using Microsoft.Extensions.Time.Testing;

namespace Berth.Tests.Support;

/// <summary>A fake clock that also tells when the code under test starts waiting on it (creates a timer).</summary>
public sealed class TimerWatch : FakeTimeProvider
{
    private readonly SemaphoreSlim _created = new(0);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        _created.Release();
        return timer;
    }

    /// <summary>Returns once the code under test has created its next timer; throws when it has not after a minute.</summary>
    public async Task NextTimerAsync()
    {
        if (!await _created.WaitAsync(TimeSpan.FromSeconds(60))) throw new TimeoutException("the code under test did not start waiting on the clock");
    }
}
