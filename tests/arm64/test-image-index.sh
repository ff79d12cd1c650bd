#!/usr/bin/env bash
# The multi-architecture archive of make image-multiarch: one named nested index, one manifest per platform, every
# blob present and matching its digest and size; then each platform's layers unpacked into a root of their own
# and both executables run there with chroot (arm64's through binfmt): nothing from the build machine is needed.
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
