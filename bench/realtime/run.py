#!/usr/bin/env python3
"""Benchmark of real-time (on-access) scanning: `make bench-realtime`.

On a filesystem it mounts itself (an ext4 image on a loop device, or a
tmpfs) inside a private mount namespace, in each mode:

  off        no on-access scanner;
  clamonacc  Debian's clamd and clamonacc in prevention mode on the
             mounted tree (ClamAV's test database, tests/data/clamav);
  floor      ward-floorbench: Ward's engine in the process that holds
             fanotify, with nothing of Ward's own around it, in block
             mode on the mounted tree (the same database): the least a
             scanner on libclamav can add here (bench/realtime/floorbench.c);
  ward       wardd and an enrolled ward-agent with real-time scanning in
             block mode on the mounted tree (the same database): see
             WardMode below and docs/benchmarks.md;
  ward-smart the same with the agent in smart scan.

it measures, with ward-openbench (bench/realtime/openbench.c):
  - open+close of already-scanned files (p50, p99, operations per second);
  - small files made before the scanner started, each opened once: the
    latency of a fresh verdict (p50, p99; one thread) and verdicts per
    second (one thread; two threads on a second set; eight, as many
    processes opening files at once, on a third);
and the file-heavy workload: unpack a tarball of tens of thousands of
files (this repository's HEAD, copied into --copies folders, every file
made unique), read every file twice, then build Ward from a clean
`git archive` of HEAD (cmake, then `cmake --build -j JOBS` of --targets).
The RSS of the scanner's processes (all together) is sampled during the
round. Modes alternate within each round; the report gives medians.

Needs root (mounts, fanotify). Prints a markdown table and writes it with
every round's figures to --work (results.md, results.json).
"""
import argparse
import ctypes
import hashlib
import io
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
# The marker of the harness re-executed inside its mount namespace.
NS_ENV = "WARD_BENCH_REALTIME_NS"
sys.path.insert(0, str(BENCH))
PROBE = b"ward real-time benchmark probe: every scanner under test detects this file\n"
NO_WARD_REALTIME = "ward-agent has no real-time scanning in this build"


def log(msg):
    print(f"bench-realtime: {msg}", file=sys.stderr, flush=True)


class Unavailable(Exception):
    """A mode that cannot run on this machine or build."""


def die_with_parent():
    """In a child before exec: killed when the harness dies, so that no
    scanner outlives it (and its mount namespace goes with it)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(argv, logfile, **kw):
    with open(logfile, "ab") as out:
        return subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent, **kw)


def stop(proc, timeout=20):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(argv, what, timeout=1800, **kw):
    """Runs argv; its seconds, or RuntimeError with its output when it fails."""
    t0 = time.monotonic()
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                       **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{what} failed ({p.returncode}): {p.stderr[-2000:]}{p.stdout[-1000:]}")
    return time.monotonic() - t0


def openbench(args, *cmd):
    """ward-openbench's JSON answer; its failures are counted in the answer."""
    p = subprocess.run([str(args.bin / "ward-openbench"), *map(str, cmd)], capture_output=True,
                       text=True, timeout=1800)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"ward-openbench {' '.join(map(str, cmd))}: {p.stderr}")


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise Unavailable(f"timed out after {timeout} s waiting for {what}")


def probe_blocked(path):
    """True once a scanner denies the probe (or has moved it away)."""
    try:
        with open(path, "rb") as f:
            f.read()
        return False
    except (PermissionError, FileNotFoundError):
        return True


# ----------------------------------------------------------------------------
# Processes and their memory

def descendants(pids):
    """pids and every process below them."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """Processor time (user + system) of pids and every process below them."""
    ticks = 0
    for p in descendants(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pids):
    """VmRSS and Pss of pids together, in KiB."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                rss += next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/smaps_rollup") as f:
                pss += next((int(l.split()[1]) for l in f if l.startswith("Pss:")), 0)
        except OSError:
            pass
    return rss, pss


