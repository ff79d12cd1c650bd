using System.Threading.Channels;
using Berth.HostAgent;
using Berth.HostAgent.Evidence;
using Berth.Shared.Allocation;
using Berth.Shared.Leases;
using Berth.Tests.Support;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;

namespace Berth.Tests.HostAgent;

/// <summary>
/// The daemon's host in process: the real store and lifetime, systemd's notifier as a substitute that records
/// what it is told (with the fake time it was told at), time moved by the test.
/// </summary>
public sealed class DaemonInProcessTests : IAsyncLifetime
{
    private static readonly TimeSpan Watchdog = TimeSpan.FromSeconds(5);
    private readonly TempDir _dir = new();
    private readonly FakeBootClock _clock = new("boot-2");
    private readonly FakeNetnsProbe _netns = new();
    private readonly TimerWatch _time = new();
    private readonly ISandboxSource _runtime = Substitute.For<ISandboxSource>();
    private readonly ISystemdNotifier _notifier = Substitute.For<ISystemdNotifier>();
    private readonly Channel<(string State, DateTimeOffset At)> _told = Channel.CreateUnbounded<(string, DateTimeOffset)>();
    private readonly List<string> _toldBeforeFirstPass = [];
    private SqliteLeaseStore _store = null!;
    private volatile bool _broken;
    private IHost _host = null!;

    public async Task InitializeAsync()
    {
        _store = SqliteLeaseStore.Open(_dir.File("berth.db"), new StoreOptions(_clock, _time));
        // One lease of an earlier boot whose namespace is gone (recovery releases it), one of this boot.
        _clock.BootId = "boot-1";
        _store.Write(tx => new Allocator(tx, _clock, _time, _netns).Allocate(ParsedConfig.Ipam("""[[{"subnet":"10.69.0.0/29"}]]"""), new Attachment("net1", "old", "eth0", "/run/netns/old", 1)));
        _clock.BootId = "boot-2";
        _store.Write(tx => new Allocator(tx, _clock, _time, _netns).Allocate(ParsedConfig.Ipam("""[[{"subnet":"10.69.0.0/29"}]]"""), new Attachment("net1", "new", "eth0", "/run/netns/new", 2)));

        _notifier.IsEnabled.Returns(true);
        _notifier.When(n => n.Notify(Arg.Any<ServiceState>())).Do(call => _told.Writer.TryWrite((call.Arg<ServiceState>().ToString(), _time.GetUtcNow())));
        _runtime.ReadySandboxesAsync(default).ReturnsForAnyArgs(call =>
        {
            if (_broken) throw new InvalidOperationException("a bug");
            lock (_toldBeforeFirstPass)
            {
                if (_toldBeforeFirstPass.Count == 0) _toldBeforeFirstPass.AddRange(Told().Select(t => t.State).DefaultIfEmpty("(nothing)"));
            }
            return new SandboxList(true, new HashSet<string>());
        });
        var config = new AgentConfig { Interval = TimeSpan.FromMinutes(1), MetricsEnabled = false, GracePeriod = TimeSpan.FromHours(1), HostLocalDirs = [] };
        _host = AgentDaemon.CreateHost(new AgentServices(config, _store, _clock, _time, _netns, new FakeProcesses(), _runtime), _notifier, Watchdog);
        await _host.StartAsync();
    }

    private readonly List<(string State, DateTimeOffset At)> _seen = [];

    /// <summary>What the notifier was told so far, in order.</summary>
    private List<(string State, DateTimeOffset At)> Told()
    {
        lock (_seen)
        {
            while (_told.Reader.TryRead(out var t)) _seen.Add(t);
            return [.. _seen];
        }
    }

