using System.Text.Json;
using Berth.Shared.Config;

namespace Berth.Shared.Plugin;

/// <summary>One invocation as the dispatcher validated it: the verb's environment and the parsed stdin.</summary>
internal sealed record Request(
    string Command,
    string CniVersion,
    string ContainerId,
    string Netns,
    string IfName,
    CniArgs Args,
    JsonElement Config);
