#!/usr/bin/env python3
"""Where one ADD's and one DEL's time goes, berth next to host-local, from exec to exit.

Two measurements of the same calls, alternating berth and host-local:
  1. whole processes, as a runtime starts them: wall time, and from the kernel's own accounting (wait4) the CPU
     time in user and kernel mode and the minor page faults;
  2. the same calls under strace (seccomp-filtered, so only the marker system calls stop the process), whose
     timestamps cut each call into phases: loader and runtime start until stdin is read, the config until the
     store is touched, the store's open until the writer lock, the transaction until its fdatasync, each
     fdatasync, and printing the result and exiting. strace slows what it traces: read the phases as shares,
     and the first table for the totals.

Usage: breakdown.py BERTH HOST_LOCAL WORKDIR NETNS RUNS  (run as root; prints Markdown on stdout)
"""
import os
import re
import statistics
import subprocess
import sys
import time

berth, host_local, work, netns, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
TRACED = "execve,read,pread64,openat,flock,fdatasync,exit_group"


def config(plugin_type, data_dir):
    path = os.path.join(work, f"breakdown-{plugin_type}.json")
    with open(path, "w") as f:
        f.write('{"cniVersion":"1.0.0","name":"breakdown","type":"bridge","ipam":{"type":"%s","dataDir":"%s",'
                '"ranges":[[{"subnet":"10.78.0.0/16"}]]}}' % (plugin_type, data_dir))
    return path


def call(plugin, conf, command, container, trace=None):
    """Runs one CNI call; returns (wall seconds, rusage). Fails loudly on a non-zero exit."""
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=container, CNI_NETNS=f"/var/run/netns/{netns}",
               CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni")
    argv = [plugin]
    if trace:
        argv = ["strace", "-f", "--seccomp-bpf", "-ttt", "-T", "-e", f"trace={TRACED}", "-o", trace, plugin]
    with open(conf, "rb") as stdin:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, env=env)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"breakdown: {command} {container} with {plugin} failed: {output.decode(errors='replace')}")
    return wall, usage


LINE = re.compile(r"^(\d+) +(\d+\.\d+) (.*)$")


def phases(trace, berth_like):
    """The phase boundaries of one traced call, in seconds from its execve."""
    events = []
    main_pid = None
    for line in open(trace):
        m = LINE.match(line)
        if not m:
            continue
        pid, at, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        if main_pid is None and rest.startswith("execve("):
            main_pid = pid
        duration = re.search(r"<(\d+\.\d+)>$", rest)
        events.append((pid, at, rest, float(duration.group(1)) if duration else 0.0))
    t0 = events[0][1]

    def first(pattern, after=0.0):
        for pid, at, rest, d in events:
            if at >= after and re.search(pattern, rest):
                return at, d
        return None, 0.0

    stdin, _ = first(r"^(read|pread64)\(0,")
    exit_at, _ = first(r"^exit_group\(")
    gone = max(at for pid, at, rest, d in events if pid == main_pid and "exited with" in rest)
    out = {"start": stdin - t0}
    if berth_like:
        opened, _ = first(r'^openat\(.*berth\.db"', stdin)
        locked, _ = first(r"^flock\(.*LOCK_EX", opened or stdin)
        wal_at, wal_d = first(r"^fdatasync\(", locked or stdin)
        out["config"] = (opened or exit_at) - stdin
        if opened and locked:
            out["store open"] = locked - opened
        if wal_at:
            dir_at, dir_d = first(r"^fdatasync\(", wal_at + wal_d)
            out["transaction"] = wal_at - locked
            out["fdatasync WAL"] = wal_d
            if dir_at:
                out["fdatasync directory"] = dir_at + dir_d - (wal_at + wal_d)
                last = dir_at + dir_d
            else:
                last = wal_at + wal_d
            out["result, exit"] = exit_at - last
        elif locked:
            out["transaction"] = exit_at - locked
    else:
        locked, _ = first(r"^flock\(.*LOCK_EX", stdin)
        unlocked, _ = first(r"^flock\(.*LOCK_UN", locked)
        out["config"] = locked - stdin
        out["store open"] = 0.0
        out["transaction"] = unlocked - locked
        out["result, exit"] = exit_at - unlocked
    out["teardown"] = gone - exit_at
    out["total"] = gone - t0
    return out


def ms(values):
    return f"{statistics.median(values) * 1000:.2f}" if values else "–"


def main():
    plugins = {"berth": (berth, config("berth", os.path.join(work, "breakdown-berth"))),
               "host-local": (host_local, config("host-local", os.path.join(work, "breakdown-host-local")))}
    whole = {(p, c): [] for p in plugins for c in ("ADD", "DEL")}
    traced = {(p, c): [] for p in plugins for c in ("ADD", "DEL")}
    for i in range(runs):
        for name, (plugin, conf) in plugins.items():
            for command in ("ADD", "DEL"):
                whole[name, command].append(call(plugin, conf, command, f"w{i}"))
    for i in range(runs):
        for name, (plugin, conf) in plugins.items():
            for command in ("ADD", "DEL"):
                trace = os.path.join(work, "breakdown.trace")
                call(plugin, conf, command, f"t{i}", trace)
                traced[name, command].append(phases(trace, name == "berth"))
    # The kernel's CPU time of a process is exact in sum (user + system), its split between the two is sampled
    # at timer ticks: only the sum is shown.
    print(f"Whole processes, median of {runs} (CPU time and page faults from wait4's rusage):")
    print()
    print("| call | wall ms | CPU ms | not on a CPU ms | minor faults |")
    print("|---|---:|---:|---:|---:|")
    for (name, command), samples in whole.items():
        wall = [w for w, u in samples]
        cpu = [u.ru_utime + u.ru_stime for w, u in samples]
        waiting = [w - (u.ru_utime + u.ru_stime) for w, u in samples]
        faults = statistics.median(u.ru_minflt for w, u in samples)
        print(f"| {name} {command} | {ms(wall)} | {ms(cpu)} | {ms(waiting)} | {faults:.0f} |")
    print()
    print(f"The same calls under strace, cut at system calls (ms from execve, median of {runs}):")
    print()
    names = ["start", "config", "store open", "transaction", "fdatasync WAL", "fdatasync directory", "result, exit",
             "teardown", "total"]
    print("| call | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for (name, command), samples in traced.items():
        print(f"| {name} {command} | " + " | ".join(ms([s[n] for s in samples if n in s]) for n in names) + " |")


main()
