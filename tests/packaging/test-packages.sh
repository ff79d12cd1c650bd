#!/usr/bin/env bash
# Checks the packages in artifacts/packages and installs the .deb on this machine for real, inside a trap that
# removes it again: lintian, the rpm's files and scripts, rpmlint, install, run, remove (store kept), purge.
# Prints "N passed, N failed". Run by `make packages-test` (and so by `make test`). Needs root.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=$(tr -d '[:space:]' < VERSION)
deb=artifacts/packages/berth_${version}-1_amd64.deb
rpm=artifacts/packages/berth-${version}-1.x86_64.rpm
source tests/packaging/checks.sh

[[ -f $deb && -f $rpm ]] || { echo "no packages: run 'make packages'" >&2; exit 1; }

lintian_check "$deb"

files=$(rpm -qpl "$rpm" 2>/dev/null)
for f in /opt/cni/bin/berth /usr/bin/berth-agent /usr/lib/systemd/system/berth-recover.service \
         /usr/lib/systemd/system/berth-agent.service /etc/berth/agent.json /var/lib/berth; do
  if contains "$files" "$f"; then ok "rpm holds $f"; else fail "rpm lacks $f"; fi
done
check "rpm marks agent.json as config(noreplace)" bash -c "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$rpm' | grep -q 'cn /etc/berth/agent.json'"
check "rpm makes /var/lib/berth 0700" bash -c "rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' '$rpm' | grep -q '^drwx------ /var/lib/berth$'"
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
for s in "postinstall scriptlet" "systemctl enable berth-recover.service berth-agent.service" "preuninstall scriptlet" \
         "systemctl disable berth-recover.service berth-agent.service" "kept the lease store in /var/lib/berth"; do
  if contains "$scripts" "$s"; then ok "rpm scripts: $s"; else fail "rpm scripts lack: $s"; fi
done
check "rpm name carries the version" test "$(rpm -qp --qf '%{VERSION}' "$rpm")" = "$version"
if command -v rpmlint >/dev/null; then
  rpmlint_check "$rpm"
fi
check "deb depends on libc6 only" test "$(dpkg-deb -f "$deb" Depends)" = "libc6 (>= 2.34)"
check "deb marks agent.json as a conffile" bash -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | grep -qx /etc/berth/agent.json"

# A real install on this machine, always undone.
if dpkg -s berth >/dev/null 2>&1; then echo "berth is installed here already: not touching it" >&2; exit 1; fi
trap 'dpkg -P berth >/dev/null 2>&1; rm -rf /var/lib/berth' EXIT
check "dpkg -i" dpkg -i "$deb"
check "berth --version from /opt/cni/bin says $version" bash -c "/opt/cni/bin/berth --version | grep -qx 'berth $version'"
check "berth-agent --version from /usr/bin says $version" bash -c "/usr/bin/berth-agent --version | grep -qx '$version'"
check "CNI VERSION answers from the installed plugin" bash -c "echo '{\"cniVersion\":\"1.0.0\"}' | CNI_COMMAND=VERSION /opt/cni/bin/berth | grep -q supportedVersions"
check "units installed" test -f /lib/systemd/system/berth-recover.service -a -f /lib/systemd/system/berth-agent.service
check "units enabled" test -L /etc/systemd/system/multi-user.target.wants/berth-agent.service
check "installed units pass systemd-analyze verify" systemd-analyze verify /lib/systemd/system/berth-recover.service /lib/systemd/system/berth-agent.service
# As berth-recover.service does at the first boot, recovery (a dry run here: this machine's own host-local files
# are not the test's to release) reads the installed agent.json and creates the store; then check reads it.
check "agent.json installed and accepted by recover" /usr/bin/berth-agent recover --dry-run
check "check finds the new store healthy" /usr/bin/berth-agent check --store /var/lib/berth/berth.db
check "/var/lib/berth is 0700" test "$(stat -c %a /var/lib/berth)" = 700
check "man page installed" test -f /usr/share/man/man8/berth-agent.8.gz
removed=$(dpkg -r berth 2>&1)
check "dpkg -r" test $? -eq 0
check "remove keeps the store" test -f /var/lib/berth/berth.db
check "remove says the store is kept" contains "$removed" "kept the lease store in /var/lib/berth"
check "remove disables the units" test ! -e /etc/systemd/system/multi-user.target.wants/berth-agent.service
purged=$(dpkg -P berth 2>&1)
check "dpkg -P" test $? -eq 0
check "purge deletes the store" test ! -e /var/lib/berth
check "purge says so" contains "$purged" "deleted the lease store"
check "purge removes agent.json" test ! -e /etc/berth/agent.json

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
