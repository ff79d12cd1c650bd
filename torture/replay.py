"""The replay mode of the power-cut torture (docs/reliability.md, "replay"): thousands of crash states from one
recorded storm, checked on the host without booting.

1. Record: one boot of the torture guest with blklogwrites under its disk (the strict mode's drive), the storm
   running with acknowledgement markers (torture/guest/mark.sh: after each acknowledged operation, and before
   each DEL, one 512-byte O_DIRECT write just past the end of the file system). SIGKILL of QEMU ends it.
2. Crash states from the log (read by qemu_torture.read_log): the disk at every flush; a random cut inside an
   epoch (the writes between two flushes) with a random subset of the writes logged before it; the same with
   one write torn (only some of its 512-byte sectors). Overlapping writes keep their log order: a disk may
   drop any write it had not made durable, but does not put an older write over a newer one of the same
   sector. Each state is deduplicated by a hash of its content (a sum of per-sector hashes, kept incrementally,
   so no image is read to hash it).
3. Each distinct state, in a pool of one worker per core: a sparse image on tmpfs written from the worker's
   in-memory disk (no base copy), `e2fsck -E journal_only` (the kernel's journal replay), the store extracted
   with `debugfs -n`; for 5 % of the states also a kernel loop mount of the same image, whose store must be
   byte-identical. Then, once per distinct store content (its files' hash): sqlite3's integrity check and
   leases, `berth-agent check` and `recover` under a new boot ID, one ADD of the published berth, and the store
   again. The invariants of qemu_torture.Checker are checked for every state against the operations
   acknowledged before its cut; the ones that depend only on the store are checked once per store content.
"""
import bisect
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid

import qemu_torture as qt

SECTOR = 512
CHUNK = 64 << 10                       # the unit in which a worker writes its in-memory disk to the image
MARK_SECTOR = qt.FS_BYTES // SECTOR    # the first sector past the file system: acknowledgement markers
MARK_PREFIX = b"BERTHMARK "
BIN = os.path.join(qt.ROOT, "artifacts", "bin")
NETWORK = "torture"                    # the network of torture/guest/init's net.json
PROBE = "replay-probe"              # the container of the one ADD made on each store
HASH_MOD = 1 << 128
MIN_STATES = 1000
STORE_FILES = ("berth.db", "berth.db-wal")  # the -shm is rebuilt by SQLite's first opener; the lock holds nothing


def sector_hash(sector, data):
    return int.from_bytes(hashlib.blake2b(sector.to_bytes(8, "little") + bytes(data), digest_size=16).digest(), "little")


# ---------------------------------------------------------------------------------------------------------
# The log as epochs. Globals, so that the workers (forked) share them without copying.

