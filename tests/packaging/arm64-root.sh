#!/usr/bin/env bash
# A Debian 12 arm64 root for the arm64 package test: mmdebstrap's essential variant with systemd (for systemctl),
# from this machine's apt sources, its maintainer scripts run by qemu-user through binfmt. Built once and cached
# by its inputs as artifacts/arm64/root-<hash>.tar; prints that path. make arm64-test starts it in the background
# while the emulated tests run. Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
packages=systemd
sources=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
key=$( { echo "$packages"; cat "${sources:-/etc/apt/sources.list}"; } | sha256sum | cut -c1-12)
base=artifacts/arm64/root-$key.tar
if [[ ! -f $base ]]; then
  echo "arm64 root: mmdebstrap of Debian 12 arm64 (essential, $packages), once per clone" >&2
  rm -f artifacts/arm64/root-*.tar
  mkdir -p artifacts/arm64
  log=$(mktemp)
  trap 'rm -f "$log" "$base.tmp"' EXIT
  # Twice at most: a package registry that fails one download should not fail the run.
  for attempt in 1 2; do
    mmdebstrap --architectures=arm64 --variant=essential --include="$packages" --mode=root --format=tar --quiet \
      --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
      bookworm "$base.tmp" ${sources:+"$sources"} > "$log" 2>&1 && break
    cat "$log" >&2
    ((attempt < 2)) || { echo "arm64 root: mmdebstrap failed twice" >&2; exit 1; }
  done
  mv "$base.tmp" "$base"
fi
echo "$base"
