using Berth.CniIpam;

// The thin entry point: the dispatcher gets the process's environment and streams, and owns the rest.
if (args is ["--version"] or ["version"])
{
    Console.Out.WriteLine($"berth {Dispatcher.Informational}");
    return 0;
}
using var stdin = Console.OpenStandardInput();
using var stdout = new StreamWriter(Console.OpenStandardOutput());
return new Dispatcher(Environment.GetEnvironmentVariable, stdin, stdout, Console.Error, PluginServices.ForMachine(Environment.GetEnvironmentVariable)).Run();
