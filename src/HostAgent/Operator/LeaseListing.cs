using System.Globalization;
using System.Text.Json;
using Berth.HostAgent.Evidence;
using Berth.HostAgent.HostLocal;
using Berth.Shared.Evidence;
using Berth.Shared.Leases;

namespace Berth.HostAgent.Operator;

/// <summary>One row of `leases`: a lease of berth's store, or a host-local file (never seen by the agent: no boot, no age).</summary>
internal sealed record LeaseRow(Lease Lease, string Store, string Boot, TimeSpan? Age, (EvidenceKind Kind, string Detail) Evidence);

/// <summary>
/// `berth-agent leases`: every lease of berth's store and every file in the guarded host-local directories, with the
/// boot it is of (by <see cref="Liveness"/>; a file the agent has not seen is <c>unseen</c>), its age for people
/// (<see cref="LeaseAge"/>) and the evidence found now; and the entries skipped, with why.
/// </summary>
internal sealed record LeaseListing(IReadOnlyList<LeaseRow> Rows, IReadOnlyList<string> Warnings)
{
    public static LeaseListing Gather(SqliteLeaseStore store, IReadOnlyList<string> hostLocalDirs, string? network, EvidenceSnapshot evidence, IBootClock clock, TimeProvider time)
    {
        var liveness = new Liveness(clock);
        LeaseRow Row(Lease lease, string where) =>
            new(lease, where, liveness.IsEarlierBoot(lease.BootId) ? "previous" : "current", LeaseAge.Shown(lease, liveness, time), evidence.Judge(lease));
        var rows = store.Read(tx => tx.AllLeases()).Where(l => network is null || l.Network == network).Select(l => Row(l, LeaseStores.Berth)).ToList();
        var scan = HostLocalDirs.Scan(hostLocalDirs, network);
        var ledger = store.Read(GuardLedger.Read);
        foreach (var file in scan.Files)
        {
            if (ledger.Seen(file) is { } row)
            {
                rows.Add(Row(row.AsLease(), row.Store));
                continue;
            }
            var unseen = GuardLedger.NotSeen(file, clock);
            rows.Add(new LeaseRow(unseen, LeaseStores.HostLocal(file.Dir), "unseen", null, evidence.Judge(unseen)));
        }
        return new LeaseListing(rows, scan.Warnings);
    }

    /// <summary>The --json document.</summary>
    public void WriteJson(Stream output) => OperatorJson.Document(output, w =>
    {
        w.WriteStartArray("leases");
        foreach (var row in Rows) WriteRow(w, row);
        w.WriteEndArray();
        OperatorJson.Warnings(w, Warnings);
    });

    /// <summary>The table, for people.</summary>
    public string Table() => TextTable.Render(["ADDRESS", "NETWORK", "STORE", "OWNER", "AGE", "BOOT", "EVIDENCE"],
        Rows.Select(r => (IReadOnlyList<string>)[r.Lease.Address.ToString(), r.Lease.Network, LeaseStores.Kind(r.Store), r.Lease.Owner, r.Age is { } a ? LeaseAge.Format(a) : "-",
            r.Boot, r.Evidence.Kind.ToString().ToLowerInvariant()]));

    private static void WriteRow(Utf8JsonWriter w, LeaseRow row)
    {
        var lease = row.Lease;
        w.WriteStartObject();
        OperatorJson.LeaseFields(w, lease, row.Store);
        w.WriteString("boot", row.Boot);
        // A file not seen has no boot and no first-seen time.
        w.WriteString("bootId", row.Age is null || lease.BootId.Length == 0 ? null : lease.BootId);
        w.WriteString(row.Store == LeaseStores.Berth ? "createdAt" : "firstSeenAt", row.Age is null ? null : lease.CreatedAt.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
        if (row.Age is { } age) w.WriteNumber("ageSeconds", Math.Round(age.TotalSeconds));
        else w.WriteNull("ageSeconds");
        w.WriteString("netns", lease.Netns);
        w.WriteString("origin", lease.Origin);
        w.WriteString("evidence", row.Evidence.Kind.ToString().ToLowerInvariant());
        w.WriteString("evidenceDetail", row.Evidence.Detail);
        w.WriteEndObject();
    }
}
