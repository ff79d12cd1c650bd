namespace Berth.Shared.Cni;

/// <summary>CNI error codes: the well-known ones from SPEC.md and the plugin's own (100 and up).</summary>
public static class ErrorCodes
{
    /// <summary>Incompatible CNI version.</summary>
    public const int IncompatibleVersion = 1;
    /// <summary>Container unknown or does not exist.</summary>
    public const int UnknownContainer = 3;
    /// <summary>Invalid necessary environment variables, like CNI_COMMAND or CNI_CONTAINERID.</summary>
    public const int InvalidEnvironment = 4;
    /// <summary>I/O failure: here, the lease store cannot be read or written.</summary>
    public const int IoFailure = 5;
    /// <summary>Failed to decode content: stdin is not JSON or is too large.</summary>
    public const int DecodingFailure = 6;
    /// <summary>Invalid network configuration.</summary>
    public const int InvalidConfig = 7;
    /// <summary>Try again later: the store stayed locked past the wait limit.</summary>
    public const int TryAgainLater = 11;
    /// <summary>STATUS: the plugin is not available (store unusable or a range is full).</summary>
    public const int NotAvailable = 50;
    /// <summary>No free address in a range set.</summary>
    public const int RangeExhausted = 100;
    /// <summary>A requested address cannot be given (held by another owner, the gateway, or outside every range).</summary>
    public const int AddressUnavailable = 101;
    /// <summary>An unexpected failure inside the plugin; a bug.</summary>
    public const int Internal = 999;
}
