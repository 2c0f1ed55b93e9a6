#!/usr/bin/env python3
"""Benchmark the agent's clamd service against clamd, side by side in one
run, on the scan benchmark's database and corpus (bench/gen_db.py,
bench/gen_corpus.py; made here when missing):

1. wardd imports the database (the Virus Pattern and the Smart Scan Agent
   Pattern); two agents enroll with their clamd service on, one
   conventional, one smart; Debian's clamd loads the same database.
   libclamav's per-scan temporary directories are on the same
   filesystem for both: --scratch, a tmpfs by default (/dev/shm: the
   agent's package puts its scratch under /run).
2. Round trips, each on a connection of its own as clamdscan makes them,
   p50 and p99 of --count: PING; FILDES, SCAN and INSTREAM of a tiny file
   and of a 1 MiB one. clamd and the conventional agent alternate, in
   --rounds rounds; the median round is reported.
3. Small objects over one pipelined IDSESSION (INSTREAM of distinct 1 KiB
   objects, a thread reading while another writes): objects per second,
   after one session of each daemon that is not counted.
4. `clamdscan --multiscan` of the corpus: a first scan (each daemon just
   started, the agent's verdict cache empty) and a second scan of the
   unchanged corpus by the same daemon; the same verdicts from both.
5. Memory: clamd's VmRSS, and the agent's with its scan worker (the
   processes together), conventional and smart, once loaded and after the
   scans.

Prints a markdown report and writes result.json in --work. Root (the
workers run as nobody and the corpus is read by the agent). Python 3
standard library only.
"""
import argparse
import array
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from run import clamd_answers, log, scan_data, warm_page_cache  # noqa: E402
from updates import source_dir, start_wardd, wait_import  # noqa: E402


def rss_kib(pids):
    """The VmRSS of pids together."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += int(next(l for l in f if l.startswith("VmRSS")).split()[1])
        except (FileNotFoundError, StopIteration):
            pass
    return total


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def ask(sock, data, fd=None):
    """One command on a connection of its own; the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(120)
        s.connect(str(sock))
        if fd is None:
            s.sendall(data)
        else:
            s.sendall(data[:-1])
            s.sendmsg([data[-1:]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [fd]))])
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def instream(data):
    return (b"zINSTREAM\0" + b"".join(struct.pack(">I", len(data[i:i + 65536])) +
                                      data[i:i + 65536] for i in range(0, len(data), 65536))
            + struct.pack(">I", 0))


def round_trips(sock, request, count, fd_path=None):
    """p50 and p99 (ms) of count requests; the last answer."""
    times = []
    for _ in range(count):
        fd = os.open(fd_path, os.O_RDONLY) if fd_path else None
        start = time.perf_counter()
        answer = ask(sock, request, fd)
        times.append((time.perf_counter() - start) * 1000)
        if fd is not None:
            os.close(fd)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99)],
            "answer": answer.decode(errors="replace").rstrip("\0\n")}


def pipelined(sock, n):
    """Objects per second over one IDSESSION: n INSTREAMs of distinct 1 KiB
    objects, written by one thread while this one reads the answers."""
    objs = [b"".join([b"object %08d " % i] * 64)[:1024] for i in range(n)]
    payload = b"zIDSESSION\0" + b"".join(instream(o) for o in objs) + b"zEND\0"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(120)
        s.connect(str(sock))
        writer = threading.Thread(target=s.sendall, args=(payload,))
        start = time.perf_counter()
        writer.start()
        # Answers are counted by their terminators, at C speed: the client
        # must not be what is measured.
        got, errors, tail = 0, 0, b""
        while got < n:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk.count(b"\0")
            errors += (tail + chunk).count(b"ERROR\0")
            tail = chunk[-5:]
        elapsed = time.perf_counter() - start
        writer.join()
    if got != n or errors:
        sys.exit(f"bench-clamd: {got} of {n} answers over the session, {errors} errors")
    return n / elapsed


