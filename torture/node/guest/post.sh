#!/bin/bash
# berth-node-post.service: after containerd.service started, before berth-agent.service (whose own recovery
# would otherwise hide a missing berth-recover.service): what the runtime's first pods will find.
. /usr/local/lib/berth-node/lib.sh
show() { systemctl show -P "$2" "$1"; }
recover_exit=$(show berth-recover.service ExecMainExitTimestampMonotonic)
recover_result=$(show berth-recover.service Result)
recover_status=$(show berth-recover.service ExecMainStatus)
containerd_start=$(show containerd.service ExecMainStartTimestampMonotonic)
say "RECOVER rc=$recover_status"
dump post
if [ "${recover_exit:-0}" -gt 0 ] && [ "$recover_result" = success ] && [ "$recover_exit" -le "${containerd_start:-0}" ]; then
  check recover-before-containerd ok "recover exited at ${recover_exit} us, containerd started at ${containerd_start} us"
else
  check recover-before-containerd FAIL "berth-recover.service result=$recover_result exited at ${recover_exit:-0} us; containerd started at ${containerd_start:-0} us"
fi
# Every lease of an earlier boot that the store held at boot is released in this boot with a history event,
# and nothing else was released (no lease of this boot: its pods have not started yet; the one exception is
# the first ADD and DEL that scripts/power-cut-node.sh makes after its reset, container pc-first-*).
if [ -f $DB ]; then
  released=$(query "SELECT container_id, address FROM history WHERE action = 'release' AND boot_id = '$(cat /proc/sys/kernel/random/boot_id)' AND container_id NOT LIKE 'pc-first-%' ORDER BY 1, 2;")
  earlier=$(cat /run/berth-node/earlier-boot.leases 2>/dev/null)
  missing=$(comm -23 <(echo "$earlier" | grep .) <(echo "$released" | grep .) | tr '\n' ' ')
  extra=$(comm -13 <(echo "$earlier" | grep .) <(echo "$released" | grep .) | tr '\n' ' ')
  if [ -z "$missing" ] && [ -z "$extra" ]; then
    check recovery-history ok "$(echo "$released" | grep -c .) earlier-boot leases released with history"
  else
    check recovery-history FAIL "no release event for: ${missing:-none}; released but not of an earlier boot: ${extra:-none}"
  fi
fi
say "POST-END uptime=$(cut -d' ' -f1 /proc/uptime)"
