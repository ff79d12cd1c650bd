#!/usr/bin/env python3
"""make node-test: a whole Debian 12 node (systemd, containerd, berth's .deb) in QEMU through power cuts.

Each boot of the VM built by torture/node/build-image.sh prints, on its serial console, the torture's protocol
(torture/qemu_torture.py): T:BOOT, the store before berth-recover.service (T:LEASE pre, PRE-END), the store
once containerd runs (T:LEASE post, POST-END), the pods it creates through CRI (T:ACK ADD <sandbox> <address>,
T:ACK DEL <sandbox>), and its own per-boot checks (T:CHECK <name> ok|FAIL). This program cuts the power at a
random moment of each boot, often while a pod is being created (after T:TRY ADD) or while the agent reconciles
(after T:RECONCILE-START), by SIGKILL of QEMU with nothing synced: every other boot with the disk as the host's
page cache holds it ("kill"), the others on blklogwrites, the next boot's disk rebuilt from the write log up
to its last flush ("strict", the torture's replay). The checks of the torture's Checker (acknowledged ADDs and
DELs survive, no address held twice, no lease of an earlier boot once the runtime starts) run against what the
host recorded before each cut; the guest's CHECK lines add systemd's ordering, the agent's service, the
package's life. Output ends with
  SUMMARY mode=node cycles=N acked=N cuts=N violations=N        (exit 1 on a violation)
With --control (berth-recover.service masked on the kernel command line) it must find the lost pods' leases
still held when containerd starts (LEAKED), stops at the first cut that shows them (at most 3 cuts) and prints
CONTROL instead of SUMMARY (exit 0 only if it caught a leak).
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import qemu_torture as qt  # noqa: E402  (the Checker, the QEMU process and the write-log replay)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_LOCAL_LEAK = "host-local-file-of-an-earlier-boot"  # the boot post.sh gives a host-local file it finds


class NodeChecker(qt.Checker):
    """The torture's invariants, plus the node's: per-boot CHECK lines, a new boot ID every boot, and a count
    of the leases a boot's runtime found still held from an earlier boot (leaked)."""

    def __init__(self, mode):
        super().__init__(mode)
        self.boot_ids = []
        self.checks_ok = 0
        self.checks_failed = 0
        self.leaked = 0
        self.leaked_host_local = 0
        self.boot_ok = 0
        self.boot_failed = []

    def line(self, text):
        if text.startswith("T:CHECK "):
            words = text[2:].split(maxsplit=3)
            name = words[1] if len(words) > 1 else "?"
            if len(words) > 2 and words[2] == "ok":
                self.checks_ok += 1
                self.boot_ok += 1
            else:
                self.checks_failed += 1
                self.boot_failed.append(name)
                self.violation(f"check {text[len('T:CHECK '):].strip()}")
            return
        if text.startswith("T:BOOT "):
            boot = text.split()[1]
            if boot in self.boot_ids:
                self.violation(f"boot ID {boot} did not change")
            self.boot_ids.append(boot)
            self.boot_ok, self.boot_failed = 0, []
        super().line(text)

    def caught(self):
        """The negative control's goal: leaks on berth's network and on host-local's."""
        return self.leaked > 0 and self.leaked_host_local > 0

    def check_post(self):
        leaked = [lease for lease in self.post if lease[3] != self.boot]
        # post.sh reports host-local's files left when the runtime starts as leases of no boot (every one is a leak).
        host_local = sum(1 for lease in leaked if lease[3] == HOST_LOCAL_LEAK)
        self.leaked_host_local += host_local
        self.leaked += len(leaked) - host_local
        if leaked:
            print(f"LEAKED boot={self.boot}: {len(leaked)} leases of an earlier boot held when containerd started: "
                  + ", ".join(f"{a} ({c[:12]})" for c, _n, a, _b in leaked), flush=True)
        super().check_post()


def kvm_usable():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return os.access("/dev/kvm", os.R_OK | os.W_OK) and (" vmx" in flags or " svm" in flags)
    except OSError:
        return False


