#!/usr/bin/env bash
# berth's main job, end to end, for a person to read: Debian's bridge plugin attaches network namespaces with
# berth as its IPAM plugin, a hard reboot is faked, berth heals a full range that host-local leaves full, and
# after a second power loss berth-agent's once-per-boot recovery frees the lost pods' addresses.
# Run as root from the repository root after `make build` (`make demo` does both). Leaves nothing behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BERTH_BIN="$PWD/artifacts/bin"
DEBIAN_CNI=/usr/lib/cni

if [[ $EUID -ne 0 ]]; then echo "demo: run as root (it makes network namespaces and a bridge)" >&2; exit 1; fi
for exe in berth berth-agent; do
  if [[ ! -x $BERTH_BIN/$exe ]]; then echo "demo: $BERTH_BIN/$exe is missing: run 'make build' first" >&2; exit 1; fi
done
for need in "$DEBIAN_CNI/bridge" "$DEBIAN_CNI/host-local" "$(command -v ip || true)" "$(command -v sqlite3 || true)"; do
  if [[ ! -x $need ]]; then echo "demo: needs Debian's containernetworking-plugins, iproute2 and sqlite3 ('make deps')" >&2; exit 1; fi
done

RUN_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
BRIDGE="bdemo$RUN_ID"            # 13 characters: within the kernel's 15 for a link name
NS_PREFIX="berth-demo-$RUN_ID"
NAMESPACES=()
DB="$WORK/berth/berth.db"
STEP=0

cleanup() {
  local status=$?
  set +e
  for ns in "${NAMESPACES[@]}"; do ip netns delete "$ns" 2>/dev/null; done
  ip link delete "$BRIDGE" 2>/dev/null
  rm -rf "$WORK"
  if [[ $status -ne 0 ]]; then echo "demo: failed (exit $status); cleaned up namespaces, bridge $BRIDGE and $WORK" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { STEP=$((STEP + 1)); printf '\n%d. %s\n' "$STEP" "$1"; }
say() { printf '   %s\n' "$@"; }
indent() { sed 's/^/   /'; }
json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }

# One CNI call of the bridge plugin, as a container runtime makes it; prints the plugin's stdout.
cni_bridge() { # COMMAND CONTAINER-ID NETNS-PATH [CNI_ARGS]
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 CNI_ARGS=${4:-} \
    CNI_PATH="$BERTH_BIN:$DEBIAN_CNI" "$DEBIAN_CNI/bridge" <"$WORK/10-demo.conf"
}

# Not called in $(...): the subshell would lose NAMESPACES, and the trap could not clean up.
new_netns() { # POD → sets NETNS to the namespace's path
  local ns="$NS_PREFIX-$1"
  NAMESPACES+=("$ns")
  ip netns add "$ns"
  NETNS="/var/run/netns/$ns"
}

pod_args() { echo "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$1;K8S_POD_UID=uid-$1"; }

attach() { # POD: a namespace for the pod and an ADD through bridge
  local pod=$1 result
  new_netns "$pod"
  result=$(cni_bridge ADD "ctr-$pod" "$NETNS" "$(pod_args "$pod")")
  say "pod demo/$pod (container ctr-$pod) got $(json_field address <<<"$result")"
}

show_eth0() { # POD...
  local pod
  for pod in "$@"; do say "$(printf '%-7s' "$pod") $(ip -n "$NS_PREFIX-$pod" -br -4 addr show eth0)"; done
}

# The operator's view of the store, through berth-agent (no runtime on this machine: "runtimeSockets": []).
agent() { "$BERTH_BIN/berth-agent" "$@" --store "$DB" --config "$WORK/agent.json"; }
show_leases() { agent leases | indent; }
show_history() { # REASON...: the header and the events with these reasons
  agent history | awk -v want="$*" 'NR == 1 { print; next } { for (i = 1; i <= split(want, w, " "); i++) if ($0 ~ w[i]) { print; next } }' | indent
}

step "Setting up: a scratch directory, a boot ID berth can be tricked with, and a bridge network"
cat /proc/sys/kernel/random/uuid >"$WORK/boot_id"
export BERTH_BOOT_ID_FILE="$WORK/boot_id"
echo '{"runtimeSockets": [], "hostLocal": {"dirs": []}}' >"$WORK/agent.json"
cat >"$WORK/10-demo.conf" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "demo",
  "type": "bridge",
  "bridge": "$BRIDGE",
  "ipam": {
    "type": "berth",
    "dataDir": "$WORK/berth",
    "ranges": [[{ "subnet": "10.99.0.0/29" }]]
  }
}
EOF
say "$("$BERTH_BIN/berth" --version), driven by Debian's bridge plugin ($DEBIAN_CNI/bridge)."
say "The network config a runtime would read from /etc/cni/net.d (host-local's ipam section, type berth):"
indent <"$WORK/10-demo.conf"
say "10.99.0.0/29 has five addresses to give: .2 to .6 (.1 is the gateway, .7 the broadcast)."
say "berth reads the boot ID from /proc/sys/kernel/random/boot_id; here BERTH_BOOT_ID_FILE points it at"
say "$WORK/boot_id ($(cut -c1-8 "$WORK/boot_id")...) so that the demo can fake a reboot later."

step "Three pods start: the runtime calls bridge, bridge calls berth for the addresses"
for pod in web-0 web-1 db-0; do attach "$pod"; done
say "" "What each namespace holds on eth0:"
show_eth0 web-0 web-1 db-0

