#!/bin/sh
# berth's power-cut test for a real test node (an operator runs it; never CI, never a production node).
#
#   power-cut-node.sh cut --yes    make leases through berth for network namespaces this script creates, arm a
#                                  check for the next boot (a oneshot systemd unit), then hard-reset the node
#                                  at once with sysrq b: no sync, no unmount, as a power cut
#   power-cut-node.sh after-boot   (run by the unit) check the invariants, write the report, disarm
#   power-cut-node.sh disarm       remove the unit and the plan without checking
#
# make node-test runs exactly this, once, in its Debian node VM under systemd (torture/node/guest/run.sh,
# with its own store as here and POWER_CUT_LEASES=6), and counts the RESULT line of the check;
# docs/reliability.md. Keep the store its own: given the node's, its recover (with this script's config) would
# mark the node's boot recovered, and berth-recover.service would then skip the node's own recovery.
#
# After the reset, the unit (ordered before berth-recover.service and any container runtime) checks:
#   - SQLite's integrity check of the store is ok;
#   - every ADD acknowledged before the reset is still leased, at the address berth returned,
#     and every acknowledged DEL is absent;
#   - no address is leased twice;
#   - after `berth-agent recover`, no lease from the previous boot remains;
#   - the first ADD after the boot succeeds.
# The report goes to $POWER_CUT_DIR/report.txt (and the journal); its last line is
#   power-cut-node: RESULT ok violations=0   or   power-cut-node: RESULT FAIL violations=N
#
# Environment (defaults in brackets):
#   BERTH [/opt/cni/bin/berth]  BERTH_AGENT [/usr/bin/berth-agent]
#   POWER_CUT_DIR [/var/lib/berth-power-cut]     the plan, the report, the unit's copy of this script
#   POWER_CUT_DATA_DIR [$POWER_CUT_DIR/store]    dataDir of the test network (a store of its own, so that
#                                                the node's real leases are not touched)
#   POWER_CUT_LEASES [16]                        ADDs to make; every third is deleted again
#   POWER_CUT_NO_SYSTEMD                         set: install no unit; the caller's init runs `after-boot`
#                                                (berth's QEMU torture does this: its guest has no systemd)
#   IP [ip]                                      iproute2's ip
set -u

BERTH=${BERTH:-/opt/cni/bin/berth}
BERTH_AGENT=${BERTH_AGENT:-/usr/bin/berth-agent}
DIR=${POWER_CUT_DIR:-/var/lib/berth-power-cut}
DATA=${POWER_CUT_DATA_DIR:-$DIR/store}
COUNT=${POWER_CUT_LEASES:-16}
IP=${IP:-ip}
UNIT=berth-power-cut-check.service
UNIT_PATH=/etc/systemd/system/$UNIT
NETWORK=power-cut
DB=$DATA/berth.db
NET_CONF=$DIR/net.json
AGENT_CONF=$DIR/agent.json

say() { echo "power-cut-node: $*"; }
die() { say "error: $*" >&2; exit 1; }

agent() { "$BERTH_AGENT" "$@" --store "$DB" --config "$AGENT_CONF"; }

cni() { # COMMAND CONTAINER NETNS-PATH: berth's output (stdout and stderr)
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 CNI_PATH=$(dirname "$BERTH") \
    "$BERTH" <"$NET_CONF" 2>&1
}

address_of() { sed -n 's/.*"address": *"\([^"/]*\).*/\1/p' | head -n1; }

# The store's leases, one "container network address boot" line each, from berth-agent leases --json.
leases() {
  agent leases --json | awk '
    /"network":/     { n = $2 }
    /"address":/     { a = $2 }
    /"containerId":/ { c = $2 }
    /"boot":/        { b = $2 }
    /^    }/         { if (c != "") { gsub(/[",]/, "", n); gsub(/[",]/, "", a); gsub(/[",]/, "", c); gsub(/[",]/, "", b); print c, n, a, b }; c = "" }'
}

disarm() {
  rm -f "$DIR/plan"
  if [ -z "${POWER_CUT_NO_SYSTEMD:-}" ] && [ -f "$UNIT_PATH" ]; then
    systemctl disable --quiet "$UNIT" 2>/dev/null
    rm -f "$UNIT_PATH"
    systemctl daemon-reload 2>/dev/null
  fi
  sync
}

install_unit() {
  cp "$0" "$DIR/power-cut-node.sh"
  chmod 0755 "$DIR/power-cut-node.sh"
  cat >"$UNIT_PATH" <<EOF
# Installed by berth's scripts/power-cut-node.sh for one power-cut test; it removes itself after running.
[Unit]
Description=berth power-cut test: check the leases after the hard reset
DefaultDependencies=no
After=local-fs.target
Before=berth-recover.service berth-agent.service containerd.service crio.service kubelet.service rke2-server.service rke2-agent.service k3s.service k3s-agent.service
ConditionPathExists=$DIR/plan

[Service]
Type=oneshot
Environment=BERTH=$BERTH BERTH_AGENT=$BERTH_AGENT POWER_CUT_DIR=$DIR POWER_CUT_DATA_DIR=$DATA IP=$IP
ExecStart=$DIR/power-cut-node.sh after-boot
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload && systemctl enable --quiet "$UNIT" || die "cannot enable $UNIT"
}

