#!/usr/bin/env bash
# Builds the node VM for make node-test under artifacts/node/, cached in two layers keyed by hashes of their inputs:
#   base-<hash>.tar   mmdebstrap's Debian 12 (systemd, containerd, runc, containernetworking-plugins, the kernel,
#                     sqlite3), from this machine's apt sources; rebuilt only when the package list or the sources change;
#   image-<hash>/     disk.img: that rootfs with the pause image, the guest CRI client (tests/Berth.NodeCri), the
#                     test's units and scripts (torture/node/guest/) and berth's .deb installed with dpkg -i, as ext4;
#                     vmlinux (the image's own kernel, uncompressed for a PVH boot) and initrd.cpio (torture/node/init.c
#                     and the modules for virtio-blk and ext4).
# Prints the image directory on its last line. Needs artifacts/packages (make packages) and artifacts/node/cri.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

OUT=artifacts/node
PACKAGES=systemd,systemd-sysv,containerd,runc,containernetworking-plugins,linux-image-amd64,sqlite3,iproute2,kmod,procps
SOURCES=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[[ -n $SOURCES ]] || SOURCES=/etc/apt/sources.list
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc16 mbcache jbd2 crc32c_generic ext4"
DISK_SIZE=2G
DEB=$(ls artifacts/packages/berth_*_amd64.deb 2>/dev/null | head -n1)
CRI_CLIENT=artifacts/node/cri/berth-node-cri
# The node add-on for NODE_TEST_POD=1: the image (make image) and the DaemonSet pod's CRI requests, which the e2e
# writes from deploy/kubernetes (tests/Berth.E2e --pod-spec).
BERTH_IMAGE=$(ls artifacts/image/berth-*.oci.tar 2>/dev/null | head -n1)
POD_SPEC=artifacts/node/pod
[[ -f $DEB ]] || { echo "node-image: no .deb in artifacts/packages (make packages)" >&2; exit 1; }
[[ -f $BERTH_IMAGE ]] || { echo "node-image: no image in artifacts/image (make image)" >&2; exit 1; }
[[ -f $POD_SPEC/sandbox.bin ]] || { echo "node-image: no $POD_SPEC (make node-test writes it with tests/Berth.E2e --pod-spec)" >&2; exit 1; }
[[ -x $CRI_CLIENT ]] || { echo "node-image: no $CRI_CLIENT (make node-test publishes tests/Berth.NodeCri)" >&2; exit 1; }
mkdir -p "$OUT"
hash() { sha256sum | cut -c1-16; }