def multiscan(conf, corpus, work, tag):
    start = time.perf_counter()
    done = subprocess.run(["clamdscan", "--config-file", str(conf), "--multiscan",
                           "--no-summary", "-i", str(corpus)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"bench-clamd: clamdscan ({tag}) exited {done.returncode}: {done.stderr}")
    (work / f"multiscan-{tag}.out").write_text(done.stdout)
    found = sorted(l.replace(".UNOFFICIAL", "") for l in done.stdout.splitlines()
                   if l.endswith(" FOUND"))
    return wall, found


class Clamd:
    def __init__(self, db, work, scratch):
        self.dir = Path(tempfile.mkdtemp(prefix="ward-bench-clamd-"))
        self.sock = self.dir / "clamd.sock"
        self.conf = work / "clamd.conf"
        (scratch / "clamd").mkdir()
        self.conf.write_text(f"LocalSocket {self.sock}\nDatabaseDirectory {db}\n"
                             f"Foreground yes\nTemporaryDirectory {scratch / 'clamd'}\n")
        self.work = work

    def start(self):
        self.log = open(self.work / "clamd.log", "ab")
        start = time.perf_counter()
        self.proc = subprocess.Popen(["clamd", "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                sys.exit("bench-clamd: clamd exited")
            try:
                if clamd_answers(self.sock, 5):
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            time.sleep(0.05)
        return time.perf_counter() - start

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Agent:
    def __init__(self, bin_dir, work, name, bundle, scratch):
        self.bin = bin_dir / "ward-agent"
        self.dir = work / name
        self.dir.mkdir()
        self.sockdir = Path(tempfile.mkdtemp(prefix=f"ward-bench-{name}-"))
        self.sock = self.sockdir / "clamd.sock"
        self.conf = self.dir / "agent.ini"
        self.conf.write_text(f"[agent]\nstate_dir = {self.dir}/state\n"
                             f"[scan]\nworker_user = nobody\nscratch_dir = {scratch / name}\n"
                             f"[clamd]\nenabled = yes\nsocket = {self.sock}\n")
        subprocess.run([self.bin, "--config", self.conf, "enroll", "--bundle", bundle],
                       check=True, capture_output=True)
        self.client = json.loads((self.dir / "state" / "credential.json").read_text())["client"]
        self.clamdscan_conf = self.dir / "clamdscan.conf"
        self.clamdscan_conf.write_text(f"LocalSocket {self.sock}\n")

    def start(self, component):
        self.log = open(self.dir / "agent.log", "ab")
        start = time.perf_counter()
        self.proc = subprocess.Popen([self.bin, "--config", self.conf, "run"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"bench-clamd: the agent exited; see {self.dir}/agent.log")
            status = subprocess.run([self.bin, "--config", self.conf, "status"],
                                    capture_output=True, text=True).stdout
            if f"in use: {component}" in status and self.sock.exists():
                break
            time.sleep(0.2)
        return time.perf_counter() - start

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.log.close()

    def remove(self):
        shutil.rmtree(self.sockdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin")
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "bench-data",
                    help="the scan benchmark's data (made by bench/run.py when missing)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-clamd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=2000,
                    help="round trips of each kind a round (a fifth of it for 1 MiB)")
    ap.add_argument("--objects", type=int, default=20000, help="objects over the session")
    ap.add_argument("--scratch", type=Path, default=Path("/dev/shm"),
                    help="where both daemons' libclamav makes its per-scan directories "
                         "(default a tmpfs; give a directory on disk to compare there)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-clamd: needs root (the agents' scan workers run as nobody)")
    scan_data(args.bin / "ward", args.data)
    db, corpus = args.data / "db", args.data / "corpus"
    src = source_dir(db, args.work)
    small = args.work / "small.txt"
    small.write_bytes(b"a small clean file\n")
    big = args.work / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    res = {"rounds": []}
    log("wardd imports the database")
    wardd, api, _, data = start_wardd(args.bin, args.work, src)
    # libclamav makes and removes a directory for each scan: both daemons
    # get theirs on the same filesystem (a tmpfs by default, as the agent's
    # package has it under /run), so the daemons are compared, not the
    # filesystems.
    scratch = Path(tempfile.mkdtemp(prefix="ward-bench-clamd-", dir=args.scratch))
    scratch.chmod(0o755)
    clamd = Clamd(db, args.work, scratch)
    running = []  # what to stop at the end
    try:
        _, res["import_s"] = wait_import(api, 1)
        bundle = data / "enroll.bundle"
        conv = Agent(args.bin, args.work, "conventional", bundle, scratch)
        smart = Agent(args.bin, args.work, "smart", bundle, scratch)
        status, body = api.call("PUT", "/api/v1/settings", {
            "scope": f"client:{smart.client}", "key": "scan_method", "value": "smart"})
        assert status == 200, body
        log("clamd and the agents load")
        running += [clamd, conv, smart]
        res["load_s"] = {"clamd": clamd.start(), "conventional": conv.start("virus-pattern"),
                         "smart": smart.start("smart-agent-pattern")}
        time.sleep(2)
        res["rss_loaded_kib"] = {"clamd": rss_kib(clamd.pids()),
                                 "conventional": rss_kib(conv.pids()),
                                 "smart": rss_kib(smart.pids())}
        daemons = (("clamd", clamd), ("ward", conv))
        # The first session of each daemon touches its database's pages
        # for the first time: not counted.
        for _, d in daemons:
            pipelined(d.sock, args.objects)
        for rnd in range(args.rounds):
            log(f"round trips, round {rnd + 1}")
            r = {}
            for name, d in daemons if rnd % 2 == 0 else reversed(daemons):
                r[name] = {
                    "ping": round_trips(d.sock, b"zPING\0", args.count),
                    "fildes_tiny": round_trips(d.sock, b"zFILDES\0\0", args.count, small),
                    "fildes_1m": round_trips(d.sock, b"zFILDES\0\0", args.count // 5, big),
                    "scan_tiny": round_trips(d.sock, b"zSCAN %s\0" % os.fsencode(small), args.count),
                    "scan_1m": round_trips(d.sock, b"zSCAN %s\0" % os.fsencode(big), args.count // 5),
                    "instream_tiny": round_trips(d.sock, instream(small.read_bytes()),
                                                 args.count),
                    "instream_1m": round_trips(d.sock, instream(big.read_bytes()),
                                               args.count // 5),
                    "session_per_s": pipelined(d.sock, args.objects),
                }
            res["rounds"].append(r)
        res["rss_after_kib"] = {"clamd": rss_kib(clamd.pids()),
                                "conventional": rss_kib(conv.pids()),
                                "smart": rss_kib(smart.pids())}
        smart.stop()
        # The corpus: each daemon fresh (clamd remembers clean files by
        # their content; the agent its verdicts), the page cache warm.
        res["multiscan"] = []
        for rnd in range(args.rounds):
            log(f"clamdscan --multiscan, round {rnd + 1}")
            r = {}
            for name, d in daemons if rnd % 2 == 0 else reversed(daemons):
                d.stop()
                if name == "ward":
                    shutil.rmtree(conv.dir / "state" / "clamd-cache", ignore_errors=True)
                    d.start("virus-pattern")
                else:
                    d.start()
                conf = clamd.conf if name == "clamd" else conv.clamdscan_conf
                warm_page_cache(corpus)
                first, found1 = multiscan(conf, corpus, args.work, f"{name}-{rnd}-first")
                second, found2 = multiscan(conf, corpus, args.work, f"{name}-{rnd}-second")
                r[name] = {"first_s": first, "second_s": second, "found": len(found1),
                           "same_twice": found1 == found2, "rss_kib": rss_kib(d.pids())}
                r[name]["_found"] = found1
            r["same_verdicts"] = r["clamd"].pop("_found") == r["ward"].pop("_found")
            res["multiscan"].append(r)
    finally:
        for d in running:
            if getattr(d, "proc", None) and d.proc.poll() is None:
                d.stop()
            d.remove()
        clamd.remove()
        shutil.rmtree(scratch, ignore_errors=True)
        wardd.terminate()
        wardd.wait(timeout=60)
    (args.work / "result.json").write_text(json.dumps(res, indent=2) + "\n")
    report(res)


def report(res):
    def med(daemon, kind, key):
        return statistics.median(r[daemon][kind][key] for r in res["rounds"])

    print("| request | clamd p50 | ward p50 | clamd p99 | ward p99 |")
    print("|---|---|---|---|---|")
    for kind in ("ping", "fildes_tiny", "fildes_1m", "scan_tiny", "scan_1m", "instream_tiny",
                 "instream_1m"):
        print(f"| {kind} | {med('clamd', kind, 'p50_ms'):.3f} ms | "
              f"{med('ward', kind, 'p50_ms'):.3f} ms | {med('clamd', kind, 'p99_ms'):.3f} ms | "
              f"{med('ward', kind, 'p99_ms'):.3f} ms |")
    rate = {d: statistics.median(r[d]["session_per_s"] for r in res["rounds"])
            for d in ("clamd", "ward")}
    print(f"\nsmall objects over one IDSESSION: clamd {rate['clamd']:,.0f}/s, "
          f"ward {rate['ward']:,.0f}/s (rounds: " +
          ", ".join(f"{r['clamd']['session_per_s']:,.0f}/{r['ward']['session_per_s']:,.0f}"
                    for r in res["rounds"]) + ")")
    print("\n| clamdscan --multiscan | clamd | ward |\n|---|---|---|")
    for key in ("first_s", "second_s"):
        vals = {d: statistics.median(r[d][key] for r in res["multiscan"]) for d in ("clamd", "ward")}
        rounds = ", ".join(f"{r['clamd'][key]:.2f}/{r['ward'][key]:.2f}" for r in res["multiscan"])
        print(f"| {key[:-2]} scan | {vals['clamd']:.2f} s | {vals['ward']:.2f} s "
              f"(rounds {rounds}) |")
    print(f"\nsame verdicts: {all(r['same_verdicts'] for r in res['multiscan'])}, "
          f"files found: {res['multiscan'][0]['clamd']['found']}")
    print("\n| RSS | clamd | ward conventional | ward smart |\n|---|---|---|---|")
    for key in ("rss_loaded_kib", "rss_after_kib"):
        v = res[key]
        print(f"| {key[4:-4]} | {v['clamd'] / 1024:.0f} MiB | {v['conventional'] / 1024:.0f} MiB "
              f"| {v['smart'] / 1024:.0f} MiB |")


if __name__ == "__main__":
    main()
