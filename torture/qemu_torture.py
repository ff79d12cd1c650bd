#!/usr/bin/env python3
"""Power-cut torture of berth in a QEMU guest (software emulation), one mode per run.

Modes:
  reset          in-place reset (QMP system_reset) at a random moment; only the guest's page cache is lost
  strict         QEMU's blklogwrites under the disk, SIGKILL at a random moment, the next boot from the image
                 rebuilt from the write log up to its last flush
  strict-subset  as strict, plus a random subset of the writes logged after the last flush
  node-script    scripts/power-cut-node.sh runs in the guest and resets it itself with sysrq b
  replay         one storm recorded under blklogwrites, then thousands of crash states built from its log and
                 checked on the host without booting (torture/replay.py)

The guest (torture/guest/init) prints, on the serial console, the store as each boot found it, before and
after `berth-agent recover`, and every acknowledged operation. This program checks, for every cut, the
invariants of docs/reliability.md against the operations acknowledged before it, and prints one line:
  SUMMARY mode=<mode> cycles=N acked=N cuts=N violations=N
Exit status: 0 when there was no violation (with --expect-violations: when there was at least one).
"""
import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "artifacts", "torture")

LOG_FLUSH, LOG_FUA, LOG_DISCARD, LOG_MARK = 1, 2, 4, 8
LOG_MAGIC = 0x6A736677736872


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# Replay of a blklogwrites log (the dm-log-writes layout): sector 0 holds the super block
# (magic, version, nr_entries: le64; sectorsize: le32). From sector 1 on, each entry is one sector whose head
# is (sector, nr_sectors, flags, data_len: le64), followed by nr_sectors sectors of data for a write or a
# write of zeroes; a flush or a discard has no data. Sector numbers count in the log's sector size.

