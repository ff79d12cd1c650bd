#!/usr/bin/env bash
# Makes the kernel run aarch64 executables through qemu-user-static (binfmt_misc), so that an arm64 berth, Debian's
# arm64 host-local and bridge, and the arm64 root of the package test run as themselves: exec'd by the tests and
# by each other, and inside a chroot (the F flag: the kernel holds the interpreter open from registration on).
# qemu-user-static's package asks binfmt-support to register it, but that needs binfmt_misc mounted, which
# systemd does at boot (proc-sys-fs-binfmt_misc.automount); on a machine or container booted without systemd
# nothing mounts it and the package's registration silently does not happen. So: mount it, then register.
set -euo pipefail
fs=/proc/sys/fs/binfmt_misc
if [ ! -e "$fs/register" ]; then
  mount -t binfmt_misc binfmt_misc "$fs" || { echo "binfmt: cannot mount binfmt_misc on $fs (a container without privileges?)" >&2; exit 1; }
fi
[ "$(cat "$fs/status")" = enabled ] || echo 1 > "$fs/status"
if [ ! -e "$fs/qemu-aarch64" ]; then
  update-binfmts --enable qemu-aarch64
fi
[ "$(head -n1 "$fs/qemu-aarch64")" = enabled ] || echo 1 > "$fs/qemu-aarch64"
grep -q '^flags: .*F' "$fs/qemu-aarch64" || { echo "binfmt: qemu-aarch64 is registered without the F flag: chroots would not find the interpreter" >&2; exit 1; }