class RssSampler(threading.Thread):
    """Peak RSS (and Pss) of a mode's processes and their children, every 0.5 s."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_rss = self.peak_pss = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            self.sample()

    def sample(self):
        rss, pss = rss_kib(descendants(self.roots))
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)

    def finish(self):
        self.done.set()
        self.join()
        self.sample()
        return self.peak_rss, self.peak_pss


# ----------------------------------------------------------------------------
# Modes: start() once the round's filesystem is mounted and populated,
# returns when the scanner blocks the probe file; pids() are the scanner's
# processes (their children count too); stop() ends them.

class OffMode:
    name = "off"
    logdir = None

    def __init__(self, ctx):
        self.ctx = ctx

    def start(self, mnt, probe):
        if probe_blocked(probe):
            raise RuntimeError(f"{probe} is unreadable with no scanner running")

    def pids(self):
        return []

    def stop(self):
        pass


class ClamonaccMode:
    """clamd on a private socket with the test database, and clamonacc in
    prevention mode on the mounted tree. clamd runs as the clamav user
    (its Debian default), so that OnAccessExcludeUname clamav, which
    clamonacc requires, leaves the workload's own accesses (as root) to
    be scanned; clamonacc passes clamd the event's descriptor (--fdpass,
    as Debian's clamav-clamonacc.service does). Every other option keeps
    its default: OnAccessMaxFileSize 5 MB, OnAccessMaxThreads 5, DDD on,
    OnAccessDenyOnError no."""
    name = "clamonacc"

    def __init__(self, ctx):
        self.ctx = ctx
        self.logdir = None
        self.clamd = self.onacc = None

    def start(self, mnt, probe):
        for tool in ("clamd", "clamonacc"):
            if not shutil.which(tool):
                raise Unavailable(f"{tool} not found: install clamav-daemon "
                                  "(scripts/deps.sh)")
        d = self.ctx.tmp / "clamd"
        if d.exists():
            shutil.rmtree(d)
        for sub in ("db", "run", "tmp"):
            (d / sub).mkdir(parents=True)
        shutil.copy(self.ctx.cvd, d / "db")
        shutil.copy(self.ctx.probe_hdb, d / "db")
        shutil.chown(d / "run", "clamav")
        shutil.chown(d / "tmp", "clamav")
        conf = d / "clamd.conf"
        conf.write_text(f"LocalSocket {d}/run/clamd.sock\nLocalSocketMode 660\nUser clamav\n"
                        f"DatabaseDirectory {d}/db\nTemporaryDirectory {d}/tmp\n"
                        f"PidFile {d}/run/clamd.pid\nLogFile {d}/run/clamd.log\n"
                        "Foreground yes\n"
                        f"OnAccessPrevention yes\nOnAccessIncludePath {mnt}\n"
                        "OnAccessExcludeUname clamav\n")
        self.logdir = d / "run"
        self.clamd = spawn(["clamd", "-c", conf], d / "run" / "clamd.out")
        wait_until(lambda: (d / "run" / "clamd.sock").exists() or self.clamd.poll() is not None,
                   120, "clamd's socket")
        if self.clamd.poll() is not None:
            raise RuntimeError(f"clamd exited: {(d / 'run' / 'clamd.out').read_text()}")
        self.onacc = spawn(["clamonacc", "--foreground", f"--config-file={conf}", "--fdpass",
                            f"--log={d}/run/clamonacc.log"], d / "run" / "clamonacc.out")
        wait_until(lambda: probe_blocked(probe) or self.onacc.poll() is not None, 120,
                   "clamonacc to deny the probe file")
        if self.onacc.poll() is not None:
            raise RuntimeError(f"clamonacc exited: {(d / 'run' / 'clamonacc.log').read_text()}")

    def pids(self):
        return [p.pid for p in (self.clamd, self.onacc) if p]

    def stop(self):
        stop(self.onacc)
        stop(self.clamd)
        self.clamd = self.onacc = None


class FloorMode:
    """The floor: ward-floorbench (bench/realtime/floorbench.c), an
    on-access scanner with Ward's engine in the process that holds
    fanotify and nothing of Ward's own around it (no worker processes, no
    agent cache, no paths, no logging), on the same database and in block
    mode: what libclamav alone costs this machine. Its temporary files
    on a tmpfs (/dev/shm), as the scan workers' are."""
    name = "floor"

    def __init__(self, ctx):
        self.ctx = ctx
        self.logdir = None
        self.proc = None
        self.scratch = None

    def start(self, mnt, probe):
        prog = self.ctx.bin / "ward-floorbench"
        if not prog.exists():
            raise Unavailable(f"{prog} not found: build Ward first")
        self.logdir = self.ctx.tmp / "floor"
        self.logdir.mkdir(exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="ward-bench-floor-", dir="/dev/shm"))
        db = self.ctx.tmp / "floor-db"
        if not db.exists():
            db.mkdir()
            shutil.copy(self.ctx.cvd, db)
            shutil.copy(self.ctx.probe_hdb, db)
        self.proc = spawn([prog, db, mnt], self.logdir / "floor.out",
                          env=dict(os.environ, TMPDIR=str(self.scratch)))
        wait_until(lambda: probe_blocked(probe) or self.proc.poll() is not None, 120,
                   "ward-floorbench to deny the probe file")
        if self.proc.poll() is not None:
            raise RuntimeError(f"ward-floorbench exited: "
                               f"{(self.logdir / 'floor.out').read_text()[-2000:]}")

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        """Stops it; a floor that lost events (files it could not scan) is
        no floor: the round fails."""
        if not self.proc:
            return
        stop(self.proc)
        self.proc = None
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
        lines = (self.logdir / "floor.out").read_text().splitlines()
        counts = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if not counts or counts["lost"]:
            raise RuntimeError(f"ward-floorbench: {counts or 'no counters'}: "
                               "events lost, files left unscanned")


