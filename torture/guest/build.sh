#!/usr/bin/env bash
# Builds the torture guest under artifacts/torture/: Debian's kernel (downloaded with apt-get download and
# unpacked with dpkg -x, never installed), its uncompressed vmlinux (booted through PVH: no decompression
# under software emulation), and an uncompressed busybox initramfs holding berth, berth-agent, iproute2's ip,
# sqlite3, coreutils' dd (as dd-direct), the libraries they need, the modules for virtio-blk + ext4, scripts/power-cut-node.sh and the init.
# The kernel is fetched once; the initramfs is rebuilt only when one of its inputs is newer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

OUT=artifacts/torture
KDIR=$OUT/kernel
INITRD=$OUT/initramfs.cpio
BIN=artifacts/bin
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc16 mbcache jbd2 crc32c_generic ext4"
mkdir -p "$OUT"

TMP=$(mktemp -d /tmp/berth-guest.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# 1. The kernel: Debian's current linux-image-amd64, resolved to the real image package.
if [[ ! -f $KDIR/vmlinux || ! -f $KDIR/.done ]]; then
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
  pkg=$(resolve)
  if [[ -z $pkg ]]; then apt-get -o DPkg::Lock::Timeout=600 update -qq; pkg=$(resolve); fi
  [[ -n $pkg ]] || { echo "guest: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
  echo "guest: downloading $pkg"
  chmod 0777 "$TMP"   # apt's _apt user downloads into it
  (cd "$TMP" && apt-get download -qq "$pkg")
  dpkg -x "$TMP"/"$pkg"_*.deb "$TMP/k"
  kver=$(ls "$TMP/k/lib/modules")
  cp "$TMP/k/boot/vmlinuz-$kver" "$KDIR/vmlinuz"
  mkdir -p "$KDIR/modules"
  for m in $MODULES; do
    f=$(find "$TMP/k/lib/modules/$kver" -name "$m.ko" | head -n1)
    [[ -n $f ]] || { echo "guest: module $m not in $pkg" >&2; exit 1; }
    cp "$f" "$KDIR/modules/"
  done
  python3 torture/guest/extract-vmlinux.py "$KDIR/vmlinuz" "$KDIR/vmlinux"
  echo "$kver" >"$KDIR/version"
  touch "$KDIR/.done"
fi

# 2. The negative control's berth and berth-agent: the same source built without fsync (-p:BerthUnsafeNoSync=true),
# in its own build directory so that it never mixes with the real build. The guest swaps them in only under
# berth.unsafe=1.
UNSAFE_BIN=$OUT/unsafe-bin
if [[ ! -f $UNSAFE_BIN/berth || $BIN/berth -nt $UNSAFE_BIN/berth ]]; then
  echo "guest: building the negative control's berth (synchronous=OFF)"
  dotnet publish src/CniIpam/CniIpam.csproj -c Release -o "$UNSAFE_BIN" --nologo -v quiet -p:DebugType=none \
    -p:BerthUnsafeNoSync=true -p:ArtifactsPath="$PWD/artifacts/unsafe-build"
  rm -f "$UNSAFE_BIN"/*.dbg
fi
# The same for berth-agent, which does the plugin's calls when it answers them (berth.serve=1).
if [[ ! -f $UNSAFE_BIN/berth-agent || $BIN/berth-agent -nt $UNSAFE_BIN/berth-agent ]]; then
  echo "guest: building the negative control's berth-agent (synchronous=OFF)"
  dotnet publish src/HostAgent/HostAgent.csproj -c Release -o "$UNSAFE_BIN" --nologo -v quiet -p:DebugType=none \
    -p:BerthUnsafeNoSync=true -p:ArtifactsPath="$PWD/artifacts/unsafe-build"
  rm -f "$UNSAFE_BIN"/*.dbg
fi

# 3. The initramfs, when something it holds changed.
INPUTS=("$BIN/berth" "$UNSAFE_BIN/berth" "$BIN/berth-agent" "$UNSAFE_BIN/berth-agent" torture/guest/init torture/guest/storm.sh torture/guest/mark.sh scripts/power-cut-node.sh "$KDIR/.done" "${BASH_SOURCE[0]}")
fresh=1
if [[ -f $INITRD ]]; then
  for f in "${INPUTS[@]}"; do [[ $f -nt $INITRD ]] && fresh=0; done
else
  fresh=0
fi
if [[ $fresh == 1 ]]; then echo "guest: $INITRD is up to date"; exit 0; fi

R=$TMP/root
mkdir -p "$R"/{bin,sbin,lib,lib64,proc,sys,dev,run,mnt,tmp,etc/berth,opt/cni/bin,modules,usr/bin}
mkdir -p "$R/var" && ln -s ../run "$R/var/run"
cp /bin/busybox "$R/bin/busybox"
for app in $("$R/bin/busybox" --list); do [[ -e $R/bin/$app ]] || ln -s busybox "$R/bin/$app"; done
rm -f "$R/bin/ip"   # iproute2's ip below: busybox's has no 'netns'

# An executable and every library ldd names for it, at the same paths.
add_exe() { # SOURCE DEST
  cp "$1" "$R$2"
  ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
}
add_exe "$BIN/berth" /opt/cni/bin/berth
add_exe "$UNSAFE_BIN/berth" /opt/cni/bin/berth-unsafe
add_exe "$BIN/berth-agent" /usr/bin/berth-agent
add_exe "$UNSAFE_BIN/berth-agent" /usr/bin/berth-agent-unsafe
add_exe "$(command -v ip)" /sbin/ip
add_exe "$(command -v sqlite3)" /usr/bin/sqlite3
add_exe /usr/bin/dd /usr/bin/dd-direct   # coreutils' dd for mark.sh's O_DIRECT writes (aligned buffer)
cp "$KDIR"/modules/*.ko "$R/modules/"
echo "$MODULES" >"$R/modules/order"
cp torture/guest/init "$R/init"
cp torture/guest/storm.sh "$R/bin/storm.sh"
cp torture/guest/mark.sh "$R/bin/mark"
cp scripts/power-cut-node.sh "$R/bin/power-cut-node.sh"
chmod 0755 "$R/init" "$R/bin/storm.sh" "$R/bin/mark" "$R/bin/power-cut-node.sh"
echo '{"runtimeSockets": [], "metricsAddress": "off", "hostLocal": {"dirs": []}}' >"$R/etc/berth/agent.json"
(cd "$R" && find . | cpio -o -H newc --quiet) >"$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
echo "guest: built $INITRD ($(du -h "$INITRD" | cut -f1))"
