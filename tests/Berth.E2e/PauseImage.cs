using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Berth.E2e;

/// <summary>
/// The sandbox image, made here because no registry is reachable: pause.c compiled static, in one layer,
/// written as an OCI image layout tar that `ctr images import` takes (index.json names the image).
/// </summary>
internal static class PauseImage
{
    public const string Name = "localhost/berth-e2e-pause:1";

    public static string Build(string dir)
    {
        var binary = Path.Combine(dir, "pause");
        Host.Check("gcc", "-static", "-Os", "-s", "-o", binary, Path.Combine(AppContext.BaseDirectory, "pause.c"));

        var blobs = new Dictionary<string, byte[]>();
        (string Digest, int Size) Blob(byte[] content)
        {
            var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
            blobs[digest] = content;
            return (digest, content.Length);
        }

        var layer = Blob(Tar([("pause", File.ReadAllBytes(binary), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute)]));
        var config = Blob(Json(new Dictionary<string, object>
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new Dictionary<string, object> { ["Entrypoint"] = new[] { "/pause" } },
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = new[] { layer.Digest } },
        }));
        var manifest = Blob(Json(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", config),
            ["layers"] = new[] { Descriptor("application/vnd.oci.image.layer.v1.tar", layer) },
        }));
        var manifestDescriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest);
        manifestDescriptor["annotations"] = new Dictionary<string, string>
        {
            ["io.containerd.image.name"] = Name,
            ["org.opencontainers.image.ref.name"] = Name[(Name.LastIndexOf(':') + 1)..],
        };
        var index = Json(new Dictionary<string, object> { ["schemaVersion"] = 2, ["manifests"] = new[] { manifestDescriptor } });

        var entries = new List<(string, byte[], UnixFileMode)>
        {
            ("oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"), UnixFileMode.UserRead | UnixFileMode.UserWrite),
            ("index.json", index, UnixFileMode.UserRead | UnixFileMode.UserWrite),
        };
        entries.AddRange(blobs.Select(b => ("blobs/sha256/" + b.Key["sha256:".Length..], b.Value, UnixFileMode.UserRead | UnixFileMode.UserWrite)));
        var tar = Path.Combine(dir, "pause-image.tar");
        File.WriteAllBytes(tar, Tar(entries));
        return tar;
    }

    private static Dictionary<string, object> Descriptor(string mediaType, (string Digest, int Size) blob) =>
        new() { ["mediaType"] = mediaType, ["digest"] = blob.Digest, ["size"] = blob.Size };

    private static byte[] Json(Dictionary<string, object> value) => JsonSerializer.SerializeToUtf8Bytes(value);

    private static byte[] Tar(IEnumerable<(string Name, byte[] Content, UnixFileMode Mode)> files)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content, mode) in files)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = mode, DataStream = new MemoryStream(content) };
                writer.WriteEntry(entry);
            }
        }
        return buffer.ToArray();
    }
}
