# Shared by the node VM's test scripts (make node-test, torture/node/). Every line meant for the host goes to
# the serial console and starts with "T:", in the torture's protocol (torture/qemu_torture.py reads it).
DB=/var/lib/berth/berth.db
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
# Every lease and SQLite's integrity check, read without checkpointing the WAL (berth's own processes decide
# that), in the torture guest's format: T:LEASE PHASE container network address boot, T:INTEGRITY PHASE ok.
dump() { # PHASE
  [ -f $DB ] || { say "INTEGRITY $1 nostore"; return; }
  local out
  out=$(sqlite3 -separator ' ' $DB ".dbconfig no_ckpt_on_close on" \
    "SELECT 'T:LEASE $1', container_id, network, address, boot_id FROM leases;" \
    "SELECT 'T:INTEGRITY $1 ' || group_concat(integrity_check, ' ') FROM pragma_integrity_check;" 2>&1)
  echo "$out" | grep '^T:' >/dev/console
  echo "$out" | grep -q "^T:INTEGRITY" || say "INTEGRITY $1 error: $(echo "$out" | grep -v '^T:' | tr '\n' ' ')"
}
# One query's rows, space-separated, read without checkpointing the WAL (sqlite3 echoes the setting: dropped).
query() { # SQL
  sqlite3 -separator ' ' $DB ".dbconfig no_ckpt_on_close on" "$1" | grep -v '^ *no_ckpt_on_close '
}
# The leases as sorted "container network address" lines, for before/after comparisons inside one boot.
leases_now() { query "SELECT container_id, network, address FROM leases ORDER BY network, address;"; }
