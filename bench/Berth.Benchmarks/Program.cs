using System.Globalization;
using BenchmarkDotNet.Running;

namespace Berth.Benchmarks;

/// <summary>
/// fake-runtime SOCKET PREFIX FIRST COUNT: the fake CRI runtime (see <see cref="FakeRuntime"/>).
/// Anything else goes to BenchmarkDotNet (e.g. --filter '*' --job short).
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is ["fake-runtime", var socket, var prefix, var first, var count])
        {
            return await FakeRuntime.RunAsync(socket, prefix, int.Parse(first, CultureInfo.InvariantCulture), int.Parse(count, CultureInfo.InvariantCulture));
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, Config.Short);
        return 0;
    }
}
