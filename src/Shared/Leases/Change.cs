namespace Berth.Shared.Leases;

/// <summary>What the history records with a change: why (a <see cref="Reasons"/> value), who, and any detail.</summary>
public sealed record Change(string Reason, string Actor, string? Detail = null);
