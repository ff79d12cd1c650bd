#!/usr/bin/env bash
# make torture: berth's power-cut torture, bounded by TORTURE_SECONDS (default 600) shared between the modes.
# Each mode is a command that prints one line
#   SUMMARY mode=<name> cycles=N acked=N cuts=N violations=N
# and exits non-zero on a violation. This script runs them one after another (the machine has 2 cores and
# QEMU emulates in software), repeats the SUMMARY lines at the end and exits non-zero if any mode found a
# violation or failed, or if the negative control caught nothing. See docs/reliability.md.
# TORTURE_SEED=N makes the QEMU modes repeatable (each mode also prints the seed it used).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOTAL=${TORTURE_SECONDS:-600}
if [[ $EUID -ne 0 ]]; then echo "torture: run as root (QEMU guest images, network namespaces)" >&2; exit 1; fi
if ! [[ $TOTAL =~ ^[0-9]+$ ]] || ((TOTAL < 60)); then echo "torture: TORTURE_SECONDS must be a number >= 60" >&2; exit 2; fi

WORK=$(mktemp -d /tmp/berth-torture.XXXXXX)
CHILD= TEE=
cleanup() {
  local status=$?
  set +e
  if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then kill -TERM "$CHILD"; wait "$CHILD"; fi
  if [[ -n $TEE ]] && kill -0 "$TEE" 2>/dev/null; then kill -TERM "$TEE"; wait "$TEE"; fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash torture/guest/build.sh

START=$(date +%s)
FAILED=()
# run_mode NAME COMMAND...: runs one mode; its output is shown and kept for the summary.
run_mode() {
  local name=$1 status=0 fd
  shift
  echo "=== torture: $name"
  exec {fd}> >(tee "$WORK/$name.out")   # shown as it comes, kept for the summary
  TEE=$!
  "$@" >&"$fd" 2>&1 &
  CHILD=$!
  exec {fd}>&-
  wait "$CHILD" || status=$?
  wait "$TEE" || true   # tee ends when the mode's output ends
  CHILD= TEE=
  if ((status != 0)); then FAILED+=("$name (exit $status)"); fi
}
# share PERCENT: this mode's part of the budget, in seconds.
share() { echo $((TOTAL * $1 / 100)); }
seed_arg() { if [[ -n ${TORTURE_SEED:-} ]]; then echo "--seed=$((TORTURE_SEED + $1))"; fi; }
qemu_mode() { # NAME PERCENT SEED-OFFSET [ARGS...]
  local name=$1 pct=$2 off=$3
  shift 3
  run_mode "$name" python3 torture/qemu_torture.py --name "$name" --seconds "$(share "$pct")" \
    --work "$WORK/$name" $(seed_arg "$off") "$@"
}

qemu_mode reset 10 1 --mode reset
qemu_mode strict 10 2 --mode strict
qemu_mode strict-subset 5 3 --mode strict-subset
qemu_mode node-script 5 4 --mode node-script
# The same power cuts with berth-agent answering the plugin's calls (berth.serve=1): the agent commits them.
qemu_mode strict-serving 5 11 --mode strict --agent-serving
# The negative control: berth with synchronous writes off (a build made with -p:BerthUnsafeNoSync=true) must be
# caught by the strict mode, alone and with the agent (built the same way) answering. It stops at its first
# violation and prints CONTROL, not SUMMARY.
qemu_mode strict-nosync-control 5 5 --mode strict --unsafe-no-sync --expect-violations --tag CONTROL
qemu_mode strict-serving-nosync-control 5 12 --mode strict --agent-serving --unsafe-no-sync --expect-violations --tag CONTROL
# One storm recorded under the write log, then thousands of crash states checked on the host (torture/replay.py),
# alone and with the agent answering, and their own negative controls, which ignore their share until they have
# caught a loss.
qemu_mode replay 20 8 --mode replay --workers 4
qemu_mode replay-serving 15 13 --mode replay --workers 4 --agent-serving
qemu_mode replay-nosync-control 0 9 --mode replay --workers 4 --unsafe-no-sync --expect-violations --tag CONTROL
qemu_mode replay-serving-nosync-control 0 14 --mode replay --workers 4 --agent-serving --unsafe-no-sync --expect-violations --tag CONTROL

# On the host: SIGKILL storms with a concurrent reconcile, and fuzzing of the plugin's input and of damaged stores.
host_seed() { if [[ -n ${TORTURE_SEED:-} ]]; then echo "--seed $((TORTURE_SEED + $1))"; fi; }
run_mode killstorm bash torture/killstorm.sh --seconds "$(share 3)" $(host_seed 6)
# The same with a berth-agent answering the calls, SIGKILLed at random moments and started again at once.
run_mode killstorm-serving bash torture/killstorm.sh --agent-serving --seconds "$(share 2)" $(host_seed 15)
run_mode fuzz bash torture/fuzz.sh --seconds "$(share 5)" $(host_seed 7)
# And of what the agent reads: guarded directories, agent.json, a runtime's answers, store rows (docs/reliability.md).
run_mode agentfuzz bash torture/agentfuzz.sh --seconds "$(share 5)" $(host_seed 10)

echo
echo "=== torture: summary ($(( $(date +%s) - START )) s, TORTURE_SECONDS=$TOTAL)"
cat "$WORK"/*.out 2>/dev/null | grep -E '^(SUMMARY|CONTROL) ' || true
violations=$(cat "$WORK"/*.out 2>/dev/null | sed -n 's/^SUMMARY .*violations=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
for control in strict-nosync-control strict-serving-nosync-control replay-nosync-control replay-serving-nosync-control; do
  if ! grep -qE '^CONTROL .*violations=[1-9]' "$WORK/$control.out" 2>/dev/null; then
    FAILED+=("negative control $control did not catch berth without synchronous writes")
  fi
done
if ((violations > 0)) || ((${#FAILED[@]} > 0)); then
  echo "torture: FAILED: $violations violations${FAILED[*]:+; }${FAILED[*]}" >&2
  exit 1
fi
echo "torture: passed, 0 violations; every negative control was caught"
