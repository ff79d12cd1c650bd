#!/usr/bin/env bash
# Lays the published executables out as an OCI image, offline, with Debian's umoci: one layer holding
# /usr/bin/berth-agent, /usr/bin/berth, and exactly the shared objects `ldd` names for them (libc, libm and the
# loader: NativeAOT links SQLite in), no shell, no package manager. Written as an OCI archive (an image layout
# in one tar) that `ctr -n k8s.io images import` takes, and that RKE2 and k3s import by themselves from their
# agent/images directory. Same version as the packages (the file VERSION). Run by `make image` after `make build`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=$(tr -d '[:space:]' < VERSION)
name="localhost/berth:$version"
out=artifacts/image
archive="$out/berth-$version.oci.tar"
for bin in berth berth-agent; do
  [ -x "artifacts/bin/$bin" ] || { echo "build-image: artifacts/bin/$bin is missing: run make build" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
install -D -m 0755 artifacts/bin/berth-agent "$root/usr/bin/berth-agent"
install -D -m 0755 artifacts/bin/berth "$root/usr/bin/berth"

# Every object the dynamic loader resolves for either executable, at the path it resolves it from, and the
# loader at the path the executables name (PT_INTERP). Anything else ldd reports (a missing library) stops the build.
libs=$(ldd artifacts/bin/berth artifacts/bin/berth-agent | awk '
  /^artifacts/ { next }
  /not found/ { print "MISSING " $1; next }
  /=>/ { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
if grep -q '^MISSING' <<<"$libs"; then echo "build-image: ldd cannot resolve: $(grep '^MISSING' <<<"$libs")" >&2; exit 1; fi
for lib in $libs; do
  # Copy the file the path resolves to, under the path itself (Debian's /lib64 and /lib are symlinks into /usr).
  install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
# The image's own ld.so.cache is not needed: the loader searches its built-in directories, where the libs are.

# Reproducible: the same executables give the same archive, byte for byte (make node-test keys its VM image on
# it). Every time in the image is SOURCE_DATE_EPOCH (default: 0).
epoch=${SOURCE_DATE_EPOCH:-0}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
find "$root" -exec touch -h -d "@$epoch" {} +

# The image's metadata: run the agent by default; the DaemonSet names its command anyway.
layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:$version"
umoci insert --image "$layout:$version" --history.created "$created" --history.comment "berth $version: the executables and the libraries ldd names" "$root" /
umoci config --image "$layout:$version" --no-history --created "$created" \
  --architecture amd64 --os linux --config.user 0:0 --config.workingdir / \
  --config.entrypoint /usr/bin/berth-agent --config.cmd run \
  --config.env PATH=/usr/bin \
  --config.label "org.opencontainers.image.title=berth" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.description=berth CNI IPAM plugin and berth-agent (docs: README.md, deploy/kubernetes)"
umoci gc --layout "$layout"

# ctr names an imported image by the index entry's io.containerd.image.name annotation (without it, ctr import
# needs --base-name); org.opencontainers.image.ref.name (the tag umoci wrote) stays for other tools.
python3 - "$layout/index.json" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
with open(path) as f:
    index = json.load(f)
if len(index["manifests"]) != 1:
    sys.exit(f"build-image: expected one manifest in {path}, found {len(index['manifests'])}")
index["manifests"][0].setdefault("annotations", {})["io.containerd.image.name"] = name
with open(path, "w") as f:
    json.dump(index, f, separators=(",", ":"))
PY

# Smoke test where root may: the rootfs alone runs both executables (no library from the build machine leaks in).
if [ "$(id -u)" = 0 ]; then
  check="$work/check"
  umoci unpack --image "$layout:$version" "$check" >/dev/null
  chroot "$check/rootfs" /usr/bin/berth-agent --version >/dev/null
  CNI_COMMAND=VERSION chroot "$check/rootfs" /usr/bin/berth </dev/null | grep -q supportedVersions
fi

mkdir -p "$out"
rm -f "$archive"
# Deterministic member order and ownership; the blobs are already content-addressed.
tar --sort=name --owner=0 --group=0 --numeric-owner --mode=a+r,u+w --mtime=@0 -C "$layout" -cf "$archive.tmp" oci-layout index.json blobs
mv "$archive.tmp" "$archive"
echo "image $name: $archive ($(du -h "$archive" | cut -f1))"
tar -tvf "$archive" | sed 's/^/  /'
