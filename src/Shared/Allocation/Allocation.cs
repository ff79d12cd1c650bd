using Berth.Shared.Config;
using Berth.Shared.Leases;

namespace Berth.Shared.Allocation;

/// <summary>One address an ADD gives, with the configured range it lies in (its prefix length and gateway).</summary>
public sealed record Allocation(Lease Lease, AddressRange Range);
