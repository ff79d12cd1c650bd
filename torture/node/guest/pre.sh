#!/bin/bash
# berth-node-pre.service, before berth-recover.service: the boot ID and the store exactly as the cut left it.
. /usr/local/lib/berth-node/lib.sh
say "BOOT $(cat /proc/sys/kernel/random/boot_id) mode=node uptime=$(cut -d' ' -f1 /proc/uptime)"
dump pre
# For berth-node-post.service: the leases recovery may release, and nothing else.
mkdir -p /run/berth-node
[ -f $DB ] && query "SELECT container_id, address FROM leases WHERE boot_id != '$(cat /proc/sys/kernel/random/boot_id)' ORDER BY 1, 2;" \
  >/run/berth-node/earlier-boot.leases
say PRE-END
say RECOVER-START
