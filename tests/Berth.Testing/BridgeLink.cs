using System.Security.Cryptography;

namespace Berth.Testing;

/// <summary>
/// A Linux bridge for one test: a unique name for the bridge plugin to create, and the link deleted at the end
/// whether or not the plugin ever made it.
/// </summary>
public sealed class BridgeLink : IDisposable
{
    /// <summary>The prefix ("bt" unless a test names its own) and ten hex digits: unique across parallel tests and within IFNAMSIZ (15).</summary>
    public BridgeLink(string prefix = "bt")
    {
        Name = prefix + RandomNumberGenerator.GetHexString(10, lowercase: true);
    }

    public string Name { get; }

    /// <summary>The link's addresses as `ip -o addr show` prints them, or null when the link does not exist.</summary>
    public string? Addresses()
    {
        try
        {
            return Netns.Ip("-o", "addr", "show", "dev", Name);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        try
        {
            Netns.Ip("link", "del", Name);
        }
        catch (InvalidOperationException)
        {
            // The test failed before the bridge plugin created it.
        }
    }
}
