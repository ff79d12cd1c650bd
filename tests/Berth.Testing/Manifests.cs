using k8s;
using k8s.Models;

namespace Berth.Testing;

/// <summary>
/// deploy/kubernetes read with the Kubernetes API's own models (NuGet KubernetesClient), strictly: a field the
/// API does not have at that place (misspelt, or misplaced: hostNetwork in a container) throws instead of being
/// dropped, as `kubectl apply --validate=strict` refuses it. KubernetesYaml's plain Deserialize ignores unknown
/// fields; LoadAllFromString with strict: true does not (ManifestStrictnessTests proves both).
/// </summary>
public static class Manifests
{
    public static string Dir => Path.Combine(Repo.Root, "deploy", "kubernetes");

    /// <summary>The files kubectl apply -f DIR would read.</summary>
    public static IReadOnlyList<string> Files() =>
        [.. Directory.EnumerateFiles(Dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>The kinds the add-on is made of; any other kind in the directory is an error.</summary>
    private static readonly Dictionary<string, Type> Kinds = new()
    {
        ["v1/Namespace"] = typeof(V1Namespace),
        ["v1/ConfigMap"] = typeof(V1ConfigMap),
        ["apps/v1/DaemonSet"] = typeof(V1DaemonSet),
        ["v1/ServiceAccount"] = typeof(V1ServiceAccount),
    };

    /// <summary>Every object of one file's YAML documents, strictly.</summary>
    public static IReadOnlyList<IKubernetesObject> Parse(string yaml) =>
        [.. KubernetesYaml.LoadAllFromString(yaml, Kinds, strict: true).Cast<IKubernetesObject>()];

    /// <summary>Every object of every file in deploy/kubernetes.</summary>
    public static IReadOnlyList<IKubernetesObject> All() => [.. Files().SelectMany(f => Parse(File.ReadAllText(f)))];

    public static V1DaemonSet DaemonSet() => All().OfType<V1DaemonSet>().Single();

    public static V1ConfigMap ConfigMap(string name) => All().OfType<V1ConfigMap>().Single(c => c.Metadata.Name == name);
}
