using Berth.CniIpam;
using Berth.Shared.Plugin;

// The thin entry point. A call berth-agent answered never gets here: the forwarding prelude (native/forward.c)
// relayed it and exited before the runtime started. Otherwise the dispatcher gets the process's environment and
// streams, stdin with what the prelude read of it first, and owns the rest, as it always did.
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
using var stdout = new StreamWriter(stdoutFd);
using var stderr = new StreamWriter(stderrFd) { AutoFlush = true };
return new Dispatcher(environment, ForwardedStdin.Input(stdin), stdout, stderr, PluginServices.ForMachine(environment)).Run();
