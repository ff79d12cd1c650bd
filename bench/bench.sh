#!/usr/bin/env bash
# berth next to Debian's host-local, in one run on the same inputs, alternating A B A B so the machine's drift
# cancels. Writes benchmarks.md and add-latency.svg into BENCH_OUT (default docs/). BENCH_QUICK=1 is a short
# version; `make test` runs it into artifacts/bench so that a test run never rewrites the committed figures.
# The full run also builds bench/Berth.Benchmarks (a fake CRI runtime for the reconcile figures, and the
# BenchmarkDotNet micro-benchmarks); BENCH_QUICK=1 leaves it out, so that `make test` does not pay its build.
# Run as root from the repository root after `make build` (`make bench` does both).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=${BENCH_QUICK:-0}
out=${BENCH_OUT:-docs}
if [[ $quick == 1 ]]; then runs=25; sizes="0 1000 10000"; parallel="64"; recover_sizes="1000 10000"; passes=5
else runs=150; sizes="0 1000 10000 60000"; parallel="64 256"; recover_sizes="1000 10000 100000"; passes=60; fi
# host-local takes seconds per call with 60,000 files: fewer runs there keep the whole run under 15 minutes.
big_runs=40
runs_for() { if (( $1 >= 60000 )); then echo "$big_runs"; else echo "$runs"; fi; }
live=1000 reconcile_runs=5
tools=$PWD/artifacts/build/bin/Berth.Benchmarks/release/Berth.Benchmarks
berth=$PWD/artifacts/bin/berth agent=$PWD/artifacts/bin/berth-agent host_local=/usr/lib/cni/host-local
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
ns=berth-bench-$$
pids=() serving_pid=""
cleanup() {
  for pid in "${pids[@]}" $serving_pid; do kill "$pid" 2>/dev/null || true; done
  ip netns delete $ns 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add $ns
export BERTH_BOOT_ID_FILE=$work/boot_id
echo bench-boot-1 > "$BERTH_BOOT_ID_FILE"
gcc -O2 -o "$work/fsync-floor" bench/fsync-floor.c

conf() { # type dataDir
  printf '{"cniVersion":"1.0.0","name":"bench","type":"bridge","ipam":{"type":"%s","dataDir":"%s","ranges":[[{"subnet":"10.77.0.0/16"}]]}}' "$1" "$2"
}
# Three ways a call is answered: berth alone (no agent: its socket does not exist, one failed connect), berth with
# berth-agent answering on its socket ("agent"), and host-local.
agent_socket=$work/run/plugin.sock
plugins="berth agent host-local"
plugin_of() { case $1 in host-local) echo "$host_local" ;; *) echo "$berth" ;; esac; }
socket_of() { case $1 in agent) echo "$agent_socket" ;; *) echo "$work/no-agent/plugin.sock" ;; esac; }
data_type() { case $1 in host-local) echo host-local ;; *) echo berth ;; esac; }
call() { # plugin config command id [socket]
  BERTH_PLUGIN_SOCKET=${5:-$work/no-agent/plugin.sock} CNI_COMMAND=$3 CNI_CONTAINERID=$4 CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" <"$2" >/dev/null
}
# Bash's own clock: no process to fork, so nothing but the plugin is inside a measured interval.
now() { local t=${EPOCHREALTIME/./}; echo $((t * 1000)); }
stats() { # file of nanoseconds -> "median p90 p99" in ms
  sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[int(NR*0.5)+1]/1e6, v[int(NR*0.9)+1]/1e6, v[int(NR*0.99)+1]/1e6 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { # value target le|ge|lt
  awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == "le" ? v <= t : op == "ge" ? v >= t : v < t; print ok ? "met" : "**not met**" }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; } # KiB -> MiB
