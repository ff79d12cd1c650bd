using Berth.Shared.Evidence;

namespace Berth.Tests.Support;

/// <summary>A boot clock the test sets: change <see cref="BootId"/> to fake a reboot.</summary>
public sealed class FakeBootClock(string bootId = "boot-1") : IBootClock
{
    public string BootId { get; set; } = bootId;

    public TimeSpan SinceBoot { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>A netns probe that knows only the namespaces the test says exist.</summary>
public sealed class FakeNetnsProbe : INetnsProbe
{
    public Dictionary<string, ulong> Namespaces { get; } = [];

    public ulong? Inode(string path) => Namespaces.TryGetValue(path, out var inode) ? inode : null;
}
