#!/bin/bash
# berth-node-test.service (Type=simple, so that it never holds up multi-user.target): what a kubelet and an
# operator would see on this boot, then pod churn until the host cuts the power.
#   1. the lost pods' sandboxes stopped and removed, as a kubelet does; the same pods created again (FIRST);
#   2. the per-boot checks: each ready pod's address is its lease, no address held twice, berth-agent.service
#      active (READY) with watchdog pings and no EACCES/EPERM in its journal, `berth-agent check` healthy,
#      metrics on 127.0.0.1:9617;
#   3. with berth.node.package=1: the package's life (upgrade with pods running, dpkg -r, install again);
#   4. STORM-START, then pods stopped and created again at random, and reconcile passes, until the cut.
# Pods are named pod-1..pod-N (berth.node.pods, default 2): the same names every boot, as a kubelet keeps them.
. /usr/local/lib/berth-node/lib.sh
PODS=$(param pods 2)
SHARE=/usr/local/share/berth-node
STATE=/run/berth-node   # tmpfs: which sandbox each pod has in this boot
mkdir -p $STATE

wait_for() { # SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds (nothing tells us otherwise)
  local until=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $until ] && return 1
    sleep 0.2
  done
}

run_pod() { # NAME: RunPodSandbox; ACK ADD only once the runtime answered with an address
  local out id ip
  say "TRY ADD $1"
  if out=$($CRI run "$1" 2>&1); then
    read -r id ip <<<"$out"
    if [ -n "$ip" ]; then
      echo "$id" >"$STATE/$1"
      say "ACK ADD $id $ip"
      return 0
    fi
    say "ERR ADD $1 no address: $out"
  else
    say "ERR ADD $1 $(echo "$out" | tr '\n' ' ')"
  fi
  return 1
}

stop_pod() { # NAME: StopPodSandbox + RemovePodSandbox (the runtime's two DELs)
  local id out
  id=$(cat "$STATE/$1" 2>/dev/null) || return 0
  say "TRY DEL $id"
  if out=$($CRI stop "$id" 2>&1); then
    rm -f "$STATE/$1"
    say "ACK DEL $id"
  else
    say "ERR DEL $id $(echo "$out" | tr '\n' ' ')"
    return 1
  fi
}

check_pods_leased() { # WHEN: every ready pod's address is a lease of its sandbox; no address held twice; the same
  # for host-local's network (the pod's eth1): each ready pod holds exactly one file there, and no file is held
  # by anything but a ready pod (its files of the earlier boot are gone, and stopped pods took theirs).
  local ready leases hl bad="" id name ip dup n
  ready=$($CRI ready 2>&1) || { check "pods-leased-$1" FAIL "berth-node-cri ready: $ready"; return; }
  leases=$(leases_now) hl=$(hostlocal_now)
  while read -r id name ip; do
    [ -n "$id" ] || continue
    grep -q "^$id [^ ]* $ip\$" <<<"$leases" || bad="$bad $name=$ip"
    n=$(grep -c "^$id " <<<"$hl")
    [ "$n" = 1 ] || bad="$bad $name:host-local-files=$n"
  done <<<"$ready"
  n=$(awk 'NR == FNR { if ($1) ready[$1] = 1; next } $1 && !($1 in ready) { print $2 "/" $3 "=" $1 }' <(echo "$ready") <(echo "$hl") | tr '\n' ' ')
  [ -z "$n" ] || bad="$bad host-local files of no ready pod: $n"
  if [ -z "$bad" ]; then
    check "pods-leased-$1" ok "$(grep -c . <<<"$ready") ready pods, each with its berth lease and one host-local file"
  else
    check "pods-leased-$1" FAIL "$bad"
  fi
  dup=$( { awk '{ print $2, $3 }' <<<"$leases"; awk '{ print $2, $3 }' <<<"$hl"; } | sort | uniq -d | tr '\n' ' ')
  if [ -z "$dup" ]; then check "no-double-$1" ok; else check "no-double-$1" FAIL "held twice: $dup"; fi
}