class WardMode:
    """Ward's real-time scanning (issue 16; the agent's protect service).
    wardd imports the same database clamd loads
    (--ward-source, default ClamAV's test-6.cvd and the probe signature);
    before any agent connects the root of the client tree gets
    realtime.enabled = true, realtime.mode = "block", realtime.paths =
    [the mounted tree] and scan_method; then ward-agent is enrolled with
    wardd's enroll.bundle and started (`ward-agent --config agent.ini
    run`, state under the harness's temporary directory, outside the
    tree). The mode is ready when the probe file in the tree is denied
    (or quarantined away). Its processes are ward-agent and every process
    under it (the scan workers); wardd is not counted."""

    def __init__(self, ctx, method):
        self.ctx = ctx
        self.method = method
        self.name = "ward" if method == "conventional" else "ward-smart"
        self.logdir = None
        self.wardd = self.agent = None

    def start(self, mnt, probe):
        from updates import start_wardd  # bench/updates.py
        for prog in ("wardd", "ward-agent"):
            if not (self.ctx.bin / prog).exists():
                raise Unavailable(f"{self.ctx.bin / prog} not found: build Ward first")
        w = self.ctx.tmp / self.name
        if w.exists():
            shutil.rmtree(w)
        w.mkdir()
        self.logdir = w
        self.wardd, api, _, data = start_wardd(self.ctx.bin, w, self.ctx.ward_source)
        for key, value in (("scan_method", self.method), ("realtime.enabled", True),
                           ("realtime.mode", "block"), ("realtime.paths", [str(mnt)])):
            status, body = api.call("PUT", "/api/v1/settings",
                                    {"scope": "root", "key": key, "value": value})
            if status != 200:
                raise Unavailable(f"{NO_WARD_REALTIME} (wardd refused {key}: {status} {body})")
        wait_until(lambda: all(c["version"] for c in api.call(
            "GET", "/api/v1/update")[1]["components"]), 300, "wardd's first components")
        conf = w / "agent.ini"
        self.conf = conf
        # As packaged: scan workers as ward-scan (nobody where the package
        # is not installed), their scratch space on a tmpfs as /run is.
        user = "ward-scan"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        scratch = Path(tempfile.mkdtemp(prefix="ward-bench-scratch-", dir="/dev/shm"))
        self.scratch = scratch
        conf.write_text(f"[agent]\nstate_dir = {w}/agent-state\n"
                        f"[scan]\nworker_user = {user}\nscratch_dir = {scratch}\n")
        run([self.ctx.bin / "ward-agent", "--config", conf, "enroll", "--bundle",
             data / "enroll.bundle"], "ward-agent enroll", timeout=120)
        self.agent = spawn([self.ctx.bin / "ward-agent", "--config", conf, "run"],
                           w / "agent.log")
        try:
            wait_until(lambda: probe_blocked(probe) or self.agent.poll() is not None, 120,
                       "ward-agent to deny the probe file")
        except Unavailable:
            raise Unavailable(f"{NO_WARD_REALTIME} (the probe file stayed readable)")
        if self.agent.poll() is not None:
            raise RuntimeError(f"ward-agent exited: {(w / 'agent.log').read_text()[-2000:]}")

    def pids(self):
        return [self.agent.pid] if self.agent else []

    def snapshot(self):
        """The agent's real-time counters after the workload, kept with
        its logs."""
        done = subprocess.run([self.ctx.bin / "ward-agent", "--config", self.conf, "status"],
                              capture_output=True, text=True, timeout=60)
        (self.logdir / "status.out").write_text(done.stdout + done.stderr)

    def stop(self):
        stop(self.agent)
        stop(self.wardd)
        self.agent = self.wardd = None
        if getattr(self, "scratch", None):
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