def read_log(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 512:
        return 512, []
    magic, _version, _nr, sectorsize = struct.unpack_from("<QQQI", data, 0)
    if magic != LOG_MAGIC:
        raise RuntimeError(f"{path}: not a blklogwrites log (magic {magic:#x})")
    entries = []
    pos = sectorsize
    while pos + sectorsize <= len(data):
        sector, nr, flags, _dlen = struct.unpack_from("<QQQQ", data, pos)
        if sector == 0 and nr == 0 and flags == 0:
            break  # never written: the end of the log (QEMU may have been killed while writing it)
        has_data = nr > 0 and not flags & (LOG_DISCARD | LOG_FLUSH)
        end = pos + sectorsize + (nr * sectorsize if has_data else 0)
        if end > len(data):
            break  # the last entry's data was cut short: that write never completed
        payload = data[pos + sectorsize:end] if has_data else None
        entries.append((sector, nr, flags, payload))
        pos = end
    return sectorsize, entries


def ends_unflushed(logpath):
    """Whether the log's last entry is a write not yet followed by a flush (the guest is between a write
    and its flush)."""
    try:
        _, entries = read_log(logpath)
    except (OSError, RuntimeError):
        return False
    return bool(entries) and not entries[-1][2] & LOG_FLUSH


def replay(image, logpath, rng, keep_after_flush):
    """Applies to IMAGE the logged writes up to the last flush; with keep_after_flush, also each later write
    with probability 1/2 (a disk's volatile cache may have written any of them). Returns a description."""
    sectorsize, entries = read_log(logpath)
    last_flush = -1
    for i, (_s, _n, flags, _p) in enumerate(entries):
        if flags & LOG_FLUSH:
            last_flush = i
    applied = kept = dropped = 0
    with open(image, "r+b") as img:
        for i, (sector, nr, flags, payload) in enumerate(entries):
            if flags & (LOG_FLUSH | LOG_MARK):
                continue
            if i > last_flush and not flags & LOG_FUA:
                if not keep_after_flush or rng.random() < 0.5:
                    dropped += 1
                    continue
                kept += 1
            img.seek(sector * sectorsize)
            if flags & LOG_DISCARD:
                img.write(b"\0" * (nr * sectorsize))
            else:
                img.write(payload)
            applied += 1
    return (f"log: {len(entries)} entries, last flush at {last_flush + 1}, applied {applied} writes "
            f"({kept} kept after the flush), dropped {dropped}")


# ---------------------------------------------------------------------------------------------------------
# The invariants, checked from the serial console's lines in order, across boots.

class Checker:
    def __init__(self, mode):
        self.mode = mode
        self.boot = None
        self.boots = 0
        self.checked = 0
        self.acked = 0
        self.violations = 0
        self.expect = {}      # container -> ("add", address) | ("del", None) | ("maybe", None)
        self.pre = []
        self.post = []
        self.integrity = {}
        self.errors = 0
        self.served_boots = 0
        self.fallbacks = {}   # boot -> calls the plugin did itself while the agent served (berth.serve=1)

    def violation(self, what):
        self.violations += 1
        print(f"VIOLATION mode={self.mode} boot={self.boot}: {what}", flush=True)

    def line(self, text):
        m = re.search(r"(?:^T:|power-cut-node: )(ACK|TRY) (ADD|DEL) (\S+)(?: (\S+))?", text)
        if m:
            kind, verb, container, addr = m.groups()
            if kind == "TRY":
                self.expect[container] = ("maybe", None)
            elif verb == "ADD":
                self.acked += 1
                if not addr:
                    self.violation(f"ADD of {container} acknowledged without an address: {text!r}")
                for other, (state, held) in self.expect.items():
                    if state == "add" and held == addr and other != container:
                        self.violation(f"{addr} acknowledged to {container} while {other} holds it")
                self.expect[container] = ("add", addr)
            else:
                self.acked += 1
                self.expect[container] = ("del", None)
            return
        m = re.search(r"power-cut-node: RESULT (\S+) violations=(\d+)", text)
        if m:
            if int(m.group(2)) or m.group(1) != "ok":
                self.violation(f"power-cut-node.sh after-boot: {text.strip()}")
            return
        if not text.startswith("T:"):
            return
        words = text[2:].split()
        if not words:
            return
        tag = words[0]
        if tag == "BOOT":
            self.boot = words[1]
            self.boots += 1
            self.pre, self.post, self.integrity = [], [], {}
        elif tag == "LEASE" and len(words) >= 6:
            (self.pre if words[1] == "pre" else self.post).append(tuple(words[2:6]))
        elif tag == "INTEGRITY":
            self.integrity[words[1]] = " ".join(words[2:])
        elif tag == "PRE-END":
            self.check_pre()
        elif tag == "RECOVER-START":
            # From here on recover may release any lease of an earlier boot: what was acknowledged before
            # has been checked (PRE-END) and no longer binds.
            self.expect = {}
        elif tag == "RECOVER":
            if words[1] not in ("rc=0", "rc=nostore"):
                self.violation(f"berth-agent recover failed: {text.strip()}")
        elif tag == "POST-END":
            self.check_post()
        elif tag == "SERVE":
            if words[1] != "ok":
                self.violation(f"berth-agent did not serve the plugin's calls: {text.strip()}")
            self.served_boots += 1
        elif tag == "FALLBACKS" and len(words) > 1 and words[1].isdigit():
            self.fallbacks[self.boot] = int(words[1])
        elif tag == "FIRST" and words[1] != "ok":
            self.violation(f"the first ADD after boot failed: {text.strip()}")
        elif tag == "ERR":
            self.errors += 1
            print(f"note: {text.strip()}", flush=True)
        elif tag == "HALT":
            self.violation(f"guest stopped: {text.strip()}")

    def check_common(self, phase, leases):
        integrity = self.integrity.get(phase, "missing")
        if integrity in ("nostore", "noschema"):
            if phase == "pre" and any(v[0] == "add" for v in self.expect.values()):
                self.violation("the store is gone, but ADDs were acknowledged")
        elif integrity != "ok":
            self.violation(f"PRAGMA integrity_check ({phase}): {integrity}")
        seen = {}
        for container, network, address, _boot in leases:
            key = (network, address)
            if key in seen:
                self.violation(f"address {address} in {network} leased twice ({phase}): {seen[key]} and {container}")
            seen[key] = container

    def check_pre(self):
        self.checked += 1
        self.check_common("pre", self.pre)
        held = {}
        for container, _network, address, _boot in self.pre:
            held.setdefault(container, []).append(address)
        for container, (state, addr) in sorted(self.expect.items()):
            if state == "add":
                if container not in held:
                    self.violation(f"acknowledged ADD of {container} ({addr}) lost in the cut")
                elif addr not in held[container]:
                    self.violation(f"acknowledged ADD of {container} got {addr}, the store holds {held[container]}")
            elif state == "del" and container in held:
                self.violation(f"acknowledged DEL of {container} undone by the cut: still holds {held[container]}")

    def check_post(self):
        self.check_common("post", self.post)
        for container, network, address, boot in self.post:
            if boot != self.boot:
                self.violation(f"after recover, {address} in {network} ({container}) is still leased from boot {boot}")


# ---------------------------------------------------------------------------------------------------------
# One QEMU process: serial console on a pipe, QMP on a Unix socket.

class Vm:
    """The torture's guest by default; make node-test (torture/node/node_test.py) passes its own kernel, initrd,
    memory and accelerator."""

    def __init__(self, work, append, drive_args, serial_log, kernel=None, initrd=None, memory="384", accel="tcg",
                 cpu="qemu64,+rdrand", smp=1):
        self.qmp_path = os.path.join(work, "qmp.sock")
        cmd = ["qemu-system-x86_64", "-machine", f"q35,accel={accel}", "-cpu", cpu, "-m", memory,
               "-smp", str(smp), "-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
               "-kernel", kernel or os.path.join(GUEST, "kernel", "vmlinux"),
               "-initrd", initrd or os.path.join(GUEST, "initramfs.cpio"),
               "-append", "console=ttyS0 quiet loglevel=3 panic=-1 " + append] + drive_args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.pending = []  # complete lines read but not yet handed out (after the line wait_for stopped at)
        self.serial_log = serial_log
        self.qmp = None

    def _connect_qmp(self):
        if self.qmp:
            return
        deadline = time.monotonic() + 30
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("QMP socket never came up")
                select.select([self.proc.stdout], [], [], 0.05)  # QEMU is starting; its output wakes us too
        self.qmp = s.makefile("rw")
        self.qmp.readline()  # greeting
        self.qmp_cmd("qmp_capabilities")

    def qmp_cmd(self, name):
        self._connect_qmp()
        self.qmp.write(json.dumps({"execute": name}) + "\n")
        self.qmp.flush()
        while True:
            reply = json.loads(self.qmp.readline())
            if "return" in reply or "error" in reply:
                if "error" in reply:
                    raise RuntimeError(f"QMP {name}: {reply['error']}")
                return reply

    def lines(self, timeout):
        """Complete serial lines that arrive within TIMEOUT seconds (returns at the first batch)."""
        if self.pending:
            out, self.pending = self.pending, []
            return out
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not r:
            return []
        return self._read_available(fd)

    def _read_available(self, fd):
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
            self.serial_log.write(chunk)
        *complete, self.buf = self.buf.split(b"\n")
        return [c.decode("utf-8", "replace").rstrip("\r") for c in complete]

    def wait_for(self, tag, timeout, feed):
        """Passes each serial line to FEED until one starts with T:<tag>; False on timeout, T:HALT or QEMU's exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            batch = self.lines(deadline - time.monotonic())
            for i, text in enumerate(batch):
                feed([text])
                if text.startswith("T:" + tag) or text.startswith("T:HALT"):
                    # The lines read after it in the same batch are the caller's next ones, not lost.
                    self.pending = batch[i + 1:] + self.pending
                    return text.startswith("T:" + tag)
        return False

    def run_until(self, deadline, feed):
        """Passes the serial lines to FEED until the monotonic DEADLINE or QEMU's exit."""
        while time.monotonic() < deadline and self.proc.poll() is None:
            feed(self.lines(deadline - time.monotonic()))

    def drain_after_stop(self):
        """After the guest can no longer write: every complete line still in the pipe. A partial last line
        (cut mid-write) is dropped: it was never fully printed, so it acknowledges nothing."""
        fd = self.proc.stdout.fileno()
        out, self.pending = self.pending + self._read_available(fd), []
        if self.buf:
            self.serial_log.write(b"\n[host: partial line dropped at the cut]\n")
        self.buf = b""
        return out

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.set_blocking(self.proc.stdout.fileno(), True)
        rest = self.proc.stdout.read()
        self.buf += rest
        self.serial_log.write(rest)
        *complete, partial = self.buf.split(b"\n")
        if partial:
            self.serial_log.write(b"\n[host: partial line dropped at the cut]\n")
        self.buf = b""
        complete_lines, self.pending = self.pending + [c.decode("utf-8", "replace").rstrip("\r") for c in complete], []
        if self.qmp:
            try:
                self.qmp.close()
            except OSError:
                pass
            self.qmp = None
        return complete_lines


# ---------------------------------------------------------------------------------------------------------

FS_BYTES = 64 << 20  # the store's ext4 file system


def make_disk(path, tail=0):
    """A new disk image: a 64 MiB ext4, followed by TAIL bytes that the file system does not use (the replay
    mode writes its acknowledgement markers there)."""
    with open(path, "wb") as f:
        f.truncate(FS_BYTES + tail)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", path,
                    f"{FS_BYTES // 1024}k"], check=True)