check_pod_agent() { # WHEN: the agent's pod (berth.node.pod=1): its container runs, its log has no permission error
  local state log
  state=$($CRI container "$(cat /run/berth-node/agent-container 2>/dev/null)" 2>&1)
  if [ "${state%% *}" = CONTAINER_RUNNING ]; then check "agent-pod-running-$1" ok; else check "agent-pod-running-$1" FAIL "$state"; fi
  log=$(grep -Ei 'EACCES|EPERM|permission denied|operation not permitted|access denied|could not all be read' "$(cat /run/berth-node/agent-log 2>/dev/null)" 2>/dev/null | head -3 | tr '\n' ' ')
  if [ -z "$log" ]; then check "agent-pod-log-$1" ok; else check "agent-pod-log-$1" FAIL "$log"; fi
}

check_agent() { # WHEN
  if [ "$POD" = 1 ]; then check_pod_agent "$1"; return; fi
  local journal ActiveState SubState StatusText WatchdogTimestampMonotonic ActiveEnterTimestampMonotonic
  agent_show() { # one systemctl call for every property the checks read
    local key value
    while IFS='=' read -r key value; do
      [ -n "$key" ] && printf -v "$key" '%s' "$value"
    done < <(systemctl show -p ActiveState,SubState,StatusText,WatchdogTimestampMonotonic,ActiveEnterTimestampMonotonic berth-agent.service)
  }
  agent_show
  # Type=notify: the unit is active only once the agent sent READY=1.
  if [ "$ActiveState/$SubState" = active/running ]; then check "agent-ready-$1" ok; else check "agent-ready-$1" FAIL "berth-agent.service is $ActiveState/$SubState: $StatusText"; fi
  # WATCHDOG=1 moves the unit's watchdog timestamp past the moment it became active.
  watchdog_seen() { agent_show; [ "${WatchdogTimestampMonotonic:-0}" -gt "${ActiveEnterTimestampMonotonic:-0}" ]; }
  if wait_for 30 "a watchdog ping" watchdog_seen; then
    check "agent-watchdog-$1" ok
  else
    check "agent-watchdog-$1" FAIL "no WATCHDOG=1 since it became active ($WatchdogTimestampMonotonic <= $ActiveEnterTimestampMonotonic)"
  fi
  journal=$(journalctl -b -q -o cat -u berth-agent.service | grep -Ei 'EACCES|EPERM|permission denied|operation not permitted|access denied' | head -3 | tr '\n' ' ')
  if [ -z "$journal" ]; then check "agent-journal-$1" ok; else check "agent-journal-$1" FAIL "$journal"; fi
}

check_health() { # WHEN
  local out
  if out=$(berth-agent check --store $DB 2>&1); then check "agent-check-$1" ok; else check "agent-check-$1" FAIL "$(echo "$out" | tr '\n' ' ' | cut -c1-300)"; fi
  # No curl in the image: bash's /dev/tcp.
  if out=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9617 && printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' 2>&1) \
    && grep -q '^berth_' <<<"$out"; then
    check "metrics-$1" ok "$(grep -c '^berth_' <<<"$out") berth_ samples"
  else
    check "metrics-$1" FAIL "$(echo "$out" | head -3 | tr '\n' ' ')"
  fi
}

package_life() {
  local v1 v2 before after cfg out
  v1=$(dpkg-query -W -f '${Version}' berth)
  before=$(leases_now) cfg=$(md5sum </etc/berth/agent.json)
  say "PACKAGE upgrade from $v1"
  if out=$(dpkg -i $SHARE/berth-next.deb 2>&1); then :; else check package-upgrade FAIL "dpkg -i: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
  v2=$(dpkg-query -W -f '${Version}' berth)
  after=$(leases_now)
  if [ "$v2" != "$v1" ] && [ "$before" = "$after" ] && [ "$(md5sum </etc/berth/agent.json)" = "$cfg" ] && systemctl is-active -q berth-agent.service; then
    check package-upgrade ok "$v1 -> $v2 with $(grep -c . <<<"$after") leases kept, config kept, agent active"
  else
    check package-upgrade FAIL "version $v1 -> $v2; leases kept: $([ "$before" = "$after" ] && echo yes || echo no); config kept: $([ "$(md5sum </etc/berth/agent.json)" = "$cfg" ] && echo yes || echo no); agent $(systemctl is-active berth-agent.service)"
  fi
  if out=$(dpkg -r berth 2>&1); then :; else check package-remove FAIL "dpkg -r: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
  after=$(leases_now)
  if [ -f $DB ] && [ "$before" = "$after" ] && [ -f /etc/berth/agent.json ] && ! [ -e /usr/bin/berth-agent ]; then
    check package-remove ok "store and config kept after dpkg -r"
  else
    check package-remove FAIL "after dpkg -r: store $([ -f $DB ] && echo present || echo gone), leases kept: $([ "$before" = "$after" ] && echo yes || echo no)"
  fi
  if out=$(dpkg -i $SHARE/berth-next.deb 2>&1) && systemctl is-active -q berth-agent.service && systemctl is-enabled -q berth-recover.service \
    && [ "$(leases_now)" = "$before" ]; then
    check package-reinstall ok "installed again: units enabled, agent active, leases kept"
  else
    check package-reinstall FAIL "$(echo "$out" | tail -3 | tr '\n' ' ') agent $(systemctl is-active berth-agent.service) recover $(systemctl is-enabled berth-recover.service)"
  fi
  say PACKAGE-END
}