size() { stat -c %s "$1" | awk '{ printf "%.1f", $1 / 1048576 }'; }
# host-local's files for N existing leases (10.77.0.2 upwards), and berth's store taken over from them.
fill() { # n dir
  mkdir -p "$2/host-local/bench"
  # Past 65,534 (recover's 100,000) the addresses go on into 10.78.0.0/16: the import takes any address.
  awk -v n="$1" -v d="$2/host-local/bench" 'function ip(i) { return sprintf("10.%d.%d.%d", 77 + int(i / 65536), int(i / 256) % 256, i % 256) }
    BEGIN { for (i = 2; i < n + 2; i++) { f = d "/" ip(i); printf "fill%d\r\neth0", i > f; close(f) }
    if (n > 0) { printf "%s", ip(n + 1) > (d "/last_reserved_ip.0") } }'
  "$agent" import-host-local --dir "$2/host-local" --store "$2/berth/berth.db" >/dev/null
  # Writing thousands of files leaves dirty pages behind; flushed now, they do not slow the fsyncs measured next.
  sync
}

# The agent that answers the "agent" calls: nothing else to do (no runtime, no guardian, a pass a day).
mkdir -p "$work/serving"
printf '{"runtimeSockets":[],"metricsAddress":"off","intervalSeconds":86400,"hostLocal":{"dirs":[]},"pluginSocket":"%s"}' "$agent_socket" >"$work/serving/agent.json"
"$agent" run --store "$work/serving/berth.db" --config "$work/serving/agent.json" >"$work/serving/run.log" 2>&1 & serving_pid=$!
until grep -q 'plugin calls on' "$work/serving/run.log"; do
  kill -0 "$serving_pid" 2>/dev/null || { echo "the serving berth-agent did not start:" >&2; cat "$work/serving/run.log" >&2; exit 1; }
  sleep 0.1
done

declare -A result
for n in $sizes; do
  dir=$work/fill-$n
  fill "$n" "$dir"
  conf berth "$dir/berth" >"$dir/berth.json"
  # The agent's calls get a store of their own, a copy of the same one: on a node the agent answers every call or
  # none, and a store shared with the calls of berth alone would be checkpointed by those processes (at their
  # smaller WAL limit), which makes the agent open it again and its WAL grow from nothing, neither of which a node
  # the agent serves sees.
  cp -a "$dir/berth" "$dir/agent"
  conf berth "$dir/agent" >"$dir/agent.json"
  conf host-local "$dir/host-local" >"$dir/host-local.json"
  for i in $(seq 1 "$(runs_for "$n")"); do
    for p in $plugins; do
      plugin=$(plugin_of $p) sock=$(socket_of $p)
      # Neither plugin's timed calls wait behind the other's dirty pages: host-local writes two files into a
      # directory of N entries per call and never syncs, and that writeback otherwise lands in berth's next
      # fdatasync (with 60,000 leases it made berth's own ADD+DEL 1.25 × its empty-range figure; alone, the
      # same store costs what an empty one does).
      sync
      t0=$(now); call "$plugin" "$dir/$p.json" ADD "b$i" "$sock"; t1=$(now); call "$plugin" "$dir/$p.json" DEL "b$i" "$sock"; t2=$(now)
      echo $((t1 - t0)) >>"$dir/$p.add"; echo $((t2 - t1)) >>"$dir/$p.del"
    done
  done
  for p in $plugins; do
    result[$p,$n,add]=$(stats "$dir/$p.add"); result[$p,$n,del]=$(stats "$dir/$p.del")
    paste "$dir/$p.add" "$dir/$p.del" | awk '{ print $1 + $2 }' >"$dir/$p.both"; result[$p,$n,both]=$(stats "$dir/$p.both")
  done
  echo "leases $n: berth ADD ${result[berth,$n,add]%% *} ms, with the agent ${result[agent,$n,add]%% *} ms, host-local ADD ${result[host-local,$n,add]%% *} ms" >&2
done

