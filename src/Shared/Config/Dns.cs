namespace Berth.Shared.Config;

/// <summary>DNS settings for the result, read from the file <c>ipam.resolvConf</c> names.</summary>
public sealed record Dns(IReadOnlyList<string> Nameservers, string? Domain, IReadOnlyList<string> Search, IReadOnlyList<string> Options)
{
    /// <summary>No DNS settings.</summary>
    public static readonly Dns None = new([], null, [], []);

    /// <summary>
    /// Parses resolv.conf text: nameserver, domain, search and options lines; comments and other
    /// keywords are skipped, as libc does.
    /// </summary>
    public static Dns ParseResolvConf(string text)
    {
        var nameservers = new List<string>();
        var search = new List<string>();
        var options = new List<string>();
        string? domain = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2) continue;
            switch (fields[0])
            {
                case "nameserver": nameservers.Add(fields[1]); break;
                case "domain": domain = fields[1]; break;
                case "search": search.AddRange(fields.Skip(1)); break;
                case "options": options.AddRange(fields.Skip(1)); break;
            }
        }
        return new Dns(nameservers, domain, search, options);
    }
}
