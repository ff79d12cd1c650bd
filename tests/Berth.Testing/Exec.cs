using System.Diagnostics;
using System.Text;
using CliWrap;

namespace Berth.Testing;

/// <summary>What a process gets besides its arguments.</summary>
public sealed record ExecOptions
{
    /// <summary>Variables to set (byte values, so a test can hand over bytes that are not UTF-8).</summary>
    public IReadOnlyDictionary<string, byte[]> Environment { get; init; } = new Dictionary<string, byte[]>();

    /// <summary>True: the process sees only <see cref="Environment"/>, nothing inherited (as a runtime starts a CNI plugin).</summary>
    public bool OnlyThisEnvironment { get; init; }

    /// <summary>Inherited variables the process must not see (NOTIFY_SOCKET for a daemon that is not systemd's).</summary>
    public IReadOnlyList<string> Unset { get; init; } = [];

    public byte[]? Stdin { get; init; }

    /// <summary>Called with each line of standard output as it comes, for a test that reacts to a running process.</summary>
    public Action<string>? StdoutLine { get; init; }

    /// <summary>Past this the process is killed and the result says TimedOut.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);

    public static IReadOnlyDictionary<string, byte[]> Text(IReadOnlyDictionary<string, string> environment) =>
        environment.ToDictionary(kv => kv.Key, kv => Encoding.UTF8.GetBytes(kv.Value));
}

/// <summary>
/// The one way the tests, the e2e and the torture run a process: CliWrap with the output buffered, stdin given,
/// the environment exact or added to, a timeout that kills, and SIGKILL at a moment the caller chooses.
/// </summary>
public static class Exec
{
    /// <summary>Runs to completion (or to the timeout, which kills it).</summary>
    public static ExecResult Run(string file, IEnumerable<string> args, ExecOptions? options = null) =>
        Start(file, args, options).WaitAsync().GetAwaiter().GetResult();

    public static Task<ExecResult> RunAsync(string file, IEnumerable<string> args, ExecOptions? options = null) => Start(file, args, options).WaitAsync();

    /// <summary>Runs a command that must succeed (exit 0 in time); returns its standard output.</summary>
    public static string Must(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.ExitCode != 0 || r.TimedOut) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>Starts the process and leaves it running: wait for it, or kill it first.</summary>
    public static Running Start(string file, IEnumerable<string> args, ExecOptions? options = null) => new(file, [.. args], options ?? new ExecOptions());
}

/// <summary>A process started by <see cref="Exec.Start"/>.</summary>
public sealed class Running : IDisposable
{
    private readonly CommandTask<CommandResult> _task;
    private readonly MemoryStream _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TimeSpan _timeout;
    private bool _killed;

    internal Running(string file, IReadOnlyList<string> args, ExecOptions options)
    {
        _timeout = options.Timeout;
        var command = Cli.Wrap(file).WithArguments(args).WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(options.StdoutLine is { } line ? PipeTarget.Merge(PipeTarget.ToStream(_stdout), PipeTarget.ToDelegate(line)) : PipeTarget.ToStream(_stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(_stderr))
            .WithStandardInputPipe(options.Stdin is { } stdin ? PipeSource.FromBytes(stdin) : PipeSource.Null);
        var strict = new UTF8Encoding(false, true);
        if (options.Environment.All(kv => IsText(kv.Key) && IsText(kv.Value)))
        {
            command = command.WithEnvironmentVariables(env =>
            {
                if (options.OnlyThisEnvironment)
                {
                    foreach (var inherited in System.Environment.GetEnvironmentVariables().Keys.Cast<string>()) env.Set(inherited, null);
                }
                foreach (var name in options.Unset) env.Set(name, null);
                foreach (var (k, v) in options.Environment) env.Set(k, strict.GetString(v));
            });
        }
        else
        {
            // .NET passes the environment as UTF-16 strings: bytes that are not UTF-8 reach the process through
            // bash's $'\xHH' quoting and `env -i`, which execs the executable in the same process.
            var script = new StringBuilder("exec /usr/bin/env");
            if (options.OnlyThisEnvironment) script.Append(" -i");
            foreach (var name in options.Unset) script.Append(" -u ").Append(BashBytes(Encoding.UTF8.GetBytes(name)));
            foreach (var (k, v) in options.Environment) script.Append(' ').Append(BashBytes([.. Encoding.UTF8.GetBytes(k), (byte)'=', .. v]));
            script.Append(' ').Append(BashBytes(Encoding.UTF8.GetBytes(file)));
            foreach (var a in args) script.Append(' ').Append(BashBytes(Encoding.UTF8.GetBytes(a)));
            command = command.WithTargetFile("/bin/bash").WithArguments(["-c", script.ToString()]);
        }
        _task = command.ExecuteAsync();
    }

    public int Id => _task.ProcessId;

    public bool HasExited => _task.Task.IsCompleted;

    /// <summary>SIGKILL, wherever the process is; false when it had already exited.</summary>
    public bool Kill()
    {
        if (_task.Task.IsCompleted) return false;
        try
        {
            using var process = Process.GetProcessById(_task.ProcessId);
            process.Kill();
            _killed = true;
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Ended by our SIGKILL (not by exiting first).</summary>
    public bool KilledByUs => _killed && _task.Task.IsCompletedSuccessfully && _task.Task.Result.ExitCode == 128 + 9;

    /// <summary>The result once it exits; past <paramref name="timeout"/> (default: the options') it is killed and marked timed out.</summary>
    public async Task<ExecResult> WaitAsync(TimeSpan? timeout = null)
    {
        var timedOut = false;
        CommandResult result;
        try
        {
            result = await _task.Task.WaitAsync(timeout ?? _timeout);
        }
        catch (TimeoutException)
        {
            timedOut = true;
            Kill();
            result = await _task.Task;
        }
        return new ExecResult(result.ExitCode, timedOut, _stdout.ToArray(), _stderr.ToString(), _clock.Elapsed);
    }

    public ExecResult Wait(TimeSpan? timeout = null) => WaitAsync(timeout).GetAwaiter().GetResult();

    public void Dispose()
    {
        Kill();
        try
        {
            _task.Task.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already reaped, or never started.
        }
        _task.Dispose();
    }

    private static bool IsText(object value)
    {
        try
        {
            var s = value is byte[] b ? new UTF8Encoding(false, true).GetString(b) : (string)value;
            return !s.Contains('\0');
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static string BashBytes(byte[] bytes)
    {
        var s = new StringBuilder("$'");
        foreach (var b in bytes) s.Append(b is >= 0x20 and < 0x7f and not (byte)'\\' and not (byte)'\'' ? ((char)b).ToString() : $"\\x{b:x2}");
        return s.Append('\'').ToString();
    }
}
