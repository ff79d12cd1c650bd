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
say "POST-END uptime=$(cut -d' ' -f1 /proc/uptime)"
