using System.Buffers.Binary;
using System.Text;
using Berth.Shared.Config;

namespace Berth.Shared.Plugin;

/// <summary>
/// The frames the plugin and the agent exchange on the plugin socket, one call per connection. A frame is the magic
/// "BRTH", a kind byte, the body's length (4 bytes, little-endian), and the body. The request ('Q') carries the
/// environment the dispatcher reads and the stdin bytes; the answer is a result ('R': exit code, stdout, stderr) or a
/// refusal ('N': why), after which the plugin does the work itself. Every length is bounded before anything is
/// allocated for it, so a hostile peer gets a <see cref="FormatException"/>, never an allocation of its choosing.
/// This is the agent's side. The plugin's side is C (src/CniIpam/native/forward.c) with the same variables and
/// bounds, so that a forwarded call never starts the plugin's runtime; AgentServingTests keeps the two byte for byte
/// the same.
/// </summary>
public static class CallFrames
{
    /// <summary>The magic every frame starts with.</summary>
    public static ReadOnlySpan<byte> Magic => "BRTH"u8;

    /// <summary>Magic, kind and length.</summary>
    public const int HeaderBytes = 9;

    /// <summary>A request.</summary>
    public const byte Request = (byte)'Q';

    /// <summary>A result to relay.</summary>
    public const byte Result = (byte)'R';

    /// <summary>The agent did not run the call: the plugin runs it.</summary>
    public const byte Refusal = (byte)'N';

    /// <summary>The environment variables a call carries: those the dispatcher and the plugin's services read.</summary>
    public static readonly string[] Environment = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS", "CNI_ARGS", Evidence.SystemBootClock.BootIdFileVariable];

    /// <summary>The longest value of one variable: the kernel's own limit for one environment string (MAX_ARG_STRLEN).</summary>
    public const int MaxValueBytes = 128 * 1024;

    /// <summary>The largest request body: every variable at its longest and stdin at the plugin's own limit.</summary>
    public static readonly int MaxRequestBytes = 1 + Environment.Length * (1 + 4 + MaxValueBytes) + 4 + ConfigParser.MaxStdinBytes;

    /// <summary>The largest answer body: results and errors are a few KiB; stdout and stderr each get at most this.</summary>
    public const int MaxOutputBytes = 1 << 20;

    /// <summary>The largest answer body the plugin reads.</summary>
    public const int MaxAnswerBytes = 4 + 4 + MaxOutputBytes + 4 + MaxOutputBytes;

    /// <summary>A call as the agent runs it.</summary>
    public sealed record Call(IReadOnlyDictionary<string, string> Environment, byte[] Stdin);

    /// <summary>
    /// The request frame: the variables of <see cref="Environment"/> that are set, and stdin. The plugin's own encoder
    /// is C (src/CniIpam/native/forward.c, which runs before the plugin's runtime starts); this one is the reference
    /// its test compares with, and what the fuzzer sends the agent.
    /// </summary>
    public static byte[] EncodeRequest(Func<string, string?> environment, ReadOnlySpan<byte> stdin)
    {
        var body = new MemoryStream();
        var set = Environment.Select(name => (name, value: environment(name))).Where(v => v.value is not null).ToList();
        body.WriteByte((byte)set.Count);
        foreach (var (name, value) in set)
        {
            body.WriteByte((byte)Array.IndexOf(Environment, name));
            WriteBlock(body, Encoding.UTF8.GetBytes(value!));
        }
        WriteBlock(body, stdin);
        return Frame(Request, body.ToArray());
    }

    /// <summary>Reads a request body; throws <see cref="FormatException"/> saying what is wrong with it.</summary>
    public static Call DecodeRequest(ReadOnlySpan<byte> body)
    {
        var reader = new Reader(body);
        var count = reader.Byte();
        if (count > Environment.Length) throw new FormatException($"{count} variables: at most {Environment.Length}");
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var index = reader.Byte();
            if (index >= Environment.Length) throw new FormatException($"variable number {index} is none of the {Environment.Length} a call carries");
            var value = reader.Block(MaxValueBytes);
            string text;
            try
            {
                text = Strict.GetString(value);
            }
            catch (DecoderFallbackException)
            {
                throw new FormatException($"{Environment[index]} is not UTF-8");
            }
            if (!env.TryAdd(Environment[index], text)) throw new FormatException($"{Environment[index]} given twice");
        }
        var stdin = reader.Block(ConfigParser.MaxStdinBytes).ToArray();
        reader.End();
        return new Call(env, stdin);
    }

    /// <summary>A result frame; output beyond <see cref="MaxOutputBytes"/> is not sent (the caller refuses instead).</summary>
    public static byte[] EncodeResult(int exitCode, ReadOnlySpan<byte> stdout, ReadOnlySpan<byte> stderr)
    {
        if (stdout.Length > MaxOutputBytes || stderr.Length > MaxOutputBytes) throw new ArgumentException("output too large for a frame");
        var body = new MemoryStream();
        Span<byte> code = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(code, exitCode);
        body.Write(code);
        WriteBlock(body, stdout);
        WriteBlock(body, stderr);
        return Frame(Result, body.ToArray());
    }

    /// <summary>A refusal frame: the agent did not run the call, and says why.</summary>
    public static byte[] EncodeRefusal(string why)
    {
        var body = new MemoryStream();
        WriteBlock(body, Encoding.UTF8.GetBytes(why.Length > 1000 ? why[..1000] : why));
        return Frame(Refusal, body.ToArray());
    }

    /// <summary>
    /// The kind and body length a header announces; throws <see cref="FormatException"/> for a wrong magic, an
    /// unexpected kind, or a length beyond <paramref name="maxBody"/>.
    /// </summary>
    public static (byte Kind, int Length) ReadHeader(ReadOnlySpan<byte> header, int maxBody, params byte[] kinds)
    {
        if (header.Length < HeaderBytes || !header[..4].SequenceEqual(Magic)) throw new FormatException("not a berth call frame (no BRTH magic)");
        var kind = header[4];
        if (!kinds.Contains(kind)) throw new FormatException($"frame kind 0x{kind:x2} is not expected here");
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header[5..]);
        if (length > maxBody) throw new FormatException($"frame of {length} bytes: at most {maxBody}");
        return (kind, (int)length);
    }

    private static readonly UTF8Encoding Strict = new(false, true);

    private static byte[] Frame(byte kind, byte[] body)
    {
        var frame = new byte[HeaderBytes + body.Length];
        Magic.CopyTo(frame);
        frame[4] = kind;
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(5), (uint)body.Length);
        body.CopyTo(frame, HeaderBytes);
        return frame;
    }

    private static void WriteBlock(MemoryStream body, ReadOnlySpan<byte> bytes)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)bytes.Length);
        body.Write(length);
        body.Write(bytes);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public byte Byte()
        {
            if (_rest.Length < 1) throw new FormatException("frame cut short");
            var b = _rest[0];
            _rest = _rest[1..];
            return b;
        }

        public ReadOnlySpan<byte> Block(int max)
        {
            if (_rest.Length < 4) throw new FormatException("frame cut short");
            var length = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
            _rest = _rest[4..];
            if (length > max) throw new FormatException($"a block of {length} bytes: at most {max}");
            if (_rest.Length < length) throw new FormatException("frame cut short");
            var block = _rest[..(int)length];
            _rest = _rest[(int)length..];
            return block;
        }

        public readonly void End()
        {
            if (!_rest.IsEmpty) throw new FormatException($"{_rest.Length} bytes after the end of the frame");
        }
    }
}
