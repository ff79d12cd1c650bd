using System.Net;
using Berth.Shared.Cni;
using Berth.Shared.Config;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.Shared.Allocation;

/// <summary>
/// Decides which addresses an attachment gets and which leases go; the store only records. Works inside
/// one store transaction, so a multi-family ADD is all or nothing.
/// </summary>
public sealed class Allocator(ILeaseTransaction store, IBootClock clock, TimeProvider time, INetnsProbe netns, string actor = "berth")
{
    private readonly Liveness _liveness = new(clock);

    /// <summary>
    /// One address per range set for the attachment, each with its range: the addresses it already holds (a
    /// repeated ADD), the requested ones, or the next free ones after the round-robin cursor, in range-set order.
    /// </summary>
    public IReadOnlyList<Allocation> Allocate(IpamConfig config, Attachment who)
    {
        var requestedBySet = PlaceRequested(config, who.Network);
        var held = store.LeasesOf(who.Network, who.ContainerId, who.IfName);
        var leases = new List<Allocation>();
        foreach (var set in config.RangeSets)
        {
            var requested = requestedBySet.GetValueOrDefault(set.Index);

            var mine = held.FirstOrDefault(l => set.Contains(l.Address)) ?? held.FirstOrDefault(l => l.RangeSet == set.Index);
            if (mine is not null)
            {
                if (!set.Contains(mine.Address) || (requested is not null && !requested.Equals(mine.Address)))
                {
                    throw new CniException(ErrorCodes.AddressUnavailable,
                        $"container {who.ContainerId} ({who.IfName}) already holds {mine.Address} in range set {set.Index} of network {who.Network}"
                        + (requested is not null ? $", not the requested {requested}" : ", outside the current ranges") + ": DEL it first");
                }
                leases.Add(new Allocation(mine, set.RangeFor(mine.Address)!));
                continue;
            }
            leases.Add(requested is not null ? Take(set, requested, who) : Next(set, who));
        }
        return leases;
    }

    /// <summary>
    /// Which range set each requested address belongs to: one per set, as host-local. Checked before anything
    /// is leased, so an address that fits nowhere fails the ADD without touching the store.
    /// </summary>
    private static Dictionary<int, IPAddress> PlaceRequested(IpamConfig config, string network)
    {
        var placed = new Dictionary<int, IPAddress>();
        var misfits = new List<IPAddress>();
        foreach (var address in config.RequestedAddresses)
        {
            var set = config.RangeSets.FirstOrDefault(s => s.Contains(address));
            if (set is null || !placed.TryAdd(set.Index, address)) misfits.Add(address);
        }
        if (misfits.Count > 0)
        {
            throw new CniException(ErrorCodes.AddressUnavailable,
                $"requested address {string.Join(", ", misfits)} cannot be given in network {network}: each must lie in a different range set of {string.Join("; ", config.RangeSets)}");
        }
        return placed;
    }

    /// <summary>Releases every lease of the attachment (a DEL); returns how many there were.</summary>
    public int Release(string network, string containerId, string ifName, string reason)
    {
        var count = 0;
        foreach (var lease in store.LeasesOf(network, containerId, ifName))
        {
            if (store.Release(lease, new Change(reason, actor))) count++;
        }
        return count;
    }

    /// <summary>Releases the network's leases whose attachment is not in <paramref name="valid"/> (a GC).</summary>
    public int Collect(string network, IReadOnlySet<(string ContainerId, string IfName)> valid)
    {
        var count = 0;
        foreach (var lease in store.Leases(network))
        {
            if (valid.Contains((lease.ContainerId, lease.IfName))) continue;
            if (store.Release(lease, new Change(Reasons.CniGc, actor, "not among the runtime's valid attachments"))) count++;
        }
        return count;
    }

    /// <summary>Whether an ADD could get an address in every range set now (free, or reclaimable).</summary>
    public string? WhyNotReady(IpamConfig config)
    {
        foreach (var set in config.RangeSets)
        {
            if (FindFree(config.Network, set) is not null) continue;
            if (Reclaimable(config.Network, set).Any()) continue;
            return Full(config.Network, set).Message;
        }
        return null;
    }

