using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Berth.Benchmarks;

/// <summary>A short job in this process: enough to explain make bench's figures, not to publish alone.</summary>
internal static class Config
{
    public static IConfig Short { get; } = DefaultConfig.Instance
        .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).WithId("short-in-process"))
        .WithOptions(ConfigOptions.DisableOptimizationsValidator);
}
