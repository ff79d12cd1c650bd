namespace Berth.HostAgent.Cri;

/// <summary>A gRPC call that ended with a non-zero grpc-status, or could not be made.</summary>
internal sealed class GrpcException(int status, string message) : Exception(message)
{
    /// <summary>The gRPC status code (4 deadline exceeded, 12 unimplemented, 14 unavailable…).</summary>
    public int Status { get; } = status;

    public const int DeadlineExceeded = 4, Unimplemented = 12, Internal = 13, Unavailable = 14;
}