    /// <summary>Waits until the notifier is told something that starts with <paramref name="prefix"/>; returns it.</summary>
    private async Task<(string State, DateTimeOffset At)> ToldAsync(string prefix)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            if (Told().FirstOrDefault(t => t.State.StartsWith(prefix, StringComparison.Ordinal)) is { State: not null } found) return found;
            await _told.Reader.WaitToReadAsync(timeout.Token);
        }
    }

    [Fact]
    public async Task Recovery_is_finished_before_READY_and_READY_comes_before_the_first_pass()
    {
        await ToldAsync("STATUS=last pass");

        var states = Told().Select(t => t.State).ToList();
        Assert.Matches("^STATUS=recovery for boot .*: released 1 of 1 earlier-boot leases$", states[0]);
        Assert.Equal("READY=1", states[1]);
        lock (_toldBeforeFirstPass) Assert.Contains("READY=1", _toldBeforeFirstPass);
    }

    [Fact]
    public async Task STATUS_tells_the_last_pass()
    {
        var status = await ToldAsync("STATUS=last pass");

        Assert.Matches(@"^STATUS=last pass: 1 leases, 0 released, 0 unknown, \d+ ms$", status.State);
    }

    [Fact]
    public async Task A_pass_that_throws_is_told_and_counted_and_the_next_pass_runs()
    {
        await ToldAsync("STATUS=last pass");
        // A bug anywhere in a pass (here: the runtime's evidence) must not end the service.
        _broken = true;
        await NextPassAsync();
        var failed = await ToldAsync("STATUS=reconcile failed");
        Assert.Contains("InvalidOperationException: a bug (a bug in berth-agent", failed.State);

        _broken = false;
        var passes = Told().Count(t => t.State.StartsWith("STATUS=last pass", StringComparison.Ordinal));
        await NextPassAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (Told().Count(t => t.State.StartsWith("STATUS=last pass", StringComparison.Ordinal)) == passes) await _told.Reader.WaitToReadAsync(timeout.Token);
        Assert.True(_host.Services.GetService(typeof(IHostApplicationLifetime)) is IHostApplicationLifetime { ApplicationStopping.IsCancellationRequested: false });
    }

    /// <summary>Moves the fake time past the interval, so the loop starts its next pass.</summary>
    private async Task NextPassAsync()
    {
        for (var waited = TimeSpan.Zero; waited <= TimeSpan.FromMinutes(1); waited += Watchdog)
        {
            await _time.NextTimerAsync();
            _time.Advance(Watchdog);
        }
    }

    [Fact]
    public async Task WATCHDOG_is_sent_every_half_watchdog_interval_while_waiting_for_the_next_pass()
    {
        await ToldAsync("STATUS=last pass");
        var waiting = _time.GetUtcNow();

        for (var i = 0; i < 3; i++)
        {
            await _time.NextTimerAsync();
            _time.Advance(Watchdog);
        }
        await ToldAsync("WATCHDOG=1");
        while (Told().Count(t => t.State == "WATCHDOG=1") < 3) await _told.Reader.WaitToReadAsync();

        Assert.Equal([waiting + Watchdog, waiting + 2 * Watchdog, waiting + 3 * Watchdog], Told().Where(t => t.State == "WATCHDOG=1").Select(t => t.At));
    }

    [Fact]
    public async Task Stopping_the_host_sends_STOPPING_and_ends_the_loop()
    {
        await ToldAsync("STATUS=last pass");

        await _host.StopAsync();

        Assert.Equal("STOPPING=1", Told()[^1].State);
        Assert.Single(_runtime.ReceivedCalls());
    }

    [Theory]
    [InlineData("30000000", null, 15.0)]
    [InlineData("30000000", "1", null)]
    [InlineData(null, null, null)]
    public void The_watchdog_interval_is_half_of_what_systemd_asks_for_this_process(string? usec, string? pid, double? seconds)
    {
        var env = new Dictionary<string, string?> { ["WATCHDOG_USEC"] = usec, ["WATCHDOG_PID"] = pid };

        Assert.Equal(seconds, AgentDaemon.WatchdogInterval(k => env.GetValueOrDefault(k))?.TotalSeconds);
    }

    public async Task DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        _store.Dispose();
        _dir.Dispose();
    }
}