TMP=$(mktemp -d /tmp/berth-hn-image.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# 1. The base rootfs. Apt's own settings of this machine that matter to reaching its mirror are passed on.
base_key=$( { echo "$PACKAGES"; cat "$SOURCES"; sed -n '/^# 1\./,/^# 2\./p' "${BASH_SOURCE[0]}"; } | hash)
BASE=$OUT/base-$base_key.tar
if [[ ! -f $BASE ]]; then
  echo "node-image: mmdebstrap of Debian 12 from $SOURCES (once; about a minute)"
  rm -f "$OUT"/base-*.tar
  # Twice at most: a package registry that fails one download should not fail the run.
  for attempt in 1 2; do
    # force-confold: the setup hook's update-initramfs.conf is a conffile of initramfs-tools, and dpkg would
    # otherwise stop to ask about it (and fail, with no terminal).
    if mmdebstrap --variant=minbase --mode=root --format=directory --quiet \
      --dpkgopt='force-confold' --dpkgopt='force-confdef' \
      --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
      --setup-hook='mkdir -p "$1/etc/initramfs-tools" && echo update_initramfs=no >"$1/etc/initramfs-tools/update-initramfs.conf"' \
      --include="$PACKAGES" bookworm "$TMP/base" "$SOURCES" >"$TMP/mmdebstrap.log" 2>&1; then
      break
    fi
    cat "$TMP/mmdebstrap.log" >&2
    rm -rf "$TMP/base"
    ((attempt < 2)) || { echo "node-image: mmdebstrap failed twice" >&2; exit 1; }
    echo "node-image: mmdebstrap failed; once more" >&2
  done
  tar --numeric-owner -C "$TMP/base" -cf "$BASE.tmp" .
  mv "$BASE.tmp" "$BASE"
  rm -rf "$TMP/base"
fi

# The sandbox image, the e2e's own (tests/Berth.E2e/PauseImage.cs), rebuilt when its sources change.
pause_key=$(cat tests/Berth.E2e/PauseImage.cs tests/Berth.E2e/pause.c | hash)
PAUSE=$OUT/pause-$pause_key.tar
if [[ ! -f $PAUSE ]]; then
  rm -f "$OUT"/pause-*.tar
  dotnet run --project tests/Berth.E2e -c Release -- --pause-image "$PAUSE.tmp" >/dev/null
  mv "$PAUSE.tmp" "$PAUSE"
fi

# 2. The image.
# The .deb by its contents (its control files: md5sums of every file, the maintainer scripts, the version), not
# its bytes: packaging again stamps new times into the same files.
dpkg-deb -e "$DEB" "$TMP/deb-control"
key=$( { echo "$base_key $DISK_SIZE $MODULES"; cat "$TMP"/deb-control/* "$CRI_CLIENT" "$PAUSE" "$BERTH_IMAGE" $(find "$POD_SPEC" -type f | sort) torture/node/init.c torture/node/guest/* scripts/power-cut-node.sh "${BASH_SOURCE[0]}"; } | hash)
IMAGE=$OUT/image-$key
if [[ -f $IMAGE/.done ]]; then echo "node-image: $IMAGE is up to date"; echo "$IMAGE"; exit 0; fi
echo "node-image: building $IMAGE"
find "$OUT" -maxdepth 1 -name 'image-*' -type d -exec rm -rf {} +
R=$TMP/root
mkdir -p "$R" "$IMAGE.tmp"
tar --numeric-owner -C "$R" -xpf "$BASE"
rm -rf "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/*   # the downloaded packages: a node's disk need not carry them

# What a node's operator sets up before installing berth: the CNI plugins where containerd looks for them, the
# runtime's config, berth's network. The network list is the one place that says which CNI networks pods join.
mkdir -p "$R/opt/cni/bin" "$R/etc/cni/net.d" "$R/etc/containerd"
for plugin in bridge loopback host-local; do ln -sf "/usr/lib/cni/$plugin" "$R/opt/cni/bin/$plugin"; done
# file|name|type|bridge|ipam|subnet. containerd's CRI attaches every pod to each of the first max_conf_num
# networks (go-cni: eth0, eth1, ...): berth's network is the pod's eth0 (its address in PodSandboxStatus), and a
# network on Debian's host-local IPAM, as RKE2's Canal keeps it, is its eth1, guarded by berth-agent (hostLocal.dirs:
# /var/lib/cni/networks by default). docs/reliability.md, "A whole node", says why this way.
NETWORKS=("10-berth|berth-node|bridge|berth0|berth|10.77.0.0/24" "20-hostlocal|hostlocal-node|bridge|hl0|host-local|10.78.0.0/24")
for net in "${NETWORKS[@]}"; do
  IFS='|' read -r file name type bridge ipam subnet <<<"$net"
  cat >"$R/etc/cni/net.d/$file.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "$name", "plugins": [{"type": "$type", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "ipam": {"type": "$ipam", "ranges": [[{"subnet": "$subnet"}]]}}]}
JSON
done
pause_name=$(tar -xOf "$PAUSE" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["io.containerd.image.name"])')
cat >"$R/etc/containerd/config.toml" <<TOML
version = 2
# Snapshotters this node has no filesystem for and tracing: probing them only slows containerd's start.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_name"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = ${#NETWORKS[@]}
TOML

# berth, as a node gets it: dpkg -i runs its maintainer scripts (enablement; no start: no systemd runs here).
cp "$DEB" "$R/tmp/berth.deb"
chroot "$R" dpkg -i /tmp/berth.deb >/dev/null
rm "$R/tmp/berth.deb"
# The operator's setting: a reconcile pass every 2 s (the default is 60), so that cuts land inside passes; the
# package's upgrade must keep it (a changed conffile).
echo '{"intervalSeconds": 2}' >"$R/etc/berth/agent.json"
# A newer build of the same package for the upgrade: the same files, the version bumped.
dpkg-deb -R "$DEB" "$TMP/next"
sed -i 's/^Version: \(.*\)$/Version: \1+node1/' "$TMP/next/DEBIAN/control"
mkdir -p "$R/usr/local/share/berth-node"
dpkg-deb --root-owner-group -b "$TMP/next" "$R/usr/local/share/berth-node/berth-next.deb" >/dev/null
cp "$PAUSE" "$R/usr/local/share/berth-node/pause-image.tar"
cp "$BERTH_IMAGE" "$R/usr/local/share/berth-node/berth-image.tar"
cp -r "$POD_SPEC" "$R/usr/local/share/berth-node/pod"
echo "$pause_name" >"$R/usr/local/share/berth-node/pause-image.name"

# The test's guest side.
install -m 0755 "$CRI_CLIENT" "$R/usr/local/bin/berth-node-cri"
install -d "$R/usr/local/lib/berth-node"
install -m 0644 torture/node/guest/lib.sh "$R/usr/local/lib/berth-node/"
install -m 0755 torture/node/guest/{pre,post,run}.sh scripts/power-cut-node.sh "$R/usr/local/lib/berth-node/"
install -m 0644 torture/node/guest/*.service "$R/etc/systemd/system/"
chroot "$R" systemctl enable --quiet berth-node-pre.service berth-node-post.service berth-node-test.service
# Quiet and quick under software emulation: no login prompts on the console the host reads, no timers that
# would run maintenance in the middle of a test, a volatile journal (the checks read this boot's only).
chroot "$R" systemctl mask --quiet getty@tty1.service serial-getty@ttyS0.service console-getty.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer \
  man-db.timer systemd-logind.service systemd-tmpfiles-clean.timer 2>/dev/null || true
# No udev: nothing on this node needs it (the initrd mounted the disk; the bridge, veth and netns that CNI makes
# need netlink and the kernel's module autoloading, not udev), and under emulation udev's coldplug took 10-20 s of
# every boot while dev-vda.device waited for it. Nor the mounts, first-boot and update units a test node never uses.
chroot "$R" systemctl mask --quiet systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
  dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
  sys-fs-fuse-connections.mount proc-sys-fs-binfmt_misc.automount systemd-binfmt.service systemd-pstore.service \
  systemd-firstboot.service systemd-journal-catalog-update.service systemd-update-done.service ldconfig.service \
  systemd-update-utmp.service systemd-update-utmp-runlevel.service 2>/dev/null || true
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$R/etc/systemd/journald.conf.d/berth-node.conf"
# The initrd mounted the root read-write; an fstab line for it would make local-fs.target (and with it
# berth-recover.service) wait for udev to announce /dev/vda, which takes a minute on a busy emulated machine.
echo "# / is /dev/vda, mounted by the initrd (torture/node/init.c)" >"$R/etc/fstab"
# Kernel modules systemd loads at every boot that this node never uses.
chroot "$R" systemctl mask --quiet modprobe@dm_mod.service modprobe@fuse.service modprobe@loop.service \
  modprobe@drm.service modprobe@efi_pstore.service 2>/dev/null || true
echo berth-node >"$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 berth-node\n' >"$R/etc/hosts"
# A machine ID of its own: an empty one costs a first-boot setup of about 10 s.
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$R/etc/machine-id"; echo >>"$R/etc/machine-id"

# The kernel the image carries, uncompressed (no decompression under emulation), and the initrd.
kver=$(ls "$R/lib/modules")
# mmdebstrap leaves the module index unbuilt; without it the kernel cannot load bridge or veth on demand.
chroot "$R" depmod -a "$kver"
python3 torture/guest/extract-vmlinux.py "$R/boot/vmlinuz-$kver" "$IMAGE.tmp/vmlinux"
I=$TMP/initrd
mkdir -p "$I/modules"
gcc -static -Os -Wall -Wextra -Werror -o "$I/init" torture/node/init.c
for m in $MODULES; do
  f=$(find "$R/lib/modules/$kver" -name "$m.ko" | head -n1)
  [[ -n $f ]] || { echo "node-image: module $m not in the image's kernel $kver" >&2; exit 1; }
  cp "$f" "$I/modules/"
  echo "$m.ko" >>"$I/modules/order"
done
(cd "$I" && find . | cpio -o -H newc --quiet) >"$IMAGE.tmp/initrd.cpio"

mke2fs -q -t ext4 -L berth-node -E lazy_itable_init=0,lazy_journal_init=0 -d "$R" "$IMAGE.tmp/disk.img" "$DISK_SIZE"
echo "$kver" >"$IMAGE.tmp/kernel-version"
touch "$IMAGE.tmp/.done"
mv "$IMAGE.tmp" "$IMAGE"
echo "node-image: built $IMAGE (kernel $kver, $(du -sh --apparent-size "$R" | cut -f1) rootfs)"
echo "$IMAGE"
