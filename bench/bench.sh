#!/usr/bin/env bash
# berth next to Debian's host-local, in one run on the same inputs, alternating A B A B so the machine's drift
# cancels. Writes benchmarks.md and add-latency.svg into BENCH_OUT (default docs/). BENCH_QUICK=1 is a short
# version; `make test` runs it into artifacts/bench so that a test run never rewrites the committed figures.
# Run as root from the repository root after `make build` (`make bench` does both).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=${BENCH_QUICK:-0}
out=${BENCH_OUT:-docs}
if [[ $quick == 1 ]]; then runs=25; sizes="0 1000 10000"; parallel="64"; recover_sizes="1000 10000"
else runs=150; sizes="0 1000 10000 60000"; parallel="64 256"; recover_sizes="1000 10000 100000"; fi
berth=$PWD/artifacts/bin/berth agent=$PWD/artifacts/bin/berth-agent host_local=/usr/lib/cni/host-local
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
ns=berth-bench-$$
trap 'ip netns delete $ns 2>/dev/null || true; rm -rf "$work"' EXIT
ip netns add $ns
export BERTH_BOOT_ID_FILE=$work/boot_id
echo bench-boot-1 > "$BERTH_BOOT_ID_FILE"
gcc -O2 -o "$work/fsync-floor" bench/fsync-floor.c

conf() { # type dataDir
  printf '{"cniVersion":"1.0.0","name":"bench","type":"bridge","ipam":{"type":"%s","dataDir":"%s","ranges":[[{"subnet":"10.77.0.0/16"}]]}}' "$1" "$2"
}
call() { # plugin config command id
  CNI_COMMAND=$3 CNI_CONTAINERID=$4 CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" <"$2" >/dev/null
}
# Bash's own clock: no process to fork, so nothing but the plugin is inside a measured interval.
now() { local t=${EPOCHREALTIME/./}; echo $((t * 1000)); }
stats() { # file of nanoseconds -> "median p90 p99" in ms
  sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[int(NR*0.5)+1]/1e6, v[int(NR*0.9)+1]/1e6, v[int(NR*0.99)+1]/1e6 }'
}
# host-local's files for N existing leases (10.77.0.2 upwards), and berth's store taken over from them.
fill() { # n dir
  mkdir -p "$2/host-local/bench"
  awk -v n="$1" -v d="$2/host-local/bench" 'BEGIN { for (i = 2; i < n + 2; i++) { f = sprintf("%s/10.77.%d.%d", d, int(i / 256), i % 256); printf "fill%d\r\neth0", i > f; close(f) }
    if (n > 0) { printf "10.77.%d.%d", int((n + 1) / 256), (n + 1) % 256 > (d "/last_reserved_ip.0") } }'
  "$agent" import-host-local --dir "$2/host-local" --store "$2/berth/berth.db" >/dev/null
  # Writing thousands of files leaves dirty pages behind; flushed now, they do not slow the fsyncs measured next.
  sync
}

declare -A result
for n in $sizes; do
  dir=$work/fill-$n
  fill "$n" "$dir"
  conf berth "$dir/berth" >"$dir/berth.json"
  conf host-local "$dir/host-local" >"$dir/host-local.json"
  for i in $(seq 1 "$runs"); do
    for p in berth host-local; do
      plugin=$berth; [[ $p == host-local ]] && plugin=$host_local
      t0=$(now); call "$plugin" "$dir/$p.json" ADD "b$i"; t1=$(now); call "$plugin" "$dir/$p.json" DEL "b$i"; t2=$(now)
      echo $((t1 - t0)) >>"$dir/$p.add"; echo $((t2 - t1)) >>"$dir/$p.del"
    done
  done
  for p in berth host-local; do result[$p,$n,add]=$(stats "$dir/$p.add"); result[$p,$n,del]=$(stats "$dir/$p.del"); done
  echo "leases $n: berth ADD ${result[berth,$n,add]%% *} ms, host-local ADD ${result[host-local,$n,add]%% *} ms" >&2
done

sync
for i in $(seq 1 "$runs"); do t0=$(now); "$work/fsync-floor" "$work/floor"; t1=$(now); echo $((t1 - t0)) >>"$work/floor.ns"; done
floor=$(stats "$work/floor.ns")

declare -A burst
for n in $parallel; do
  for p in berth host-local; do
    plugin=$berth; [[ $p == host-local ]] && plugin=$host_local
    dir=$work/parallel-$p-$n; mkdir -p "$dir"
    conf "$p" "$dir/data" >"$dir/conf.json"
    sync
    t0=$(now)
    for i in $(seq 1 "$n"); do (call "$plugin" "$dir/conf.json" ADD "p$i" || echo fail >>"$dir/failures") & done
    wait
    t1=$(now)
    burst[$p,$n]="$(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", t / 1e6 }') $( [[ -f $dir/failures ]] && wc -l <"$dir/failures" || echo 0)"
  done
done

declare -A rec
for n in $recover_sizes; do
  dir=$work/recover-$n
  echo bench-boot-1 > "$BERTH_BOOT_ID_FILE"
  fill "$n" "$dir"
  echo bench-boot-2 > "$BERTH_BOOT_ID_FILE"
  measured=$( { /usr/bin/time -f '%e %M' "$agent" recover --store "$dir/berth/berth.db" >/dev/null; } 2>&1 | tail -1)
  rec[$n]=$measured
