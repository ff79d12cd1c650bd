# Shared by the node VM's test scripts (make node-test, torture/node/). Every line meant for the host goes to
# the serial console and starts with "T:", in the torture's protocol (torture/qemu_torture.py reads it).
CRI=/usr/local/bin/berth-node-cri
say() { echo "T:$*" >/dev/console; }
check() { # NAME ok|FAIL [DETAIL...]: one per-boot check, reported to the host
  say "CHECK $*"
}
# The kernel command line's berth.node.KEY=VALUE, or DEFAULT.
param() { # KEY DEFAULT
  local arg
  for arg in $(cat /proc/cmdline); do
    case $arg in berth.node.$1=*) echo "${arg#*=}"; return ;; esac
  done
  echo "$2"
}
# berth.node.pod=1: berth-agent runs as deploy/kubernetes's DaemonSet pod (its units masked), its store where the
# add-on keeps it, which berth's network names as its dataDir (pre.sh). berth.node.nopod=1 too: no agent at all.
POD=$(param pod 0)
NOPOD=$(param nopod 0)
POD_DIR=/usr/local/share/berth-node/pod
if [ "$POD" = 1 ]; then DB=/var/lib/cni/berth/berth.db; else DB=/var/lib/berth/berth.db; fi
# The stores the host checks: the node's, and that of scripts/power-cut-node.sh (its own, as on a physical node:
# its recover, with the guardian off, must not stand in for the node's berth-recover.service).
SCRIPT_DB=/var/lib/berth-power-cut/store/berth.db
# Every lease and SQLite's integrity check of each store, read without checkpointing the WAL (berth's own
# processes decide that), in the torture guest's format: T:LEASE PHASE container network address boot,
# T:INTEGRITY PHASE ok (nostore when the node's store does not exist yet).
dump() { # PHASE
  [ -f $DB ] || { say "INTEGRITY $1 nostore"; return; }
  local out db integrity=""
  for db in $DB $SCRIPT_DB; do
    [ -f $db ] || continue
    # A store whose first commit, its schema, a cut left out is sound and holds nothing (as torture/guest/init).
    out=$(sqlite3 $db ".dbconfig no_ckpt_on_close on" "SELECT 'T:EMPTY ' || count(*) FROM sqlite_master;" \
      "SELECT 'T:INTEGRITY ' || group_concat(integrity_check, ' ') FROM pragma_integrity_check;" 2>&1)
    if echo "$out" | grep -qx "T:EMPTY 0" && echo "$out" | grep -qx "T:INTEGRITY ok"; then continue; fi
    out=$(sqlite3 -separator ' ' $db ".dbconfig no_ckpt_on_close on" \
      "SELECT 'T:LEASE $1', container_id, network, address, boot_id FROM leases;" \
      "SELECT 'T:INTEGRITY ' || group_concat(integrity_check, ' ') FROM pragma_integrity_check;" 2>&1)
    echo "$out" | grep '^T:LEASE' >/dev/console
    if echo "$out" | grep -qx "T:INTEGRITY ok"; then :; else
      integrity="$integrity $db: $(echo "$out" | grep -v '^T:LEASE' | grep -v '^ *no_ckpt_on_close ' | tr '\n' ' ')"
    fi
  done
  say "INTEGRITY $1 ${integrity:-ok}"
}
# One query's rows, space-separated, read without checkpointing the WAL (sqlite3 echoes the setting: dropped).
query() { # SQL
  sqlite3 -separator ' ' $DB ".dbconfig no_ckpt_on_close on" "$1" | grep -v '^ *no_ckpt_on_close '
}
# The leases as sorted "container network address" lines, for before/after comparisons inside one boot.
leases_now() { query "SELECT container_id, network, address FROM leases ORDER BY network, address;"; }
# host-local's leases (guarded by berth-agent: hostLocal.dirs, /var/lib/cni/networks) as sorted
# "container network address" lines: one file per address, named by it, holding "containerID\r\nifname".
HOSTLOCAL=/var/lib/cni/networks
hostlocal_now() {
  local f net addr id
  for f in $HOSTLOCAL/*/*; do
    [ -f "$f" ] || continue
    addr=${f##*/} net=${f%/*} net=${net##*/}
    case $addr in lock|last_reserved_ip*) continue ;; esac
    IFS=$'\r' read -r id <"$f" || [ -n "$id" ] || id=?
    echo "$id $net $addr"
  done | sort -k2,2 -k3,3
}