# ----------------------------------------------------------------------------
# Data

def git(*argv):
    return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, check=True
                          ).stdout


def make_tarballs(work, copies):
    """(tree tarball, source tarball, files in the tree) for HEAD, made once
    per commit and number of copies. The tree holds HEAD copies times,
    every file with a line naming its copy appended (so that no scanner
    can answer a copy from a content cache); the source tarball is `git
    archive HEAD` as it is."""
    try:
        head = git("rev-parse", "HEAD").decode().strip()
    except (OSError, subprocess.CalledProcessError):
        raise Unavailable("the workload is made from this repository's git HEAD: "
                          "run from a git clone")
    src = work / f"src-{head[:12]}.tar"
    tree = work / f"tree-{head[:12]}-{copies}.tar"
    count = work / f"tree-{head[:12]}-{copies}.count"
    for old in (*work.glob("src-*.tar"), *work.glob("tree-*")):
        if old not in (src, tree, count):
            old.unlink()  # another commit's or size's: 115 MB each
    if not src.exists():
        git("archive", "--format=tar", "-o", str(src), "HEAD")
    if not tree.exists() or not count.exists():
        log(f"making the workload tarball ({copies} copies of HEAD {head[:12]})")
        members = []
        with tarfile.open(src) as t:
            for m in t.getmembers():
                members.append((m, t.extractfile(m).read() if m.isfile() else None))
        files = 0
        with tarfile.open(str(tree) + ".part", "w", format=tarfile.GNU_FORMAT) as out:
            for c in range(copies):
                for m, data in members:
                    n = tarfile.TarInfo(f"c{c:03d}/{m.name}")
                    n.mode, n.mtime, n.type, n.linkname = m.mode, m.mtime, m.type, m.linkname
                    if data is None:
                        out.addfile(n)
                        continue
                    data = data + f"\n# ward-bench copy {c}\n".encode()
                    n.size = len(data)
                    out.addfile(n, io.BytesIO(data))
                    files += 1
        os.rename(str(tree) + ".part", tree)
        count.write_text(f"{files}\n")
    return tree, src, int(count.read_text())


# ----------------------------------------------------------------------------
# The filesystem of a round

