#!/usr/bin/env python3
"""Benchmark signature updates: delta sizes against full packages, and
1,000 simulated agents updating through a capped server.

On the synthetic database of the scan benchmark (bench/gen_db.py), wardd
imports version 1; the database is then changed by +1% new and -0.1%
removed signatures in every file and imported as version 2. The sizes of
the full packages and of the deltas 1 -> 2 are read from wardd. Then
ward-loadgen enrolls N agents that each update one component from version
1 as ward-agent does (plan, downloads, 503 + Retry-After with jitter),
while the server's CPU time, RSS and its count of downloads in progress
are sampled. Python standard library only.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

sys.path.insert(0, str(BENCH))
from server import Api, free_port, log, proc_stat  # noqa: E402


def mutate(src, dst, rng):
    """Writes dst: src's lines without every 1000th, plus 1% new ones."""
    with open(src, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    kept = [line for i, line in enumerate(lines) if i % 1000 != 999]
    ext = src.suffix
    new = []
    for i in range(max(1, len(lines) // 100)):
        if ext == ".hdb":
            new.append(f"{rng.getrandbits(128):032x}:{rng.randrange(64, 10**7)}:"
                       f"Bench.New.Md5.{i}\n".encode())
        elif ext == ".hsb":
            new.append(f"{rng.getrandbits(256):064x}:{rng.randrange(64, 10**7)}:"
                       f"Bench.New.Sha256.{i}\n".encode())
        else:
            # A copy of a body or logical signature under a new name: valid,
            # and a new element of the set.
            base = rng.choice(lines)
            sep = b";" if ext == ".ldb" else b":"
            new.append(f"Bench.New{ext.title()}.{i}".encode() + sep +
                       base.split(sep, 1)[1])
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.writelines(kept + new)
    os.replace(tmp, dst)
    return len(lines), len(lines) - len(kept), len(new)


def wait_import(api, want, timeout=1800):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status = api.call("GET", "/api/v1/update")[1]
        versions = {c["name"]: c["version"] for c in status["components"]}
        if versions.get("virus-pattern") == want and not status["importing"]:
            return status, time.monotonic() - start
        time.sleep(0.5)
    sys.exit(f"bench-updates: no version {want} after {timeout} s")


def source_dir(db, work):
    """Empties work and fills work/source with hard links of db's signature
    files: wardd's update source. Returns it."""
    if work.exists():
        shutil.rmtree(work)
    src = work / "source"
    src.mkdir(parents=True)
    for f in sorted(db.iterdir()):
        if f.suffix in (".hdb", ".hsb", ".ndb", ".ldb"):
            os.link(f, src / f.name)
    return src


def start_wardd(bin_dir, work, src, extra=""):
    """Starts wardd on work/data importing src; returns (process, logged-in
    Api, port, data directory)."""
    port = free_port()
    data = work / "data"
    conf = work / "wardd.ini"
    # The simulated fleet enrolls at once, from one address; extra goes on
    # in [updates] unless it names a section.
    conf.write_text(f"[server]\nlisten = *:{port}\nhostname = localhost\ndata_dir = {data}\n"
                    "[enroll]\nper_token = 0\nper_address = 0\n"
                    f"[updates]\nsource_dir = {src}\n{extra}")
    wlog = open(work / "wardd.log", "w")
    proc = subprocess.Popen([bin_dir / "wardd", "--config", conf], stdout=wlog,
                            stderr=subprocess.STDOUT)
    for _ in range(600):
        if (data / "initial-admin-password").exists():
            break
        time.sleep(0.1)
    api = Api(port, data / "ca.crt")
    for _ in range(600):
        try:
            if api.call("GET", "/api/v1/health")[0] == 200:
                break
        except (OSError, ssl.SSLError, http.client.HTTPException):
            api.conn = None
        time.sleep(0.1)
    api.token = api.call("POST", "/api/v1/login", {
        "user": "admin",
        "password": (data / "initial-admin-password").read_text().strip()})[1]["token"]
    return proc, api, port, data


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin")
    ap.add_argument("--db", type=Path, default=ROOT / "build" / "bench-data" / "db",
                    help="synthetic database (made by bench/gen_db.py when missing)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-updates")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--cap", type=int, default=50, help="updates.max_downloads")
    ap.add_argument("--component", default="virus-pattern")
    args = ap.parse_args()

    if not (args.db / "synth.hdb").exists():
        log(f"generating the synthetic database in {args.db}")
        subprocess.run([sys.executable, BENCH / "gen_db.py", "--out", args.db], check=True)
    src = source_dir(args.db, args.work)
    wardd, api, port, data = start_wardd(
        args.bin, args.work, src, f"max_downloads = {args.cap}\n"
        f"[http]\nmax_connections = {args.agents + 200}\n"
        # Every simulated agent comes from 127.0.0.1.
        f"max_per_address = {args.agents + 200}\n")
    log("importing version 1")
    _, import1 = wait_import(api, 1)
    rng = random.Random(1)
    changes = {}
    for f in sorted(src.iterdir()):
        changes[f.name] = mutate(f, f, rng)
    log("importing version 2 (+1% / -0.1%)")
    start = time.monotonic()
    outcome = api.call("POST", "/api/v1/update/now")[1]
    import2 = time.monotonic() - start
    if not outcome["ok"]:
        sys.exit(f"bench-updates: import failed: {outcome['message']}")
    status = api.call("GET", "/api/v1/update")[1]
    sizes = {}
    for c in status["components"]:
        delta = next((d["size"] for d in c["deltas"] if d["base"] == 1 and d["version"] == 2),
                     None)
        sizes[c["name"]] = {"version": c["version"], "full": c["size"], "delta": delta}

    log(f"{args.agents} agents update {args.component} with a cap of {args.cap}")
    token = (data / "enroll-token").read_text().strip()
    samples, stop = [], threading.Event()
    sampler_api = Api(port, data / "ca.crt")
    sampler_api.token = api.token

    def sample():
        while not stop.is_set():
            cpu, rss, hwm = proc_stat(wardd.pid)
            downloads = sampler_api.call("GET", "/api/v1/update")[1]["downloads"]
            samples.append((time.monotonic(), cpu, rss, hwm, downloads))
            time.sleep(0.1)

    cpu0, _, _ = proc_stat(wardd.pid)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    lg = subprocess.run([args.bin / "ward-loadgen", "--server", f"https://localhost:{port}",
                         "--ca", data / "ca.crt", "--token", token, "--agents",
                         str(args.agents), "--update", args.component, "--have", "1",
                         "--concurrency", "64"], capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    stop.set()
    sampler.join()
    cpu1, _, hwm = proc_stat(wardd.pid)
    peak = api.call("GET", "/api/v1/update")[1]["downloads_peak"]
    summary = json.loads(lg.stdout.strip().splitlines()[-1])
    wardd.terminate()
    wardd.wait(timeout=60)
    result = {
        "changes": changes, "import_v1_s": round(import1, 1), "import_v2_s": round(import2, 1),
        "sizes": sizes, "agents": args.agents, "cap": args.cap, "component": args.component,
        "loadgen": summary, "wall_s": round(wall, 1),
        "server_cpu_s": round(cpu1 - cpu0, 1),
        "server_rss_peak_mib": round(max(s[2] for s in samples) / 1024, 1),
        "server_vmhwm_mib": round(hwm / 1024, 1),
        "max_downloads_sampled": max(s[4] for s in samples),
        "max_downloads_peak": peak,
    }
    (args.work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print()
    print("| component | full package | delta 1 -> 2 | delta / full |")
    print("|---|---|---|---|")
    for name, s in sizes.items():
        if s["delta"]:
            print(f"| {name} | {s['full']:,} B | {s['delta']:,} B | "
                  f"{100 * s['delta'] / s['full']:.2f}% |")
        else:
            print(f"| {name} | {s['full']:,} B | (unchanged) | |")
    ok = summary["updated"] == args.agents and peak <= args.cap
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
