#!/usr/bin/env bash
# make node-test: a whole Debian node in QEMU through power cuts (docs/reliability.md, "A whole node").
# Builds (or reuses) the VM image, runs the power cuts for NODE_TEST_SECONDS (default 600; at least one cut
# whatever the budget), then the negative control (berth-recover.service masked), which must be caught.
# Prints the SUMMARY and CONTROL lines at the end; exit 1 on a violation or an uncaught control.
# NODE_TEST_SEED=N repeats the cut moments; NODE_TEST_CONTROL=0 leaves out the control.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SECONDS_BUDGET=${NODE_TEST_SECONDS:-600}
if [[ $EUID -ne 0 ]]; then echo "node-test: run as root (mmdebstrap, chroot, QEMU)" >&2; exit 1; fi
if ! [[ $SECONDS_BUDGET =~ ^[0-9]+$ ]]; then echo "node-test: NODE_TEST_SECONDS must be a number of seconds" >&2; exit 2; fi

WORK=$(mktemp -d /tmp/berth-hn-node.XXXXXX)
CHILD=
cleanup() {
  local status=$?
  set +e
  if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then kill -TERM "$CHILD"; wait "$CHILD"; fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

IMAGE=$(bash torture/node/build-image.sh | tee -a /dev/stderr | tail -n1)
seed_arg() { if [[ -n ${NODE_TEST_SEED:-} ]]; then echo "--seed=$((NODE_TEST_SEED + $1))"; fi; }
status=0
# The operator's script (once, on the first boot) with a budget of 5 minutes or more: the short form of make test
# makes one cut after the package's life.
script=; if ((SECONDS_BUDGET >= 300)); then script=--script; fi
# NODE_TEST_POD=1: berth-agent runs as deploy/kubernetes's DaemonSet pod instead of the package's units; its control
# runs no agent at all.
pod= name=node control_what="berth-recover.service masked"
if [[ ${NODE_TEST_POD:-0} == 1 ]]; then pod=--pod script= name=node-pod control_what="no agent at all"; fi
python3 torture/node/node_test.py --image "$IMAGE" --seconds "$SECONDS_BUDGET" $script $pod \
  --work "$WORK/node" $(seed_arg 0) | tee "$WORK/node.out" &
CHILD=$!
wait "$CHILD" || status=$?
CHILD=
control=0
if [[ ${NODE_TEST_CONTROL:-1} != 0 ]]; then
  python3 torture/node/node_test.py --image "$IMAGE" --seconds 0 --control $pod --work "$WORK/control" $(seed_arg 1) \
    | tee "$WORK/control.out" &
  CHILD=$!
  wait "$CHILD" || control=$?
  CHILD=
fi
echo
echo "=== node-test: summary"
failed=0
if ((status != 0)) || ! grep -qE '^SUMMARY .*violations=0$' "$WORK/node.out"; then
  echo "node-test: FAILED: violations on the node (serial log: artifacts/node/logs/$name.serial.log)"
  failed=1
fi
if [[ ${NODE_TEST_CONTROL:-1} != 0 ]]; then
  if ((control != 0)) || ! grep -qE '^CONTROL .*violations=[1-9].* leaked=[1-9][0-9]* leaked_host_local=[1-9]' "$WORK/control.out"; then
    echo "node-test: FAILED: the negative control ($control_what) was not caught"
    failed=1
  else
    echo "node-test: the negative control ($control_what) was caught"
  fi
  grep -hE '^CONTROL ' "$WORK/control.out" || true
fi
# The last line: the node's SUMMARY.
grep -hE '^SUMMARY ' "$WORK/node.out" || echo "SUMMARY mode=node cycles=0 acked=0 cuts=0 violations=1"
exit "$failed"
