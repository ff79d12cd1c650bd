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
if [ "$POD" = 1 ]; then
  # The agent as the DaemonSet's pod, started as a kubelet starts it: after the runtime (late). Its leaks are
  # counted once it has had its grace period (10 s) and a few passes: every earlier-boot lease and file gone.
  if [ "$NOPOD" = 1 ]; then
    say "RECOVER rc=0 (control: no agent, neither units nor pod)"
  else
    pod_started=$SECONDS
    until $CRI wait 5 >/dev/null 2>&1; do [ $((SECONDS - pod_started)) -ge 120 ] && break; done
    # The images, once each (run.sh imports the pause image too, for the churn's pods, with the same marker).
    if ! [ -e /var/lib/berth-node/pause-imported ]; then
      ctr -n k8s.io images import /usr/local/share/berth-node/pause-image.tar >/dev/null && sync \
        && mkdir -p /var/lib/berth-node && touch /var/lib/berth-node/pause-imported && sync
    fi
    if ! [ -e /var/lib/berth-node/berth-image-imported ]; then
      ctr -n k8s.io images import /usr/local/share/berth-node/berth-image.tar >/dev/null && sync \
        && mkdir -p /var/lib/berth-node && touch /var/lib/berth-node/berth-image-imported && sync
    fi
    # containerd keeps the earlier boots' sandboxes and containers: each boot's pod is the next attempt.
    attempt=$(( $(cat /var/lib/berth-node/pod-attempt 2>/dev/null || echo -1) + 1 ))
    mkdir -p /var/lib/berth-node && echo $attempt >/var/lib/berth-node/pod-attempt && sync
    if out=$($CRI pod $POD_DIR $attempt 2>&1); then
      echo "${out##* }" >/run/berth-node/agent-container
      echo "$POD_DIR/logs/agent/$attempt.log" >/run/berth-node/agent-log
      check pod-started ok "attempt $attempt: $out"
    else
      check pod-started FAIL "$(echo "$out" | tr '\n' ' ')"
    fi
    metrics() { timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9617 && printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' 2>/dev/null; }
    until metrics | grep -qx 'berth_recovery_done 1'; do
      if [ $((SECONDS - pod_started)) -ge 180 ]; then say "ERR the agent's pod did not finish its recovery in 180 s"; break; fi
      sleep 0.5
    done
    say "RECOVER rc=0 (the agent's pod, $((SECONDS - pod_started)) s after the runtime answered)"
    # No pod of this boot has started: every berth lease of an earlier boot and every host-local file is a leak
    # until the agent frees it.
    settled() { [ -z "$(hostlocal_now)" ] && [ -f $DB ] && [ "$(query "SELECT count(*) FROM leases WHERE boot_id != '$boot';")" = 0 ]; }
    until settled; do
      if [ $((SECONDS - pod_started)) -ge 240 ]; then break; fi
      sleep 0.5
    done
    say "POD-SETTLED $((SECONDS - pod_started)) s"
  fi
fi
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
if [ "$POD" = 1 ]; then
  : # no berth-recover.service: the pod's agent recovers late, after the runtime started
elif [ "$recover_exit" -gt 0 ] && [ "$recover_Result" = success ] && [ "$recover_exit" -le "$containerd_start" ]; then
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
  # The pod's agent runs late: a file it had not seen before the cut goes by reconcile, after the grace period.
  reasons="'host-local-boot-recovery'"; [ "$POD" = 1 ] && reasons="'host-local-boot-recovery', 'host-local-reconcile'"
  released=$(query "SELECT CASE container_id WHEN '' THEN '?' ELSE container_id END, network, address FROM history WHERE action = 'release' AND boot_id = '$boot' AND store IS NOT NULL AND reason IN ($reasons) ORDER BY 2, 3;")
  others=$(query "SELECT reason, network, address FROM history WHERE action = 'release' AND boot_id = '$boot' AND store IS NOT NULL AND reason NOT IN ($reasons);")
  [ -z "$others" ] || check hostlocal-only-boot-recovery FAIL "host-local files released otherwise before any pod: $(echo "$others" | tr '\n' ' ')"
  compare hostlocal-recovery-history "$(cat /run/berth-node/earlier-boot.hostlocal 2>/dev/null)" "$released" host-local-files
fi
say "POST-END uptime=$(cut -d' ' -f1 /proc/uptime)"