if ! wait_for 120 "containerd's CRI" $CRI wait 5; then say "HALT the runtime's CRI never answered"; exit 1; fi
# The pause image, imported once: the marker is written (and synced) only after the import was, so a cut in
# between imports it again at the next boot.
if ! [ -e /var/lib/berth-node/pause-imported ]; then
  if ctr -n k8s.io images import $SHARE/pause-image.tar >/dev/null && sync; then
    mkdir -p /var/lib/berth-node && touch /var/lib/berth-node/pause-imported && sync
  else
    say "ERR cannot import the pause image"
  fi
fi
say "GONE $($CRI gone 2>&1 | tr '\n' ' ')"
first=ok
for i in $(seq 1 "$PODS"); do run_pod "pod-$i" || first=fail; done
say "FIRST $first uptime=$(cut -d' ' -f1 /proc/uptime)"
check_pods_leased first
check_agent boot
check_health boot
# Once: the kernel command line stays the same after the operator's script resets the node (sysrq b).
if [ "$(param package 0)" = 1 ] && [ "$POD" != 1 ] && ! [ -e /var/lib/berth-node/package-life.done ]; then
  package_life && check_pods_leased package
  mkdir -p /var/lib/berth-node && touch /var/lib/berth-node/package-life.done && sync
fi
# berth.node.script=1: the operator's scripts/power-cut-node.sh, as on a physical node: leases through berth,
# its check armed as a unit, then sysrq b. Once: after the reset its unit leaves its report, and the churn runs.
# Its store is its own, as on a physical node (the host's checks read it too, lib.sh's dump): with the node's
# store it would do the node's recovery itself, with its own config (the guardian off), and berth-recover.service
# would find this boot recovered already and leave host-local's files (docs/reliability.md, "A whole node").
if [ "$(param script 0)" = 1 ] && [ "$POD" != 1 ] && ! [ -e /var/lib/berth-power-cut/report.txt ]; then
  say NODE-SCRIPT-START
  # Six leases (the script's default is 16): the same steps, in the time of one power-cut cycle here.
  POWER_CUT_LEASES=6 /usr/local/lib/berth-node/power-cut-node.sh cut --yes >/dev/console 2>&1
  say "HALT power-cut-node.sh cut returned without resetting the node"
  exit 1
fi
say "STORM-START uptime=$(cut -d' ' -f1 /proc/uptime)"
# Where the boot's time went, for the serial log (not for the host's checks), while the churn runs.
{ systemd-analyze time; systemd-analyze blame | head -n 6; } 2>&1 | sed 's/^/T:TIME /' >/dev/console &
# A reconcile first (the host may cut right inside it), then every other step; the agent's own passes run
# every 2 s meanwhile.
n=0
while :; do
  if ((n % 2 == 0)); then
    say RECONCILE-START
    out=$(berth-agent reconcile --store $DB 2>&1); rc=$?
    say "RECONCILE-END rc=$rc"
    ((rc == 0)) || say "ERR reconcile: $(echo "$out" | tail -2 | tr '\n' ' ')"
  fi
  n=$((n + 1))
  pod=pod-$((RANDOM % PODS + 1))
  stop_pod "$pod" && run_pod "$pod"
done
