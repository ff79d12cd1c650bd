namespace Berth.Tests.Deploy;

/// <summary>The reader of deploy/kubernetes refuses what the API would: without this, every manifest test could pass on a file the cluster rejects.</summary>
public sealed class ManifestStrictnessTests
{
    private static string Text => File.ReadAllText(Manifests.Files().Single(f => f.EndsWith("berth.yaml", StringComparison.Ordinal)));

    [Fact]
    public void The_manifests_as_they_are_are_read()
    {
        Assert.NotEmpty(Manifests.All());
    }

    [Theory]
    [InlineData("      hostNetwork: true\n", "      hostNetwrok: true\n")]
    [InlineData("readOnlyRootFilesystem: true\n            capabilities:\n              drop: [\"ALL\"]\n              add:", "readOnlyRootFilesytem: true\n            capabilities:\n              drop: [\"ALL\"]\n              add:")]
    [InlineData("              mountPropagation: HostToContainer\n              readOnly: true\n            - name: var-run-netns", "              mountPropgation: HostToContainer\n              readOnly: true\n            - name: var-run-netns")]
    public void A_misspelt_field_is_refused(string right, string wrong)
    {
        Assert.Contains(right, Text);
        Assert.ThrowsAny<Exception>(() => Manifests.Parse(Text.Replace(right, wrong, StringComparison.Ordinal)));
    }

    [Fact]
    public void A_field_in_the_wrong_place_is_refused()
    {
        // hostPID belongs to the pod, not to a container.
        const string anchor = "          command: [\"/usr/bin/berth-agent\", \"run\"]\n";
        Assert.Contains(anchor, Text);
        Assert.ThrowsAny<Exception>(() => Manifests.Parse(Text.Replace(anchor, anchor + "          hostPID: true\n", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_lenient_reader_would_have_let_it_pass()
    {
        // Why the strict flag matters: KubernetesYaml's default reader drops the unknown field without a word.
        var wrong = Text.Replace("      hostNetwork: true\n", "      hostNetwrok: true\n", StringComparison.Ordinal);
        var lenient = k8s.KubernetesYaml.LoadAllFromString(wrong, null, strict: false).OfType<k8s.Models.V1DaemonSet>().Single();
        Assert.Null(lenient.Spec.Template.Spec.HostNetwork);
    }
}