done
echo bench-boot-1 > "$BERTH_BOOT_ID_FILE"
rss_add=$( (CNI_COMMAND=ADD CNI_CONTAINERID=rss CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 /usr/bin/time -f '%M' "$berth" <"$work/fill-0/berth.json" >/dev/null) 2>&1 | tail -1 )

mkdir -p "$out"
{
  echo "# Benchmarks: berth next to host-local"
  echo
  echo "Produced by \`make bench\`$( [[ $quick == 1 ]] && echo ' (BENCH_QUICK=1)' ) on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r);"
  echo "$runs alternating runs per figure. Whole processes, as a runtime calls them; berth fsyncs every change, host-local does not."
  echo
  echo "## ADD and DEL wall time by existing leases in a /16 (ms: median / p90 / p99)"
  echo
  echo "| leases | berth ADD | host-local ADD | berth DEL | host-local DEL | ADD ratio |"
  echo "|---:|---|---|---|---|---:|"
  for n in $sizes; do
    read -r bm b9 b99 <<<"${result[berth,$n,add]}"; read -r hm h9 h99 <<<"${result[host-local,$n,add]}"
    read -r dm d9 d99 <<<"${result[berth,$n,del]}"; read -r em e9 e99 <<<"${result[host-local,$n,del]}"
    echo "| $n | $bm / $b9 / $b99 | $hm / $h9 / $h99 | $dm / $d9 / $d99 | $em / $e9 / $e99 | $(awk -v a="$bm" -v b="$hm" 'BEGIN { printf "%.2f", a / b }') |"
  done
  echo
  echo "Floor: a process that writes a small file with fdatasync and exits: $(cut -d' ' -f1 <<<"$floor") ms median."
  echo
  echo "## Parallel ADD processes (all started at once; wall time until all answered)"
  echo
  echo "| processes | berth | host-local |"
  echo "|---:|---|---|"
  for n in $parallel; do
    read -r bt bf <<<"${burst[berth,$n]}"; read -r ht hf <<<"${burst[host-local,$n]}"
    echo "| $n | $bt ms, $bf failed | $ht ms, $hf failed |"
  done
  echo
  echo "## berth-agent recover (earlier-boot leases, all released)"
  echo
  echo "| leases | wall time | peak RSS |"
  echo "|---:|---:|---:|"
  for n in $recover_sizes; do read -r s kb <<<"${rec[$n]}"; echo "| $n | $s s | $((kb / 1024)) MiB |"; done
  echo
  echo "## Sizes and memory"
  echo
  echo "- berth: $(stat -c %s "$berth" | awk '{ printf "%.1f", $1 / 1048576 }') MiB; berth-agent: $(stat -c %s "$agent" | awk '{ printf "%.1f", $1 / 1048576 }') MiB; host-local: $(stat -c %s "$host_local" | awk '{ printf "%.1f", $1 / 1048576 }') MiB."
  echo "- Peak RSS of one berth ADD: $((rss_add / 1024)) MiB."
  echo
  echo "![ADD median by existing leases](add-latency.svg)"
} >"$out/benchmarks.md"

# The chart: ADD median against existing leases, both plugins.
{
  max=$(for n in $sizes; do for p in berth host-local; do echo "${result[$p,$n,add]%% *}"; done; done | sort -g | tail -1)
  count=$(wc -w <<<"$sizes")
  echo '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" font-family="sans-serif" font-size="12">'
  echo '<rect width="640" height="360" fill="white"/><line x1="60" y1="300" x2="610" y2="300" stroke="black"/><line x1="60" y1="20" x2="60" y2="300" stroke="black"/>'
  echo "<text x=\"330\" y=\"340\" text-anchor=\"middle\">existing leases</text><text x=\"15\" y=\"160\" transform=\"rotate(-90 15 160)\" text-anchor=\"middle\">ADD median (ms)</text>"
  echo "<text x=\"55\" y=\"24\" text-anchor=\"end\">$max</text><text x=\"55\" y=\"300\" text-anchor=\"end\">0</text>"
  for p in berth host-local; do
    colour=$([[ $p == berth ]] && echo '#1f77b4' || echo '#d62728')
    points=""; i=0
    for n in $sizes; do
      x=$(awk -v i=$i -v c="$count" 'BEGIN { printf "%.0f", 60 + 550 * (c > 1 ? i / (c - 1) : 0) }')
      y=$(awk -v v="${result[$p,$n,add]%% *}" -v m="$max" 'BEGIN { printf "%.0f", 300 - 280 * v / m }')
      points="$points $x,$y"
      [[ $p == berth ]] && echo "<text x=\"$x\" y=\"318\" text-anchor=\"middle\">$n</text>"
      i=$((i + 1))
    done
    echo "<polyline fill=\"none\" stroke=\"$colour\" stroke-width=\"2\" points=\"$points\"/>"
    echo "<text x=\"600\" y=\"$([[ $p == berth ]] && echo 40 || echo 58)\" text-anchor=\"end\" fill=\"$colour\">$p</text>"
  done
  echo '</svg>'
} >"$out/add-latency.svg"
cat "$out/benchmarks.md"
