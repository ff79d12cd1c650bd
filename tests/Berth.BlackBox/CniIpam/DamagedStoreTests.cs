
namespace Berth.BlackBox.CniIpam;

/// <summary>A store that is damaged or cannot be used: error 5 naming the file, and the file never reset or replaced.</summary>
public sealed class DamagedStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string DataDir => _dir.File("data");
    private string Store => Path.Combine(DataDir, "berth.db");
    private string Config => Configs.Json("""[[{"subnet":"10.71.0.0/24"}]]""", DataDir);

    private ExecResult Add(string id = "c-new") => PluginRun.Run(Repo.Plugin, "ADD", Config, id, netns: "/var/run/netns/x");

    /// <summary>A real store with leases, its WAL folded into the file so the file alone holds everything.</summary>
    private void RealStore()
    {
        for (var i = 0; i < 20; i++) Assert.Equal(0, Add($"c{i}").ExitCode);
        Exec.Must("sqlite3", Store, "PRAGMA wal_checkpoint(TRUNCATE)");
        Assert.True(new FileInfo(Store).Length > 4096);
    }

    public static TheoryData<string> Damages => ["garbage", "truncated to one page", "truncated mid-header", "zeroed pages", "unknown schema format in the header", "negative schema version in the header"];

    [Theory]
    [MemberData(nameof(Damages))]
    public void A_damaged_store_is_error_5_naming_the_file_and_is_left_as_it_is(string damage)
    {
        RealStore();
        var bytes = File.ReadAllBytes(Store);
        switch (damage)
        {
            case "garbage": bytes = System.Text.Encoding.ASCII.GetBytes(new string('x', 8192)); break;
            case "truncated to one page": bytes = bytes[..4096]; break;
            case "truncated mid-header": bytes = bytes[..50]; break;
            // Bytes 44-47: the schema format number, 1 to 4; SQLite says "unsupported file format" for others.
            case "unknown schema format in the header": bytes[47] = 9; break;
            // Bytes 60-63: user_version, berth's schema version, big-endian.
            case "negative schema version in the header": bytes[60] |= 0x80; break;
            default: Array.Clear(bytes, 4096, bytes.Length - 4096); break;
        }
        File.WriteAllBytes(Store, bytes);
        foreach (var side in new[] { "-wal", "-shm" }) File.Delete(Store + side);

        var add = Add();
        var del = PluginRun.Run(Repo.Plugin, "DEL", Config, "c1");

        foreach (var result in new[] { add, del })
        {
            Assert.True(result.ExitCode == 1, $"{damage}: {result}");
            Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
            Assert.Contains(Store, result.Json.GetProperty("msg").GetString());
            Assert.Contains("will not reset it", result.Json.GetProperty("msg").GetString());
        }
        Assert.Equal(bytes, File.ReadAllBytes(Store));
    }

    [Fact]
    public void An_empty_store_file_beside_a_write_ahead_log_is_error_5_and_the_log_is_kept()
    {
        for (var i = 0; i < 5; i++) Assert.Equal(0, Add($"c{i}").ExitCode);
        var wal = File.ReadAllBytes(Store + "-wal");
        Assert.NotEmpty(wal);
        File.WriteAllBytes(Store, []);
        File.Delete(Store + "-shm");

        var add = Add();
        var check = PluginRun.Run(Repo.Plugin, "CHECK", Config, "c1", netns: "/var/run/netns/x");

        foreach (var result in new[] { add, check })
        {
            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
            Assert.Contains(Store, result.Json.GetProperty("msg").GetString());
            Assert.Contains("will not reset it", result.Json.GetProperty("msg").GetString());
        }
        Assert.Empty(File.ReadAllBytes(Store));
        Assert.Equal(wal, File.ReadAllBytes(Store + "-wal"));
    }

    [Fact]
    public void An_empty_store_file_without_a_log_is_a_new_store()
    {
        // What a plugin killed between creating the file and SQLite's first write leaves behind.
        Directory.CreateDirectory(DataDir);
        File.WriteAllBytes(Store, []);

        var add = Add();

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(["c-new"], SqliteCli.Column(Store, "SELECT container_id FROM leases"));
    }

    [Fact]
    public void A_data_dir_that_is_a_file_is_error_5_and_the_file_is_left_alone()
    {
        File.WriteAllText(DataDir, "not a directory");

        var result = Add();

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
        Assert.Contains(DataDir, result.Json.GetProperty("msg").GetString());
        // Words, not .NET resource keys such as IO_FileExists_Name (the runtime's messages are kept in the build).
        Assert.DoesNotContain("IO_", result.Json.GetProperty("msg").GetString());
        Assert.Equal("not a directory", File.ReadAllText(DataDir));
    }

    [Theory]
    [InlineData("DEL", "")]
    [InlineData("DEL", "/below")]
    [InlineData("CHECK", "")]
    public void A_data_dir_that_is_a_file_fails_every_verb_with_5_not_only_add(string command, string below)
    {
        File.WriteAllText(DataDir, "not a directory");
        var config = Configs.Json("""[[{"subnet":"10.71.0.0/24"}]]""", DataDir + below);

        var result = PluginRun.Run(Repo.Plugin, command, config, "c1", netns: "/var/run/netns/x");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
        Assert.Contains($"{DataDir} is a file", result.Json.GetProperty("msg").GetString());
        Assert.Equal("not a directory", File.ReadAllText(DataDir));
    }

    [Fact]
    public void A_store_that_is_a_directory_fails_del_with_5()
    {
        Directory.CreateDirectory(Store);

        var result = PluginRun.Run(Repo.Plugin, "DEL", Config, "c1");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
        Assert.Contains(Store, result.Json.GetProperty("msg").GetString());
    }

    [Fact]
    public void An_unreadable_boot_id_is_error_4_in_words_and_creates_no_store()
    {
        var result = PluginRun.Run(Repo.Plugin, "ADD", Config, "c1", netns: "/var/run/netns/x",
            extraEnvironment: new Dictionary<string, string> { ["BERTH_BOOT_ID_FILE"] = _dir.File("no-such-boot-id") });

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(4, result.Json.GetProperty("code").GetInt32());
        Assert.DoesNotContain("IO_", result.Json.GetProperty("msg").GetString());
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void A_store_that_is_a_directory_is_error_5()
    {
        Directory.CreateDirectory(Store);

        var result = Add();

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(5, result.Json.GetProperty("code").GetInt32());
        Assert.Contains(Store, result.Json.GetProperty("msg").GetString());
    }

    public void Dispose() => _dir.Dispose();
}