def logged_drive(image, logf):
    """QEMU arguments for a virtio-blk disk on IMAGE with blklogwrites logging every write and flush to LOGF."""
    return ["-blockdev", f"driver=file,node-name=data,filename={image}",
            "-blockdev", f"driver=file,node-name=wlog,filename={logf}",
            "-blockdev", "driver=blklogwrites,node-name=disk,file=data,log=wlog,log-append=off",
            "-device", "virtio-blk-pci,drive=disk,write-zeroes=off,discard=off"]


def stop_on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the finally that kills QEMU


def main():
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["reset", "strict", "strict-subset", "node-script", "replay"])
    ap.add_argument("--seconds", type=float, required=True, help="stop starting new cycles after this")
    ap.add_argument("--work", required=True, help="scratch directory (removed by the caller)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--unsafe-no-sync", action="store_true",
                    help="negative control: the guest runs the berth built without fsync (-p:BerthUnsafeNoSync=true)")
    ap.add_argument("--agent-serving", action="store_true",
                    help="berth-agent run answers the plugin's calls in the guest (berth.serve=1)")
    ap.add_argument("--expect-violations", action="store_true",
                    help="negative control: succeed only if a violation is found (stops at the first, "
                         "ignores --seconds, at most 8 cuts)")
    ap.add_argument("--name", default=None, help="mode name printed in SUMMARY")
    ap.add_argument("--recording", default=None,
                    help="replay mode: check the states of the recording in this earlier --work directory, no boot")
    ap.add_argument("--tag", default="SUMMARY",
                    help="first word of the result line (the negative control prints CONTROL, not SUMMARY)")
    args = ap.parse_args()
    if args.mode == "replay":
        # torture/replay.py: no cut per boot, crash states from one recorded storm. Imported here, under another
        # name than this module's replay(), because it imports this module.
        import replay as replay_mode
        return replay_mode.main(args)

    name = args.name or args.mode
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    log(f"{name}: seed {seed} (rerun with --seed {seed}), budget {args.seconds:.0f} s")
    os.makedirs(args.work, exist_ok=True)
    logs_dir = os.path.join(GUEST, "logs")
    os.makedirs(logs_dir, exist_ok=True)
    serial_log = open(os.path.join(logs_dir, f"{name}.serial.log"), "wb", buffering=0)

    checker = Checker(name)
    cuts = 0
    durable = os.path.join(args.work, "disk.img")
    make_disk(durable)
    guest_mode = "node" if args.mode == "node-script" else "storm"
    append = (f"berth.mode={guest_mode} berth.workers={args.workers} berth.unsafe={1 if args.unsafe_no_sync else 0} "
              f"berth.serve={1 if args.agent_serving else 0}")
    strict = args.mode.startswith("strict")
    start = time.monotonic()
    vm = None

    def feed(lines):
        for text in lines:
            checker.line(text)

    def wait_for(tag, timeout):
        return vm.wait_for(tag, timeout, feed)

    def run_until(deadline):
        vm.run_until(deadline, feed)

    def start_vm():
        if strict:
            live = os.path.join(args.work, "live.img")
            logf = os.path.join(args.work, "writes.log")
            shutil.copyfile(durable, live)
            open(logf, "wb").close()
            drive = logged_drive(live, logf)
        else:
            drive = ["-drive", f"file={durable},format=raw,if=none,id=d0,cache=writeback",
                     "-device", "virtio-blk-pci,drive=d0,write-zeroes=off,discard=off"]
        return Vm(args.work, append, drive, serial_log)

    try:
        cycle_start = None
        longest = 0.0  # the longest cycle so far
        while True:
            now = time.monotonic()
            if cycle_start is not None:
                longest = max(longest, now - cycle_start)
                # No cycle starts that would end, with the boot that checks it, past the budget. The negative
                # control instead goes on until it has caught a loss, for at most 8 cuts: a cut that came
                # before any acknowledgement could not have lost one.
                if args.expect_violations:
                    if cuts >= 8:
                        break
                elif now - start + 2 * longest > args.seconds:
                    break
            if args.expect_violations and checker.violations:
                break
            cycle_start = now
            if vm is None:
                vm = start_vm()
            # A boot: wait for it, then cut at a random moment.
            if not wait_for("BOOT", 300):
                checker.violation("the guest did not boot (see the serial log)")
                break
            if args.mode == "node-script":
                # The script resets the guest itself (sysrq b); the next BOOT line is the next cycle.
                if not wait_for("NODE-CUT-START", 300):
                    checker.violation("the guest did not reach power-cut-node.sh cut")
                    break
                cuts += 1
                continue
            if rng.random() < 0.15 and not args.expect_violations:
                # Early: during the dump, recover or the first ADD.
                run_until(time.monotonic() + rng.uniform(0, 3))
            else:
                if not wait_for("STORM-START", 300):
                    checker.violation("the guest did not reach the storm")
                    break
                run_until(time.monotonic() + rng.uniform(1 if args.expect_violations else 0.2, 10))
            if args.mode == "strict-subset":
                # Cut where the subset matters: when writes wait for a flush (up to 5 s more).
                logf = os.path.join(args.work, "writes.log")
                until = time.monotonic() + 5
                while time.monotonic() < until and vm.proc.poll() is None and not ends_unflushed(logf):
                    feed(vm.lines(0.02))
            cuts += 1
            if strict:
                feed(vm.kill())
                vm = None
                info = replay(durable, os.path.join(args.work, "writes.log"), rng,
                              keep_after_flush=args.mode == "strict-subset")
                serial_log.write(f"[host: SIGKILL; {info}]\n".encode())
            else:
                vm.qmp_cmd("stop")
                feed(vm.drain_after_stop())
                serial_log.write(b"[host: system_reset]\n")
                vm.qmp_cmd("system_reset")
                vm.qmp_cmd("cont")
        # The last cut is checked by one more boot.
        if vm is None:
            vm = start_vm()
        if not wait_for("POST-END", 300):
            checker.violation("the guest did not boot after the last cut")
    finally:
        if vm is not None:
            feed(vm.kill())
        serial_log.close()

    elapsed = time.monotonic() - start
    cycles = checker.checked
    if args.agent_serving:
        log(f"{name}: berth-agent answered the plugin's calls in {checker.served_boots} boots; calls the plugin did "
            f"itself meanwhile: {sum(checker.fallbacks.values())} (as last counted before each cut)")
    print(f"{args.tag} mode={name} cycles={cycles} acked={checker.acked} cuts={cuts} violations={checker.violations}",
          flush=True)
    log(f"{name}: {elapsed:.0f} s, {checker.boots} boots, {checker.errors} failed operations (not acknowledged), seed {seed}")
    if args.expect_violations:
        return 0 if checker.violations else 1
    return 1 if checker.violations else 0


if __name__ == "__main__":
    sys.exit(main())
