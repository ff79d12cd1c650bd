using System.Collections.Concurrent;

namespace Berth.HostAgent.Serving;

/// <summary>The plugin calls this agent answered, by verb and result, and those it refused, by why (the metrics page).</summary>
internal sealed class ServedCalls
{
    /// <summary>
    /// Why a connection got no answer from the dispatcher: not root, not a request, too slow, the agent stopping, the
    /// caller gone before the commit, the caller's files not the agent's (another mount namespace), an error the plugin
    /// answers itself, a bug.
    /// </summary>
    public static readonly string[] RefusalReasons = ["peer", "malformed", "slow", "stopping", "caller-gone", "view", "error", "internal"];

    private static readonly string[] Verbs = ["ADD", "DEL", "CHECK", "GC", "STATUS"];

    private readonly ConcurrentDictionary<(string Verb, string Result), long> _calls = new();
    private readonly ConcurrentDictionary<string, long> _refused = new();

    public void Call(string verb, bool ok) => _calls.AddOrUpdate((Array.IndexOf(Verbs, verb) >= 0 ? verb : "other", ok ? "ok" : "error"), 1, (_, n) => n + 1);

    public void Refused(string reason) => _refused.AddOrUpdate(reason, 1, (_, n) => n + 1);

    /// <summary>Every verb and result, zero included, so that a rate can be taken from the first scrape.</summary>
    public IReadOnlyList<(string Verb, string Result, long Count)> Calls() =>
        [.. Verbs.SelectMany(v => new[] { "ok", "error" }.Select(r => (v, r, _calls.GetValueOrDefault((v, r)))))];

    public IReadOnlyList<(string Reason, long Count)> Refusals() => [.. RefusalReasons.Select(r => (r, _refused.GetValueOrDefault(r)))];
}
