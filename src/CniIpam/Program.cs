using Berth.CniIpam;
using Berth.Shared.Plugin;

// The thin entry point: the call goes to berth-agent when it answers; otherwise the dispatcher gets the process's
// environment and streams, and owns the rest, as it always did.
if (args is ["--version"] or ["version"])
{
    Console.Out.WriteLine($"berth {Dispatcher.Informational}");
    return 0;
}
// The standard streams as plain descriptors (StandardStream says why not System.Console, nor a FileStream).
Func<string, string?> environment = Environment.GetEnvironmentVariable;
using var stdin = new StandardStream(0, writable: false);
using var stdoutFd = new StandardStream(1, writable: true);
using var stderrFd = new StandardStream(2, writable: true);
Stream input = stdin;
if (CallFrames.IsServed(environment("CNI_COMMAND")) && PluginSocket.Path(environment) is { } socket && CallFrames.Fits(environment)
    && AgentClient.TryForward(socket, environment, stdin, stdoutFd, stderrFd, out input) is { } exit)
{
    return exit;
}
using var stdout = new StreamWriter(stdoutFd);
using var stderr = new StreamWriter(stderrFd) { AutoFlush = true };
return new Dispatcher(environment, input, stdout, stderr, PluginServices.ForMachine(environment)).Run();