    private Allocation Take(RangeSet set, IPAddress address, Attachment who)
    {
        var range = set.RangeFor(address)!;
        if (address.Equals(range.Gateway))
        {
            throw new CniException(ErrorCodes.AddressUnavailable, $"requested address {address} is the gateway of {range.Subnet}");
        }
        if (store.Holder(who.Network, address) is { } holder)
        {
            throw new CniException(ErrorCodes.AddressUnavailable,
                $"requested address {address} in network {who.Network} is held by {holder.Describe()} since {holder.CreatedAt:u}: release it first ('berth-agent release {address} --network {who.Network}')");
        }
        return Lease(set, range, address, who);
    }

    private Allocation Next(RangeSet set, Attachment who)
    {
        var address = FindFree(who.Network, set);
        if (address is null)
        {
            var reclaimed = 0;
            foreach (var lease in Reclaimable(who.Network, set).ToList())
            {
                var detail = $"range set {set.Index} full; lease from boot {lease.BootId} and its netns {Or(lease.Netns, "(none)")} is gone";
                if (store.Release(lease, new Change(Reasons.ExhaustedReclaim, actor, detail))) reclaimed++;
            }
            if (reclaimed > 0) address = FindFree(who.Network, set);
        }
        if (address is null) throw Full(who.Network, set);
        return Lease(set, set.RangeFor(address)!, address, who);
    }

    private Allocation Lease(RangeSet set, AddressRange range, IPAddress address, Attachment who)
    {
        var lease = new Lease(who.Network, address, set.Index, range.Subnet.ToString(), who.ContainerId, who.IfName, who.Netns, who.NetnsInode,
            who.PodNamespace, who.PodName, who.PodUid, clock.BootId, clock.SinceBoot, time.GetUtcNow(), Reasons.CniAdd);
        store.Add(lease, new Change(Reasons.CniAdd, actor));
        // As host-local: the next search starts after the last address handed out, requested or not.
        store.SetCursor(who.Network, set.Index, address);
        return new Allocation(lease, range);
    }

    /// <summary>
    /// host-local's round-robin order: after the cursor to the end of its range, the following ranges,
    /// wrapping round to the start of the cursor's range and up to the cursor itself.
    /// </summary>
    private IPAddress? FindFree(string network, RangeSet set)
    {
        var ranges = set.Ranges;
        var cursor = store.Cursor(network, set.Index);
        var k = cursor is null ? -1 : IndexOf(ranges, cursor);
        if (k < 0)
        {
            foreach (var range in ranges)
            {
                if (FreeIn(network, range, range.Start, range.End) is { } a) return a;
            }
            return null;
        }
        var current = ranges[k];
        if (!cursor!.Equals(current.End) && FreeIn(network, current, Ip.Next(cursor)!, current.End) is { } first) return first;
        for (var i = 1; i < ranges.Count; i++)
        {
            var range = ranges[(k + i) % ranges.Count];
            if (FreeIn(network, range, range.Start, range.End) is { } a) return a;
        }
        return FreeIn(network, current, current.Start, cursor);
    }

    private IPAddress? FreeIn(string network, AddressRange range, IPAddress from, IPAddress to)
    {
        var candidate = from;
        while (store.FirstUnleased(network, candidate, to) is { } free)
        {
            if (!free.Equals(range.Gateway)) return free;
            if (free.Equals(to) || Ip.Next(free) is not { } next) return null;
            candidate = next;
        }
        return null;
    }

    /// <summary>Leases of earlier boots whose owner is gone by <see cref="Liveness"/>; the plugin asks no runtime.</summary>
    private IEnumerable<Lease> Reclaimable(string network, RangeSet set) =>
        set.Ranges.SelectMany(r => store.Leases(network, r.Start, r.End))
            .Where(l => _liveness.LostWithItsBoot(l, netns, out _));

    private CniException Full(string network, RangeSet set)
    {
        var leases = set.Ranges.SelectMany(r => store.Leases(network, r.Start, r.End)).ToList();
        var earlier = leases.Count(l => _liveness.IsEarlierBoot(l.BootId));
        return new CniException(ErrorCodes.RangeExhausted,
            $"no free address in range set {set.Index} ({set}) of network {network}: {leases.Count} leases, {earlier} from earlier boots{(earlier > 0 ? " (their netns still exist)" : "")}; "
            + "is berth-agent running? see 'berth-agent leases --network " + network + "'");
    }

    private static int IndexOf(IReadOnlyList<AddressRange> ranges, IPAddress address)
    {
        for (var i = 0; i < ranges.Count; i++)
        {
            if (ranges[i].Contains(address)) return i;
        }
        return -1;
    }

    private static string Or(string text, string fallback) => text.Length > 0 ? text : fallback;
}
