#!/usr/bin/env bash
# First figure for the plugin: wall time of one ADD plus one DEL, whole processes as a runtime calls them,
# berth and Debian's host-local alternating (A B A B…) in one run so the machine's drift cancels.
# Usage: scripts/add-del-median.sh [runs]   (make bench does this thoroughly)
set -euo pipefail
runs=${1:-200}
berth=${BERTH:-artifacts/bin/berth}
host_local=/usr/lib/cni/host-local
work=$(mktemp -d)
ns=berth-median-$$
trap 'ip netns delete $ns 2>/dev/null || true; rm -rf "$work"' EXIT
ip netns add $ns

conf() { # type, dataDir
  printf '{"cniVersion":"1.0.0","name":"median","type":"bridge","ipam":{"type":"%s","dataDir":"%s","ranges":[[{"subnet":"10.77.0.0/16"}]]}}' "$1" "$2"
}
conf berth "$work/berth" > "$work/berth.json"
conf host-local "$work/host-local" > "$work/host-local.json"

once() { # plugin, config, id -> prints nanoseconds for ADD+DEL
  local start end
  start=$(date +%s%N)
  CNI_COMMAND=ADD CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" < "$2" > /dev/null
  CNI_COMMAND=DEL CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" < "$2" > /dev/null
  end=$(date +%s%N)
  echo $(( end - start ))
}

for i in $(seq 1 "$runs"); do
  once "$berth" "$work/berth.json" "c$i" >> "$work/berth.ns"
  once "$host_local" "$work/host-local.json" "c$i" >> "$work/host-local.ns"
done

stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "median %.2f ms  p90 %.2f ms  (n=%d)", v[int(NR*0.5)+1]/1e6, v[int(NR*0.9)+1]/1e6, NR }'; }
echo "ADD+DEL, /16, empty range, $runs runs each, alternating:"
echo "  berth      $(stats "$work/berth.ns")   fsync-durable"
echo "  host-local $(stats "$work/host-local.ns")   no fsync"
