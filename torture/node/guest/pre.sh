#!/bin/bash
# berth-node-pre.service, before berth-recover.service: the boot ID and the store exactly as the cut left it.
. /usr/local/lib/berth-node/lib.sh
say "BOOT $(cat /proc/sys/kernel/random/boot_id) mode=node uptime=$(cut -d' ' -f1 /proc/uptime)"
dump pre
say PRE-END
say RECOVER-START
