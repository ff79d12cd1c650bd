namespace Berth.Testing;

/// <summary>A fresh directory under /tmp, removed with everything in it when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("berth-test-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A child process may still be exiting; /tmp is cleaned by the machine.
        }
    }
}
