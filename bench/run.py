#!/usr/bin/env python3
"""Benchmark ward against clamscan and clamd/clamdscan on the same data.

Generates (or reuses) a synthetic signature database and corpus, then
measures database load time and memory, a first full scan, a re-scan of the
unchanged corpus with ward's cache, and checks that every tool reports the
same detections as clamscan and finds every planted file.  Prints a markdown
report and writes it to --out; exits 1 if verdicts differ or a tool fails.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GENERATORS = ("gen_corpus.py", "gen_db.py", "synthsig.py")
MIB = 1 << 20
REPEAT = 3            # runs of the cheap measurements (load, re-scan); the median is kept
CLAMD_START_LIMIT = 900
UNOFFICIAL = ".UNOFFICIAL"  # libclamav appends this to names from unsigned databases
CLAMSCAN = "clamscan"       # the reference every other tool's verdicts are compared with


class ToolError(Exception):
    pass


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


@dataclasses.dataclass
class Run:
    """One finished command."""
    wall: float       # seconds
    cpu: float        # user + system seconds
    maxrss_kib: int
    out: Path         # its standard output


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run_timed(cmd, work, tag, ok=(0, 1)):
    """Run cmd with output to files in work; fail unless its exit code is in ok.

    The child is reaped with wait4 so its own peak RSS (ru_maxrss) is read,
    not that of everything this script has run.
    """
    out, err = work / f"{tag}.out", work / f"{tag}.err"
    with open(out, "wb") as fout, open(err, "wb") as ferr:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=fout, stderr=ferr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    if proc.returncode not in ok:
        tail = err.read_text(errors="replace")[-2000:]
        raise ToolError(f"{Path(cmd[0]).name} exited {proc.returncode} ({tag}):\n{tail}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out)


def median_run(cmd, work, tag, ok=(0, 1)):
    runs = sorted((run_timed(cmd, work, f"{tag}-{i}", ok) for i in range(REPEAT)), key=lambda r: r.wall)
    return runs[len(runs) // 2]


def verdicts(run, corpus):
    """{path relative to corpus: signature name} from 'PATH: NAME FOUND' lines."""
    found = {}
    with open(run.out, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith(" FOUND"):
                path, _, name = line[:-len(" FOUND")].rpartition(": ")
                found[os.path.relpath(path, corpus)] = name
    return found


def differences(got, want):
    return [f"{path}: got {got.get(path, '(clean)')}, expected {want.get(path, '(clean)')}"
            for path in sorted(got.keys() | want.keys()) if got.get(path) != want.get(path)]


def first_line(cmd):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except OSError:
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else "unknown"


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return f"{len(os.sched_getaffinity(0))} CPUs ({model}), {kib / MIB:.1f} GiB RAM, Linux {platform.release()}"


def generator_digest():
    digest = hashlib.sha256()
    for name in GENERATORS:
        digest.update((BENCH / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_data(args, data):
    """Reuse data generated with the same parameters, or generate it anew."""
    params = {"size_mb": args.size_mb, "md5": args.md5, "sha256": args.sha256, "ndb": args.ndb,
              "ldb": args.ldb, "seed": args.seed, "infected": args.infected,
              "generators": generator_digest()}
    meta_path = data / "params.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            log(f"reusing data in {data}")
            return meta
        log(f"parameters changed, regenerating {data}")
    # params.json goes first and is rewritten last, so an interrupted
    # generation is never mistaken for a complete one.
    for name in ("params.json", "corpus", "db", "planted.tsv", "manifest.tsv"):
        path = data / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    data.mkdir(parents=True, exist_ok=True)
    timings = {}
    for script, extra in (("gen_corpus.py", ["--size-mb", args.size_mb, "--infected", args.infected,
                                             "--out", data / "corpus"]),
                          ("gen_db.py", ["--md5", args.md5, "--sha256", args.sha256, "--ndb", args.ndb,
                                         "--ldb", args.ldb, "--planted", data / "planted.tsv",
                                         "--out", data / "db"])):
        log(f"running {script}")
        start = time.perf_counter()
        subprocess.run([sys.executable, BENCH / script, "--seed", str(args.seed)] + [str(a) for a in extra],
                       check=True)
        timings[script] = round(time.perf_counter() - start, 1)
    meta = {"params": params, "generation_s": timings}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def scan_data(ward, data):
    """Makes this benchmark's database and corpus in data when missing (the
    clamd and smart scan benchmarks use them)."""
    if not (data / "db" / "synth.hdb").exists() or not (data / "corpus").exists():
        log("generating the scan benchmark's data")
        subprocess.run([sys.executable, BENCH / "run.py", "--ward", ward, "--data", data,
                        "--data-only"], check=True)


def warm_page_cache(tree):
    """Read everything, so each first scan starts from the same cache state.

    Done right before each first scan: some VMs' hosts reclaim the page
    cache within a minute, so one warm-up at the start would not last.
    """
    buf = bytearray(MIB)
    for root, _, files in os.walk(tree):
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass


def first_result(run, corpus):
    return {"scan": run.wall, "cpu": run.cpu, "peak_rss": run.maxrss_kib, "found": verdicts(run, corpus)}


def ward_scan_cmd(args, db, corpus, cache):
    return [args.ward, "scan", "-r", "-j", args.jobs, "--cache", cache, "--no-summary", "-i",
            "-d", db, corpus]


def ward_load(args, db, work, empty):
    load = median_run([args.ward, "scan", "--no-cache", "-d", db, empty], work, "ward-load", ok=(0,))
    log(f"ward: DB load {load.wall:.2f}s")
    return {"load": load.wall, "load_rss": load.maxrss_kib}


def ward_first(args, db, corpus, work, rnd):
    """One first scan, into a fresh cache directory (kept for the re-scan)."""
    cache = work / f"ward-cache-{rnd}"
    cache.mkdir()
    warm_page_cache(corpus)
    first = run_timed(ward_scan_cmd(args, db, corpus, cache), work, f"ward-first-{rnd}")
    log(f"ward: first scan {first.wall:.2f}s (round {rnd})")
    return first_result(first, corpus)


def ward_rescan(args, db, corpus, work):
    # Whole command, DB included: whatever ward needs to answer from its cache is part of the cost.
    rescan = median_run(ward_scan_cmd(args, db, corpus, work / "ward-cache-1"), work, "ward-rescan")
    log(f"ward: re-scan {rescan.wall:.2f}s")
    return {"rescan": rescan.wall, "rescan_found": verdicts(rescan, corpus)}


def bench_clamscan(db, corpus, work, empty):
    res = {}
    load = median_run(["clamscan", "-d", db, empty], work, "clamscan-load", ok=(0,))
    res.update(load=load.wall, load_rss=load.maxrss_kib)
    log(f"clamscan: DB load {load.wall:.2f}s")
    warm_page_cache(corpus)
    first = run_timed(["clamscan", "-r", "--no-summary", "-i", "-d", db, corpus], work, "clamscan-first")
    log(f"clamscan: first scan {first.wall:.2f}s")
    res["rounds"] = [first_result(first, corpus)]
    return res


def cpu_seconds(pid):
    """User + system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1])


