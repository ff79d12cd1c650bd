namespace Berth.Shared.Leases;

/// <summary>
/// One transaction on the whole store as the plugin sees it: the allocator's seam, and what the plugin's verbs need
/// beside it (the networks' recorded ranges). What only the agent uses is on <see cref="IAgentTransaction"/>.
/// </summary>
public interface IStoreTransaction : ILeaseTransaction
{
    /// <summary>Remembers the network's current ranges (as the plugin last saw them, <see cref="Config.RecordedRanges"/>) for the operator checks.</summary>
    void RecordRanges(string network, string ranges);
}
