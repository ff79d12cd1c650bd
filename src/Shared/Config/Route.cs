using System.Net;

namespace Berth.Shared.Config;

/// <summary>
/// A route from <c>ipam.routes</c>, passed through to the result. The optional attributes after
/// <see cref="Gateway"/> exist from CNI 1.1.0 on and are printed only for that version.
/// </summary>
public sealed record Route(string Destination, IPAddress? Gateway, int? Mtu, int? AdvMss, int? Priority, int? Table, int? Scope);