def clamd_answers(sock_path, timeout):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(b"zPING\0")
        reply = b""
        while not reply.endswith(b"\0"):
            chunk = s.recv(64)
            if not chunk:
                break
            reply += chunk
        return reply == b"PONG\0"


def clamd_round(threads, db, corpus, work, rnd):
    """Start clamd, time its load, one clamdscan --multiscan, stop it.

    A fresh daemon each round: clamd remembers clean files by content hash,
    so a second scan by the same daemon would not scan at all.
    """
    res = {}
    # AF_UNIX paths are limited to 108 bytes, so the socket lives in a short temp dir.
    sock_dir = Path(tempfile.mkdtemp(prefix="ward-bench-"))
    sock = sock_dir / "clamd.sock"
    conf = work / "clamd.conf"
    # Without LogFile clamd reports to stderr (kept in clamd-ROUND.log); without User,
    # started by root, it stays root and can read the whole corpus.
    conf.write_text(f"LocalSocket {sock}\nDatabaseDirectory {db}\nForeground yes\n"
                    f"MaxThreads {threads}\nTemporaryDirectory {work}\n")
    clamd_log_path = work / f"clamd-{rnd}.log"
    with open(clamd_log_path, "wb") as clamd_log:
        start = time.perf_counter()
        proc = subprocess.Popen(["clamd", "-c", str(conf)], stdout=clamd_log, stderr=subprocess.STDOUT)
        try:
            while True:
                if proc.poll() is not None:
                    raise ToolError(f"clamd exited {proc.returncode}:\n"
                                    + clamd_log_path.read_text(errors="replace")[-2000:])
                remaining = CLAMD_START_LIMIT - (time.perf_counter() - start)
                if remaining <= 0:
                    raise ToolError(f"clamd did not answer PING within {CLAMD_START_LIMIT}s")
                try:
                    if clamd_answers(sock, remaining):
                        break
                except (FileNotFoundError, ConnectionRefusedError):
                    pass
                time.sleep(0.02)
            res.update(load=time.perf_counter() - start, load_rss=vm_hwm_kib(proc.pid))
            log(f"clamd: ready after {res['load']:.2f}s (round {rnd})")
            warm_page_cache(corpus)
            cpu_before = cpu_seconds(proc.pid)
            scan = run_timed(["clamdscan", "-c", conf, "--multiscan", "--no-summary", "-i", corpus],
                             work, f"clamdscan-first-{rnd}")
            res.update(scan=scan.wall, cpu=cpu_seconds(proc.pid) - cpu_before,
                       peak_rss=vm_hwm_kib(proc.pid), found=verdicts(scan, corpus))
            log(f"clamdscan: first scan {scan.wall:.2f}s (round {rnd})")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(sock_dir, ignore_errors=True)
    return res


