using System.Text.Json;
using Berth.Shared.Cni;
using Berth.Shared.Config;

namespace Berth.Tests.Shared.Config;

public sealed class ConfigParserTests
{
    private static IpamConfig Parse(string ipam, string extra = "", string? cniArgs = null)
    {
        using var doc = JsonDocument.Parse($$$"""{"cniVersion":"1.0.0","name":"net1"{{{extra}}},"ipam":{{{ipam}}}}""");
        return ConfigParser.Parse(doc.RootElement.Clone(), "1.0.0", CniArgs.Parse(cniArgs));
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
    [InlineData("10.0.0.1", true)]
    [InlineData("fd00::1", true)]
    [InlineData("10.1", false)]
    [InlineData("0x0a.0.0.1", false)]
    [InlineData("010.0.0.1", true)]
    [InlineData("10.0.0.256", false)]
    [InlineData("fe80::1%eth0", false)]
    [InlineData("", false)]
    public void Addresses_are_parsed_strictly(string text, bool valid)
    {
        Assert.Equal(valid, Berth.Shared.Allocation.Ip.TryParse(text, out _));
    }
}