class Log:
    def __init__(self, logpath, initial):
        sectorsize, entries = qt.read_log(logpath)
        if sectorsize != SECTOR:
            raise RuntimeError(f"{logpath}: sector size {sectorsize}, expected {SECTOR}")
        self.initial = initial                  # the file system as made by mkfs (bytes)
        self.writes = []                        # (entry index, sector, payload) of the file system's writes
        self.flushes = []                       # entry indices of flushes (a FUA write counts as write + flush)
        self.markers = []                       # (entry index, text) in log order
        self.entries = len(entries)
        for i, (sector, nr, flags, payload) in enumerate(entries):
            if flags & qt.LOG_MARK:
                continue
            if payload is not None and sector >= MARK_SECTOR:
                if payload.startswith(MARK_PREFIX):
                    self.markers.append((i, payload[len(MARK_PREFIX):].decode("utf-8", "replace").strip()))
                continue
            if flags & qt.LOG_DISCARD:
                payload = bytes(nr * SECTOR)  # the drive is made with discard=off; a discard would read as zeroes
            if payload is not None:
                if (sector + nr) * SECTOR > qt.FS_BYTES:
                    raise RuntimeError(f"write at sector {sector} (+{nr}) crosses the end of the file system")
                self.writes.append((i, sector, payload))
            if flags & (qt.LOG_FLUSH | qt.LOG_FUA):
                self.flushes.append(i)
        self.write_pos = [w[0] for w in self.writes]
        self.sector_hashes = [[sector_hash(sector + k, payload[k * SECTOR:(k + 1) * SECTOR])
                               for k in range(len(payload) // SECTOR)] for _i, sector, payload in self.writes]
        self.marker_pos = [m[0] for m in self.markers]
        # Epochs: (first entry, end entry) between two flushes; the last one may be open (no flush yet).
        bounds = [-1] + self.flushes
        self.epochs = []
        for a, b in zip(bounds, bounds[1:] + [self.entries]):
            lo, hi = bisect.bisect_right(self.write_pos, a), bisect.bisect_left(self.write_pos, b)
            self.epochs.append((a + 1, b, lo, hi))  # entries [a+1, b), writes[lo:hi]

    def writes_before(self, entry):
        return bisect.bisect_left(self.write_pos, entry)

    def markers_before(self, entry):
        return bisect.bisect_left(self.marker_pos, entry)


LOG = None  # set before the pool starts


class Disk:
    """A worker's disk after the first N logged writes, in memory: moved forward by applying writes and back by
    undoing them (each applied write keeps what it overwrote), so no state copies a base image."""

    def __init__(self, log):
        self.log = log
        self.data = bytearray(log.initial)
        self.applied = 0
        self.undo = []
        # The chunks an image must hold: those mkfs wrote, and those written since (the rest are holes).
        self.dirty = {c for c in range(len(self.data) // CHUNK)
                      if self.data[c * CHUNK:(c + 1) * CHUNK].count(0) != CHUNK}

    def advance(self, n):
        while self.applied > n:
            self.applied -= 1
            off, old = self.undo.pop()
            self.data[off:off + len(old)] = old
        for _i, sector, payload in self.log.writes[self.applied:n]:
            off = sector * SECTOR
            self.undo.append((off, bytes(self.data[off:off + len(payload)])))
            self.data[off:off + len(payload)] = payload
            self.dirty.update(range(off // CHUNK, (off + len(payload) - 1) // CHUNK + 1))
        self.applied = max(self.applied, n)

    def write_image(self, path, extra):
        """A sparse image of the disk with EXTRA ((sector, bytes), in order) on top."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, len(self.data))
            view = memoryview(self.data)
            for c in sorted(self.dirty):
                os.pwrite(fd, view[c * CHUNK:(c + 1) * CHUNK], c * CHUNK)
            for sector, payload in extra:
                os.pwrite(fd, payload, sector * SECTOR)
        finally:
            os.close(fd)


class ContentHash:
    """The content hash of a state without its bytes: the sum over sectors of hash(sector, content now) minus
    hash(sector, content as mkfs left it), mod 2**128, kept per sector as the base moves forward and back."""

    def __init__(self, log):
        self.log = log
        self.applied = 0
        self.hash = 0
        self.now = {}    # sector -> hash of its content at the base
        self.undo = []

    def _sector(self, s):
        h = self.now.get(s)
        if h is None:
            h = self.now[s] = sector_hash(s, self.log.initial[s * SECTOR:(s + 1) * SECTOR])
        return h

    def advance(self, n):
        while self.applied > n:
            self.applied -= 1
            for s, old in reversed(self.undo.pop()):
                self.hash -= self.now[s] - old
                self.now[s] = old
        for w in range(self.applied, n):
            sector = self.log.writes[w][1]
            changes = []
            for k, h in enumerate(self.log.sector_hashes[w]):
                old = self._sector(sector + k)
                changes.append((sector + k, old))
                self.hash += h - old
                self.now[sector + k] = h
            self.undo.append(changes)
        self.applied = max(self.applied, n)

    def of(self, extra):
        """The hash of the base with EXTRA ((write number, sector mask or None), in log order) on top."""
        final = {}
        for w, mask in extra:
            sector = self.log.writes[w][1]
            for k, h in enumerate(self.log.sector_hashes[w]):
                if mask is None or mask >> k & 1:
                    final[sector + k] = h
        return (self.hash + sum(h - self._sector(s) for s, h in final.items())) % HASH_MOD


def extra_writes(log, extra):
    """A state's writes beyond its base: ((write number, sector mask or None), ...) as (sector, bytes)."""
    out = []
    for w, mask in extra:
        _i, sector, payload = log.writes[w]
        if mask is None:
            out.append((sector, payload))
        else:
            for k in range(len(payload) // SECTOR):
                if mask >> k & 1:
                    out.append((sector + k, payload[k * SECTOR:(k + 1) * SECTOR]))
    return out


# ---------------------------------------------------------------------------------------------------------
# The states. A state is (base, extra, cut): the first BASE writes (up to a flush), the writes EXTRA of the
# epoch after it (torn or whole), and the cut, an entry index: the operations whose markers precede it were
# acknowledged before the power went.

def describe(state):
    base, extra, cut = state
    torn = sum(1 for _w, m in extra if m is not None)
    return f"base={base} extra={len(extra)}{f' torn={torn}' if torn else ''} cut={cut}"


def boundary_states(log):
    """The disk at each flush (and as mkfs left it), cut just before the next write: every marker up to
    there is acknowledged."""
    points = [0] + [f + 1 for f in log.flushes]
    for p in points:
        n = log.writes_before(p)
        cut = log.writes[n][0] if n < len(log.writes) else log.entries
        yield (n, (), cut)


def random_state(log, rng, epoch, torn):
    _first, end, lo, hi = epoch
    if hi == lo:
        return None
    cut = rng.randint(log.writes[lo][0] + 1, end)  # after at least the epoch's first write
    candidates = list(range(lo, log.writes_before(cut)))
    chosen = [w for w in candidates if rng.random() < 0.5]
    extra = [(w, None) for w in chosen]
    if torn:
        # Writes of 4 KiB or more tear, at 512-byte sectors (a 512e disk). A write of the file system's 1 KiB
        # blocks alone stays whole: a torn superblock makes the kernel refuse the file system, whatever berth did.
        multi = [w for w in candidates if len(log.writes[w][2]) >= 4096]
        if not multi:
            return None
        w = rng.choice(multi)
        n = len(log.writes[w][2]) // SECTOR
        mask = rng.randrange(1, (1 << n) - 1)  # some sectors, not none and not all
        extra = sorted([(x, m) for x, m in extra if x != w] + [(w, mask)])
    return (lo, tuple(extra), cut)


# ---------------------------------------------------------------------------------------------------------
# A worker: builds a state's image, replays the journal, extracts the store, checks each new store content.

class Worker:
    def __init__(self, scratch, boot_file, agent_config, net_template):
        self.disk = Disk(LOG)
        self.dir = tempfile.mkdtemp(prefix=f"w{os.getpid()}.", dir=scratch)
        self.boot_file, self.agent_config, self.net_template = boot_file, agent_config, net_template
        self.seen = {}  # store hash -> result: the store checks run once per content in each worker

    def run(self, task):
        state, sample = task
        base, extra, _cut = state
        self.disk.advance(base)
        writes = extra_writes(LOG, extra)
        img = os.path.join(self.dir, "state.img")
        self.disk.write_image(img, writes)
        out = {"state": state}
        if sample:
            kimg = os.path.join(self.dir, "kernel.img")
            self.disk.write_image(kimg, writes)
        fsck = subprocess.run(["e2fsck", "-E", "journal_only", "-y", img], capture_output=True, text=True)
        out["fsck"] = fsck.returncode
        if fsck.returncode >= 4:
            out["fsck_text"] = (fsck.stdout + fsck.stderr)[-400:]
        x = os.path.join(self.dir, "x")
        shutil.rmtree(x, ignore_errors=True)
        os.mkdir(x)
        # -n: read-only; without it debugfs was seen to skip the journal (docs/reliability.md, replay).
        subprocess.run(["debugfs", "-n", "-R", f"rdump /berth {x}", img], capture_output=True)
        store = os.path.join(x, "berth")
        out["store"] = store_hash(store)
        if sample:
            out["kernel"] = kernel_store_hash(kimg, os.path.join(self.dir, "mnt"))
            os.unlink(kimg)
        if out["store"] not in self.seen:
            self.seen[out["store"]] = check_store(store, self.boot_file, self.agent_config, self.net_template)
        out["result"] = self.seen[out["store"]]
        return out


def store_hash(directory):
    h = hashlib.blake2b(digest_size=16)
    for name in STORE_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            h.update(name.encode() + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.blake2b(f.read(), digest_size=16).digest())
    return h.hexdigest()


def kernel_store_hash(img, mnt):
    """The store as the host kernel's ext4 recovers it: a read-write loop device (mount -o loop,ro refuses a
    file system that needs recovery), mounted read-only, which still replays the journal onto the device."""
    os.makedirs(mnt, exist_ok=True)
    for _ in range(20):  # losetup -f races with other processes taking loop devices
        r = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True)
        if r.returncode == 0:
            break
    else:
        return f"losetup failed: {r.stderr.strip()}"
    dev = r.stdout.strip()
    try:
        m = subprocess.run(["mount", "-t", "ext4", "-o", "ro", dev, mnt], capture_output=True, text=True)
        if m.returncode != 0:
            return f"mount failed: {m.stderr.strip()}"
        try:
            return store_hash(os.path.join(mnt, "berth"))
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def sqlite_read(db):
    """Leases, integrity check and this boot's releases of a store, as sqlite3 sees it, without checkpointing."""
    if not os.path.exists(db):
        return {"integrity": "nostore", "leases": [], "released": []}
    r = subprocess.run(
        ["sqlite3", "-separator", " ", db, ".dbconfig no_ckpt_on_close on",
         "SELECT 'I', group_concat(integrity_check, ' ') FROM pragma_integrity_check;",
         "SELECT 'T', count(*) FROM sqlite_master WHERE name IN ('leases', 'history');"],
        capture_output=True, text=True)
    lines = r.stdout.splitlines()
    integrity = next((line[2:] for line in lines if line.startswith("I ")), None)
    if integrity is None:
        return {"integrity": "error: " + (r.stderr.strip().replace("\n", " ") or f"sqlite3 exit {r.returncode}"),
                "leases": [], "released": []}
    tables = next((line[2:] for line in lines if line.startswith("T ")), "0")
    if tables != "2":
        return {"integrity": integrity, "leases": [], "released": [], "schema": False}
    r = subprocess.run(
        ["sqlite3", "-separator", " ", db, ".dbconfig no_ckpt_on_close on",
         "SELECT 'L', container_id, network, address, boot_id FROM leases;",
         "SELECT 'R', container_id, network, address, boot_id FROM history WHERE action = 'release';"],
        capture_output=True, text=True)
    rows = [tuple(line.split(" ")[1:5]) for line in r.stdout.splitlines()]
    kinds = [line[:1] for line in r.stdout.splitlines()]
    return {"integrity": integrity if r.returncode == 0 else f"error: {r.stderr.strip()}",
            "leases": [row for k, row in zip(kinds, rows) if k == "L"],
            "released": [row for k, row in zip(kinds, rows) if k == "R"], "schema": True}


def run(cmd, env=None, stdin=None):
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        return {"rc": -1, "out": "", "err": "hung: killed after 30 s"}  # a violation, not a crash of the mode
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr[-600:]}


def files_of(directory):
    data = {}
    for name in STORE_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data[name] = hashlib.blake2b(f.read(), digest_size=16).hexdigest()
    return data


def check_store(store, boot_file, agent_config, net_template):
    """Runs the host's checks on one extracted store (changing it) and returns what they saw."""
    db = os.path.join(store, "berth.db")
    os.makedirs(store, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BERTH_BOOT_ID_FILE": boot_file}
    before = files_of(store)
    res = {"pre": sqlite_read(db)}
    agent = [os.path.join(BIN, "berth-agent"), "--store", db, "--config", agent_config]
    if res["pre"]["integrity"] != "nostore":
        res["check"] = run(agent + ["check", "--json"], env)
        res["recover"] = run(agent + ["recover"], env)
    res["add"] = run([os.path.join(BIN, "berth")],
                     dict(env, CNI_COMMAND="ADD", CNI_CONTAINERID=PROBE, CNI_NETNS="/run/netns/berth-replay-gone",
                          CNI_IFNAME="eth0", CNI_PATH=BIN),
                     net_template.replace("@DIR@", store))
    res["post"] = sqlite_read(db)
    res["changed"] = files_of(store) != before
    return res


# ---------------------------------------------------------------------------------------------------------
# The verdicts, in the main process.

class StateChecker(qt.Checker):
    """qemu_torture's checks, applied to a crash state instead of a boot's console dump."""

    def __init__(self, mode, shown=25):
        super().__init__(mode)
        self.where = ""
        self.shown = shown

    def violation(self, what):
        self.violations += 1
        if self.violations <= self.shown:
            print(f"VIOLATION mode={self.mode} {self.where}: {what}", flush=True)
        elif self.violations == self.shown + 1:
            print(f"VIOLATION mode={self.mode}: more violations follow; only counted", flush=True)


def error_code(stdout):
    try:
        return json.loads(stdout).get("code")
    except (ValueError, AttributeError):
        return None


def store_verdicts(res, boot):
    """What is wrong with the host's checks of one store, whatever was acknowledged: a list of sentences."""
    bad = []
    pre, post, add = res["pre"], res["post"], res["add"]
    healthy = pre["integrity"] in ("ok", "nostore")
    code = error_code(add["out"]) if add["rc"] != 0 else None
    if code == 999:
        bad.append(f"ADD answered error 999: {add['out'][:300]}")
    for name in ("check", "recover"):
        r = res.get(name)
        if r and (r["rc"] >= 128 or r["rc"] < 0 or "Unhandled exception" in r["err"]):
            bad.append(f"berth-agent {name} crashed or hung (exit {r['rc']}): {r['err'][:300]}")
    if not healthy:
        # A damaged store: answered with error 5, and never reset or changed.
        if add["rc"] == 0 or code != 5:
            bad.append(f"ADD on a damaged store ({pre['integrity'][:120]}) answered exit {add['rc']} "
                       f"code {code}, not error 5: {add['out'][:200]}")
        if res["changed"]:
            bad.append(f"the damaged store ({pre['integrity'][:120]}) was changed by check/recover/ADD")
        if res["recover"]["rc"] == 0:
            bad.append("berth-agent recover exited 0 on a damaged store")
        return bad
    if "check" in res:
        c = res["check"]
        try:
            kinds = {f["kind"] for f in json.loads(c["out"])["findings"]}
        except (ValueError, KeyError, TypeError):
            kinds = {"unreadable output"}
        odd = kinds - {"previous-boot", "range-full", "range-nearly-full"}
        if c["rc"] not in (0, 1) or odd:
            bad.append(f"berth-agent check: exit {c['rc']}, findings {sorted(odd)}: {c['out'][:300]} {c['err'][:200]}")
        if res["recover"]["rc"] != 0:
            bad.append(f"berth-agent recover: exit {res['recover']['rc']}: {res['recover']['err'][:300]}")
    if add["rc"] != 0:
        bad.append(f"the ADD after recover failed: exit {add['rc']}: {add['out'][:300]}")
    elif not any(c == PROBE for c, _n, _a, _b in post["leases"]):
        bad.append("the ADD after recover succeeded but its lease is not in the store")
    # Recovery releases leases of earlier boots, each with its history.
    released = {(c, n, a) for c, n, a, b in post["released"] if b == boot}
    kept = {(c, n, a) for c, n, a, _b in post["leases"]}
    for c, n, a, _b in pre["leases"]:
        if (c, n, a) not in kept and (c, n, a) not in released:
            bad.append(f"lease {a} of {c} in {n} vanished in recover without a release in the history")
    return bad


# ---------------------------------------------------------------------------------------------------------

def record(args, name, work, checker, serial_log, storm_seconds):
    """One boot of the guest under the write log, the storm for STORM_SECONDS, then SIGKILL. Returns the image
    the guest started from (as mkfs made it), the log and how long the storm ran."""
    disk = os.path.join(work, "disk.img")
    qt.make_disk(disk, tail=1 << 20)
    with open(disk, "rb") as f:
        initial = f.read(qt.FS_BYTES)
    with open(os.path.join(work, "initial.img"), "wb") as f:  # kept for --recording (the caller removes WORK)
        f.write(initial)
    logf = os.path.join(work, "writes.log")
    open(logf, "wb").close()
    append = (f"berth.mode=storm berth.workers={args.workers} berth.unsafe={1 if args.unsafe_no_sync else 0} "
              f"berth.mark={MARK_SECTOR} berth.serve={1 if args.agent_serving else 0}")
    vm = qt.Vm(work, append, qt.logged_drive(disk, logf), serial_log)

    def feed(lines):
        for text in lines:
            checker.line(text)

    try:
        if not vm.wait_for("STORM-START", 300, feed):
            checker.violation("the guest did not reach the storm (see the serial log)")
            return None, None, 0
        # The storm runs its time and until 10 operations were acknowledged (at most 4 times its time: a loaded
        # host emulates slowly), so that there is something to lose.
        began = time.monotonic()
        vm.run_until(began + storm_seconds, feed)
        while checker.acked < 10 and time.monotonic() < began + 4 * storm_seconds and vm.proc.poll() is None:
            vm.run_until(time.monotonic() + 1, feed)
        storm_seconds = time.monotonic() - began
    finally:
        for text in vm.kill():
            checker.line(text)
    return initial, logf, storm_seconds


def main(args):
    """The replay mode; ARGS as parsed by qemu_torture.main."""
    global LOG
    name = args.name or "replay"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    start = time.monotonic()
    qt.log(f"{name}: seed {seed} (rerun with --seed {seed}), budget {args.seconds:.0f} s")
    os.makedirs(args.work, exist_ok=True)
    logs_dir = os.path.join(qt.GUEST, "logs")
    os.makedirs(logs_dir, exist_ok=True)
    console = qt.Checker(name)  # the recording boot's console: it must boot, reach the storm, ack sanely
    with open(os.path.join(logs_dir, f"{name}.serial.log"), "wb", buffering=0) as serial_log:
        # The storm takes a sixth of the budget (10 to 40 s): tens of operations, hundreds of epochs; the rest
        # of the budget goes to the states.
        storm = min(40.0, max(10.0, args.seconds / 6))
        if args.recording:
            # Check the states of an earlier recording again (its work directory), without booting.
            storm = 0.0
            logf = os.path.join(args.recording, "writes.log")
            with open(os.path.join(args.recording, "initial.img"), "rb") as f:
                initial = f.read()
        else:
            initial, logf, storm = record(args, name, args.work, console, serial_log, storm)
    if logf is None:
        print(f"{args.tag} mode={name} cycles=0 acked=0 cuts=0 violations={console.violations}", flush=True)
        return 1
    LOG = Log(logf, initial)
    if not args.recording:
        os.unlink(os.path.join(args.work, "disk.img"))
    checks_began = time.monotonic()
    multi = sum(1 for _a, _b, lo, hi in LOG.epochs if hi - lo > 1)
    qt.log(f"{name}: recorded {storm:.0f} s of storm ({checks_began - start:.0f} s with the boot): {LOG.entries} log entries, {len(LOG.writes)} writes, "
           f"{len(LOG.flushes)} flushes, {len(LOG.epochs)} epochs ({multi} with more than one write), "
           f"{len(LOG.markers)} markers; {console.acked} acknowledgements on the console")

    if args.agent_serving and not args.recording:
        qt.log(f"{name}: berth-agent answered the plugin's calls in the recorded storm ({console.served_boots} boot); calls "
               f"the plugin did itself meanwhile: {sum(console.fallbacks.values())} (as last counted)")
    # What was acknowledged before each marker: the console checker's rules, fed the markers in log order.
    acks = qt.Checker(name)
    acks.violation = lambda what: None  # the same acknowledgements were checked on the console already
    expect_after = [{}]
    for _i, text in LOG.markers:
        acks.line("T:" + text)
        expect_after.append(dict(acks.expect))
    checker = StateChecker(name)
    checker.violations = console.violations
    boot = str(uuid.uuid4())

    scratch = tempfile.mkdtemp(prefix="berth-replay.", dir="/dev/shm")
    boot_file = os.path.join(scratch, "boot_id")
    with open(boot_file, "w") as f:
        f.write(boot + "\n")
    agent_config = os.path.join(scratch, "agent.json")
    with open(agent_config, "w") as f:
        f.write('{"runtimeSockets": [], "metricsAddress": "off", "hostLocal": {"dirs": []}}\n')
    net = ('{"cniVersion": "1.0.0", "name": "%s", "ipam": {"type": "berth", "dataDir": "@DIR@", '
           '"ranges": [[{"subnet": "10.77.0.0/26"}]]}}' % NETWORK)

    states = disagreements = sampled = fsck_bad = rechecked = 0
    stores = {}          # store hash -> result (verdicts counted once per store)
    by_content = {}      # content hash -> store hash, or None while its check runs
    waiting = {}         # content hash -> cuts whose acknowledgements wait for that check
    # The negative control ignores its share until it has caught a loss (at most 5 minutes): the states come
    # flush by flush first, where a missing fsync shows.
    deadline = start + (300 if args.expect_violations else args.seconds)
    # Like a cut in the other modes, some checking always happens: at least MIN_STATES states, for at most
    # a minute past the share (a short run's share barely covers the boot and the storm).
    floor = time.monotonic() + 60

    def more_time():
        now = time.monotonic()
        return now < deadline or (states + len(running) < MIN_STATES and now < floor)

    stop_at_first = args.expect_violations

    def judge(store, cut, where):
        res = stores[store]
        checker.where = where
        checker.boot = boot
        checker.expect = dict(expect_after[LOG.markers_before(cut)])
        checker.pre, checker.integrity = res["pre"]["leases"], {"pre": res["pre"]["integrity"]}
        checker.check_pre()

    def candidates():
        for state in boundary_states(LOG):
            yield state
        epochs = [e for e in LOG.epochs if e[3] > e[2]]
        weights = [hi - lo for _a, _b, lo, hi in epochs]
        while epochs:
            # A round: states from epochs picked at random, more often the larger ones, in log order.
            picks = sorted(rng.choices(range(len(epochs)), weights, k=len(epochs)))
            for k in picks:
                state = random_state(LOG, rng, epochs[k], torn=rng.random() < 0.5)
                if state:
                    yield state

    ctx = multiprocessing.get_context("fork")
    workers = os.cpu_count() or 2
    gen = candidates()
    content = ContentHash(LOG)
    tried = in_a_row = 0
    running = set()
    try:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                                    initargs=(scratch, boot_file, agent_config, net)) as pool:
            exhausted = False
            try:
                while True:
                    done_enough = stop_at_first and checker.violations
                    while (not exhausted and not done_enough and more_time()
                           and len(running) < 3 * workers):
                        try:
                            state = next(gen)
                        except StopIteration:
                            exhausted = True
                            break
                        tried += 1
                        if in_a_row > 5000:
                            exhausted = True  # nothing new turns up any more
                            break
                        base, extra, cut = state
                        content.advance(base)
                        key = content.of(extra)
                        if key in by_content:
                            in_a_row += 1
                            # The same disk content, cut at another moment: only the acknowledgements differ.
                            if by_content[key] is None:
                                waiting.setdefault(key, []).append((cut, describe(state)))
                            else:
                                rechecked += 1
                                judge(by_content[key], cut, describe(state))
                            continue
                        in_a_row = 0
                        by_content[key] = None
                        sample = rng.random() < 0.05
                        sampled += sample
                        f = pool.submit(_run_task, (state, sample))
                        f.key = key
                        running.add(f)
                    if not running:
                        break
                    finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                    for f in finished:
                        out = f.result()
                        states += 1
                        where = describe(out["state"])
                        store = out["store"]
                        by_content[f.key] = store
                        if out["fsck"] >= 4:
                            fsck_bad += 1
                            checker.where = where
                            checker.violation(f"e2fsck -E journal_only exit {out['fsck']}: {out.get('fsck_text', '')}")
                        if "kernel" in out and out["kernel"] != store:
                            disagreements += 1
                            print(f"DISAGREE mode={name} {where}: debugfs after e2fsck gives store {store}, "
                                  f"the kernel's mount {out['kernel']}", flush=True)
                        if store not in stores:
                            stores[store] = out["result"]
                            checker.where = f"{where} (store {store[:12]}, counted once per store)"
                            for what in store_verdicts(out["result"], boot):
                                checker.violation(what)
                            checker.boot = boot
                            checker.post = out["result"]["post"]["leases"]
                            checker.integrity = {"post": out["result"]["post"]["integrity"]}
                            if out["result"]["pre"]["integrity"] == "ok":
                                checker.check_post()
                        judge(store, out["state"][2], where)
                        for cut, w in waiting.pop(f.key, []):
                            rechecked += 1
                            judge(store, cut, w)
            finally:
                for f in running:
                    f.cancel()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    elapsed = time.monotonic() - start
    check_time = time.monotonic() - checks_began
    print(f"{args.tag} mode={name} cycles={states} acked={len([m for m in LOG.markers if m[1].startswith('ACK')])} "
          f"cuts=1 violations={checker.violations}", flush=True)
    qt.log(f"{name}: {elapsed:.0f} s; {states} distinct crash states checked ({tried} candidates, "
           f"{rechecked} of the duplicates judged again at their own cut) in {check_time:.0f} s after "
           f"the recording, {states / max(check_time, 1):.0f} states/s; {len(stores)} distinct stores got the "
           f"berth checks; {sampled} sampled through a kernel mount, {disagreements} disagreed; e2fsck failed on "
           f"{fsck_bad}; seed {seed}")
    if args.expect_violations:
        return 0 if checker.violations else 1
    return 1 if checker.violations or disagreements else 0


_WORKER = None


def _init_worker(scratch, boot_file, agent_config, net):
    global _WORKER
    _WORKER = Worker(scratch, boot_file, agent_config, net)


def _run_task(task):
    return _WORKER.run(task)
