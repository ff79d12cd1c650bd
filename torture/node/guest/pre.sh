#!/bin/bash
# berth-node-pre.service, before berth-recover.service: the boot ID and the stores (berth's and host-local's
# files) exactly as the cut left them.
. /usr/local/lib/berth-node/lib.sh
boot=$(cat /proc/sys/kernel/random/boot_id)
say "BOOT $boot mode=node uptime=$(cut -d' ' -f1 /proc/uptime)"
# The add-on's setup on a network that names berth: the plugin's store is the agent's (deploy/kubernetes/README.md).
if [ "$POD" = 1 ] && ! grep -q dataDir /etc/cni/net.d/10-berth.conflist; then
  sed -i 's|"ipam": {"type": "berth", |"ipam": {"type": "berth", "dataDir": "/var/lib/cni/berth", |' /etc/cni/net.d/10-berth.conflist
  sync
fi
dump pre
# For berth-node-post.service: the leases recovery may release, and nothing else. No runtime has run in this
# boot yet, so every host-local file is of an earlier boot.
mkdir -p /run/berth-node
[ -f $DB ] && query "SELECT container_id, address FROM leases WHERE boot_id != '$boot' ORDER BY 1, 2;" \
  >/run/berth-node/earlier-boot.leases
hostlocal_now >/run/berth-node/earlier-boot.hostlocal
say "HOSTLOCAL pre $(grep -c . /run/berth-node/earlier-boot.hostlocal) files"
say PRE-END
say RECOVER-START
