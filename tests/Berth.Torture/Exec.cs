using System.Diagnostics;
using System.Text;

namespace Berth.Torture;

/// <summary>How one child process ended.</summary>
public sealed record ExecResult(int ExitCode, bool TimedOut, byte[] Stdout, string Stderr, TimeSpan Elapsed)
{
    /// <summary>.NET reports a process ended by signal N as 128 + N.</summary>
    public bool Signalled => !TimedOut && ExitCode > 128;

    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    /// <summary>The code of the CNI error on stdout, or null when stdout holds none.</summary>
    public int? ErrorCode
    {
        get
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(Stdout);
                return doc.RootElement.GetProperty("code").GetInt32();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return null;
            }
        }
    }

    public override string ToString() =>
        $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalMilliseconds:F0} ms\nstdout: {Clip(StdoutText)}\nstderr: {Clip(Stderr)}";

    private static string Clip(string s) => s.Length > 2000 ? s[..2000] + "…" : s;
}

/// <summary>
/// Starts child processes with exactly the environment given (byte values, so a variable may hold bytes that
/// are not UTF-8) and binary stdin; waits with a timeout or kills at a chosen moment.
/// </summary>
public sealed class Child : IDisposable
{
    private readonly Process _process;
    private readonly Task<byte[]> _stdout;
    private readonly Task<string> _stderr;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private bool _killed;

    private Child(Process process)
    {
        _process = process;
        _stdout = ReadAll(process.StandardOutput.BaseStream);
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Id => _process.Id;

    /// <summary>
    /// Starts <paramref name="executable"/> with only <paramref name="environment"/> set. Values that are valid
    /// UTF-8 go through .NET; otherwise the process is started through bash's $'\xHH' quoting and `env -i`,
    /// which execs the executable in the same process.
    /// </summary>
    public static Child Start(string executable, IReadOnlyList<string> args, IReadOnlyDictionary<string, byte[]> environment, byte[]? stdin)
    {
        ProcessStartInfo start;
        var strict = new UTF8Encoding(false, true);
        var allText = environment.All(kv => IsText(kv.Key) && IsText(kv.Value));
        if (allText)
        {
            start = new ProcessStartInfo(executable);
            foreach (var a in args) start.ArgumentList.Add(a);
            start.Environment.Clear();
            foreach (var (k, v) in environment) start.Environment[k] = strict.GetString(v);
        }
        else
        {
            var script = new StringBuilder("exec /usr/bin/env -i");
            foreach (var (k, v) in environment) script.Append(' ').Append(BashBytes([.. Encoding.UTF8.GetBytes(k), (byte)'=', .. v]));
            script.Append(' ').Append(BashBytes(Encoding.UTF8.GetBytes(executable)));
            foreach (var a in args) script.Append(' ').Append(BashBytes(Encoding.UTF8.GetBytes(a)));
            start = new ProcessStartInfo("/bin/bash");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(script.ToString());
            start.Environment.Clear();
        }
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = Process.Start(start)!;
        var child = new Child(process);
        try
        {
            if (stdin is not null) process.StandardInput.BaseStream.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // It exited (or was killed) before reading all of its input.
        }
        return child;

        static bool IsText(object value)
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
    }

    private static string BashBytes(byte[] bytes)
    {
        var s = new StringBuilder("$'");
        foreach (var b in bytes) s.Append(b is >= 0x20 and < 0x7f and not (byte)'\\' and not (byte)'\'' ? ((char)b).ToString() : $"\\x{b:x2}");
        return s.Append('\'').ToString();
    }

    private static async Task<byte[]> ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    /// <summary>SIGKILL, wherever the process is; false when it had already exited.</summary>
    public bool Kill()
    {
        try
        {
            if (_process.HasExited) return false;
            _process.Kill();
            _killed = true;
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>True when this process was ended by our SIGKILL.</summary>
    public bool KilledByUs => _killed && _process.HasExited && _process.ExitCode == 128 + 9;

    public async Task<ExecResult> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var timedOut = false;
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            timedOut = true;
            Kill();
            await _process.WaitForExitAsync();
        }
        var elapsed = _clock.Elapsed;
        return new ExecResult(_process.ExitCode, timedOut, await _stdout, await _stderr, elapsed);
    }

    public ExecResult Wait(TimeSpan timeout) => WaitAsync(timeout).GetAwaiter().GetResult();

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>Runs a command with text arguments to completion, inheriting the environment.</summary>
    public static ExecResult Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(start)!;
        var stdout = ReadAll(p.StandardOutput.BaseStream);
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill();
            p.WaitForExit();
            return new ExecResult(p.ExitCode, true, stdout.Result, stderr.Result, clock.Elapsed);
        }
        return new ExecResult(p.ExitCode, false, stdout.Result, stderr.Result, clock.Elapsed);
    }

    /// <summary>Like <see cref="Run"/> but throws when the command fails.</summary>
    public static string Must(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.ExitCode != 0 || r.TimedOut) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {r}");
        return r.StdoutText;
    }
}