sync
for i in $(seq 1 "$runs"); do t0=$(now); "$work/fsync-floor" "$work/floor"; t1=$(now); echo $((t1 - t0)) >>"$work/floor.ns"; done
floor=$(stats "$work/floor.ns")

declare -A burst
for n in $parallel; do
  for p in $plugins; do
    plugin=$(plugin_of $p) sock=$(socket_of $p)
    dir=$work/parallel-$p-$n; mkdir -p "$dir"
    conf "$(data_type $p)" "$dir/data" >"$dir/conf.json"
    sync
    t0=$(now)
    burst_pids=()
    for i in $(seq 1 "$n"); do (call "$plugin" "$dir/conf.json" ADD "p$i" "$sock" || echo fail >>"$dir/failures") & burst_pids+=($!); done
    wait "${burst_pids[@]}" # not the serving agent, which runs on
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
  measured=$( { /usr/bin/time -f '%e %M' "$agent" recover --store "$dir/berth/berth.db" >"$dir/recover.out"; } 2>&1 | tail -1)
  released=$(tail -1 "$dir/recover.out" | sed -n 's/.*released \([0-9]*\) of.*/\1/p')
  rec[$n]="$measured ${released:-?}"
  rm -rf "$dir" # 100,000 files: gone now rather than at the end
done
echo bench-boot-1 > "$BERTH_BOOT_ID_FILE"

# Peak RSS of one ADD, both plugins, with no and with the most leases measured above.
rss() { # plugin config id -> KiB
  CNI_COMMAND=ADD CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni /usr/bin/time -o "$work/rss" -f '%M' "$1" <"$2" >"$work/rss.out" \
    || { echo "ADD for the RSS figure failed: $1 $2: $(cat "$work/rss.out")" >&2; exit 1; }
  tail -1 "$work/rss"
}
most=${sizes##* } rss_sizes=$(printf '%s\n' 0 "${sizes##* }" | sort -un)
declare -A rss_add
for n in $rss_sizes; do
  rss_add[berth,$n]=$(rss "$berth" "$work/fill-$n/berth.json" "rss$n")
  rss_add[host-local,$n]=$(rss "$host_local" "$work/fill-$n/host-local.json" "rss$n")
done

# One reconcile pass over $live leases of this boot, and the service after an hour's worth of passes. The full
# run answers ListPodSandbox with a sandbox for every lease (the fake runtime of bench/Berth.Benchmarks), so
# every lease is kept on the runtime's word; BENCH_QUICK=1 runs without a runtime (runtimeSockets: []).
dir=$work/reconcile
fill "$live" "$dir"
sockets='[]' runtime_note="no runtime (BENCH_QUICK=1)"
if [[ $quick != 1 ]]; then
  dotnet build bench/Berth.Benchmarks/Berth.Benchmarks.csproj -c Release --nologo -v quiet >"$work/tools-build.log" 2>&1 || { cat "$work/tools-build.log" >&2; exit 1; }
  mkfifo "$dir/runtime.in" "$dir/runtime.out"
  # The import named the containers fill2 .. fill$((live + 1)).
  "$tools" fake-runtime "$dir/cri.sock" fill 2 "$live" <"$dir/runtime.in" >"$dir/runtime.out" & pids+=($!)
  exec {runtime_in}>"$dir/runtime.in" {runtime_out}<"$dir/runtime.out"
  read -r -t 120 -u "$runtime_out" line && [[ $line == ready ]] || { echo "the fake runtime did not start" >&2; exit 1; }
  sockets="[\"$dir/cri.sock\"]" runtime_note="a fake CRI runtime listing $live ready sandboxes"
fi
printf '{"runtimeSockets":%s,"metricsAddress":"off","intervalSeconds":1,"hostLocal":{"dirs":[]},"pluginSocket":"off"}' "$sockets" >"$dir/agent.json"
for i in $(seq 1 "$reconcile_runs"); do
  { /usr/bin/time -f '%e %M' "$agent" reconcile --store "$dir/berth/berth.db" --config "$dir/agent.json" >"$dir/reconcile.out"; } 2>>"$dir/reconcile.time"
done
reconcile_summary=$(tail -1 "$dir/reconcile.out")
reconcile_time=$(awk '{ print $1 * 1e9 }' "$dir/reconcile.time" >"$dir/reconcile.ns"; stats "$dir/reconcile.ns")
reconcile_rss=$(awk '{ print $2 }' "$dir/reconcile.time" | sort -n | tail -1)

"$agent" run --store "$dir/berth/berth.db" --config "$dir/agent.json" >"$dir/run.log" 2>&1 & agent_pid=$!; pids+=("$agent_pid")
deadline=$((SECONDS + passes * 5 + 60))
until (( $(grep -c 'reconcile: ' "$dir/run.log") >= passes )); do
  kill -0 "$agent_pid" 2>/dev/null && (( SECONDS < deadline )) || { echo "berth-agent run did not make $passes passes:" >&2; tail "$dir/run.log" >&2; exit 1; }
  sleep 0.5
done
agent_hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$agent_pid/status") agent_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent_pid/status")
run_summary=$(grep 'reconcile: ' "$dir/run.log" | tail -1 | sed 's/.*reconcile: //')
kill -TERM "$agent_pid"; wait "$agent_pid" || true
if [[ $quick != 1 ]]; then exec {runtime_in}>&- {runtime_out}<&-; wait "${pids[0]}" || true; fi
pids=()

