#!/usr/bin/env bash
# The arm64 packages (make packages-arm64): lintian and rpmlint as for amd64, their architecture and executables,
# the same files as the amd64 .deb, and a real install, run, remove and purge of the .deb inside a Debian 12 arm64
# root (mmdebstrap, cached under artifacts/arm64/) entered with chroot: dpkg, the maintainer scripts, systemctl and
# berth itself are arm64 executables there, run by qemu-user through binfmt (scripts/arm64/binfmt.sh).
# Prints "N passed, N failed". Part of make arm64-test. Needs root.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=$(tr -d '[:space:]' < VERSION)
deb=artifacts/arm64/packages/berth_${version}-1_arm64.deb
rpm=artifacts/arm64/packages/berth-${version}-1.aarch64.rpm
amd64_deb=artifacts/packages/berth_${version}-1_amd64.deb
source tests/packaging/checks.sh
[[ -f $deb && -f $rpm ]] || { echo "no arm64 packages: run 'make packages-arm64'" >&2; exit 1; }

lintian_check "$deb"
if grep -q binary-from-other-architecture <<<"$lint"; then fail "lintian: binary-from-other-architecture"; else ok "lintian finds no binary of another architecture"; fi
rpmlint_check "$rpm"
check "deb is Architecture: arm64" test "$(dpkg-deb -f "$deb" Architecture)" = arm64
check "rpm is aarch64" test "$(rpm -qp --qf '%{ARCH}' "$rpm")" = aarch64
check "deb depends on libc6 only, as amd64's" test "$(dpkg-deb -f "$deb" Depends)" = "libc6 (>= 2.34)"
check "rpm requires glibc only" bash -c "rpm -qp --requires '$rpm' | grep -v '^rpmlib(' | grep -qx 'glibc >= 2.34'"
if [[ -f $amd64_deb ]]; then
  check "deb holds the same files as the amd64 deb" test "$(dpkg-deb -c "$deb" | awk '{print $1, $6}')" = "$(dpkg-deb -c "$amd64_deb" | awk '{print $1, $6}')"
fi
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$deb" "$unpacked/deb"
mkdir -p "$unpacked/rpm" && (cd "$unpacked/rpm" && rpm2cpio "$OLDPWD/$rpm" | cpio -idm --quiet)
for f in deb/opt/cni/bin/berth deb/usr/bin/berth-agent rpm/opt/cni/bin/berth rpm/usr/bin/berth-agent; do
  check "$f is an aarch64 executable" bash -c "file -b '$unpacked/$f' | grep -q 'ARM aarch64'"
done

# The arm64 root (tests/packaging/arm64-root.sh: Debian 12's essential packages and systemd, cached).
base=$(bash tests/packaging/arm64-root.sh) || { fail "no arm64 root"; echo "arm64 packages: $passed passed, $failed failed"; exit 1; }
root=$unpacked/root
mkdir -p "$root" && tar -xf "$base" -C "$root"
cp "$deb" "$root/tmp/berth.deb"
# Each step in its own mount namespace with the root's /proc (boot ID, /proc/self): nothing to unmount afterwards.
in_root() { unshare --mount --fork sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@"; }

check "the root is arm64 (dpkg --print-architecture in it)" test "$(in_root dpkg --print-architecture)" = arm64
check "dpkg -i in the arm64 root" in_root dpkg -i /tmp/berth.deb
check "berth --version in the root says $version" test "$(in_root /opt/cni/bin/berth --version)" = "berth $version"
check "CNI VERSION answers from the installed plugin" contains "$(echo '{"cniVersion":"1.0.0"}' | CNI_COMMAND=VERSION in_root /opt/cni/bin/berth)" supportedVersions
check "berth-agent --version in the root says $version" test "$(in_root /usr/bin/berth-agent --version)" = "$version"
check "units installed" test -f "$root/lib/systemd/system/berth-recover.service" -a -f "$root/lib/systemd/system/berth-agent.service"
check "units enabled by the postinst's systemctl" test -L "$root/etc/systemd/system/multi-user.target.wants/berth-agent.service" -a -L "$root/etc/systemd/system/multi-user.target.wants/berth-recover.service"
check "installed units pass the root's systemd-analyze verify" in_root systemd-analyze verify /lib/systemd/system/berth-recover.service /lib/systemd/system/berth-agent.service
check "recover (dry run) reads the installed agent.json and creates the store" in_root /usr/bin/berth-agent recover --dry-run
check "check finds the new store healthy" in_root /usr/bin/berth-agent check --store /var/lib/berth/berth.db
check "/var/lib/berth is 0700" test "$(stat -c %a "$root/var/lib/berth")" = 700
removed=$(in_root dpkg -r berth 2>&1)
check "dpkg -r" test $? -eq 0
check "remove keeps the store" test -f "$root/var/lib/berth/berth.db"
check "remove says the store is kept" contains "$removed" "kept the lease store in /var/lib/berth"
check "remove disables the units" test ! -e "$root/etc/systemd/system/multi-user.target.wants/berth-agent.service"
purged=$(in_root dpkg -P berth 2>&1)
check "dpkg -P" test $? -eq 0
check "purge deletes the store" test ! -e "$root/var/lib/berth"
check "purge says so" contains "$purged" "deleted the lease store"

echo "arm64 packages: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
