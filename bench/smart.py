#!/usr/bin/env python3
"""Benchmark smart scan against conventional scan, clamscan and clamd.

On the scan benchmark's synthetic database (bench/gen_db.py: 2M MD5 and 2M
SHA-256 hash signatures, 20,000 body and 2,000 logical signatures) and its
corpus (bench/gen_corpus.py, with planted detections), made by `make
bench-scan` or here when missing:

1. wardd imports the database and builds the Virus Pattern, the Smart
   Scan Agent Pattern and the Smart Scan Pattern; a ward-sps enrolls and
   takes the Smart Scan Pattern from it.
2. Engine load time and peak RSS (median of 3) of `ward scan` with the
   Virus Pattern (conventional, as an agent loads it) and with the agent
   pattern (smart, as a smart-scan agent loads it), of clamscan with the
   database, and of clamd (time to answer PING, VmHWM); the hash layer's
   bits per hash signature.
3. The whole corpus scanned both ways: the same verdicts; the smart
   protection requests sent per 1,000 clean files.
4. ward-sps under load from ward-spsload, with wardd stopped: lookups per
   second with batched queries (the median of 3 runs), and p50/p99 latency
   of single queries at 5,000 per second (after 3 s of warm-up in which
   the 64 connections are opened).

Prints a markdown table; writes result.json in --work. Python standard
library only.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from run import clamd_answers, median_run, run_timed, scan_data, vm_hwm_kib  # noqa: E402
from server import free_port, log  # noqa: E402
from updates import source_dir, start_wardd, wait_import  # noqa: E402


def start_sps(args, api):
    """A ward-sps enrolled with an administrator's token for one server; it is
    reached by 127.0.0.1 (wardd is localhost)."""
    port = free_port()
    sdir = args.work / "sps"
    sdir.mkdir()
    conf = sdir / "sps.ini"
    conf.write_text(f"[sps]\nstate_dir = {sdir}/state\nlisten = *:{port}\n")
    status, bundle = api.call("POST", "/api/v1/sps/tokens", {})
    assert status == 201, bundle
    (sdir / "sps.bundle").write_text(json.dumps(bundle))
    subprocess.run([args.bin / "ward-sps", "--config", conf, "enroll", "--bundle",
                    sdir / "sps.bundle", "--name", "127.0.0.1"],
                   check=True, capture_output=True)
    slog = open(sdir / "sps.log", "w")
    proc = subprocess.Popen([args.bin / "ward-sps", "--config", conf, "run"], stdout=slog,
                            stderr=subprocess.STDOUT)
    return proc, port


def summary_of(run):
    lines = run.out.read_text().splitlines()
    return json.loads(lines[-1])["summary"]


def results_of(run):
    out = {}
    for line in run.out.read_text().splitlines():
        o = json.loads(line)
        if "path" in o:
            out[o["path"]] = (o["result"], tuple(sorted(o.get("signatures", []))))
    return out


def clamd_load(db, work):
    sock_dir = Path(f"/tmp/ward-bench-smart-{os.getpid()}")
    sock_dir.mkdir(exist_ok=True)
    sock = sock_dir / "clamd.sock"
    conf = work / "clamd.conf"
    conf.write_text(f"LocalSocket {sock}\nDatabaseDirectory {db}\nForeground yes\n"
                    f"TemporaryDirectory {work}\n")
    with open(work / "clamd.log", "wb") as clog:
        start = time.perf_counter()
        proc = subprocess.Popen(["clamd", "-c", str(conf)], stdout=clog,
                                stderr=subprocess.STDOUT)
        try:
            while True:
                if proc.poll() is not None:
                    sys.exit("bench-smart: clamd exited")
                try:
                    if clamd_answers(sock, 5):
                        break
                except (FileNotFoundError, ConnectionRefusedError):
                    pass
                time.sleep(0.02)
            return time.perf_counter() - start, vm_hwm_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            shutil.rmtree(sock_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin")
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "bench-data",
                    help="the scan benchmark's data (made by bench/run.py when missing)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-smart")
    ap.add_argument("--duration", type=float, default=10, help="seconds per SPS load run")
    args = ap.parse_args()

    scan_data(args.bin / "ward", args.data)
    db = args.data / "db"
    src = source_dir(db, args.work)
    log("wardd imports the database")
    wardd, api, port, data = start_wardd(args.bin, args.work, src)
    res = {}
    try:
        _, res["import_s"] = wait_import(api, 1)
        comps = data / "components"
        vp, sap = comps / "virus-pattern" / "1", comps / "smart-agent-pattern" / "1"
        sps, sps_port = start_sps(args, api)
        sps_url = f"https://127.0.0.1:{sps_port}"
        ca = data / "sps-ca.crt"
        empty = args.work / "empty.txt"
        empty.write_text("nothing\n")
        smart_args = ["--agent-pattern", sap, "--sps", sps_url, "--sps-ca", ca]
        common = [args.bin / "ward", "scan", "--no-cache", "--json", "-j", "2"]

        log("engine loads (median of 3)")
        conv = median_run(common + ["--virus-pattern", vp, empty], args.work, "conv-load",
                          ok=(0,))
        smart = median_run(common + smart_args + [empty], args.work, "smart-load", ok=(0,))
        clam = median_run(["clamscan", "-d", db, empty], args.work, "clamscan-load", ok=(0,))
        res["load"] = {
            "conventional": {"wall_s": conv.wall, "engine_s": summary_of(conv)["load_seconds"],
                             "rss_kib": conv.maxrss_kib},
            "smart": {"wall_s": smart.wall, "engine_s": summary_of(smart)["load_seconds"],
                      "rss_kib": smart.maxrss_kib},
            "clamscan": {"wall_s": clam.wall, "rss_kib": clam.maxrss_kib},
        }
        s = summary_of(smart)["smart"]
        hashes = sum(1 for f in ("synth.hdb", "synth.hsb") if (db / f).exists()
                     for _ in open(db / f, "rb"))
        res["hash_layer"] = {"prefixes": s["prefixes"], "bytes": s["prefix_bytes"],
                             "hash_signatures": hashes,
                             "bits_per_signature": 8 * s["prefix_bytes"] / hashes}
        if shutil.which("clamd"):
            t, hwm = clamd_load(db, args.work)
            res["load"]["clamd"] = {"wall_s": t, "rss_kib": hwm}

        log("ward-sps ready?")
        for _ in range(1200):
            try:
                if subprocess.run(["curl", "-sf", "--cacert", ca, f"{sps_url}/sps/v1/health"],
                                  capture_output=True).returncode == 0:
                    break
            except FileNotFoundError:
                break
            time.sleep(0.5)
        corpus = args.data / "corpus"
        log("the corpus, both ways")
        conv_scan = run_timed(common + ["-r", "--virus-pattern", vp, corpus], args.work,
                              "conv-corpus")
        smart_scan = run_timed(common + ["-r"] + smart_args + [corpus], args.work,
                               "smart-corpus")
        want, got = results_of(conv_scan), results_of(smart_scan)
        differ = sorted(p for p in set(want) | set(got) if want.get(p) != got.get(p))
        planted = {line.split("\t")[0] for line in
                   (args.data / "manifest.tsv").read_text().splitlines()[1:]}
        clean = [str(corpus / p) for p in sorted(
            str(Path(f).relative_to(corpus)) for f in want) if p not in planted]
        clean_run = run_timed(common + smart_args + clean, args.work, "smart-clean")
        cs = summary_of(clean_run)
        res["corpus"] = {
            "files": len(want), "infected": sum(1 for r in want.values() if r[0] == "infected"),
            "differences": differ[:20], "n_differences": len(differ),
            "conventional_s": conv_scan.wall, "smart_s": smart_scan.wall,
            "smart_requests": summary_of(smart_scan)["smart"]["requests"],
            "clean_files": cs["scanned_files"], "clean_requests": cs["smart"]["requests"],
            "requests_per_1000_clean": 1000 * cs["smart"]["requests"] / cs["scanned_files"],
            "clean_prefix_hits": cs["smart"]["prefix_hits"],
            "clean_layers": cs["smart"]["layers"],
        }

        # The smart protection server alone with its load generator on
        # the machine: wardd is not needed for lookups.
        wardd.terminate()
        wardd.wait(timeout=60)
        log("ward-sps under load")
        load = args.bin / "ward-spsload"
        runs = [subprocess.run([load, "--url", sps_url, "--ca", ca, "--connections", "4",
                                "--batch", "1024", "--duration", str(args.duration)],
                               capture_output=True, text=True, check=True) for _ in range(3)]
        batched = sorted(runs, key=lambda r: json.loads(r.stdout)["lookups_per_s"])[1]
        single = subprocess.run([load, "--url", sps_url, "--ca", ca, "--connections", "64",
                                 "--batch", "1", "--rate", "5000", "--warmup", "3",
                                 "--duration", str(args.duration)], capture_output=True, text=True,
                                check=True)
        res["sps"] = {"batched": json.loads(batched.stdout), "single": json.loads(single.stdout)}
        sps.send_signal(signal.SIGTERM)
        sps.wait(timeout=60)
    finally:
        wardd.terminate()
        wardd.wait(timeout=60)
    (args.work / "result.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    L = res["load"]
    print()
    print("| | engine load | peak RSS |")
    print("|---|---|---|")
    for name in ("conventional", "smart", "clamscan", "clamd"):
        if name in L:
            t = L[name].get("engine_s", L[name]["wall_s"])
            print(f"| {name} | {t:.2f} s | {L[name]['rss_kib'] / 1024:.0f} MiB |")
    print(f"\nhash layer: {res['hash_layer']['bits_per_signature']:.2f} bits per hash signature")
    print(f"requests per 1,000 clean files: {res['corpus']['requests_per_1000_clean']:.2f}")
    print(f"verdict differences: {res['corpus']['n_differences']}")
    b, s1 = res["sps"]["batched"], res["sps"]["single"]
    print(f"ward-sps: {b['lookups_per_s']:,.0f} lookups/s batched; single queries at "
          f"{s1['requests_per_s']:.0f}/s: p50 {s1['p50_ms']:.2f} ms, p99 {s1['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
