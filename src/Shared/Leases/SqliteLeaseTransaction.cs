using System.Globalization;
using System.Net;

namespace Berth.Shared.Leases;

/// <summary>
/// One transaction on the SQLite store. Every lease change also updates the runs table (maximal stretches
/// of consecutive leased addresses) and appends a history row, all inside the same transaction.
/// </summary>
internal sealed class SqliteLeaseTransaction(SqliteLeaseStore store) : IAgentTransaction, IStoreQueries, IDisposable
{
    private const string LeaseColumns = "network, address, range_set, subnet, container_id, ifname, netns, netns_inode, pod_namespace, pod_name, pod_uid, boot_id, since_boot_ns, created_at, origin";
    private readonly HashSet<SqliteStatement> _used = [];

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
        var cursor = Command("SELECT address FROM cursors WHERE network = $n AND range_set = $r", ("$n", network), ("$r", rangeSet));
        var text = cursor.Step() ? cursor.Text(0) : null;
        return Allocation.Ip.TryParse(text, out var address) ? address : null;
    }

    public void SetCursor(string network, int rangeSet, IPAddress address) =>
        Command("INSERT INTO cursors (network, range_set, address) VALUES ($n, $r, $a) ON CONFLICT (network, range_set) DO UPDATE SET address = excluded.address",
            ("$n", network), ("$r", rangeSet), ("$a", address.ToString())).Run();

    public void Add(Lease lease, Change change)
    {
        var key = AddressKey.Of(lease.Address);
        Command($"INSERT INTO leases (address_key, {LeaseColumns}) VALUES ($k, $n, $a, $r, $s, $c, $i, $ns, $ino, $pns, $pn, $pu, $b, $t, $at, $o)",
            ("$k", key), ("$n", lease.Network), ("$a", lease.Address.ToString()), ("$r", lease.RangeSet), ("$s", lease.Subnet),
            ("$c", lease.ContainerId), ("$i", lease.IfName), ("$ns", lease.Netns), ("$ino", lease.NetnsInode is { } ino ? (long)ino : null),
            ("$pns", lease.PodNamespace), ("$pn", lease.PodName), ("$pu", lease.PodUid), ("$b", lease.BootId),
            ("$t", lease.SinceBoot.Ticks * 100), ("$at", Timestamp(lease.CreatedAt)), ("$o", lease.Origin)).Run();
        JoinRuns(lease.Network, key);
        // A new lease starts with no strikes, whatever was counted for an earlier holder of the address.
        ForgetStrikes(lease.Network, key);
        RecordHistory("allocate", lease, change);
    }

    public bool Release(Lease lease, Change change)
    {
        var key = AddressKey.Of(lease.Address);
        var removed = Command("DELETE FROM leases WHERE network = $n AND address_key = $k AND container_id = $c AND ifname = $i",
            ("$n", lease.Network), ("$k", key), ("$c", lease.ContainerId), ("$i", lease.IfName)).Run();
        if (removed == 0) return false;
        LeaveRuns(lease.Network, key);
        ForgetStrikes(lease.Network, key);
        RecordHistory("release", lease, change);
        return true;
    }

    public IReadOnlyList<Lease> AllLeases() => Query($"SELECT {LeaseColumns} FROM leases ORDER BY network, address_key");

    public IReadOnlyDictionary<string, DateTimeOffset> Recovered(string bootId)
    {
        var result = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        var reader = Command("SELECT scope, recovered_at FROM recoveries WHERE boot_id = $b", ("$b", bootId));
        while (reader.Step())
        {
            if (reader.IsNull(0) || !TryParseTimestamp(reader.TextOrNull(1), out var at)) continue;
            result[reader.Text(0)] = at;
        }
        return result;
    }

    public void RecordRecovery(string bootId, string scope, int released) =>
        Command("INSERT INTO recoveries (boot_id, scope, recovered_at, released) VALUES ($b, $s, $at, $r) ON CONFLICT (boot_id, scope) DO UPDATE SET recovered_at = excluded.recovered_at, released = excluded.released",
            ("$b", bootId), ("$s", scope), ("$at", Timestamp(store.Options.Time.GetUtcNow())), ("$r", released)).Run();

    public int AddStrike(Lease lease) => (int)Single(Command("""
        INSERT INTO strikes (network, address_key, container_id, ifname, count) VALUES ($n, $k, $c, $i, 1)
        ON CONFLICT (network, address_key) DO UPDATE SET
            count = CASE WHEN container_id = excluded.container_id AND ifname = excluded.ifname THEN count + 1 ELSE 1 END,
            container_id = excluded.container_id, ifname = excluded.ifname
        RETURNING count
        """, ("$n", lease.Network), ("$k", AddressKey.Of(lease.Address)), ("$c", lease.ContainerId), ("$i", lease.IfName)));

    public void ClearStrikes(Lease lease) => ForgetStrikes(lease.Network, AddressKey.Of(lease.Address));

    private void ForgetStrikes(string network, byte[] key) =>
        Command("DELETE FROM strikes WHERE network = $n AND address_key = $k", ("$n", network), ("$k", key)).Run();

    public int PruneHistory(int keepEvents, DateTimeOffset keepSince) =>
        Command("DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - $k AND at < $t",
            ("$k", keepEvents), ("$t", Timestamp(keepSince))).Run();

    public IReadOnlyList<GuardedFile> GuardedFiles()
    {
        var result = new List<GuardedFile>();
        var reader = Command("SELECT dir, network, address, container_id, ifname, boot_id, since_boot_ns, seen_at, strikes FROM guarded_files ORDER BY dir, network, address");
        while (reader.Step())
        {
            // A row this build did not write (a damaged or edited store) is skipped, not trusted.
            if (!Allocation.Ip.TryParse(reader.Text(2), out var address) || reader.IsNull(0) || reader.IsNull(1) || reader.IsNull(3)
                || reader.IsNull(4) || reader.IsNull(5) || !TryParseTimestamp(reader.TextOrNull(7), out var seenAt))
            {
                store.Skip($"guarded_files row {Describe(reader, 0, 1, 2)}: not a row berth wrote");
                continue;
            }
            result.Add(new GuardedFile(reader.Text(0), reader.Text(1), address, reader.Text(3), reader.Text(4), reader.Text(5),
                TimeSpan.FromTicks(reader.Int64(6) / 100), seenAt, (int)reader.Int64(8)));
        }
        return result;
    }

    public GuardedFile SeeGuardedFile(string dir, string network, IPAddress address, string containerId, string ifName)
    {
        var clock = store.Options.BootClock;
        var seen = new GuardedFile(dir, network, address, containerId, ifName, clock.BootId, clock.SinceBoot, store.Options.Time.GetUtcNow());
        Command("""
            INSERT INTO guarded_files (dir, network, address, container_id, ifname, boot_id, since_boot_ns, seen_at, strikes) VALUES ($d, $n, $a, $c, $i, $b, $t, $at, 0)
            ON CONFLICT (dir, network, address) DO UPDATE SET container_id = excluded.container_id, ifname = excluded.ifname,
                boot_id = excluded.boot_id, since_boot_ns = excluded.since_boot_ns, seen_at = excluded.seen_at, strikes = 0
            """, ("$d", seen.Dir), ("$n", seen.Network), ("$a", seen.Address.ToString()), ("$c", seen.ContainerId), ("$i", seen.IfName),
            ("$b", seen.BootId), ("$t", seen.SinceBoot.Ticks * 100), ("$at", Timestamp(seen.SeenAt))).Run();
        return seen;
    }

    public int StrikeGuardedFile(GuardedFile file) => (int)Single(Command(
        "UPDATE guarded_files SET strikes = strikes + 1 WHERE dir = $d AND network = $n AND address = $a RETURNING strikes",
        ("$d", file.Dir), ("$n", file.Network), ("$a", file.Address.ToString())));

    public void ClearGuardedFileStrikes(GuardedFile file) =>
        Command("UPDATE guarded_files SET strikes = 0 WHERE dir = $d AND network = $n AND address = $a",
            ("$d", file.Dir), ("$n", file.Network), ("$a", file.Address.ToString())).Run();

    public void ForgetGuardedFile(GuardedFile file) => ForgetGuardedFile(file.Dir, file.Network, file.Address);

    public void RecordGuardedRelease(string dir, Lease lease, Change change)
    {
        ForgetGuardedFile(dir, lease.Network, lease.Address);
        RecordHistory("release", lease, change, LeaseStores.HostLocal(dir));
    }

    private void ForgetGuardedFile(string dir, string network, IPAddress address) =>
        Command("DELETE FROM guarded_files WHERE dir = $d AND network = $n AND address = $a",
            ("$d", dir), ("$n", network), ("$a", address.ToString())).Run();

    public void RecordRanges(string network, string ranges) =>
        Command("INSERT INTO networks (name, ranges, updated_at) VALUES ($n, $r, $at) ON CONFLICT (name) DO UPDATE SET ranges = excluded.ranges, updated_at = excluded.updated_at WHERE ranges <> excluded.ranges",
            ("$n", network), ("$r", ranges), ("$at", Timestamp(store.Options.Time.GetUtcNow()))).Run();

    public IReadOnlyList<(string Network, string Ranges)> Networks()
    {
        var result = new List<(string, string)>();
        var reader = Command("SELECT name, ranges FROM networks ORDER BY name");
        while (reader.Step()) result.Add((reader.Text(0), reader.Text(1)));
        return result;
    }

    public long CountLeases(string network, IPAddress from, IPAddress to) =>
        Single(Command("SELECT count(*) FROM leases WHERE network = $n AND address_key BETWEEN $a AND $b",
            ("$n", network), ("$a", AddressKey.Of(from)), ("$b", AddressKey.Of(to))));

    public (long Current, long Previous) LeasesByBoot(string bootId)
    {
        var reader = Command("SELECT count(*) FILTER (WHERE boot_id = $b), count(*) FILTER (WHERE boot_id <> $b) FROM leases", ("$b", bootId));
        reader.Step();
        return (reader.Int64(0), reader.Int64(1));
    }

    public IReadOnlyList<HistoryEntry> History(HistoryFilter filter)
    {
        var result = new List<HistoryEntry>();
        var reader = Command("""
            SELECT id, at, boot_id, action, reason, actor, network, address, container_id, ifname, pod_namespace, pod_name, detail, store FROM history
            WHERE ($a IS NULL OR address = $a) AND ($n IS NULL OR network = $n) AND ($s IS NULL OR at >= $s)
            ORDER BY id DESC LIMIT $l
            """, ("$a", filter.Address), ("$n", filter.Network), ("$s", filter.Since is { } since ? Timestamp(since) : null), ("$l", filter.Limit));
        while (reader.Step())
        {
            if (!TryParseTimestamp(reader.TextOrNull(1), out var at))
            {
                store.Skip($"history row {reader.Int64(0)}: its time is not one berth wrote");
                continue;
            }
            result.Add(new HistoryEntry(reader.Int64(0), at, reader.Text(2),
                reader.Text(3), reader.Text(4), reader.Text(5), reader.Text(6), reader.Text(7), reader.Text(8),
                reader.Text(9), reader.TextOrNull(10), reader.TextOrNull(11), reader.TextOrNull(12), reader.TextOrNull(13) ?? LeaseStores.Berth));
        }
        result.Reverse();
        return result;
    }

    public IReadOnlyList<string> IntegrityCheck()
    {
        var result = new List<string>();
        var reader = Command("PRAGMA integrity_check");
        while (reader.Step()) result.Add(reader.Text(0));
        return result;
    }

    public IReadOnlyDictionary<string, long> ReleaseCounts(string? bootId = null)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        var reader = (bootId is null
            ? Command("SELECT reason, count(*) FROM history WHERE action = 'release' GROUP BY reason")
            : Command("SELECT reason, count(*) FROM history WHERE action = 'release' AND boot_id = $b GROUP BY reason", ("$b", bootId)));
        while (reader.Step()) result[reader.Text(0)] = reader.Int64(1);
        return result;
    }

    private void RecordHistory(string action, Lease lease, Change change, string? leaseStore = null)
    {
        var clock = store.Options.BootClock;
        Command("INSERT INTO history (at, boot_id, since_boot_ns, action, reason, actor, network, address, container_id, ifname, pod_namespace, pod_name, pod_uid, detail, store) VALUES ($at, $b, $t, $act, $why, $who, $n, $a, $c, $i, $pns, $pn, $pu, $d, $st)",
            ("$at", Timestamp(store.Options.Time.GetUtcNow())), ("$b", clock.BootId), ("$t", clock.SinceBoot.Ticks * 100),
            ("$act", action), ("$why", change.Reason), ("$who", change.Actor), ("$n", lease.Network), ("$a", lease.Address.ToString()),
            ("$c", lease.ContainerId), ("$i", lease.IfName), ("$pns", lease.PodNamespace), ("$pn", lease.PodName), ("$pu", lease.PodUid),
            ("$d", change.Detail), ("$st", leaseStore)).Run();
    }

    private (byte[] First, byte[] Last)? RunContaining(string network, byte[] key)
    {
        var reader = Command("SELECT first, last FROM runs WHERE network = $n AND first <= $k ORDER BY first DESC LIMIT 1", ("$n", network), ("$k", key));
        if (!reader.Step()) return null;
        var run = (reader.Blob(0), reader.Blob(1));
        return AddressKey.Compare(run.Item2, key) >= 0 ? run : null;
    }

    private void JoinRuns(string network, byte[] key)
    {
        var left = AddressKey.Previous(key) is { } previous ? RunContaining(network, previous) : null;
        var right = AddressKey.Next(key) is { } next ? RunContaining(network, next) : null;
        if (right is { } r) Command("DELETE FROM runs WHERE network = $n AND first = $f", ("$n", network), ("$f", r.First)).Run();
        var last = right?.Last ?? key;
        if (left is { } l) Command("UPDATE runs SET last = $l WHERE network = $n AND first = $f", ("$n", network), ("$f", l.First), ("$l", last)).Run();
        else Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", key), ("$l", last)).Run();
    }

    private void LeaveRuns(string network, byte[] key)
    {
        if (RunContaining(network, key) is not { } run) return;
        Command("DELETE FROM runs WHERE network = $n AND first = $f", ("$n", network), ("$f", run.First)).Run();
        if (AddressKey.Compare(run.First, key) < 0)
        {
            Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", run.First), ("$l", AddressKey.Previous(key))).Run();
        }
        if (AddressKey.Compare(key, run.Last) < 0)
        {
            Command("INSERT INTO runs (network, first, last) VALUES ($n, $f, $l)", ("$n", network), ("$f", AddressKey.Next(key)), ("$l", run.Last)).Run();
        }
    }

    private List<Lease> Query(string sql, params (string Name, object? Value)[] parameters)
    {
        var result = new List<Lease>();
        var reader = Command(sql, parameters);
        while (reader.Step())
        {
            if (ReadLease(reader) is { } lease) result.Add(lease);
            else store.Skip($"leases row {Describe(reader, 0, 1, 4)}: not a row berth wrote");
        }
        return result;
    }

    /// <summary>
    /// A lease row as berth wrote it, or null for one it did not (a damaged or hand-edited store, or a schema
    /// this build does not know): such a row is skipped with a warning, never trusted and never a crash. Its
    /// address stays taken all the same: the store's keys hold it.
    /// </summary>
    internal static Lease? ReadLease(SqliteStatement r)
    {
        foreach (var column in (ReadOnlySpan<int>)[0, 1, 3, 4, 5, 6, 11, 14])
        {
            if (r.IsNull(column)) return null;
        }
        if (!Allocation.Ip.TryParse(r.Text(1), out var address) || !TryParseTimestamp(r.TextOrNull(13), out var createdAt)) return null;
        var sinceBoot = r.Int64(12);
        if (sinceBoot < 0) return null;
        return ReadLease(r, address, createdAt, sinceBoot);
    }

    private static Lease ReadLease(SqliteStatement r, IPAddress address, DateTimeOffset createdAt, long sinceBootNs) => new(
        Network: r.Text(0),
        Address: address,
        RangeSet: (int)r.Int64(2),
        Subnet: r.Text(3),
        ContainerId: r.Text(4),
        IfName: r.Text(5),
        Netns: r.Text(6),
        NetnsInode: r.IsNull(7) ? null : (ulong)r.Int64(7),
        PodNamespace: r.TextOrNull(8),
        PodName: r.TextOrNull(9),
        PodUid: r.TextOrNull(10),
        BootId: r.Text(11),
        SinceBoot: TimeSpan.FromTicks(sinceBootNs / 100),
        CreatedAt: createdAt,
        Origin: r.Text(14));

    /// <summary>A row named for a warning: its key columns as the store holds them, clipped.</summary>
    private static string Describe(SqliteStatement r, params int[] columns) =>
        "(" + string.Join(", ", columns.Select(c => r.IsNull(c) ? "NULL" : Clip(r.Text(c) ?? ""))) + ")";

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";

    private const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    internal static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    /// <summary>
    /// Reads what <see cref="Timestamp"/> wrote with the exact parser (the general one costs each plugin process
    /// a tokenizer), and anything else a store may hold with the general one.
    /// </summary>
    internal static DateTimeOffset ParseTimestamp(string text) =>
        TryParseTimestamp(text, out var at) ? at : throw new FormatException($"not a timestamp: {Clip(text)}");

    /// <inheritdoc cref="ParseTimestamp"/>
    internal static bool TryParseTimestamp(string? text, out DateTimeOffset at) =>
        DateTimeOffset.TryParseExact(text, TimestampFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at)
        || DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at);

    /// <summary>The store's prepared statement for <paramref name="sql"/>, with these parameter values.</summary>
    private SqliteStatement Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var statement = store.Statement(sql);
        _used.Add(statement);
        return statement.With(parameters);
    }

    private static long Single(SqliteStatement statement) => statement.Step() ? statement.Int64(0) : 0;

    public void Dispose()
    {
        foreach (var statement in _used) statement.Reset();
    }
}
