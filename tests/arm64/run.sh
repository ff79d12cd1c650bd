#!/usr/bin/env bash
# The arm64 executables under emulation (make arm64-test, part of make test): the kernel hands them to
# qemu-aarch64-static through binfmt_misc, so they are exec'd as themselves, by the tests and by Debian's arm64
# bridge, in real network namespaces. Checks, in order:
#   1. both are aarch64 executables that need exactly what the amd64 ones need (libc, libm, the loader);
#   2. they run only through binfmt: with the qemu-aarch64 entry disabled the same exec fails (the control);
#   3. the black-box classes of tests/Berth.BlackBox that exercise the plugin's verbs and errors, its calls answered
#      by the agent, and the agent's healing, with BERTH_PLUGIN and BERTH_AGENT naming the arm64 executables and BERTH_CNI_DIR Debian's arm64
#      plugins (host-local for the parity tables, bridge for the namespaces);
#   4. the arm64 .deb and .rpm: tests/packaging/test-packages-arm64.sh;
#   5. the multi-architecture image: tests/arm64/test-image-index.sh.
# Needs root, make packages, make packages-arm64 and make image-multiarch (make arm64-test makes them). Prints what ran and how long each part took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=artifacts/arm64/bin
cni=$PWD/artifacts/arm64/debian/usr/lib/cni
fs=/proc/sys/fs/binfmt_misc
bash scripts/arm64/binfmt.sh
started=$SECONDS

# 1. What they are and what they need.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sed 's/^ld-linux-.*/LOADER/' | sort | tr '\n' ' '; }
for b in berth berth-agent; do
  file -b "$bin/$b" | grep -q 'ARM aarch64' || { echo "arm64-test: $bin/$b is not aarch64: $(file -b "$bin/$b")" >&2; exit 1; }
  [ "$(needed "$bin/$b")" = "$(needed "artifacts/bin/$b")" ] || {
    echo "arm64-test: $b needs [$(needed "$bin/$b")] on arm64 but [$(needed "artifacts/bin/$b")] on amd64" >&2; exit 1; }
  echo "ok: $b is $(file -b "$bin/$b" | cut -d, -f1-2), needs $(needed "$bin/$b")"
done
for b in host-local bridge; do
  file -b "$cni/$b" | grep -q 'ARM aarch64' || { echo "arm64-test: $cni/$b is not aarch64" >&2; exit 1; }
done

# 2. Emulated, and only emulated: the control disables the registration and expects the kernel to refuse the exec.
trap 'echo 1 > "$fs/qemu-aarch64"' EXIT
echo 0 > "$fs/qemu-aarch64"
set +e; "$bin/berth" --version >/dev/null 2>&1; refused=$?; set -e
echo 1 > "$fs/qemu-aarch64"
trap - EXIT
[ "$refused" = 126 ] || { echo "arm64-test: with binfmt's qemu-aarch64 disabled, $bin/berth exited $refused, not 126 (exec format error)" >&2; exit 1; }
version=$("$bin/berth" --version)
[ "$version" = "berth $(tr -d '[:space:]' < VERSION)" ] || { echo "arm64-test: $bin/berth --version said '$version'" >&2; exit 1; }
echo "ok: without binfmt's qemu-aarch64 the exec fails (126); through it, '$version' ($(sed -n 's/^interpreter //p' "$fs/qemu-aarch64"))"

# The package test's arm64 root (mmdebstrap, a minute on a fresh clone; its maintainer scripts run through binfmt,
# so not before the control above) builds while the emulated tests run, in a process group of its own.
root_log=$(mktemp)
setsid bash tests/packaging/arm64-root.sh > "$root_log" 2>&1 &
root_pid=$!
trap 'kill -- -"$root_pid" 2>/dev/null || true; rm -f "$root_log"' EXIT

# 3. The same black-box checks as amd64, the arm64 executables under test.
# AgentServingTests: the forwarding prelude (C, in the plugin before its runtime starts) against the arm64 agent
# and against fake agents, with the same frames byte for byte.
classes=(CniIpam.VersionTests CniIpam.BadInputTests CniIpam.GcStatusTests CniIpam.AgentServingTests
         CniIpam.HostLocalParityTests CniIpam.BridgeTests HostAgent.RecoverTests HostAgent.RebootHealTests)
filter=$(printf 'FullyQualifiedName~Berth.BlackBox.%s.|' "${classes[@]}"); filter=${filter%|}
t=$SECONDS
# BERTH_EXEC_ENV: qemu-user 7.2 marks the GC's default 256 GiB address-space reservation page by page, 0.4 s of
# every emulated start (110 ms instead of 450 ms with 1 GiB); an arm64 machine pays nothing for it. Only the
# reservation changes: the executables and everything they do are the same.
BERTH_PLUGIN=$PWD/$bin/berth BERTH_AGENT=$PWD/$bin/berth-agent BERTH_CNI_DIR=$cni BERTH_EXEC_ENV=DOTNET_GCRegionRange=40000000 \
  ${DOTNET:-dotnet} test tests/Berth.BlackBox/Berth.BlackBox.csproj -c Release --nologo --filter "$filter" -- RunConfiguration.TreatNoTestsAsError=true
echo "ok: ${classes[*]} passed with the arm64 executables under qemu-user ($((SECONDS - t)) s)"

# 4. The packages, and 5. the image for both architectures.
t=$SECONDS
wait "$root_pid" || { cat "$root_log" >&2; echo "arm64-test: the arm64 root was not built" >&2; exit 1; }
echo "ok: arm64 root $(tail -n1 "$root_log") (built beside the tests; waited $((SECONDS - t)) s more)"
t=$SECONDS
bash tests/packaging/test-packages-arm64.sh
echo "ok: arm64 packages ($((SECONDS - t)) s)"
bash tests/arm64/test-image-index.sh
echo "arm64-test: all passed in $((SECONDS - started)) s"
