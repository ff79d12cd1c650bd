using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;

namespace Berth.Shared.Leases;

/// <summary>
/// One transaction on the SQLite store. Every lease change also updates the runs table (maximal stretches
/// of consecutive leased addresses) and appends a history row, all inside the same transaction.
/// </summary>
internal sealed class SqliteLeaseTransaction(SqliteLeaseStore store, SqliteTransaction transaction) : ILeaseTransaction, IStoreQueries, IDisposable
{
    private const string LeaseColumns = "network, address, range_set, subnet, container_id, ifname, netns, netns_inode, pod_namespace, pod_name, pod_uid, boot_id, since_boot_ns, created_at, origin";
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    public IReadOnlyList<Lease> LeasesOf(string network, string containerId, string ifName) =>
        Query($"SELECT {LeaseColumns} FROM leases WHERE network = $n AND container_id = $c AND ifname = $i ORDER BY range_set",
            ("$n", network), ("$c", containerId), ("$i", ifName));

    public Lease? Holder(string network, IPAddress address) =>
        Query($"SELECT {LeaseColumns} FROM leases WHERE network = $n AND address_key = $k", ("$n", network), ("$k", AddressKey.Of(address)))
            .FirstOrDefault();

    public IReadOnlyList<Lease> Leases(string network, IPAddress? from = null, IPAddress? to = null)
    {
        if (from is null || to is null)
        {
            return Query($"SELECT {LeaseColumns} FROM leases WHERE network = $n ORDER BY address_key", ("$n", network));
        }
        return Query($"SELECT {LeaseColumns} FROM leases WHERE network = $n AND address_key BETWEEN $a AND $b ORDER BY address_key",
            ("$n", network), ("$a", AddressKey.Of(from)), ("$b", AddressKey.Of(to)));
    }

    public IPAddress? FirstUnleased(string network, IPAddress from, IPAddress to)
    {
        var candidate = AddressKey.Of(from);
        var end = AddressKey.Of(to);
        // Runs are maximal, so the address after a run is free: this loop turns at most twice.
        while (AddressKey.Compare(candidate, end) <= 0)
        {
            if (RunContaining(network, candidate) is not { } run) return AddressKey.ToAddress(candidate);
            if (AddressKey.Next(run.Last) is not { } next) return null;
            candidate = next;
        }
        return null;
    }

    public IPAddress? Cursor(string network, int rangeSet)
    {
        var text = Command("SELECT address FROM cursors WHERE network = $n AND range_set = $r", ("$n", network), ("$r", rangeSet)).ExecuteScalar() as string;
        return text is not null && IPAddress.TryParse(text, out var address) ? address : null;
    }

    public void SetCursor(string network, int rangeSet, IPAddress address) =>
        Command("INSERT INTO cursors (network, range_set, address) VALUES ($n, $r, $a) ON CONFLICT (network, range_set) DO UPDATE SET address = excluded.address",
            ("$n", network), ("$r", rangeSet), ("$a", address.ToString())).ExecuteNonQuery();

    public void Add(Lease lease, Change change)
    {
        var key = AddressKey.Of(lease.Address);
        Command($"INSERT INTO leases (address_key, {LeaseColumns}) VALUES ($k, $n, $a, $r, $s, $c, $i, $ns, $ino, $pns, $pn, $pu, $b, $t, $at, $o)",
            ("$k", key), ("$n", lease.Network), ("$a", lease.Address.ToString()), ("$r", lease.RangeSet), ("$s", lease.Subnet),
            ("$c", lease.ContainerId), ("$i", lease.IfName), ("$ns", lease.Netns), ("$ino", lease.NetnsInode is { } ino ? (long)ino : null),
            ("$pns", lease.PodNamespace), ("$pn", lease.PodName), ("$pu", lease.PodUid), ("$b", lease.BootId),
            ("$t", lease.SinceBoot.Ticks * 100), ("$at", Timestamp(lease.CreatedAt)), ("$o", lease.Origin)).ExecuteNonQuery();
        JoinRuns(lease.Network, key);
        RecordHistory("allocate", lease, change);
    }

    public bool Release(Lease lease, Change change)
    {
        var key = AddressKey.Of(lease.Address);
        var removed = Command("DELETE FROM leases WHERE network = $n AND address_key = $k AND container_id = $c AND ifname = $i",
            ("$n", lease.Network), ("$k", key), ("$c", lease.ContainerId), ("$i", lease.IfName)).ExecuteNonQuery();
        if (removed == 0) return false;
        LeaveRuns(lease.Network, key);
        Command("DELETE FROM strikes WHERE network = $n AND address_key = $k", ("$n", lease.Network), ("$k", key)).ExecuteNonQuery();
        RecordHistory("release", lease, change);
        return true;
    }

