#!/usr/bin/env bash
# What the linux-arm64 build and its emulated tests need on Debian 12 (make deps-arm64), installed only when missing:
#   - the cross toolchain: clang-14 and lld-14 (ILCompiler's linker driver and linker), gcc-aarch64-linux-gnu and
#     libc6-dev-arm64-cross (the aarch64 crt files, libc to link against, objcopy);
#   - qemu-user-static and binfmt-support (arm64 executables run as themselves: scripts/arm64/binfmt.sh), and
#     libc6:arm64 (the loader and libc they are linked against, under /lib and /usr/lib/aarch64-linux-gnu);
#   - unpacked into artifacts/arm64/debian, not installed: Debian's arm64 libsqlite3-dev (its libsqlite3.a is
#     linked in) and containernetworking-plugins (host-local and bridge, for the same checks as amd64), each at
#     the version installed for amd64. Installing them would replace the machine's amd64 plugins
#     (containernetworking-plugins is not co-installable) and make `dpkg -s libsqlite3-dev` ambiguous for `make deps`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
apt=(apt-get -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root -qq)
packages=(clang-14 lld-14 gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6:arm64 qemu-user-static binfmt-support file)
updated=
update() { [ -n "$updated" ] || { "${apt[@]}" update; updated=1; }; }

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "deps-arm64: dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
  update
fi
missing=$(for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "deps-arm64: installing:" $missing
  update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y $missing >/dev/null
fi

root=artifacts/arm64/debian
mkdir -p artifacts/arm64/debs "$root"
for p in libsqlite3-dev containernetworking-plugins; do
  version=$(dpkg-query -W -f '${Version}' "$p:amd64")
  stamp="$root/.$p"
  [ "$(cat "$stamp" 2>/dev/null)" = "$version" ] && continue
  echo "deps-arm64: unpacking $p:arm64 $version into $root"
  rm -f artifacts/arm64/debs/"${p}"_*_arm64.deb
  (cd artifacts/arm64/debs && "${apt[@]}" download "$p:arm64=$version" 2>/dev/null) || {
    update
    (cd artifacts/arm64/debs && "${apt[@]}" download "$p:arm64=$version")
  }
  dpkg-deb -x artifacts/arm64/debs/"${p}"_*_arm64.deb "$root"
  echo "$version" > "$stamp"
done
bash scripts/arm64/binfmt.sh
