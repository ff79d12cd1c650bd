#!/bin/bash
# berth-node-post.service: after containerd.service started, before berth-agent.service (whose own recovery
# would otherwise hide a missing berth-recover.service): what the runtime's first pods will find.
. /usr/local/lib/berth-node/lib.sh
boot=$(cat /proc/sys/kernel/random/boot_id)
# One systemctl call for both units (each call costs a fraction of a second under emulation): its answer is one
# block of KEY=VALUE lines per unit, in the order asked, separated by an empty line.
unit=recover
while IFS='=' read -r key value; do
  if [ -z "$key" ]; then unit=containerd; continue; fi
  printf -v "${unit}_$key" '%s' "$value"
done < <(systemctl show -p ExecMainExitTimestampMonotonic,Result,ExecMainStatus,ExecMainStartTimestampMonotonic \
  berth-recover.service containerd.service)
recover_exit=${recover_ExecMainExitTimestampMonotonic:-0}
containerd_start=${containerd_ExecMainStartTimestampMonotonic:-0}
say "RECOVER rc=${recover_ExecMainStatus:-?}"
dump post
# host-local's files once the runtime runs: none of an earlier boot may be left (no pod of this boot has started:
# every file here is a leak). As T:LEASE post lines of no boot, so that the host's checks count them.
# A file the cut left empty (host-local never syncs: ext4 can keep its new file without the data) names no owner,
# "?" here; the guardian deletes it too, with the proof that no runtime has run in this boot.
hl_post=$(hostlocal_now)
while read -r id net addr; do
  [ -n "$id" ] && say "LEASE post $id $net $addr host-local-file-of-an-earlier-boot"
done <<<"$hl_post"
say "HOSTLOCAL post $(grep -c . <<<"$hl_post") files"
if [ "$recover_exit" -gt 0 ] && [ "$recover_Result" = success ] && [ "$recover_exit" -le "$containerd_start" ]; then
  check recover-before-containerd ok "recover exited at ${recover_exit} us, containerd started at ${containerd_start} us"
else
  check recover-before-containerd FAIL "berth-recover.service result=${recover_Result:-?} exited at ${recover_exit} us; containerd started at ${containerd_start} us"
fi
# Every lease of an earlier boot that the store held at boot is released in this boot with a history event,
# and nothing else was released (no lease of this boot: its pods have not started yet; the one exception is
# the first ADD and DEL that scripts/power-cut-node.sh makes after its reset, container pc-first-*). The same
# for host-local's files: each one of the earlier boot deleted by the guardian with a history event
# (host-local-boot-recovery), none other.
compare() { # NAME EXPECTED ACTUAL WHAT
  local missing extra
  missing=$(LC_ALL=C comm -23 <(echo "$2" | grep . | LC_ALL=C sort) <(echo "$3" | grep . | LC_ALL=C sort) | tr '\n' ' ')
  extra=$(LC_ALL=C comm -13 <(echo "$2" | grep . | LC_ALL=C sort) <(echo "$3" | grep . | LC_ALL=C sort) | tr '\n' ' ')
  if [ -z "$missing" ] && [ -z "$extra" ]; then
    check "$1" ok "$(echo "$3" | grep -c .) earlier-boot $4 released with history"
  else
    check "$1" FAIL "no release event for: ${missing:-none}; released but not of an earlier boot: ${extra:-none}"
  fi
}
if [ -f $DB ]; then
  released=$(query "SELECT container_id, address FROM history WHERE action = 'release' AND boot_id = '$boot' AND store IS NULL AND container_id NOT LIKE 'pc-first-%' ORDER BY 1, 2;")
  compare recovery-history "$(cat /run/berth-node/earlier-boot.leases 2>/dev/null)" "$released" leases
  released=$(query "SELECT CASE container_id WHEN '' THEN '?' ELSE container_id END, network, address FROM history WHERE action = 'release' AND boot_id = '$boot' AND store IS NOT NULL AND reason = 'host-local-boot-recovery' ORDER BY 2, 3;")
  others=$(query "SELECT reason, network, address FROM history WHERE action = 'release' AND boot_id = '$boot' AND store IS NOT NULL AND reason != 'host-local-boot-recovery';")
  [ -z "$others" ] || check hostlocal-only-boot-recovery FAIL "host-local files released otherwise before any pod: $(echo "$others" | tr '\n' ' ')"
  compare hostlocal-recovery-history "$(cat /run/berth-node/earlier-boot.hostlocal 2>/dev/null)" "$released" host-local-files
fi
say "POST-END uptime=$(cut -d' ' -f1 /proc/uptime)"