step "berth's store: one lease per pod, with the boot it was made in and the evidence that it lives"
say "berth-agent leases --store $DB"
show_leases

step "The runtime retries an ADD for web-0: berth returns the address web-0 already holds"
say "(the IPAM call bridge makes, run directly: a second eth0 cannot be made in the namespace)"
again=$(CNI_COMMAND=ADD CNI_CONTAINERID=ctr-web-0 CNI_NETNS="/var/run/netns/$NS_PREFIX-web-0" CNI_IFNAME=eth0 \
  CNI_ARGS="$(pod_args web-0)" "$BERTH_BIN/berth" <"$WORK/10-demo.conf")
say "ADD ctr-web-0 again -> $(json_field address <<<"$again"); leases in the store: $(agent leases | tail -n +2 | wc -l)"
say "host-local answers the same call with '... has been allocated to ctr-web-0, duplicate allocation is not allowed'."

step "db-0 is deleted: DEL through bridge releases its address"
cni_bridge DEL ctr-db-0 "/var/run/netns/$NS_PREFIX-db-0" "$(pod_args db-0)"
ip netns delete "$NS_PREFIX-db-0"
show_leases
say "" "berth-agent history: every change, its reason and who made it"
show_history cni-add cni-del

step "Three more pods fill the range (round-robin: the freed .4 comes last)"
for pod in web-2 web-3 web-4; do attach "$pod"; done
show_leases
new_netns extra
if refused=$(cni_bridge ADD ctr-extra "$NETNS" "$(pod_args extra)"); then
  echo "demo: an ADD into the full range succeeded: $refused" >&2
  exit 1
fi
say "" "A sixth pod is refused, correctly: every lease belongs to a live pod of this boot."
say "berth (error $(sed -n 's/.*"code": *\([0-9]*\).*/\1/p' <<<"$refused" | head -n1)): $(json_field msg <<<"$refused")"

step "Power loss: the node is hard-reset"
say "The kernel's namespaces die with it and the runtime never sends DEL for them. Faked here:"
say "a new boot ID, and every demo namespace deleted without a DEL."
OLD_BOOT=$(cat "$WORK/boot_id")
cat /proc/sys/kernel/random/uuid >"$WORK/boot_id"
for ns in "${NAMESPACES[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
NAMESPACES=()
say "namespaces left: $(ip netns list | grep -c "^$NS_PREFIX" || true); new boot ID $(cut -c1-8 "$WORK/boot_id")...; the store still says:"
show_leases

step "After the reboot a new pod starts, and gets an address"
attach web-5
show_eth0 web-5
say "" "The range was full, so berth first released the leases made in an earlier boot whose namespace is gone:"
show_history exhausted-reclaim
say "" "Leases now:"
show_leases

step "host-local in the same situation"
sed -e 's/"type": "berth"/"type": "host-local"/' -e "s#\"dataDir\": \"[^\"]*\"#\"dataDir\": \"$WORK/host-local\"#" \
  "$WORK/10-demo.conf" >"$WORK/10-host-local.conf"
host_local() { # CONTAINER-ID: an ADD straight to host-local, as bridge would make it
  CNI_COMMAND=ADD CNI_CONTAINERID=$1 CNI_NETNS="/var/run/netns/$NS_PREFIX-$1" CNI_IFNAME=eth0 CNI_ARGS="" \
    CNI_PATH="$DEBIAN_CNI" "$DEBIAN_CNI/host-local" <"$WORK/10-host-local.conf"
}
say "The same five pods through host-local (called directly, as bridge calls it). host-local never looks at"
say "namespaces or boot IDs, so for it the power loss changes nothing: its files stay on disk."
for pod in web-0 web-1 web-2 web-3 web-4; do host_local "ctr-$pod" >/dev/null; done
say "$WORK/host-local/demo after the reboot, one file per address of a pod that no longer exists:"
say "$(cd "$WORK/host-local/demo" && ls -d 10.* | tr '\n' ' ')"
if stuck=$(host_local ctr-web-5); then
  echo "demo: host-local unexpectedly found an address: $stuck" >&2
  exit 1
fi
say "The new pod's ADD fails, and keeps failing until someone deletes files by hand:"
say "host-local: $(json_field msg <<<"$stuck")"

step "berth-agent: recovery before the runtime starts"
say "On a node, berth-recover.service runs 'berth-agent recover' once per boot, before containerd, RKE2,"
say "k3s, CRI-O or kubelet. It does not wait for a range to fill: every lease of an earlier boot whose"
say "namespace is gone is released at once. Two more pods start in this boot..."
for pod in web-6 web-7; do attach "$pod"; done
say "...and the power goes out again."
cat /proc/sys/kernel/random/uuid >"$WORK/boot_id"
for ns in "${NAMESPACES[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
NAMESPACES=()
show_leases
say "" "berth-agent recover --store $DB"
agent recover | indent
say "" "Run again in the same boot (an agent restart, a second unit): it knows, and does nothing."
agent recover | indent
say "" "The history says what was released, why, and by whom:"
show_history boot-recovery
say "" "The first pod of the new boot is served at once:"
attach web-8
show_leases

say "" "berth-agent check: store integrity, ranges, leases left from earlier boots"
agent check | indent

printf '\nDone: berth healed both power losses (the full range by itself, the second before any pod asked);\n'
printf 'host-local stays full.\n'