def main():
    signal.signal(signal.SIGTERM, qt.stop_on_signal)
    signal.signal(signal.SIGINT, qt.stop_on_signal)
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True, help="the directory build-image.sh printed")
    ap.add_argument("--seconds", type=float, required=True, help="stop starting new cycles after this")
    ap.add_argument("--work", required=True, help="scratch directory (removed by the caller)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--pods", type=int, default=2,
                    help="pods per boot (each joins both networks; one RunPodSandbox takes 10-15 s under emulation)")
    ap.add_argument("--min-cuts", type=int, default=1, help="cut at least this often, whatever the budget")
    ap.add_argument("--no-package", action="store_true", help="leave out the package's life on the first boot")
    ap.add_argument("--script", action="store_true",
                    help="the first boot, after the package's life, runs scripts/power-cut-node.sh cut --yes, which resets the node itself")
    ap.add_argument("--control", action="store_true",
                    help="negative control: berth-recover.service masked; must find leaked leases (at most 3 cuts)")
    ap.add_argument("--pod", action="store_true",
                    help="berth-agent runs as deploy/kubernetes's DaemonSet pod under the node's containerd, its units masked "
                         "(with --control: no agent at all)")
    ap.add_argument("--name", default=None, help="mode name in SUMMARY and of the serial log (node, node-control)")
    ap.add_argument("--smp", type=int, default=int(os.environ.get("NODE_TEST_SMP", "2")),
                    help="virtual CPUs (TCG runs one host thread per vCPU; the runtime's processes start in parallel)")
    ap.add_argument("--timeout", type=float, default=900,
                    help="longest wait for one step of a boot (a boot takes minutes when the machine is busy)")
    args = ap.parse_args()

    name = args.name or (("node-pod" if args.pod else "node") + ("-control" if args.control else ""))
    if args.pod:
        # The package's life and the operator's script are the units' business.
        args.no_package, args.script = True, False
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    accel, cpu = ("kvm", "host") if kvm_usable() else ("tcg", "qemu64,+rdrand")
    qt.log(f"{name}: seed {seed} (rerun with --seed {seed}), budget {args.seconds:.0f} s, {accel}, image {args.image}")
    os.makedirs(args.work, exist_ok=True)
    logs_dir = os.path.join(ROOT, "artifacts", "node", "logs")
    os.makedirs(logs_dir, exist_ok=True)
    serial_log = open(os.path.join(logs_dir, f"{name}.serial.log"), "wb", buffering=0)

    checker = NodeChecker(name)
    # The kernel and initrd are copied: a rebuilt image replaces its directory while this run may still boot.
    for f in ("vmlinux", "initrd.cpio"):
        shutil.copyfile(os.path.join(args.image, f), os.path.join(args.work, f))
    durable = os.path.join(args.work, "disk.img")
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", os.path.join(args.image, "disk.img"), durable], check=True)
    base_append = f"berth.node.pods={args.pods} systemd.show_status=0 cryptomgr.notests mitigations=off " \
                  "modprobe.blacklist=kvm,kvm_intel,kvm_amd"
    if args.pod:
        base_append += " berth.node.pod=1 systemd.mask=berth-recover.service systemd.mask=berth-agent.service"
        if args.control:
            base_append += " berth.node.nopod=1"
    elif args.control:
        base_append += " systemd.mask=berth-recover.service"
    cuts = 0
    where = {}
    vm = None
    boot_no = 0
    last_tag = ""
    marks = {}

    def feed(lines):
        nonlocal last_tag
        for text in lines:
            checker.line(text)
            if text.startswith("T:"):
                last_tag = text[2:].split(" ", 1)[0] + (" " + text.split()[1] if text.startswith(("T:TRY", "T:ACK")) else "")
                tag = text[2:].split(" ", 1)[0]
                if tag not in marks:
                    marks[tag] = time.monotonic()

    def wait_for(prefix, timeout):
        return vm.wait_for(prefix, timeout, feed)

    def run_until(deadline):
        vm.run_until(deadline, feed)

    def start_vm(strict, package, script=False):
        nonlocal marks
        marks = {"QEMU": time.monotonic()}
        if strict:
            overlay = os.path.join(args.work, "live.qcow2")
            logf = os.path.join(args.work, "writes.log")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", durable, "-F", "raw", overlay], check=True)
            open(logf, "wb").close()
            drive = ["-blockdev", f"driver=file,node-name=basefile,filename={durable},read-only=on",
                     "-blockdev", "driver=raw,node-name=base,file=basefile,read-only=on",
                     "-blockdev", f"driver=file,node-name=livefile,filename={overlay}",
                     "-blockdev", "driver=qcow2,node-name=data,file=livefile,backing=base",
                     "-blockdev", f"driver=file,node-name=wlog,filename={logf}",
                     "-blockdev", "driver=blklogwrites,node-name=disk,file=data,log=wlog,log-append=off",
                     "-device", "virtio-blk-pci,drive=disk,write-zeroes=off,discard=off"]
        else:
            drive = ["-drive", f"file={durable},format=raw,if=none,id=d0,cache=writeback",
                     "-device", "virtio-blk-pci,drive=d0,write-zeroes=off,discard=off"]
        append = base_append + (" berth.node.package=1" if package else "") + (" berth.node.script=1" if script else "")
        return qt.Vm(args.work, append, drive, serial_log, kernel=os.path.join(args.work, "vmlinux"),
                     initrd=os.path.join(args.work, "initrd.cpio"), memory="1024", accel=accel, cpu=cpu,
                     smp=args.smp)

    def since_start(tag):
        return f"{marks[tag] - marks['QEMU']:.0f}s" if tag in marks else "-"

    def report_boot(kind):
        done = since_start("STORM-START") if "STORM-START" in marks else since_start("NODE-SCRIPT-START")
        print(f"boot {boot_no} ({kind}): systemd's first unit {since_start('BOOT')}, containerd up {since_start('POST-END')}, "
              f"pods {since_start('FIRST')}, checks done {done} after QEMU started; "
              f"checks ok={checker.boot_ok} failed={len(checker.boot_failed)}{' ' + ','.join(checker.boot_failed) if checker.boot_failed else ''}",
              flush=True)

    start = time.monotonic()
    # How long the next cycle may take, from the last ordinary ones: the first boot's package life and the
    # operator script's boot are once per run and would otherwise stop the run early.
    recent = []
    longest = 0.0
    try:
        while True:
            now = time.monotonic()
            if args.control:
                # It must show the leak itself, not only the failed ordering check of its first boot.
                if checker.caught() or cuts >= 3:
                    break
            elif cuts >= args.min_cuts and now - start + 1.2 * (max(recent[-3:]) if recent else longest) > args.seconds:
                break
            cycle_start = now
            boot_no += 1
            # The package's life and the operator's script share the first boot: each is once per run, and a boot
            # under emulation costs minutes on a busy machine.
            script = args.script and boot_no == 1
            once = boot_no == 1 or script  # the package's life, or the operator's script: once per run
            if vm is None:
                strict = not args.control and not script and boot_no % 2 == 1
                kind = "strict" if strict else "kill"
                vm = start_vm(strict, package=boot_no == 1 and not args.control and not args.no_package, script=script)
            else:
                kind = "after sysrq b"  # the same QEMU, reset by the guest
                marks = {"QEMU": time.monotonic()}
            if not wait_for("BOOT", args.timeout):
                checker.violation("the node did not boot (see the serial log)")
                break
            # Where this boot's cut falls: during recovery and containerd's start ("boot"), while the boot's first
            # pods are created again, before that boot's own checks ("first"), or once the checks passed, while
            # pods are stopped and created ("pod"), while the agent reconciles ("reconcile") or anywhere in the churn.
            plan = rng.choices(["boot", "first", "pod", "reconcile", "storm"], [0.15, 0.2, 0.25, 0.2, 0.2])[0]
            if once and not args.control:
                # The package's life and the operator's script happen once per run: their boot is not cut before.
                plan = rng.choices(["pod", "reconcile", "storm"], [0.4, 0.3, 0.3])[0]
            if args.control:
                # The leak shows when containerd starts (POST-END): no need to go on once it did.
                if boot_no > 1 and vm.wait_for("POST-END", args.timeout, feed) \
                        and checker.caught():
                    break
                plan = "storm"
            if script:
                # The operator's script makes its leases and resets the node itself (sysrq b, nothing synced);
                # its own check runs at the next boot, before recovery, and prints its RESULT line.
                if not wait_for("NODE-SCRIPT-START", args.timeout):
                    checker.violation("the node did not reach scripts/power-cut-node.sh (see the serial log)")
                    break
                report_boot(kind)
                reset_at = time.monotonic()  # within the time the script takes to make its leases
                if not wait_for("BOOT", args.timeout):
                    checker.violation("scripts/power-cut-node.sh did not reset the node (see the serial log)")
                    break
                cuts += 1
                where["power-cut-node.sh (sysrq b)"] = where.get("power-cut-node.sh (sysrq b)", 0) + 1
                print(f"cut {cuts} (sysrq b by scripts/power-cut-node.sh cut --yes), {time.monotonic() - cycle_start:.0f} s into boot {boot_no}", flush=True)
                longest = max(longest, time.monotonic() - cycle_start)
                # The line that started the next boot was consumed here: the next cycle continues from it.
                boot_no += 1
                kind = "after sysrq b"
                marks = {"QEMU": reset_at, "BOOT": time.monotonic()}
                cycle_start = time.monotonic()
                plan = rng.choices(["pod", "reconcile", "storm"], [0.4, 0.3, 0.3])[0]
            if plan == "boot":
                # During recovery, containerd's start, the first pods or the checks.
                run_until(time.monotonic() + rng.uniform(0, 20))
            elif plan == "first":
                if not wait_for("GONE", args.timeout):
                    checker.violation("the node's runtime did not come up (see the serial log)")
                    break
                if wait_for("TRY ADD", args.timeout):
                    run_until(time.monotonic() + rng.uniform(0, 12))
            else:
                if not wait_for("STORM-START", args.timeout):
                    checker.violation("the node did not reach its pod churn (see the serial log)")
                    break
                report_boot(kind)
                if plan == "pod":
                    if wait_for("TRY ADD", args.timeout):
                        run_until(time.monotonic() + rng.uniform(0, 1.5))
                elif plan == "reconcile":
                    if wait_for("RECONCILE-START", args.timeout):
                        run_until(time.monotonic() + rng.uniform(0, 0.5))
                else:
                    run_until(time.monotonic() + rng.uniform(0.2, 6))
            cuts += 1
            at = last_tag
            feed(vm.kill())
            vm = None
            info = ""
            if strict:
                info = "; " + qt.replay(durable, os.path.join(args.work, "writes.log"), rng, keep_after_flush=False)
            serial_log.write(f"[host: cut {cuts}: SIGKILL ({kind}) after {at}{info}]\n".encode())
            category = "first pods" if "FIRST" not in marks and "GONE" in marks else \
                "pod creation" if at.startswith("TRY ADD") else "pod removal" if at.startswith("TRY DEL") \
                else "reconcile" if at.startswith("RECONCILE-START") else "boot" if "STORM-START" not in marks else "churn"
            where[category] = where.get(category, 0) + 1
            print(f"cut {cuts} ({kind}) during {category} (last line T:{at}), {time.monotonic() - cycle_start:.0f} s into boot {boot_no}{info}", flush=True)
            longest = max(longest, time.monotonic() - cycle_start)
            if not once:
                recent.append(time.monotonic() - cycle_start)
        # The last cut is checked by one more boot, and that boot's own checks too.
        if vm is None and not (args.control and checker.caught()):
            boot_no += 1
            vm = start_vm(False, False)
            if wait_for("STORM-START", args.timeout):
                report_boot("kill")
            else:
                checker.violation("the node did not boot after the last cut")
    finally:
        if vm is not None:
            feed(vm.kill())
        serial_log.close()

    elapsed = time.monotonic() - start
    qt.log(f"{name}: {elapsed:.0f} s, {checker.boots} boots, cuts during " + ", ".join(f"{k} {v}" for k, v in sorted(where.items()))
           + f"; per-boot checks ok={checker.checks_ok} failed={checker.checks_failed}; leaked after a cut: {checker.leaked} berth leases, {checker.leaked_host_local} host-local files; "
           f"{checker.errors} failed operations (not acknowledged); seed {seed}")
    tag = "CONTROL" if args.control else "SUMMARY"
    print(f"{tag} mode={name} cycles={checker.checked} acked={checker.acked} cuts={cuts} violations={checker.violations}"
          + (f" leaked={checker.leaked} leaked_host_local={checker.leaked_host_local}" if args.control else ""), flush=True)
    if args.control:
        return 0 if checker.caught() else 1
    return 1 if checker.violations else 0


if __name__ == "__main__":
    sys.exit(main())