class Filesystem:
    """A fresh ext4 image on a loop device, or a tmpfs, at tmp/mnt."""

    def __init__(self, tmp, kind, size_mib):
        self.mnt = tmp / "mnt"
        self.img = tmp / "fs.img"
        self.kind = kind
        self.size_mib = size_mib
        self.mounted = False
        self.mnt.mkdir(exist_ok=True)

    def __enter__(self):
        if self.kind == "tmpfs":
            run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m,mode=0755",
                 "ward-bench", self.mnt], "mount tmpfs")
        else:
            with open(self.img, "wb") as f:
                f.truncate(self.size_mib << 20)
            # Inode tables and journal written now, not by a kernel thread
            # during the round.
            run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                 self.img], "mkfs.ext4")
            run(["mount", "-o", "loop", self.img, self.mnt], "mount the ext4 image")
        self.mounted = True
        os.chmod(self.mnt, 0o755)
        return self.mnt

    def __exit__(self, *exc):
        if self.mounted:
            for attempt in range(50):
                if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode == 0:
                    break
                time.sleep(0.2)
            else:
                subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)
            self.mounted = False
        if self.img.exists():
            self.img.unlink()


# ----------------------------------------------------------------------------
# One round of one mode

def keep_logs(args, mode, rnd):
    """The scanner's logs of a round, kept in --work/logs/MODE-ROUND."""
    if mode.logdir and mode.logdir.is_dir():
        dest = args.work / "logs" / f"{mode.name}-{rnd}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in (*mode.logdir.glob("*.log"), *mode.logdir.glob("*.out")):
            shutil.copy(f, dest)


def one_round(args, ctx, mode, rnd):
    res = {}
    with Filesystem(ctx.tmp, args.fs, args.fs_size) as mnt:
        # Made before the scanner starts: the open set, two uncached sets,
        # the probe.
        openbench(args, "populate", mnt / "open", args.open_files, args.file_size)
        openbench(args, "populate", mnt / "new1", args.new_files, args.file_size)
        openbench(args, "populate", mnt / "new2", args.new_files, args.file_size)
        openbench(args, "populate", mnt / "new8", args.new_files, args.file_size)
        (mnt / "probe").mkdir()
        probe = mnt / "probe" / "probe.bin"
        probe.write_bytes(PROBE)
        os.sync()
        sampler = None
        try:
            t0 = time.monotonic()
            mode.start(mnt, probe)
            res["start_s"] = time.monotonic() - t0
            sampler = RssSampler(mode.pids())
            sampler.start()
            res["reopen"] = openbench(args, "reopen", mnt / "open", args.open_rounds)
            res["new1"] = openbench(args, "uncached", mnt / "new1", 1)
            res["new2"] = openbench(args, "uncached", mnt / "new2", 2)
            res["new8"] = openbench(args, "uncached", mnt / "new8", 8)
            (mnt / "tree").mkdir()
            # The scanner's processor time, the part of the workload's cost
            # that the machine's noise moves least.
            cpu0 = cpu_seconds(mode.pids())
            res["unpack_s"] = run(["tar", "-x", "-f", ctx.tree, "-C", mnt / "tree"], "unpack")
            read = openbench(args, "readtree", mnt / "tree", 2)
            res["read_s"] = read["seconds"]
            res["read_problems"] = read["denied"] + read["errors"]
            cpu1 = cpu_seconds(mode.pids())
            res["cpu_tree_s"] = cpu1 - cpu0
            (mnt / "src").mkdir()
            t = run(["tar", "-x", "-f", ctx.src, "-C", mnt / "src"], "unpack the sources")
            t += run(["cmake", "-S", mnt / "src", "-B", mnt / "build",
                      "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DWARD_TESTS=OFF"], "cmake")
            t += run(["cmake", "--build", mnt / "build", "-j", args.jobs, "--target",
                      *args.targets.split(",")], "the build")
            res["build_s"] = t
            res["cpu_build_s"] = cpu_seconds(mode.pids()) - cpu1
            res["total_s"] = res["unpack_s"] + res["read_s"] + res["build_s"]
            if hasattr(mode, "snapshot"):
                mode.snapshot()
            # Coverage: the probe written into the deepest folder tar made
            # during the round (a scanner that marks folders, not the
            # filesystem, must have followed it).
            late = max((mnt / "tree").glob("*/*/*/"), key=str) / "probe.bin"
            late.write_bytes(PROBE)
            deadline = time.monotonic() + 5
            while not probe_blocked(late) and time.monotonic() < deadline:
                time.sleep(0.1)
            res["late_probe_blocked"] = probe_blocked(late)
        finally:
            if sampler:
                res["rss_kib"], res["pss_kib"] = sampler.finish()
            mode.stop()
            keep_logs(args, mode, rnd)
    return res


