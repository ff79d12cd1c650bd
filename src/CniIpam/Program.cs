using Berth.CniIpam;

// The thin entry point: the dispatcher gets the process's environment and streams, and owns the rest.
if (args is ["--version"] or ["version"])
{
    Console.Out.WriteLine($"berth {Dispatcher.Informational}");
    return 0;
}
// The standard streams as plain descriptors (StandardStream says why not System.Console, nor a FileStream).
using var stdin = new StandardStream(0, writable: false);
using var stdout = new StreamWriter(new StandardStream(1, writable: true));
using var stderr = new StreamWriter(new StandardStream(2, writable: true)) { AutoFlush = true };
return new Dispatcher(Environment.GetEnvironmentVariable, stdin, stdout, stderr, PluginServices.ForMachine(Environment.GetEnvironmentVariable)).Run();