# Full run only: one ADD and one DEL of each plugin cut into phases from exec to exit (bench/breakdown.py).
breakdown=""
if [[ $quick != 1 ]]; then breakdown=$(python3 bench/breakdown.py "$berth" "$host_local" "$work" "$ns" 100) || exit 1; fi

# BenchmarkDotNet, full run only: what the allocator and the store cost inside the process.
micro=""
if [[ $quick != 1 ]]; then
  "$tools" --filter '*' --artifacts "$work/bdn" >"$work/bdn.log" 2>&1 || { tail -30 "$work/bdn.log" >&2; exit 1; }
  micro=$(for f in "$work"/bdn/results/*-report-github.md; do echo "### $(basename "$f" -report-github.md | sed 's/^Berth.Benchmarks.//')"; echo; grep '^|' "$f" | sed 's/\*\*//g'; echo; done)
  micro_env=$(grep -A1 '^Job=' "$work"/bdn/results/*StoreBenchmarks-report-github.md | tr -s ' \n' ' ' | sed 's/ *$//')
fi

mkdir -p "$out"
{
  echo "# Benchmarks: berth next to host-local"
  echo
  echo "Produced by \`make bench\`$( [[ $quick == 1 ]] && echo ' (BENCH_QUICK=1)' ) on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r);"
  echo "$runs alternating runs per figure$( [[ " $sizes " == *" 60000 "* ]] && echo " ($big_runs with 60,000 leases)"). Whole processes, as a runtime calls them; berth fsyncs every change, host-local does not."
  echo
  echo "## Where we stand against the targets"
  echo
  echo "| target | measured | |"
  echo "|---|---|---|"
  read -r b0 _ <<<"${result[berth,0,both]}"; read -r h0 _ <<<"${result[host-local,0,both]}"
  r=$(ratio "$b0" "$h0"); echo "| ADD+DEL median with an empty range at most 0.8 × host-local's, berth alone | $b0 ms vs $h0 ms: $r × | $(verdict "$r" 0.8 le) |"
  read -r a0 _ <<<"${result[agent,0,both]}"
  r=$(ratio "$a0" "$h0"); echo "| the same with berth-agent answering | $a0 ms vs $h0 ms: $r × | $(verdict "$r" 0.8 le) |"
  for n in $sizes; do
    (( n >= 10000 )) || continue
    read -r an _ <<<"${result[agent,$n,both]}"; read -r bn _ <<<"${result[berth,$n,both]}"
    r=$(ratio "$an" "$bn"); echo "| ADD+DEL with $n leases with berth-agent answering never slower than berth alone | $an ms vs $bn ms: $r × | $(verdict "$r" 1 le) |"
  done
  for pair in 10000:10 60000:50; do
    n=${pair%%:*} want=${pair##*:}
    if [[ -n ${result[berth,$n,both]:-} ]]; then
      read -r bn _ <<<"${result[berth,$n,both]}"; read -r hn _ <<<"${result[host-local,$n,both]}"
      r=$(ratio "$hn" "$bn"); echo "| ADD+DEL with $n leases at least $want × faster than host-local | $bn ms vs $hn ms: $r × faster | $(verdict "$r" "$want" ge) |"
      r=$(ratio "$bn" "$b0"); echo "| ADD+DEL with $n leases within 1.2 × of berth's empty range | $bn ms vs $b0 ms: $r × | $(verdict "$r" 1.2 le) |"
    else
      echo "| ADD+DEL with $n leases at least $want × faster than host-local, and within 1.2 × of the empty range | not measured in this run | |"
    fi
  done
  if [[ -n ${rec[10000]:-} ]]; then
    read -r s _ _ <<<"${rec[10000]}"; echo "| recover with 10,000 earlier-boot leases under 1 s | $s s | $(verdict "$s" 1 lt) |"
  fi
  peak=$(for n in $rss_sizes; do echo "${rss_add[berth,$n]}"; done | sort -n | tail -1)
  echo "| peak RSS of berth under 30 MiB | $(mib "$peak") MiB (ADD, up to $most leases) | $(verdict "$(mib "$peak")" 30 lt) |"
  echo
  echo "## ADD and DEL wall time by existing leases in a /16 (ms: median / p90 / p99)"
  echo
  echo "| leases | berth ADD | host-local ADD | berth DEL | host-local DEL | ADD ratio | berth ADD+DEL | host-local ADD+DEL | ADD+DEL ratio |"
  echo "|---:|---|---|---|---|---:|---|---|---:|"
  for n in $sizes; do
    read -r bm b9 b99 <<<"${result[berth,$n,add]}"; read -r hm h9 h99 <<<"${result[host-local,$n,add]}"
    read -r dm d9 d99 <<<"${result[berth,$n,del]}"; read -r em e9 e99 <<<"${result[host-local,$n,del]}"
    read -r sm s9 s99 <<<"${result[berth,$n,both]}"; read -r tm t9 t99 <<<"${result[host-local,$n,both]}"
    echo "| $n | $bm / $b9 / $b99 | $hm / $h9 / $h99 | $dm / $d9 / $d99 | $em / $e9 / $e99 | $(ratio "$bm" "$hm") | $sm / $s9 / $s99 | $tm / $t9 / $t99 | $(ratio "$sm" "$tm") |"
  done
  echo
  echo "Ratios are berth / host-local (below 1: berth is faster). ADD+DEL is the sum within one run. Here berth runs"
  echo "alone: no agent answers its socket (one failed connect per call)."
  echo
  echo "## The same calls answered by berth-agent (ms: median / p90 / p99; alternating with the two above)"
  echo
  echo "| leases | ADD | DEL | ADD+DEL | ADD+DEL ratio to host-local | ADD+DEL ratio to berth alone |"
  echo "|---:|---|---|---|---:|---:|"
  for n in $sizes; do
    read -r am a9 a99 <<<"${result[agent,$n,add]}"; read -r dm d9 d99 <<<"${result[agent,$n,del]}"; read -r sm s9 s99 <<<"${result[agent,$n,both]}"
    read -r tm _ <<<"${result[host-local,$n,both]}"; read -r bm _ <<<"${result[berth,$n,both]}"
    echo "| $n | $am / $a9 / $a99 | $dm / $d9 / $d99 | $sm / $s9 / $s99 | $(ratio "$sm" "$tm") | $(ratio "$sm" "$bm") |"
  done
  echo
  echo "Floor: a process that writes a small file with fdatasync and exits: $(cut -d' ' -f1 <<<"$floor") ms median."
  echo
  echo "## Parallel ADD processes (all started at once; wall time until all answered)"
  echo
  echo "| processes | berth alone | berth with berth-agent answering | host-local |"
  echo "|---:|---|---|---|"
  for n in $parallel; do
    read -r bt bf <<<"${burst[berth,$n]}"; read -r at af <<<"${burst[agent,$n]}"; read -r ht hf <<<"${burst[host-local,$n]}"
    echo "| $n | $bt ms, $bf failed | $at ms, $af failed | $ht ms, $hf failed |"
  done
  echo
  echo "## berth-agent recover (earlier-boot leases; host-local has no counterpart)"
  echo
  echo "| leases | wall time | peak RSS | released |"
  echo "|---:|---:|---:|---:|"
  for n in $recover_sizes; do read -r s kb released <<<"${rec[$n]}"; echo "| $n | $s s | $(mib "$kb") MiB | $released |"; done
  echo
  echo "## berth-agent reconcile and run ($live leases of this boot; $runtime_note)"
  echo
  echo "| what | figure |"
  echo "|---|---|"
  echo "| \`berth-agent reconcile\`, whole process, median / p90 / p99 of $reconcile_runs | $(awk '{ printf "%.0f / %.0f / %.0f ms", $1, $2, $3 }' <<<"$reconcile_time") |"
  echo "| its peak RSS | $(mib "$reconcile_rss") MiB |"
  echo "| its outcome | $reconcile_summary |"
  echo "| \`berth-agent run\` after $passes passes ($( [[ $passes == 60 ]] && echo "an hour at the default 60 s interval" || echo "$passes of an hour's 60" ), 1 s apart): VmHWM / VmRSS | $(mib "$agent_hwm") / $(mib "$agent_rss") MiB |"
  echo "| its last pass | $run_summary |"
  echo
  echo "## Sizes and memory"
  echo
  echo "| | berth | host-local |"
  echo "|---|---:|---:|"
  echo "| executable | $(size "$berth") MiB | $(size "$host_local") MiB |"
  for n in $rss_sizes; do echo "| peak RSS of one ADD, $n leases | $(mib "${rss_add[berth,$n]}") MiB | $(mib "${rss_add[host-local,$n]}") MiB |"; done
  echo
  echo "berth-agent: $(size "$agent") MiB."
  echo
  echo "## Where one call's time goes (bench/breakdown.py)"
  echo
  echo "${breakdown:-Not run with BENCH_QUICK=1.}"
  echo
  echo "## Micro-benchmarks (BenchmarkDotNet, bench/Berth.Benchmarks)"
  echo
  if [[ -n $micro ]]; then
    echo "In one process, so without the process start that dominates the figures above. NextFreeRolledBack: the"
    echo "allocator's queries for the next free address, rolled back (no fsync); AddThenDelCommitted: an ADD and a DEL"
    echo "committed (two fsyncs); OpenClose and OpenAllocateRolledBack: what each plugin process pays around that. $micro_env."
    echo
    echo "$micro"
  else
    echo "Not run with BENCH_QUICK=1."
  fi
  echo
  echo "![ADD median by existing leases](add-latency.svg)"
  # Hand-written sections at the end of docs/benchmarks.md (measured once, not by this script) are kept.
  sed -n '/^<!-- kept by make bench -->/,$p' "$(dirname "$0")/../docs/benchmarks.md" 2>/dev/null | sed '1s/^/\n/'
} >"$out/benchmarks.md.new"
mv "$out/benchmarks.md.new" "$out/benchmarks.md"

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
