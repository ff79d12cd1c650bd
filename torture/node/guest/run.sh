#!/bin/bash
# berth-node-test.service (Type=simple, so that it never holds up multi-user.target): what a kubelet and an
# operator would see on this boot, then pod churn until the host cuts the power.
#   1. the lost pods' sandboxes stopped and removed, as a kubelet does; the same pods created again (FIRST);
#   2. the per-boot checks: each ready pod's address is its lease, no address held twice, berth-agent.service
#      active (READY) with watchdog pings and no EACCES/EPERM in its journal, `berth-agent check` healthy,
#      metrics on 127.0.0.1:9617;
#   3. with berth.node.package=1: the package's life (upgrade with pods running, dpkg -r, install again);
#   4. STORM-START, then pods stopped and created again at random, and reconcile passes, until the cut.
# Pods are named pod-1..pod-N (berth.node.pods, default 3): the same names every boot, as a kubelet keeps them.
. /usr/local/lib/berth-node/lib.sh
PODS=$(param pods 3)
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

check_pods_leased() { # WHEN: every ready pod's address is a lease of its sandbox; no address held twice
  local ready leases bad="" id name ip dup
  ready=$($CRI ready 2>&1) || { check "pods-leased-$1" FAIL "berth-node-cri ready: $ready"; return; }
  leases=$(leases_now)
  while read -r id name ip; do
    [ -n "$id" ] || continue
    grep -q "^$id [^ ]* $ip\$" <<<"$leases" || bad="$bad $name=$ip"
  done <<<"$ready"
  if [ -z "$bad" ]; then check "pods-leased-$1" ok "$(grep -c . <<<"$ready") ready pods"; else check "pods-leased-$1" FAIL "not leased to their sandbox:$bad"; fi
  dup=$(awk '{ print $2, $3 }' <<<"$leases" | sort | uniq -d | tr '\n' ' ')
  if [ -z "$dup" ]; then check "no-double-$1" ok; else check "no-double-$1" FAIL "held twice: $dup"; fi
}

agent_prop() { systemctl show -P "$1" berth-agent.service; }

check_agent() { # WHEN
  local state sub journal
  state=$(agent_prop ActiveState) sub=$(agent_prop SubState)
  # Type=notify: the unit is active only once the agent sent READY=1.
  if [ "$state/$sub" = active/running ]; then check "agent-ready-$1" ok; else check "agent-ready-$1" FAIL "berth-agent.service is $state/$sub: $(agent_prop StatusText)"; fi
  # WATCHDOG=1 moves the unit's watchdog timestamp past the moment it became active.
  if wait_for 30 "a watchdog ping" test "$(agent_prop WatchdogTimestampMonotonic)" -gt "$(agent_prop ActiveEnterTimestampMonotonic)"; then
    check "agent-watchdog-$1" ok
  else
    check "agent-watchdog-$1" FAIL "no WATCHDOG=1 since it became active ($(agent_prop WatchdogTimestampMonotonic) <= $(agent_prop ActiveEnterTimestampMonotonic))"
  fi
  journal=$(journalctl -b -q -o cat -u berth-agent.service | grep -Ei 'EACCES|EPERM|permission denied|operation not permitted|access denied' | head -3 | tr '\n' ' ')
  if [ -z "$journal" ]; then check "agent-journal-$1" ok; else check "agent-journal-$1" FAIL "$journal"; fi
}

check_health() { # WHEN
  local out
  if out=$(berth-agent check 2>&1); then check "agent-check-$1" ok; else check "agent-check-$1" FAIL "$(echo "$out" | tr '\n' ' ' | cut -c1-300)"; fi
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
if ! ctr -n k8s.io images ls -q | grep -q berth-e2e-pause; then
  ctr -n k8s.io images import $SHARE/pause-image.tar >/dev/null || say "ERR cannot import the pause image"
fi
say "GONE $($CRI gone 2>&1 | tr '\n' ' ')"
first=ok
for i in $(seq 1 "$PODS"); do run_pod "pod-$i" || first=fail; done
say "FIRST $first uptime=$(cut -d' ' -f1 /proc/uptime)"
check_pods_leased first
check_agent boot
check_health boot
[ "$(param package 0)" = 1 ] && package_life && check_pods_leased package
# berth.node.script=1: the operator's scripts/power-cut-node.sh, as on a physical node: leases through berth,
# its check armed as a unit, then sysrq b. Once: after the reset its unit leaves its report, and the churn runs.
# Its network goes into the node's store, so that the host's checks and berth-recover.service see its leases.
if [ "$(param script 0)" = 1 ] && ! [ -e /var/lib/berth-power-cut/report.txt ]; then
  say NODE-SCRIPT-START
  POWER_CUT_DATA_DIR=/var/lib/berth /usr/local/lib/berth-node/power-cut-node.sh cut --yes >/dev/console 2>&1
  say "HALT power-cut-node.sh cut returned without resetting the node"
  exit 1
fi
# Where the boot's time went, for the serial log (not for the host's checks).
{ systemd-analyze time; systemd-analyze blame | head -n 8; } >/dev/console 2>&1
say "STORM-START uptime=$(cut -d' ' -f1 /proc/uptime)"
n=0
while :; do
  n=$((n + 1))
  pod=pod-$((RANDOM % PODS + 1))
  stop_pod "$pod" && run_pod "$pod"
  if ((n % 3 == 0)); then
    say RECONCILE-START
    out=$(berth-agent reconcile 2>&1); rc=$?
    say "RECONCILE-END rc=$rc"
    ((rc == 0)) || say "ERR reconcile: $(echo "$out" | tail -2 | tr '\n' ' ')"
  fi
done
