using System.Reflection;
using System.Text.Json;
using Berth.Shared.Cni;
using Berth.Shared.Config;

namespace Berth.Shared.Plugin;

/// <summary>
/// The CNI protocol around the verbs (SPEC.md "Protocol parameters", "Error"): which environment each verb
/// needs, which versions it accepts, and any failure turned into error JSON on stdout with exit code 1.
/// </summary>
public sealed class Dispatcher(Func<string, string?> environment, Stream stdin, TextWriter stdout, TextWriter stderr, PluginServices services)
{
    private const int MaxPath = 4096;

    /// <summary>This build's version, as the packages and the VERSION file name it.</summary>
    public static string? Informational => typeof(Dispatcher).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    public int Run()
    {
        var version = CniVersion.Latest;
        byte[]? input = null;
        try
        {
            var command = environment("CNI_COMMAND");
            if (string.IsNullOrEmpty(command))
            {
                // As the CNI skeleton does: run by hand, say what this is.
                stderr.WriteLine($"berth {Informational}: crash-safe CNI IPAM plugin, a drop-in for host-local. Run by a container runtime with CNI_COMMAND set.");
                stderr.WriteLine($"CNI protocol versions supported: {string.Join(", ", CniVersion.Supported)}");
                return 0;
            }
            input = ReadStdin();
            if (command == "VERSION") return Version(input);
            if (command is not ("ADD" or "DEL" or "CHECK" or "GC" or "STATUS"))
            {
                throw new CniException(ErrorCodes.InvalidEnvironment, $"unknown CNI_COMMAND \"{ConfigParser.Clip(command)}\": expected ADD, DEL, CHECK, GC, STATUS or VERSION");
            }
            var config = ConfigParser.ParseObject(input);
            var requested = config.TryGetProperty("cniVersion", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            if (!CniVersion.IsSupported(requested))
            {
                throw new CniException(ErrorCodes.IncompatibleVersion,
                    $"cniVersion \"{ConfigParser.Clip(requested ?? "")}\" is not supported: berth speaks {string.Join(", ", CniVersion.Supported)}");
            }
            version = requested!;
            var minimum = CniVersion.FirstWith(command);
            if (!CniVersion.AtLeast(version, minimum))
            {
                throw new CniException(ErrorCodes.IncompatibleVersion, $"config version {version} does not allow {command} (it needs {minimum} or later)");
            }
            var request = Validate(command, version, config);
            var verbs = new Verbs(services, stdout);
            switch (command)
            {
                case "ADD": verbs.Add(request); break;
                case "DEL": verbs.Del(request); break;
                case "CHECK": verbs.Check(request); break;
                case "GC": verbs.Gc(request); break;
                default: verbs.Status(request); break;
            }
            stdout.Flush();
            return 0;
        }
        catch (CniException e)
        {
            return Fail(ErrorVersion(version, input), e);
        }
        catch (Exception e)
        {
            // The one catch-all of the process: a bug must still answer in the protocol.
            return Fail(ErrorVersion(version, input), new CniException(ErrorCodes.Internal, $"internal error: {e.Message} (a bug in berth: please report it)", e.GetType().FullName));
        }
    }

    private Request Validate(string command, string version, JsonElement config)
    {
        var needsAttachment = command is "ADD" or "DEL" or "CHECK";
        var containerId = environment("CNI_CONTAINERID") ?? "";
        var ifName = environment("CNI_IFNAME") ?? "";
        var netns = environment("CNI_NETNS") ?? "";
        if (needsAttachment)
        {
            if (containerId.Length == 0) throw Env("CNI_CONTAINERID is not set");
            if (containerId.Length > 256 || !ConfigParser.IsIdentifier(containerId))
            {
                throw Env($"invalid characters in CNI_CONTAINERID \"{ConfigParser.Clip(containerId)}\": only letters, digits, '_', '.' and '-', starting with a letter or digit");
            }
            if (ifName.Length == 0) throw Env("CNI_IFNAME is not set");
            if (!ConfigParser.IsIfName(ifName))
            {
                throw Env($"CNI_IFNAME \"{ConfigParser.Clip(ifName)}\" is not an interface name: at most 15 bytes, not '.' or '..', without '/', ':' or whitespace");
            }
        }
        if (command is "ADD" or "CHECK" && netns.Length == 0) throw Env("CNI_NETNS is not set");
        if (netns.Length > MaxPath) throw Env("CNI_NETNS is longer than 4096 characters");
        return new Request(command, version, containerId, netns, ifName, CniArgs.Parse(environment("CNI_ARGS")), config);
    }

    private static CniException Env(string message) => new(ErrorCodes.InvalidEnvironment, message);

    private byte[] ReadStdin()
    {
        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = ReadSome(chunk)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > ConfigParser.MaxStdinBytes)
            {
                throw new CniException(ErrorCodes.DecodingFailure, $"stdin is larger than {ConfigParser.MaxStdinBytes / 1024} KiB: not a network config");
            }
        }
        return buffer.ToArray();
    }

    /// <summary>stdin may be anything the caller opened: a directory or a closed descriptor is a decode error, not a bug.</summary>
    private int ReadSome(byte[] chunk)
    {
        try
        {
            return stdin.Read(chunk, 0, chunk.Length);
        }
        catch (IOException e)
        {
            throw new CniException(ErrorCodes.DecodingFailure, $"{e.Message}: a network config is expected on stdin");
        }
    }

    /// <summary>
    /// An error speaks the request's version when stdin names a supported one, also when it came before the
    /// config was parsed. Looked up only on the error path: a request that succeeds parses stdin once.
    /// </summary>
    private static string ErrorVersion(string version, byte[]? input) =>
        version == CniVersion.Latest && input is not null ? ReadableVersion(input) ?? version : version;

    /// <summary>The supported cniVersion stdin names, or null when it names none or cannot be read; never throws.</summary>
    private static string? ReadableVersion(byte[] input)
    {
        try
        {
            var reader = new Utf8JsonReader(input, new JsonReaderOptions { MaxDepth = 32 });
            var root = JsonElement.ParseValue(ref reader);
            return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("cniVersion", out var v)
                && v.ValueKind == JsonValueKind.String && CniVersion.IsSupported(v.GetString()) ? v.GetString() : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// VERSION answers even without a config (no config, not JSON, a cniVersion that is not UTF-8); the result's
    /// cniVersion echoes a supported request.
    /// </summary>
    private int Version(byte[] input)
    {
        Results.WriteVersion(stdout, ReadableVersion(input) ?? CniVersion.Latest);
        stdout.Flush();
        return 0;
    }

    private int Fail(string version, CniException e)
    {
        Results.WriteError(stdout, version, e);
        stdout.Flush();
        return 1;
    }
}
