#!/bin/sh
# One storm worker in the guest: ADDs of new containers and DELs of random live ones, forever (until the host
# cuts the power). Prints "T:ACK ADD <container> <address>" / "T:ACK DEL <container>" only after berth exited 0,
# and "T:TRY DEL <container>" before a DEL starts (a DEL cut in flight may or may not have happened). Each of
# these is also marked in the write log (mark.sh; only in the replay mode).
W=$1 B=$2
NS=/run/netns/s$W
KEEP=6
i=0 n=0 live=""
cni() { # COMMAND CONTAINER
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$NS CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin berth </etc/berth/net.json 2>&1
}
while :; do
  i=$((i + 1))
  c="${B}w${W}n$i"
  if out=$(cni ADD "$c"); then
    addr=$(echo "$out" | sed -n 's/.*"address": *"\([^"/]*\).*/\1/p' | head -n1)
    mark "$W" "ACK ADD $c $addr"
    echo "T:ACK ADD $c $addr"
    live="$live $c"
    n=$((n + 1))
  else
    echo "T:ERR ADD $c $(echo "$out" | tr '\n' ' ' | cut -c1-200)"
  fi
  if [ $n -ge $KEEP ] || { [ $n -gt 0 ] && [ $((RANDOM % 3)) = 0 ]; }; then
    k=$((RANDOM % n + 1))
    v=$(echo $live | cut -d' ' -f$k)
    mark "$W" "TRY DEL $v"   # before the DEL's first write: a DEL in flight may or may not have happened
    echo "T:TRY DEL $v"
    if out=$(cni DEL "$v"); then
      mark "$W" "ACK DEL $v"
      echo "T:ACK DEL $v"
      live=$(echo $live | tr ' ' '\n' | grep -vx "$v" | tr '\n' ' ')
      n=$((n - 1))
    else
      echo "T:ERR DEL $v $(echo "$out" | tr '\n' ' ' | cut -c1-200)"
    fi
  fi
done
