using System.Text.Json;
using Berth.Shared.Cni;
using Berth.Shared.Config;

namespace Berth.Tests.Shared.Config;

public sealed class ConfigParserTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static IpamConfig Parse(string ipam, string extra = "", string? cniArgs = null, PodCidrResolution podCidrs = PodCidrResolution.Resolve)
    {
        using var doc = JsonDocument.Parse($$$"""{"cniVersion":"1.0.0","name":"net1"{{{extra}}},"ipam":{{{ipam}}}}""");
        return ConfigParser.Parse(doc.RootElement.Clone(), "1.0.0", CniArgs.Parse(cniArgs), podCidrs);
    }

    private string SubnetFile => _dir.File("subnet.env");

    /// <summary>An ipam section with "subnetFile" pointing at this test's subnet file.</summary>
    private string PodCidrIpam(string rest) => $$"""{"type":"berth","subnetFile":"{{SubnetFile}}",{{rest}}}""";

    private const string FlannelEnv = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

    private static string Describe(IpamConfig config) =>
        string.Join(" | ", config.RangeSets.Select(set => $"{set.Index}: " + string.Join(", ", set.Ranges.Select(r => $"{r.Subnet} {r.Start}-{r.End} gw {r.Gateway}"))));

    public void Dispose() => _dir.Dispose();

    [Theory]
    // As flanneld writes it: the subnet is FLANNEL_SUBNET's network, the gateway network + 1 as host-local computes it.
    [InlineData(FlannelEnv, "\"ranges\":[[{\"subnet\":\"usePodCidr\"}]]", "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1")]
    [InlineData(FlannelEnv, "\"subnet\":\"usePodCidr\"", "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1")]
    // Calico compares without case.
    [InlineData(FlannelEnv, "\"ranges\":[[{\"subnet\":\"USEPODCIDR\"}]]", "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1")]
    // The host part of FLANNEL_SUBNET does not matter, as in the flannel plugin.
    [InlineData("FLANNEL_SUBNET=10.244.3.77/24\n", "\"ranges\":[[{\"subnet\":\"usePodCidr\"}]]", "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1")]
    [InlineData("FLANNEL_SUBNET=10.244.3.1/24\r\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\r\n",
        "\"ranges\":[[{\"subnet\":\"usePodCidr\"}],[{\"subnet\":\"usePodCidrIPv6\"}]]",
        "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1 | 1: fd00:10:244:3::/64 fd00:10:244:3::1-fd00:10:244:3:ffff:ffff:ffff:ffff gw fd00:10:244:3::1")]
    [InlineData(FlannelEnv, "\"ranges\":[[{\"subnet\":\"usePodCidr\",\"rangeStart\":\"10.244.3.10\",\"gateway\":\"10.244.3.254\"}]]",
        "0: 10.244.3.0/24 10.244.3.10-10.244.3.254 gw 10.244.3.254")]
    [InlineData(FlannelEnv, "\"ranges\":[[{\"subnet\":\"usePodCidr\"},{\"subnet\":\"10.9.0.0/24\"}]]",
        "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1, 10.9.0.0/24 10.9.0.1-10.9.0.254 gw 10.9.0.1")]
    // As the flannel plugin reads the file: other lines are ignored, the key must match exactly, the last one wins.
    [InlineData("# comment\nnonsense\n=x\nFLANNEL_SUBNET = 10.9.9.1/24\nflannel_subnet=10.9.8.1/24\nFLANNEL_SUBNET=10.1.0.1/24\nFLANNEL_SUBNET=10.244.3.1/24\n",
        "\"subnet\":\"usePodCidr\"", "0: 10.244.3.0/24 10.244.3.1-10.244.3.254 gw 10.244.3.1")]
    public void UsePodCidr_takes_the_node_s_subnet_from_flannel_s_subnet_file(string env, string ranges, string expected)
    {
        File.WriteAllText(SubnetFile, env);

        Assert.Equal(expected, Describe(Parse(PodCidrIpam(ranges))));
    }

    [Theory]
    [InlineData(null, "does not exist: is flanneld running")]
    [InlineData("FLANNEL_NETWORK=10.244.0.0/16\n", "has no FLANNEL_SUBNET")]
    [InlineData("FLANNEL_SUBNET=\n", "FLANNEL_SUBNET=\"\" is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET=10.244.3/24\n", "FLANNEL_SUBNET=\"10.244.3/24\" is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET=10.244.3.1\n", "is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET=fd00::1/64\n", "is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET=\"10.244.3.1/24\"\n", "is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET= 10.244.3.1/24\n", "is not an IPv4 CIDR")]
    [InlineData("FLANNEL_SUBNET=10.244.3.1/31\n", "too small to allocate from")]
    [InlineData("FLANNEL_SUBNET=10.244.3.1/24\0\n", "is not text")]
    public void An_unusable_subnet_file_is_error_7_saying_what_is_missing(string? env, string message)
    {
        if (env is not null) File.WriteAllText(SubnetFile, env);

        var e = Assert.Throws<CniException>(() => Parse(PodCidrIpam("\"ranges\":[[{\"subnet\":\"usePodCidr\"}]]")));

        Assert.Equal(ErrorCodes.InvalidConfig, e.Code);
        Assert.StartsWith("invalid network config: ipam.ranges[0][0].subnet: \"usePodCidr\" is the node's pod subnet from flannel: ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Contains(SubnetFile, e.Message);
    }

    [Fact]
    public void UsePodCidrIPv6_without_an_ipv6_subnet_names_the_ipv6_key()
    {
        File.WriteAllText(SubnetFile, FlannelEnv);

        var e = Assert.Throws<CniException>(() => Parse(PodCidrIpam("\"ranges\":[[{\"subnet\":\"usePodCidr\"}],[{\"subnet\":\"usePodCidrIPv6\"}]]")));

        Assert.Contains("ipam.ranges[1][0].subnet: \"usePodCidrIPv6\"", e.Message);
        Assert.Contains("has no FLANNEL_IPV6_SUBNET", e.Message);
    }

    [Fact]
    public void A_hostile_subnet_file_is_refused_without_being_read_whole()
    {
        // Over the limit, binary, a directory, a device that never ends: each a clear error 7.
        File.WriteAllBytes(SubnetFile, [.. Enumerable.Repeat((byte)'#', FlannelSubnetFile.MaxBytes), .. "\nFLANNEL_SUBNET=10.244.3.1/24\n"u8]);
        var binary = _dir.File("binary.env");
        File.WriteAllBytes(binary, [0xff, 0xfe, 0x00, 0x46, 0x4c]);
        var directory = _dir.File("dir.env");
        Directory.CreateDirectory(directory);

        Assert.Contains("larger than 64 KiB", Assert.Throws<CniException>(() => Parse(PodCidrIpam("\"subnet\":\"usePodCidr\""))).Message);
        Assert.Contains("larger than 64 KiB", Assert.Throws<CniException>(() => Parse("""{"type":"berth","subnetFile":"/dev/zero","subnet":"usePodCidr"}""")).Message);
        Assert.Contains("is not text", Assert.Throws<CniException>(() => Parse($$"""{"type":"berth","subnetFile":"{{binary}}","subnet":"usePodCidr"}""")).Message);
        var e = Assert.Throws<CniException>(() => Parse($$"""{"type":"berth","subnetFile":"{{directory}}","subnet":"usePodCidr"}"""));
        Assert.Equal(ErrorCodes.InvalidConfig, e.Code);
        Assert.Contains("cannot read flannel's subnet file", e.Message);
    }

    [Theory]
    [InlineData("\"subnetFile\":\"run/flannel/subnet.env\"", "ipam.subnetFile: \"run/flannel/subnet.env\" is not an absolute path")]
    [InlineData("\"subnetFile\":7", "ipam.subnetFile: expected a string")]
    public void A_bad_subnet_file_key_is_error_7_even_when_nothing_needs_it(string key, string message)
    {
        var e = Assert.Throws<CniException>(() => Parse($$"""{"type":"berth",{{key}},"ranges":[[{"subnet":"10.0.0.0/24"}]]}""", podCidrs: PodCidrResolution.Ignore));

        Assert.Equal(ErrorCodes.InvalidConfig, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Ignoring_usePodCidr_reads_no_file_and_keeps_the_other_sets_in_their_places()
    {
        // No subnet file at all: DEL, CHECK and GC must still parse.
        var config = Parse(PodCidrIpam("\"ranges\":[[{\"subnet\":\"usePodCidr\"}],[{\"subnet\":\"fd00::/64\"}]]"), podCidrs: PodCidrResolution.Ignore);
        var legacyOnly = Parse(PodCidrIpam("\"subnet\":\"usePodCidr\""), podCidrs: PodCidrResolution.Ignore);

        Assert.Equal("1: fd00::/64 fd00::1-fd00::ffff:ffff:ffff:ffff gw fd00::1", Describe(config));
        Assert.Empty(legacyOnly.RangeSets);
        Assert.Equal("net1", legacyOnly.Network);
        // Everything else is still checked.
        Assert.Throws<CniException>(() => Parse(PodCidrIpam("\"ranges\":[[{\"subnet\":\"usePodCidr\"}],[{\"subnet\":\"10.0.0.1/24\"}]]"), podCidrs: PodCidrResolution.Ignore));
    }

    [Theory]
    [InlineData("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")]
    [InlineData("10.0.0.0/30", "10.0.0.1", "10.0.0.2", "10.0.0.1")]
    [InlineData("fd00::/120", "fd00::1", "fd00::ff", "fd00::1")]
    [InlineData("fd00::/64", "fd00::1", "fd00::ffff:ffff:ffff:ffff", "fd00::1")]
    public void Ranges_default_as_host_local_does(string subnet, string start, string end, string gateway)
    {
        var range = Parse($$"""{"type":"berth","ranges":[[{"subnet":"{{subnet}}"}]]}""").RangeSets[0].Ranges[0];

        Assert.Equal((start, end, gateway), (range.Start.ToString(), range.End.ToString(), range.Gateway.ToString()));
    }

    [Fact]
    public void The_legacy_single_range_comes_before_ranges_and_runtime_ip_ranges_before_both()
    {
        var config = Parse("""{"type":"berth","subnet":"10.0.0.0/24","rangeStart":"10.0.0.100","ranges":[[{"subnet":"fd00::/64"}]]}""",
            extra: ""","runtimeConfig":{"ipRanges":[[{"subnet":"10.9.0.0/24"}]]}""");

        Assert.Equal(["10.9.0.0/24", "10.0.0.0/24", "fd00::/64"], config.RangeSets.Select(s => s.Ranges[0].Subnet.ToString()));
        Assert.Equal([0, 1, 2], config.RangeSets.Select(s => s.Index));
        Assert.Equal("10.0.0.100", config.RangeSets[1].Ranges[0].Start.ToString());
    }

    [Fact]
    public void Defaults_for_data_dir_routes_and_dns()
    {
        var config = Parse("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]]}""");

        Assert.Equal("/var/lib/berth/berth.db", config.StorePath);
        Assert.Empty(config.Routes);
        Assert.Null(config.ResolvConf);
        Assert.Empty(config.RequestedAddresses);
    }

    [Fact]
    public void Requested_addresses_from_args_win_over_cni_args_and_runtime_config_adds_to_them()
    {
        var fromArgs = Parse("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]}""",
            extra: ""","args":{"cni":{"ips":["10.0.0.5/24"]}},"runtimeConfig":{"ips":["fd00::5"]}""", cniArgs: "IP=10.0.0.6");
        var fromEnv = Parse("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]]}""", cniArgs: "IgnoreUnknown=1;IP=10.0.0.6");

        Assert.Equal(["10.0.0.5", "fd00::5"], fromArgs.RequestedAddresses.Select(a => a.ToString()));
        Assert.Equal(["10.0.0.6"], fromEnv.RequestedAddresses.Select(a => a.ToString()));
    }

    [Theory]
    [InlineData("""{"type":"berth"}""", "ipam: no ranges")]
    [InlineData("""{"type":"berth","ranges":"x"}""", "ipam.ranges: expected an array")]
    [InlineData("""{"type":"berth","ranges":[[]]}""", "ipam.ranges[0]: empty range set")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/33"}]]}""", "ipam.ranges[0][0].subnet")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.1/24"}]]}""", "host bits set")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/31"}]]}""", "too small")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10"}]]}""", "is not a CIDR")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24","gateway":"10.1.0.1"}]]}""", "not in network")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.8"}]]}""", "after rangeEnd")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.0"}]]}""", "network address")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.255"}]]}""", "broadcast address")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]}""", "mixes IPv4 and IPv6")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"10.0.0.0/25"}]]}""", "overlaps")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.128/25"}]]}""", "range set 0 overlaps with range set 1")]
    [InlineData("""{"type":"berth","dataDir":"relative/dir","ranges":[[{"subnet":"10.0.0.0/24"}]]}""", "not an absolute path")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]],"routes":[{"gw":"10.0.0.1"}]}""", "missing \"dst\"")]
    [InlineData("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","mtu":"big"}]}""", "expected a whole number")]
    public void Invalid_configs_fail_with_7_naming_the_place(string ipam, string message)
    {
        var e = Assert.Throws<CniException>(() => Parse(ipam));

        Assert.Equal(ErrorCodes.InvalidConfig, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("IP=10.0.0.300")]
    [InlineData("IP=nope")]
    [InlineData("K8S_POD_NAME")]
    public void A_bad_cni_args_is_error_4(string cniArgs)
    {
        var e = Assert.Throws<CniException>(() => Parse("""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]]}""", cniArgs: cniArgs));

        Assert.Equal(ErrorCodes.InvalidEnvironment, e.Code);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-net")]
    [InlineData("net/1")]
    [InlineData("net 1")]
    public void A_bad_network_name_is_error_7(string name)
    {
        using var doc = JsonDocument.Parse($$$"""{"cniVersion":"1.0.0","name":"{{{name}}}","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}}""");

        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<CniException>(() => ConfigParser.Parse(doc.RootElement, "1.0.0", CniArgs.Empty)).Code);
    }

    [Theory]
    // Each as host-local (Go's net.ParseIP) reads it: a leading zero is an error, never octal, never decimal.
    [InlineData("rangeStart", "010.0.0.5")]
    [InlineData("rangeStart", "10.00.0.5")]
    [InlineData("rangeStart", "10.0.0.09")]
    [InlineData("rangeEnd", "10.0.0.0250")]
    [InlineData("gateway", "10.0.0.01")]
    [InlineData("rangeStart", "10.0.0.5.")]
    [InlineData("rangeStart", " 10.0.0.5")]
    public void An_address_host_local_refuses_is_an_invalid_config_naming_its_field(string field, string text)
    {
        var e = Assert.Throws<CniException>(() => Parse($$"""{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24","{{field}}":"{{text}}"}]]}"""));
        Assert.Equal(ErrorCodes.InvalidConfig, e.Code);
        Assert.Contains(field, e.Message);
        Assert.Contains($"\"{text}\" is not an IP address", e.Message);
    }

    [Fact]
    public void A_requested_address_with_a_leading_zero_is_refused_wherever_it_comes_from()
    {
        const string Ipam = """{"type":"berth","ranges":[[{"subnet":"10.0.0.0/24"}]]}""";
        Assert.Equal(ErrorCodes.InvalidEnvironment, Assert.Throws<CniException>(() => Parse(Ipam, cniArgs: "IP=10.0.0.07")).Code);
        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<CniException>(() => Parse(Ipam, extra: ""","args":{"cni":{"ips":["10.0.0.07"]}}""")).Code);
        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<CniException>(() => Parse(Ipam, extra: ""","runtimeConfig":{"ips":["010.0.0.7/24"]}""")).Code);
        Assert.Equal("10.0.0.7", Assert.Single(Parse(Ipam, cniArgs: "IP=10.0.0.7").RequestedAddresses).ToString());
    }

    [Theory]
    [InlineData("eth0", true)]
    [InlineData("net1.100", true)]
    [InlineData("abcdefghijklmno", true)] // 15 bytes
    [InlineData("abcdefghijklmnop", false)] // 16 bytes
    [InlineData("ééééééé", true)] // 14 bytes
    [InlineData("éééééééé", false)] // 8 characters, 16 bytes: the kernel counts bytes
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("...", true)]
    [InlineData("a/b", false)]
    [InlineData("a:b", false)]
    [InlineData("a b", false)]
    [InlineData("a\tb", false)]
    [InlineData("a\u0001", false)]
    public void An_interface_name_follows_the_CNI_skeletons_rules(string name, bool valid) =>
        Assert.Equal(valid, ConfigParser.IsIfName(name));
}
