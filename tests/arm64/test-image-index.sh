#!/usr/bin/env bash
# The multi-architecture archive of make image-multiarch: one named nested index, one manifest per platform, every
# blob present and matching its digest and size; then each platform's layers unpacked into a root of their own
# and both executables run there with chroot (arm64's through binfmt): nothing from the build machine is needed;
# then containerd takes it as a node's would.
# Part of make arm64-test. Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=$(tr -d '[:space:]' < VERSION)
archive=artifacts/image/berth-$version.multiarch.oci.tar
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xf "$archive" -C "$work"
python3 - "$work" "localhost/berth:$version" <<'PY'
import hashlib, json, os, sys
layout, name = sys.argv[1:3]
def load(desc):
    path = os.path.join(layout, "blobs", *desc["digest"].split(":"))
    data = open(path, "rb").read()
    assert len(data) == desc["size"], f"{desc['digest']}: {len(data)} bytes, descriptor says {desc['size']}"
    assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"], f"{desc['digest']}: content does not match"
    return data
top = json.load(open(os.path.join(layout, "index.json")))
(entry,) = top["manifests"]
assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json", entry["mediaType"]
assert entry["annotations"]["io.containerd.image.name"] == name, entry["annotations"]
nested = json.loads(load(entry))
platforms = sorted((m["platform"]["os"], m["platform"]["architecture"]) for m in nested["manifests"])
assert platforms == [("linux", "amd64"), ("linux", "arm64")], platforms
for m in nested["manifests"]:
    arch = m["platform"]["architecture"]
    manifest = json.loads(load(m))
    config = json.loads(load(manifest["config"]))
    assert (config["os"], config["architecture"]) == ("linux", arch), (config["os"], config["architecture"])
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    for layer in manifest["layers"]:
        load(layer)
    # The layers in order, for GNU tar to unpack.
    with open(os.path.join(layout, "layers-" + arch), "w") as f:
        f.writelines(os.path.join(layout, "blobs", *l["digest"].split(":")) + "\n" for l in manifest["layers"])
    print(f"ok: {arch}: manifest {m['digest'][:19]}, entrypoint {config['config'].get('Entrypoint')}, {len(manifest['layers'])} layer(s)")
PY
for arch in amd64 arm64; do
  root=$work/root-$arch
  mkdir "$root"
  # umoci 0.4.7 ends its layer without tar's two zero blocks (containerd's Go reader takes the end of data as the
  # end); appended here (and read through, --ignore-zeros), so that GNU tar still fails on a layer cut short inside a member.
  while read -r layer; do { gzip -dc "$layer"; head -c 1024 /dev/zero; } | tar -x --ignore-zeros -C "$root"; done < "$work/layers-$arch"
  want=$([ $arch = arm64 ] && echo 'ARM aarch64' || echo 'x86-64')
  for bin in berth berth-agent; do
    file -b "$root/usr/bin/$bin" | grep -q "$want" || { echo "image: $arch's /usr/bin/$bin is $(file -b "$root/usr/bin/$bin")" >&2; exit 1; }
  done
  [ "$(chroot "$root" /usr/bin/berth-agent --version)" = "$version" ] || { echo "image: $arch's berth-agent --version failed in its root" >&2; exit 1; }
  CNI_COMMAND=VERSION chroot "$root" /usr/bin/berth </dev/null | grep -q supportedVersions || { echo "image: $arch's berth VERSION failed in its root" >&2; exit 1; }
  echo "ok: $arch: both executables run in the image's own root ($(cd "$root" && find . -type f | sort | tr '\n' ' '))"
done

# The consumer: a private containerd (no CRI, its own root, state and socket) imports the index, lists both
# platforms, mounts each platform's image (its executables are of that architecture) and runs each as a container
# through runc (arm64's through binfmt).
dir=$(mktemp -d /tmp/berth-h23-ctr.XXXXXX)
cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
TOML
containerd --config "$dir/config.toml" > "$dir/containerd.log" 2>&1 &
containerd_pid=$!
cleanup() {
  for m in "$dir"/mnt-*; do if mountpoint -q "$m"; then umount "$m"; fi; done
  kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null
  rm -rf "$dir" "$work"
}
trap cleanup EXIT
ctr=(ctr -a "$dir/containerd.sock" -n berth-arm64-test)
for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; kill -0 "$containerd_pid" || { cat "$dir/containerd.log" >&2; exit 1; }; sleep 0.1; done
image=localhost/berth:$version
"${ctr[@]}" images import --all-platforms "$archive" >/dev/null
platforms=$("${ctr[@]}" images ls | awk -v i="$image" '$1 == i { print $6 }')
[ "$platforms" = "linux/amd64,linux/arm64/v8" ] || { echo "image: containerd lists $image for '$platforms'" >&2; exit 1; }
for platform in linux/amd64 linux/arm64; do
  want=$([ $platform = linux/arm64 ] && echo 'ARM aarch64' || echo 'x86-64')
  mnt=$dir/mnt-${platform#linux/}
  mkdir "$mnt"
  "${ctr[@]}" images mount --platform "$platform" "$image" "$mnt" >/dev/null
  file -b "$mnt/usr/bin/berth" | grep -q "$want" || { echo "image: containerd's $platform image holds $(file -b "$mnt/usr/bin/berth")" >&2; exit 1; }
  "${ctr[@]}" images unmount "$mnt" >/dev/null
  said=$("${ctr[@]}" run --rm --platform "$platform" "$image" "berth-h23-${platform#linux/}" /usr/bin/berth-agent --version)
  [ "$said" = "$version" ] || { echo "image: the $platform container's berth-agent --version said '$said'" >&2; exit 1; }
  echo "ok: containerd imported the index; $platform: $want executables, the container's berth-agent says $said"
done