    public IReadOnlyList<Lease> AllLeases() => Query($"SELECT {LeaseColumns} FROM leases ORDER BY network, address_key");

    public DateTimeOffset? RecoveredAt(string bootId) =>
        Command("SELECT recovered_at FROM boots WHERE boot_id = $b", ("$b", bootId)).ExecuteScalar() is string at
            ? DateTimeOffset.Parse(at, CultureInfo.InvariantCulture)
            : null;

    public void RecordRecovery(string bootId, int released) =>
        Command("INSERT INTO boots (boot_id, recovered_at, released) VALUES ($b, $at, $r) ON CONFLICT (boot_id) DO UPDATE SET recovered_at = excluded.recovered_at, released = excluded.released",
            ("$b", bootId), ("$at", Timestamp(store.Options.Time.GetUtcNow())), ("$r", released)).ExecuteNonQuery();

    public int AddStrike(Lease lease) => Convert.ToInt32(Command("""
        INSERT INTO strikes (network, address_key, container_id, ifname, count) VALUES ($n, $k, $c, $i, 1)
        ON CONFLICT (network, address_key) DO UPDATE SET
            count = CASE WHEN container_id = excluded.container_id AND ifname = excluded.ifname THEN count + 1 ELSE 1 END,
            container_id = excluded.container_id, ifname = excluded.ifname
        RETURNING count
        """, ("$n", lease.Network), ("$k", AddressKey.Of(lease.Address)), ("$c", lease.ContainerId), ("$i", lease.IfName)).ExecuteScalar(), CultureInfo.InvariantCulture);

    public void ClearStrikes(Lease lease) =>
        Command("DELETE FROM strikes WHERE network = $n AND address_key = $k", ("$n", lease.Network), ("$k", AddressKey.Of(lease.Address))).ExecuteNonQuery();

    public int PruneHistory(int keepEvents, DateTimeOffset keepSince) =>
        Command("DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - $k AND at < $t",
            ("$k", keepEvents), ("$t", Timestamp(keepSince))).ExecuteNonQuery();

    public void RecordRanges(string network, string ranges) =>
        Command("INSERT INTO networks (name, ranges, updated_at) VALUES ($n, $r, $at) ON CONFLICT (name) DO UPDATE SET ranges = excluded.ranges, updated_at = excluded.updated_at WHERE ranges <> excluded.ranges",
            ("$n", network), ("$r", ranges), ("$at", Timestamp(store.Options.Time.GetUtcNow()))).ExecuteNonQuery();

    public IReadOnlyList<(string Network, string Ranges)> Networks()
    {
        var result = new List<(string, string)>();
        using var reader = Command("SELECT name, ranges FROM networks ORDER BY name").ExecuteReader();
        while (reader.Read()) result.Add((reader.GetString(0), reader.GetString(1)));
        return result;
    }

    public long CountLeases(string network, IPAddress from, IPAddress to) =>
        (long)Command("SELECT count(*) FROM leases WHERE network = $n AND address_key BETWEEN $a AND $b",
            ("$n", network), ("$a", AddressKey.Of(from)), ("$b", AddressKey.Of(to))).ExecuteScalar()!;

    public (long Current, long Previous) LeasesByBoot(string bootId)
    {
        using var reader = Command("SELECT count(*) FILTER (WHERE boot_id = $b), count(*) FILTER (WHERE boot_id <> $b) FROM leases", ("$b", bootId)).ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    public IReadOnlyList<HistoryEntry> History(HistoryFilter filter)
    {
        var result = new List<HistoryEntry>();
        using var reader = Command("""
            SELECT id, at, boot_id, action, reason, actor, network, address, container_id, ifname, pod_namespace, pod_name, detail FROM history
            WHERE ($a IS NULL OR address = $a) AND ($n IS NULL OR network = $n) AND ($s IS NULL OR at >= $s)
            ORDER BY id DESC LIMIT $l
            """, ("$a", filter.Address), ("$n", filter.Network), ("$s", filter.Since is { } since ? Timestamp(since) : null), ("$l", filter.Limit)).ExecuteReader();
        while (reader.Read())
        {
            string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
            result.Add(new HistoryEntry(reader.GetInt64(0), DateTimeOffset.Parse(reader.GetString(1), CultureInfo.InvariantCulture), reader.GetString(2),
                reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetString(8),
                reader.GetString(9), Text(10), Text(11), Text(12)));
        }
        result.Reverse();
        return result;
    }

    public IReadOnlyList<string> IntegrityCheck()
    {
        var result = new List<string>();
        using var reader = Command("PRAGMA integrity_check").ExecuteReader();
        while (reader.Read()) result.Add(reader.GetString(0));
        return result;
    }

    public IReadOnlyDictionary<string, long> ReleaseCounts(string? bootId = null)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        using var reader = (bootId is null
            ? Command("SELECT reason, count(*) FROM history WHERE action = 'release' GROUP BY reason")
            : Command("SELECT reason, count(*) FROM history WHERE action = 'release' AND boot_id = $b GROUP BY reason", ("$b", bootId))).ExecuteReader();
        while (reader.Read()) result[reader.GetString(0)] = reader.GetInt64(1);
        return result;
    }

