#!/usr/bin/env bash
# The node add-on's image for amd64 and arm64 as one OCI image index (make image-multiarch), written as an OCI
# archive beside make image's: artifacts/image/berth-VERSION.multiarch.oci.tar. Its index.json names one nested
# index (io.containerd.image.name localhost/berth:VERSION) whose two manifests carry their platform, so a node's
# runtime pulls or imports the one of its own architecture (`ctr images import` takes the host's by default).
#   amd64: make image's manifest, config and layer, taken from its archive unchanged;
#   arm64: the same config (entrypoint, command, environment, labels, user) for architecture arm64, over one layer
#          laid out as make image lays out amd64's: /usr/bin/berth-agent and /usr/bin/berth (artifacts/arm64/bin),
#          and exactly the shared objects the arm64 loader resolves for them (`ld-linux-aarch64.so.1 --list`, run
#          through binfmt: ldd knows only the machine's own loaders), at the paths it resolves them from.
# Needs make image and make build-arm64.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=$(tr -d '[:space:]' < VERSION)
name="localhost/berth:$version"
single=artifacts/image/berth-$version.oci.tar
archive=artifacts/image/berth-$version.multiarch.oci.tar
arm64_loader=/lib/ld-linux-aarch64.so.1
[ -f "$single" ] || { echo "build-index: $single is missing: run make image" >&2; exit 1; }
for bin in berth berth-agent; do
  [ -x "artifacts/arm64/bin/$bin" ] || { echo "build-index: artifacts/arm64/bin/$bin is missing: run make build-arm64" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/amd64" && tar -xf "$single" -C "$work/amd64"

root="$work/rootfs-arm64"
install -D -m 0755 artifacts/arm64/bin/berth-agent "$root/usr/bin/berth-agent"
install -D -m 0755 artifacts/arm64/bin/berth "$root/usr/bin/berth"
libs=$(for bin in berth berth-agent; do "$arm64_loader" --list "artifacts/arm64/bin/$bin"; done | awk '
  /not found/ { print "MISSING " $1; next }
  /=>/ { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
if grep -q '^MISSING' <<<"$libs"; then echo "build-index: the arm64 loader cannot resolve: $(grep '^MISSING' <<<"$libs")" >&2; exit 1; fi
[ -n "$libs" ] || { echo "build-index: the arm64 loader named no library" >&2; exit 1; }
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
# Deterministic, as make image's layer: sorted members, root-owned, time 0; gzip without a name or time.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer-arm64.tar" .
gzip -9n < "$work/layer-arm64.tar" > "$work/layer-arm64.tar.gz"

python3 - "$work" "$name" "$version" <<'PY'
import hashlib, json, os, shutil, sys
work, name, version = sys.argv[1:4]
out = os.path.join(work, "multi")
os.makedirs(os.path.join(out, "blobs", "sha256"))

def blob(path):
    """Copies a file into the new layout's blobs; returns its descriptor fields."""
    data = open(path, "rb").read()
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def put(obj):
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    path = os.path.join(work, "tmp.json")
    open(path, "wb").write(data)
    return blob(path)

src = os.path.join(work, "amd64")
def src_blob(digest):
    return os.path.join(src, "blobs", *digest.split(":"))

index = json.load(open(os.path.join(src, "index.json")))
if len(index["manifests"]) != 1:
    sys.exit(f"build-index: make image's archive names {len(index['manifests'])} manifests, not one")
amd64_desc = index["manifests"][0]
amd64_manifest = json.load(open(src_blob(amd64_desc["digest"])))
amd64_config = json.load(open(src_blob(amd64_manifest["config"]["digest"])))
if amd64_config.get("architecture") != "amd64" or amd64_config.get("os") != "linux":
    sys.exit(f"build-index: make image's config is {amd64_config.get('os')}/{amd64_config.get('architecture')}, not linux/amd64")
# The amd64 image's blobs, as they are.
for d in [amd64_desc["digest"], amd64_manifest["config"]["digest"]] + [l["digest"] for l in amd64_manifest["layers"]]:
    got = blob(src_blob(d))
    if got["digest"] != d:
        sys.exit(f"build-index: blob {d} of make image's archive does not match its digest")

# arm64: the amd64 config, but its own architecture, layer and history.
layer = blob(os.path.join(work, "layer-arm64.tar.gz"))
diff_id = "sha256:" + hashlib.sha256(open(os.path.join(work, "layer-arm64.tar"), "rb").read()).hexdigest()
config = dict(amd64_config)
config["architecture"] = "arm64"
config["variant"] = "v8"
config["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
config["history"] = [{"created": amd64_config.get("created", "1970-01-01T00:00:00Z"), "created_by": "packaging/image/build-index.sh",
                      "comment": f"berth {version} for arm64: the executables and the libraries the arm64 loader names"}]
config_desc = put(config)
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
}
arm64_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest),
              "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
amd64_entry = {"mediaType": amd64_desc["mediaType"], "digest": amd64_desc["digest"], "size": amd64_desc["size"],
               "platform": {"architecture": "amd64", "os": "linux"}}
nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64_entry, arm64_desc]}
nested_desc = put(nested)
top = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
    "mediaType": "application/vnd.oci.image.index.v1+json", **nested_desc,
    "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": version}}]}
json.dump(top, open(os.path.join(out, "index.json"), "w"), separators=(",", ":"))
shutil.copy(os.path.join(src, "oci-layout"), os.path.join(out, "oci-layout"))
PY

tar --sort=name --owner=0 --group=0 --numeric-owner --mode=a+r,u+w --mtime=@0 -C "$work/multi" -cf "$archive.tmp" oci-layout index.json blobs
mv "$archive.tmp" "$archive"
echo "image $name for linux/amd64 and linux/arm64: $archive ($(du -h "$archive" | cut -f1))"
