using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Berth.Tests.Deploy;

/// <summary>
/// deploy/prometheus/servicemonitor.yaml scrapes what deploy/kubernetes runs: its Service selects the DaemonSet's
/// pods in their namespace on the port the agent serves (the ConfigMap's metricsAddress), and the ServiceMonitor
/// selects that Service by its port's name. A mismatch here is a node nobody scrapes, whose alerts never fire.
/// </summary>
public sealed class ServiceMonitorTests
{
    private static readonly string File = Path.Combine(Repo.Root, "deploy", "prometheus", "servicemonitor.yaml");

    private static V1Service Service() => KubernetesYaml.LoadAllFromString(System.IO.File.ReadAllText(File),
        new Dictionary<string, Type> { ["v1/Service"] = typeof(V1Service), ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(object) }, strict: false)
        .OfType<V1Service>().Single();

    /// <summary>The ServiceMonitor, a custom resource the client has no model for: read as YAML.</summary>
    private static YamlMappingNode Monitor()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(System.IO.File.ReadAllText(File)));
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).Single(d => d["kind"].ToString() == "ServiceMonitor");
    }

    [Fact]
    public void The_service_selects_the_agents_pods_in_their_namespace_on_the_port_the_agent_serves()
    {
        var service = Service();
        var daemonSet = Manifests.DaemonSet();
        var agent = daemonSet.Spec.Template.Spec.Containers.Single(c => c.Name == "agent");
        var config = Berth.HostAgent.AgentConfig.Parse(System.Text.Encoding.UTF8.GetBytes(Manifests.ConfigMap("berth-agent").Data["agent.json"]), "agent.json");

        Assert.Equal(daemonSet.Metadata.NamespaceProperty, service.Metadata.NamespaceProperty);
        Assert.All(service.Spec.Selector, l => Assert.Equal(l.Value, daemonSet.Spec.Template.Metadata.Labels[l.Key]));
        var port = Assert.Single(service.Spec.Ports);
        var containerPort = agent.Ports.Single(p => p.Name == port.TargetPort.Value);
        Assert.Equal(port.Port, containerPort.ContainerPort);
        Assert.Equal(containerPort.ContainerPort, config.MetricsAddress.Port);
        Assert.True(daemonSet.Spec.Template.Spec.HostNetwork, "the agent's port is the node's");
    }

    [Fact]
    public void The_service_monitor_selects_the_service_and_its_port_by_name()
    {
        var service = Service();
        var monitor = Monitor();
        var spec = (YamlMappingNode)monitor["spec"];
        var matchLabels = (YamlMappingNode)((YamlMappingNode)spec["selector"])["matchLabels"];

        Assert.Equal(service.Metadata.NamespaceProperty, ((YamlMappingNode)monitor["metadata"])["namespace"].ToString());
        Assert.All(matchLabels.Children, l => Assert.Equal(l.Value.ToString(), service.Metadata.Labels[l.Key.ToString()]));
        var endpoint = (YamlMappingNode)((YamlSequenceNode)spec["endpoints"]).Children.Single();
        Assert.Equal(service.Spec.Ports.Single().Name, endpoint["port"].ToString());
        // BerthAgentDown watches up{job="berth-agent"}: prometheus-operator names the job after the Service.
        Assert.Equal("berth-agent", service.Metadata.Name);
    }
}