def preflight(args, ctx, mode):
    """Starts and stops a scanner once on a small filesystem of its own: a
    mode that cannot run fails before the rounds, not after."""
    with Filesystem(ctx.tmp, "tmpfs", 64) as mnt:
        (mnt / "probe").mkdir()
        probe = mnt / "probe" / "probe.bin"
        probe.write_bytes(PROBE)
        try:
            mode.start(mnt, probe)
        finally:
            mode.stop()
            keep_logs(args, mode, 0)


# ----------------------------------------------------------------------------
# Report

def med(rounds, *path):
    vals = []
    for r in rounds:
        v = r
        for p in path:
            v = v[p]
        vals.append(v)
    return statistics.median(vals)


def table(args, ctx, results):
    modes = list(results)
    head = "| measure | " + " | ".join(modes) + " |"
    lines = [head, "|---|" + "---:|" * len(modes)]

    def row(label, fmt):
        cells = []
        for m in modes:
            try:
                cells.append(fmt(m, results[m]))
            except (KeyError, ZeroDivisionError, statistics.StatisticsError):
                cells.append("—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    base = results.get("off")

    def vs_off(m, value, path):
        if not base or m == "off":
            return ""
        return f" ({value / med(base, *path):.2f}×)"

    row(f"open+close of a scanned file, p50 (µs) ({args.open_files} files × "
        f"{args.open_rounds} rounds)",
        lambda m, r: f"{med(r, 'reopen', 'p50_us'):.1f}"
        + vs_off(m, med(r, "reopen", "p50_us"), ("reopen", "p50_us")))
    row("open+close of a scanned file, p99 (µs)",
        lambda m, r: f"{med(r, 'reopen', 'p99_us'):.1f}")
    row("open+close of a scanned file, operations/s",
        lambda m, r: f"{med(r, 'reopen', 'ops_per_s'):,.0f}")
    row(f"new small file ({args.file_size} B), first open, p50 / p99 (µs), 1 thread",
        lambda m, r: f"{med(r, 'new1', 'p50_us'):.1f} / {med(r, 'new1', 'p99_us'):.1f}")
    row(f"verdicts/s for new small files, 1 thread ({args.new_files} files)",
        lambda m, r: f"{med(r, 'new1', 'verdicts_per_s'):,.0f}")
    row("verdicts/s for new small files, 2 threads",
        lambda m, r: f"{med(r, 'new2', 'verdicts_per_s'):,.0f}")
    row("verdicts/s for new small files, 8 threads",
        lambda m, r: f"{med(r, 'new8', 'verdicts_per_s'):,.0f}")
    row(f"unpack {ctx.files:,} files (s)", lambda m, r: f"{med(r, 'unpack_s'):.2f}")
    row("read every file twice (s)", lambda m, r: f"{med(r, 'read_s'):.2f}")
    row(f"build Ward ({args.targets}; cmake + -j{args.jobs}) (s)",
        lambda m, r: f"{med(r, 'build_s'):.2f}")
    row("file-heavy workload, total (s) (every round)",
        lambda m, r: f"**{med(r, 'total_s'):.2f}** ("
        + ", ".join(f"{x['total_s']:.1f}" for x in r) + ")")

    def added(m, r):
        if not base or m == "off":
            return "—"
        a = med(r, "total_s") - med(base, "total_s")
        return f"{a:+.2f} s ({a / med(base, 'total_s') * 100:+.1f}%)"
    row("added time against off (medians)", added)
    row(f"scanner's processor time, unpack + read (s; µs a file of the {ctx.files:,})",
        lambda m, r: "—" if m == "off" else
        f"{med(r, 'cpu_tree_s'):.2f} ({med(r, 'cpu_tree_s') * 1e6 / ctx.files:.0f})")
    row("scanner's processor time, build (s)",
        lambda m, r: "—" if m == "off" else f"{med(r, 'cpu_build_s'):.2f}")
    row("scanner's processes, peak RSS / Pss (MiB)",
        lambda m, r: "—" if m == "off" else
        f"{med(r, 'rss_kib') / 1024:.1f} / {med(r, 'pss_kib') / 1024:.1f}")
    row("scanner start until the probe is denied (s)",
        lambda m, r: "—" if m == "off" else f"{med(r, 'start_s'):.1f}")
    row("probe written into a folder the workload made: denied in every round",
        lambda m, r: "—" if m == "off" else "yes" if all(x["late_probe_blocked"] for x in r) else
        f"no ({sum(not x['late_probe_blocked'] for x in r)} of {len(r)} rounds allowed it)")
    row("opens denied or failed (should be 0)",
        lambda m, r: str(sum(x["reopen"]["denied"] + x["reopen"]["errors"]
                             + x["new1"]["denied"] + x["new1"]["errors"]
                             + x["new2"]["denied"] + x["new2"]["errors"]
                             + x["read_problems"] for x in r)))
    return "\n".join(lines)


# ----------------------------------------------------------------------------

class Context:
    pass


def make_mode(ctx, name):
    if name == "off":
        return OffMode(ctx)
    if name == "clamonacc":
        return ClamonaccMode(ctx)
    if name == "floor":
        return FloorMode(ctx)
    if name == "ward":
        return WardMode(ctx, "conventional")
    if name == "ward-smart":
        return WardMode(ctx, "smart")
    raise SystemExit(f"bench-realtime: unknown mode {name!r} "
                     "(off, clamonacc, floor, ward, ward-smart)")


def enter_namespace():
    """Re-executes the harness in a private mount namespace: its mounts are
    seen by no one else and go away with it, even if it is killed."""
    if os.geteuid() != 0:
        sys.exit("bench-realtime: needs root (it mounts a filesystem of its own and runs "
                 "fanotify scanners on it): run as root, e.g. sudo make bench-realtime")
    if os.environ.get(NS_ENV) == "1":
        return
    if not shutil.which("unshare"):
        sys.exit("bench-realtime: unshare (util-linux) not found")
    env = dict(os.environ, **{NS_ENV: "1"})
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                           sys.executable, *sys.argv], env)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin",
                    help="where ward-openbench, ward-floorbench, wardd and ward-agent are "
                    "(default: build/bin)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-realtime",
                    help="tarballs and results (default: build/bench-realtime)")
    ap.add_argument("--modes", default="off,clamonacc,floor,ward",
                    help="comma-separated, run in this order in every round: off, clamonacc, "
                    "floor, ward, ward-smart (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="default: %(default)s")
    ap.add_argument("--fs", choices=("ext4", "tmpfs"), default="ext4",
                    help="the filesystem mounted for each round (default: %(default)s)")
    ap.add_argument("--fs-size", type=int, default=3072, help="MiB (default: %(default)s)")
    ap.add_argument("--copies", type=int, default=48,
                    help="copies of HEAD in the workload's tree (default: %(default)s)")
    ap.add_argument("--targets", default="ward-agent",
                    help="what the workload builds (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="default: %(default)s")
    ap.add_argument("--open-files", type=int, default=1000, help="default: %(default)s")
    ap.add_argument("--open-rounds", type=int, default=5, help="default: %(default)s")
    ap.add_argument("--new-files", type=int, default=3000,
                    help="files in each uncached set (default: %(default)s)")
    ap.add_argument("--file-size", type=int, default=512,
                    help="bytes of the open and uncached files (default: %(default)s)")
    ap.add_argument("--ward-source", type=Path,
                    help="signature source wardd imports in the ward modes, e.g. "
                    "build/bench-data/db (copied, with the probe's signature added; "
                    "default: the database clamd loads)")
    args = ap.parse_args()
    enter_namespace()

    modes_wanted = args.modes.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    # SIGTERM and SIGHUP unwind like Ctrl-C, through every cleanup below.
    def interrupted(*_):
        raise KeyboardInterrupt()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)

    ctx = Context()
    ctx.bin = args.bin.resolve()
    if not (ctx.bin / "ward-openbench").exists():
        sys.exit(f"bench-realtime: {ctx.bin / 'ward-openbench'} not found: build first (make)")
    # Under /tmp (clamd, as clamav, must reach its files), not in the
    # clone: the mount point and the scanners' state.
    ctx.tmp = Path(tempfile.mkdtemp(prefix="ward-bench-realtime-"))
    os.chmod(ctx.tmp, 0o755)
    db = ctx.tmp / "db"
    db.mkdir()
    ctx.cvd = ROOT / "tests" / "data" / "clamav" / "cvd" / "test-6.cvd"
    shutil.copy(ctx.cvd, db)
    ctx.probe_hdb = db / "probe.hdb"
    ctx.probe_hdb.write_text(f"{hashlib.md5(PROBE).hexdigest()}:{len(PROBE)}:"
                             "Ward.Bench.Probe\n")
    ctx.ward_source = db
    modes = [make_mode(ctx, m) for m in modes_wanted]
    results = {m.name: [] for m in modes}
    status = 0
    mode = None
    try:
        if args.ward_source:
            # Another database (the foundation benchmark's, for the RSS
            # target), with the probe's signature beside it.
            ctx.ward_source = ctx.tmp / "ward-source"
            shutil.copytree(args.ward_source, ctx.ward_source)
            shutil.copy(ctx.probe_hdb, ctx.ward_source)
        for mode in modes:
            if mode.name != "off":
                log(f"checking that {mode.name} starts and blocks the probe")
                preflight(args, ctx, mode)
        mode = None
        ctx.tree, ctx.src, ctx.files = make_tarballs(args.work, args.copies)
        for rnd in range(1, args.rounds + 1):
            for mode in modes:
                log(f"round {rnd}/{args.rounds}: {mode.name}")
                r = one_round(args, ctx, mode, rnd)
                log(f"  {mode.name}: workload {r['total_s']:.1f} s (unpack {r['unpack_s']:.1f}, "
                    f"read {r['read_s']:.1f}, build {r['build_s']:.1f}); open p50 "
                    f"{r['reopen']['p50_us']:.1f} µs; new files "
                    f"{r['new1']['verdicts_per_s']:.0f}/s")
                results[mode.name].append(r)
    except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as e:
        log(f"{mode.name if mode else 'setup'}: {e}")
        status = 1
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    done = {k: v for k, v in results.items() if v}
    if not done:
        return status or 1
    counts = {len(v) for v in done.values()}
    rounds = (f"{counts.pop()} round(s)" if len(counts) == 1 else
              "rounds: " + ", ".join(f"{k} {len(v)}" for k, v in done.items()))
    text = (f"{rounds}, modes alternating ({', '.join(done)}), medians; "
            f"{args.fs} of {args.fs_size} MiB; {os.cpu_count()} CPUs, load "
            f"{os.getloadavg()[0]:.1f} at the end\n\n" + table(args, ctx, done))
    print(text)
    (args.work / "results.md").write_text(text + "\n")
    (args.work / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "files": ctx.files,
         "results": done}, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