def attempt(res, step):
    """Run one measurement step for res, unless an earlier step of res failed."""
    if "error" in res:
        return
    try:
        step()
    except ToolError as e:
        log(str(e))
        res["error"] = str(e)


def summarise(res):
    """Report the median first-scan round of res (by wall time) as its result."""
    rounds = res.get("rounds")
    if "error" in res or not rounds:
        return
    med = sorted(rounds, key=lambda r: r["scan"])[len(rounds) // 2]
    res.update({k: med[k] for k in ("scan", "cpu", "peak_rss", "found")})
    if "load" not in res:  # clamd loads once per round
        res["load"] = sorted(r["load"] for r in rounds)[len(rounds) // 2]
        res["load_rss"] = med["load_rss"]


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        return dict(line.rstrip("\n").split("\t") for line in f if line.strip())


def check_verdicts(results, manifest):
    """Annotate each result with its verdict summary; return the mismatch report lines."""
    reference = next((r["found"] for r in results if r["name"] == CLAMSCAN and "found" in r), None)
    report = []
    for res in results:
        if "found" not in res:
            continue
        problems = []
        outputs = [(f"first scan {i}", r["found"]) for i, r in enumerate(res["rounds"], 1)]
        if "rescan_found" in res:
            outputs.append(("re-scan", res["rescan_found"]))
        for label, found in outputs:
            if reference is not None and res["name"] != CLAMSCAN:
                problems += [f"{label} vs clamscan: {d}" for d in differences(found, reference)]
            plain = {p: n[:-len(UNOFFICIAL)] if n.endswith(UNOFFICIAL) else n for p, n in found.items()}
            problems += [f"{label} vs manifest: {d}" for d in differences(plain, manifest)]
        detected = sum(1 for p in manifest if p in res["found"])
        res["verdict"] = (f"{'equal' if not problems else 'DIFFERENT'} "
                          f"({len(res['found'])} found, {detected}/{len(manifest)} planted)")
        if problems:
            report.append(f"### {res['name']}: {len(problems)} mismatches")
            report += [f"- {p}" for p in problems]
    return report


def fmt_s(value):
    return f"{value:.2f} s" if value is not None else "—"


def fmt_mib(kib):
    return f"{kib / 1024:.0f} MiB" if kib is not None else "—"


def table(results, corpus_bytes):
    base = next((r.get("scan") for r in results if r["name"] == CLAMSCAN), None)
    rows = ["| tool | DB load | load RSS | first scan | all first scans | CPU time | throughput "
            "| speedup vs clamscan | re-scan | first / re-scan | peak RSS | verdicts |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['name']} | error: {r['error'].splitlines()[0]} |" + " |" * 10)
            continue
        # A one-shot scanner loads its database inside the scan; the daemon already has.
        scan_only = r["scan"] if r.get("daemon") else r["scan"] - r["load"]
        throughput = f"{corpus_bytes / MIB / scan_only:.1f} MiB/s" if scan_only > 0 else "—"
        speedup = f"{base / r['scan']:.2f}×" if base else "—"
        ratio = f"{r['scan'] / r['rescan']:.1f}×" if r.get("rescan") else "—"
        runs = ", ".join(f"{x['scan']:.1f}" for x in r["rounds"])
        rows.append(f"| {r['name']} | {fmt_s(r['load'])} | {fmt_mib(r['load_rss'])} | {fmt_s(r['scan'])} "
                    f"| {runs} | {fmt_s(r['cpu'])} | {throughput} | {speedup} | {fmt_s(r.get('rescan'))} | {ratio} "
                    f"| {fmt_mib(r['peak_rss'])} | {r['verdict']} |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--ward", default=REPO / "build/bin/ward", type=Path, help="ward binary")
    ap.add_argument("--data", default=REPO / "build/bench-data", type=Path,
                    help="generated data, reused while its parameters match")
    ap.add_argument("--size-mb", type=int, default=2048, help="corpus size in MiB")
    ap.add_argument("--md5", type=int, default=2_000_000, help="random MD5 signatures")
    ap.add_argument("--sha256", type=int, default=2_000_000, help="random SHA-256 signatures")
    ap.add_argument("--ndb", type=int, default=20_000, help="random body signatures")
    ap.add_argument("--ldb", type=int, default=2_000, help="random logical signatures")
    ap.add_argument("--infected", type=int, default=40, help="planted infected files")
    ap.add_argument("--seed", type=int, default=1, help="seed of both generators")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="ward -j, and clamd's scanning threads")
    ap.add_argument("--rounds", type=int, default=3,
                    help="first scans of ward and of clamd, alternating; the median is reported")
    ap.add_argument("--skip-clamd", action="store_true", help="leave out clamd + clamdscan")
    ap.add_argument("--data-only", action="store_true",
                    help="make (or check) the corpus and database, then stop")
    ap.add_argument("--out", default=REPO / "build/bench-results.md", type=Path,
                    help="markdown report to write")
    args = ap.parse_args()

    if not os.access(args.ward, os.X_OK):
        sys.exit(f"bench: {args.ward} is not an executable; build ward first or pass --ward")
    data = args.data.resolve()
    meta = ensure_data(args, data)
    if args.data_only:
        return
    corpus, db = data / "corpus", data / "db"
    work = data / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    empty = work / "empty"
    empty.touch()

    sizes = [os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(corpus) for f in files]
    corpus_bytes = sum(sizes)

    # One clamd pool thread is taken by the MULTISCAN command itself (it walks
    # the tree and queues files), so JOBS + 1 threads leave JOBS scanning, like
    # ward -j JOBS: on 2 CPUs, MaxThreads 2 kept 1.0 CPU busy, 3 kept 1.95 and
    # 4 no more.  clamd's default of 10 would only oversubscribe the CPUs.
    clamd_threads = args.jobs + 1
    ward = {"name": f"ward -j {args.jobs}", "rounds": []}
    clamscan = {"name": CLAMSCAN}
    clamd = {"name": "clamd + clamdscan --multiscan", "daemon": True, "rounds": []}
    attempt(ward, lambda: ward.update(ward_load(args, db, work, empty)))
    attempt(clamscan, lambda: clamscan.update(bench_clamscan(db, corpus, work, empty)))
    # The parallel scanners alternate round by round, so that a slow spell of
    # the shared host falls on both rather than on one of them.
    for rnd in range(1, args.rounds + 1):
        attempt(ward, lambda: ward["rounds"].append(ward_first(args, db, corpus, work, rnd)))
        if not args.skip_clamd:
            attempt(clamd, lambda: clamd["rounds"].append(
                clamd_round(clamd_threads, db, corpus, work, rnd)))
    attempt(ward, lambda: ward.update(ward_rescan(args, db, corpus, work)))
    results = [ward, clamscan] + ([] if args.skip_clamd else [clamd])
    for res in results:
        summarise(res)

    manifest = read_manifest(data / "manifest.tsv")
    mismatches = check_verdicts(results, manifest)
    params = meta["params"]
    gen = meta.get("generation_s", {})
    lines = [
        "# Ward benchmark",
        "",
        f"- Machine: {machine()}",
        f"- Versions: ward: {first_line([str(args.ward), '--version'])}; "
        f"clamscan: {first_line(['clamscan', '--version'])}; clamd: {first_line(['clamd', '--version'])}",
        f"- Corpus: {len(sizes)} files, {corpus_bytes / MIB:.0f} MiB (--size-mb {params['size_mb']}), "
        f"{len(manifest)} infected, seed {params['seed']}",
        f"- Database: {params['md5']:,} MD5 + {params['sha256']:,} SHA-256 hashes, {params['ndb']:,} body, "
        f"{params['ldb']:,} logical signatures (plus the planted ones)",
        "- Generation: " + (", ".join(f"{k} {v} s" for k, v in gen.items()) or "unknown"),
        f"- Parallelism: ward -j {args.jobs}; clamd MaxThreads {clamd_threads} "
        f"({args.jobs} scanning + 1 for the MULTISCAN walk); clamscan is single-threaded",
        "",
        *table(results, corpus_bytes),
        "",
        f"First scan: the median of {args.rounds} rounds in which ward and a freshly started clamd "
        "alternate (all first scans: each round's wall time, in order); clamscan runs once. "
        "DB load: median of 3 scans of an empty file (clamd: start until it answers PING, median of "
        "its rounds). Throughput: corpus bytes / (first scan − DB load) for one-shot scanners, corpus "
        "bytes / wall for clamdscan. Speedup: clamscan first-scan wall / tool first-scan wall. "
        "Re-scan: median of 3 whole `ward scan` runs over the unchanged corpus with the first "
        "round's cache. CPU time: user + system seconds of the median first scan (clamd: the "
        "daemon's). RSS: peak of the process (clamd: VmHWM after loading / after the scan). The "
        "corpus is read once right before each first scan. Verdicts: every first scan and the "
        "re-scan, against clamscan and the planted manifest.",
    ]
    if mismatches:
        lines += ["", "## Verdict mismatches", ""] + mismatches
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    log(f"report written to {args.out}")
    sys.exit(1 if mismatches or any("error" in r for r in results) else 0)


if __name__ == "__main__":
    main()
