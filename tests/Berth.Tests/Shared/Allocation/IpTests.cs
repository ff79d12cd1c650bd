using Berth.Shared.Allocation;

namespace Berth.Tests.Shared.Allocation;

/// <summary>
/// Addresses as host-local reads them: Go's net.ParseIP (Go 1.17 and later refuse leading zeros in IPv4; no
/// zones). The expected canonical form is what Go's String() and .NET's ToString() both print.
/// </summary>
public sealed class IpTests
{
    [Theory]
    [InlineData("10.0.0.1", "10.0.0.1")]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("255.255.255.255", "255.255.255.255")]
    [InlineData("10.77.0.9", "10.77.0.9")]
    [InlineData("10.0.0.100", "10.0.0.100")]
    [InlineData("::", "::")]
    [InlineData("::1", "::1")]
    [InlineData("1::", "1::")]
    [InlineData("fd00::1", "fd00::1")]
    [InlineData("FD00::A", "fd00::a")]
    [InlineData("fd00:0:0:0:0:0:0:1", "fd00::1")]
    [InlineData("0001:0002::0003", "1:2::3")]
    [InlineData("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0")]
    [InlineData("::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7")]
    [InlineData("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304")]
    [InlineData("::ffff:10.0.0.1", "::ffff:10.0.0.1")]
    [InlineData("64:ff9b::10.0.0.1", "64:ff9b::a00:1")]
    public void Accepted_as_Go_accepts_it(string text, string canonical)
    {
        Assert.True(Ip.TryParse(text, out var address), text);
        Assert.Equal(canonical, address.ToString());
    }

    [Theory]
    // The file name that stopped the agent, and every other leading zero: Go refuses them, .NET would read octal.
    [InlineData("10.77.0.09")]
    [InlineData("010.0.0.5")]
    [InlineData("10.00.0.5")]
    [InlineData("10.0.0.08")]
    [InlineData("00.0.0.0")]
    [InlineData("1:2:3:4:5:6:01.2.3.4")]
    // Not four decimal parts of 0-255.
    [InlineData("10")]
    [InlineData("10.1")]
    [InlineData("10.0.1")]
    [InlineData("10.0.0.1.1")]
    [InlineData("10.0.0.1.")]
    [InlineData(".10.0.0.1")]
    [InlineData("10..0.1")]
    [InlineData("10.0.0.256")]
    [InlineData("10.0.0.1000")]
    [InlineData("0x0a.0.0.1")]
    [InlineData("+10.0.0.1")]
    [InlineData("10.0.0.-1")]
    [InlineData(" 10.0.0.1")]
    [InlineData("10.0.0.1 ")]
    [InlineData("10.0.0.1\n")]
    [InlineData("１0.0.0.1")]
    [InlineData("10.0.0.1/24")]
    [InlineData("10.0.0.1:80")]
    // IPv6 Go refuses: zones, brackets, five hex digits, two "::", a "::" standing for nothing, too few or many groups.
    [InlineData("fe80::1%eth0")]
    [InlineData("[::1]")]
    [InlineData("fd00::00001")]
    [InlineData("1::2::3")]
    [InlineData("1:2:3:4:5:6:7:8::")]
    [InlineData("::1:2:3:4:5:6:7:8")]
    [InlineData("1:2:3:4:5:6:7")]
    [InlineData("1:2:3:4:5:6:7:8:9")]
    [InlineData(":1::")]
    [InlineData("1:")]
    [InlineData(":::")]
    [InlineData("g::1")]
    [InlineData("1:2:3:4:5:6:7:1.2.3.4")]
    [InlineData("::1.2.3")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData(".")]
    [InlineData(":")]
    public void Refused_as_Go_refuses_it(string? text)
    {
        Assert.False(Ip.TryParse(text, out _), text);
    }

    [Fact]
    public void Every_canonical_address_reads_back_as_itself()
    {
        var random = new Random(7);
        var bytes = new byte[16];
        for (var i = 0; i < 5000; i++)
        {
            random.NextBytes(bytes);
            // Half of them IPv4, and runs of zero groups in the IPv6 ones, so that "::" appears in every position.
            var address = i % 2 == 0 ? new System.Net.IPAddress(bytes.AsSpan(0, 4)) : new System.Net.IPAddress(ZeroSome(bytes, random));
            Assert.True(Ip.TryParse(address.ToString(), out var back), address.ToString());
            Assert.Equal(address, back);
        }
    }

    private static byte[] ZeroSome(byte[] bytes, Random random)
    {
        var copy = (byte[])bytes.Clone();
        var start = random.Next(8) * 2;
        copy.AsSpan(start, random.Next(16 - start + 1) & ~1).Clear();
        return copy;
    }
}
