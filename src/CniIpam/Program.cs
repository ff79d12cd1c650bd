using Berth.CniIpam;
using Microsoft.Win32.SafeHandles;

// The thin entry point: the dispatcher gets the process's environment and streams, and owns the rest.
if (args is ["--version"] or ["version"])
{
    Console.Out.WriteLine($"berth {Dispatcher.Informational}");
    return 0;
}
// The standard streams as plain files, not through System.Console: its streams set up the terminal (a signal
// thread, a charset lookup) on first write, which a plugin talking to a runtime over pipes pays for nothing.
using var stdin = Standard(0, FileAccess.Read);
using var stdout = new StreamWriter(Standard(1, FileAccess.Write));
using var stderr = new StreamWriter(Standard(2, FileAccess.Write)) { AutoFlush = true };
return new Dispatcher(Environment.GetEnvironmentVariable, stdin, stdout, stderr, PluginServices.ForMachine(Environment.GetEnvironmentVariable)).Run();

static FileStream Standard(int fd, FileAccess access) => new(new SafeFileHandle(fd, ownsHandle: false), access, bufferSize: 0);