    private void RecordHistory(string action, Lease lease, Change change)
    {
        var clock = store.Options.BootClock;
        Command("INSERT INTO history (at, boot_id, since_boot_ns, action, reason, actor, network, address, container_id, ifname, pod_namespace, pod_name, pod_uid, detail) VALUES ($at, $b, $t, $act, $why, $who, $n, $a, $c, $i, $pns, $pn, $pu, $d)",
            ("$at", Timestamp(store.Options.Time.GetUtcNow())), ("$b", clock.BootId), ("$t", clock.SinceBoot.Ticks * 100),
            ("$act", action), ("$why", change.Reason), ("$who", change.Actor), ("$n", lease.Network), ("$a", lease.Address.ToString()),
            ("$c", lease.ContainerId), ("$i", lease.IfName), ("$pns", lease.PodNamespace), ("$pn", lease.PodName), ("$pu", lease.PodUid),
            ("$d", change.Detail)).ExecuteNonQuery();
    }

    private (byte[] First, byte[] Last)? RunContaining(string network, byte[] key)
    {
        using var reader = Command("SELECT first, last FROM runs WHERE network = $n AND first <= $k ORDER BY first DESC LIMIT 1", ("$n", network), ("$k", key)).ExecuteReader();
        if (!reader.Read()) return null;
        var run = ((byte[])reader[0], (byte[])reader[1]);
        return AddressKey.Compare(run.Item2, key) >= 0 ? run : null;
    }

    private void JoinRuns(string network, byte[] key)
    {
        var left = AddressKey.Previous(key) is { } previous ? RunContaining(network, previous) : null;
        var right = AddressKey.Next(key) is { } next ? RunContaining(network, next) : null;
        if (right is { } r) Command("DELETE FROM runs WHERE network = $n AND first = $f", ("$n", network), ("$f", r.First)).ExecuteNonQuery();
        var last = right?.Last ?? key;
        if (left is { } l) Command("UPDATE runs SET last = $l WHERE network = $n AND first = $f", ("$n", network), ("$f", l.First), ("$l", last)).ExecuteNonQuery();
        else Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", key), ("$l", last)).ExecuteNonQuery();
    }

    private void LeaveRuns(string network, byte[] key)
    {
        if (RunContaining(network, key) is not { } run) return;
        Command("DELETE FROM runs WHERE network = $n AND first = $f", ("$n", network), ("$f", run.First)).ExecuteNonQuery();
        if (AddressKey.Compare(run.First, key) < 0)
        {
            Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", run.First), ("$l", AddressKey.Previous(key))).ExecuteNonQuery();
        }
        if (AddressKey.Compare(key, run.Last) < 0)
        {
            Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", AddressKey.Next(key)), ("$l", run.Last)).ExecuteNonQuery();
        }
    }

    private List<Lease> Query(string sql, params (string Name, object? Value)[] parameters)
    {
        var result = new List<Lease>();
        using var reader = Command(sql, parameters).ExecuteReader();
        while (reader.Read()) result.Add(ReadLease(reader));
        return result;
    }

    internal static Lease ReadLease(SqliteDataReader r) => new(
        Network: r.GetString(0),
        Address: IPAddress.Parse(r.GetString(1)),
        RangeSet: r.GetInt32(2),
        Subnet: r.GetString(3),
        ContainerId: r.GetString(4),
        IfName: r.GetString(5),
        Netns: r.GetString(6),
        NetnsInode: r.IsDBNull(7) ? null : (ulong)r.GetInt64(7),
        PodNamespace: r.IsDBNull(8) ? null : r.GetString(8),
        PodName: r.IsDBNull(9) ? null : r.GetString(9),
        PodUid: r.IsDBNull(10) ? null : r.GetString(10),
        BootId: r.GetString(11),
        SinceBoot: TimeSpan.FromTicks(r.GetInt64(12) / 100),
        CreatedAt: DateTimeOffset.Parse(r.GetString(13), CultureInfo.InvariantCulture),
        Origin: r.GetString(14));

    internal static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Statements are prepared once per transaction and reused with new parameter values.</summary>
    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = store.Connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            _commands[sql] = command;
        }
        command.Parameters.Clear();
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values) command.Dispose();
    }
}