cmd_cut() {
  [ "${1:-}" = --yes ] || die "this hard-resets the machine without syncing its disks: run 'cut --yes' on a test node"
  [ "$(id -u)" = 0 ] || die "run as root"
  [ -x "$BERTH" ] || die "$BERTH is not executable (set BERTH)"
  [ -x "$BERTH_AGENT" ] || die "$BERTH_AGENT is not executable (set BERTH_AGENT)"
  [ -f "$DIR/plan" ] && die "a test is already armed ($DIR/plan): run 'after-boot' or 'disarm' first"
  mkdir -p "$DIR" "$DATA"
  run=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
  cat >"$NET_CONF" <<EOF
{"cniVersion": "1.0.0", "name": "$NETWORK", "ipam": {"type": "berth", "dataDir": "$DATA", "ranges": [[{"subnet": "10.254.0.0/24"}]]}}
EOF
  echo '{"runtimeSockets": [], "metricsAddress": "off", "hostLocal": {"dirs": []}}' >"$AGENT_CONF"

  # The plan (which containers are added, which deleted again) and the unit are made durable before the
  # first lease: the sync below cannot flush anything of berth's for this run.
  : >"$DIR/plan.tmp"
  i=1
  while [ "$i" -le "$COUNT" ]; do
    echo "ADD pc-$run-$i" >>"$DIR/plan.tmp"
    [ $((i % 3)) = 0 ] && echo "DEL pc-$run-$i" >>"$DIR/plan.tmp"
    i=$((i + 1))
  done
  echo "RUN $run" >>"$DIR/plan.tmp"
  mv "$DIR/plan.tmp" "$DIR/plan"
  [ -z "${POWER_CUT_NO_SYSTEMD:-}" ] && install_unit
  rm -f "$DIR/acked"
  sync

  # The leases, through berth, for namespaces made here. Any failure disarms and stops: no reset.
  i=1
  while [ "$i" -le "$COUNT" ]; do
    c=pc-$run-$i
    "$IP" netns add "bpc-$run-$i" || { disarm; die "ip netns add failed"; }
    out=$(cni ADD "$c" "/var/run/netns/bpc-$run-$i") || { disarm; die "ADD $c failed: $out"; }
    a=$(echo "$out" | address_of)
    echo "ADD $c $a" >>"$DIR/acked"   # not synced: the check uses it only for the address, if it survived
    say "ACK ADD $c $a"
    i=$((i + 1))
  done
  grep '^DEL ' "$DIR/plan" | while read -r _ c; do
    n=${c##*-}
    out=$(cni DEL "$c" "/var/run/netns/bpc-$run-$n") || { say "DEL $c failed: $out"; exit 1; }
    say "ACK DEL $c"
  done || { disarm; die "a DEL failed"; }

  say "all operations acknowledged; hard reset now (sysrq b, no sync)"
  echo 1 >/proc/sys/kernel/sysrq
  echo b >/proc/sysrq-trigger
  sleep 30
  die "sysrq b did not reset the machine"
}

cmd_after_boot() {
  [ -f "$DIR/plan" ] || { say "nothing armed ($DIR/plan absent)"; return 0; }
  report=$DIR/report.txt
  violations=0
  violation() { violations=$((violations + 1)); say "VIOLATION $*"; }
  {
    say "after-boot check, $(date -u '+%Y-%m-%dT%H:%M:%SZ'), run $(sed -n 's/^RUN //p' "$DIR/plan")"
    if [ ! -f "$DB" ]; then
      violation "the store $DB is gone"
    else
      integrity=$(agent check --json | grep -c '"kind": "integrity"')
      [ "$integrity" = 0 ] || violation "berth-agent check reports an integrity finding"
      before=$(leases) || violation "berth-agent leases failed"
      dup=$(echo "$before" | awk 'NF { print $2, $3 }' | sort | uniq -d)
      [ -z "$dup" ] || violation "addresses leased twice: $dup"
      added=0 deleted=0
      for c in $(sed -n 's/^ADD //p' "$DIR/plan"); do
        held=$(echo "$before" | awk -v c="$c" '$1 == c { print $3 }')
        if grep -qx "DEL $c" "$DIR/plan"; then
          deleted=$((deleted + 1))
          [ -z "$held" ] || violation "acknowledged DEL of $c undone: still holds $held"
        else
          added=$((added + 1))
          acked=$(sed -n "s/^ADD $c //p" "$DIR/acked" 2>/dev/null)
          if [ -z "$held" ]; then violation "acknowledged ADD of $c lost"
          elif [ -n "$acked" ] && [ "$acked" != "$held" ]; then violation "ADD of $c acknowledged $acked, store holds $held"
          fi
        fi
      done
      say "checked $added acknowledged ADDs and $deleted acknowledged DELs against the store"
      agent recover || violation "berth-agent recover failed"
      left=$(leases | awk '$4 != "current"')
      [ -z "$left" ] || violation "after recover, leases of an earlier boot remain: $(echo "$left" | tr '\n' ';')"
      ns=bpc-first-$$
      "$IP" netns add "$ns" || violation "ip netns add failed"
      if out=$(cni ADD "pc-first-$$" "/var/run/netns/$ns"); then
        say "first ADD after boot: $(echo "$out" | address_of)"
        cni DEL "pc-first-$$" "/var/run/netns/$ns" >/dev/null || violation "DEL of the first ADD failed"
      else
        violation "the first ADD after boot failed: $out"
      fi
      "$IP" netns delete "$ns" 2>/dev/null
    fi
    if [ "$violations" = 0 ]; then say "RESULT ok violations=0"; else say "RESULT FAIL violations=$violations"; fi
  } 2>&1 | tee "$report.tmp"
  mv "$report.tmp" "$report"
  cp "$report" "$DIR/report-$(date -u +%Y%m%dT%H%M%SZ).txt"
  disarm
  grep -q 'RESULT ok' "$report"
}

case ${1:-} in
  cut) shift; cmd_cut "$@" ;;
  after-boot) cmd_after_boot ;;
  disarm) disarm; say "disarmed" ;;
  *) echo "usage: $0 cut --yes | after-boot | disarm" >&2; exit 2 ;;
esac
