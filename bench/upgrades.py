#!/usr/bin/env python3
"""Benchmark agent upgrades: 1,000 simulated agents rolled out to a new
agent version with a cap of 50 downloads at once, then the same with a
broken version that every agent rolls back.

wardd (SQLite) serves one agent package for this host's platform (a real
Debian package holding the real ward-agent program, so the download is
the size a fleet fetches) with updates.max_downloads = --cap. ward-loadgen
enrolls --agents agents that report themselves as ward-agent OLD in
versioned directories under their supervisor and take the agent_upgrade
tasks as ward-agent does (docs/protocol.md, "Agent upgrades"): report the
task running, download the package under the cap (503 + Retry-After with
jitter), check its size; then the new version reports its status and the
task completed, or (--broken) the old version reports it failed, "killed
by signal 11", and keeps reporting OLD. The rollout is started once every
agent polls (`POST /api/v1/agent-upgrade`, batch --batch, max_failures 0
so that a broken version reaches everyone) and timed until wardd says it
is done; wardd's CPU time and RSS are read from /proc meanwhile. At the
end every agent's reported version is checked: all NEW, or all OLD (none
left without an agent). Rounds alternate good and broken; medians are
reported. Python standard library only.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests" / "lib"))
from server import proc_stat  # noqa: E402
from updates import start_wardd  # noqa: E402
from wardtest import make_deb  # noqa: E402

OLD, NEW = "1.0.0-1", "1.1.0-1"


def log(msg):
    print(f"bench-upgrades: {msg}", file=sys.stderr, flush=True)


def platform():
    """This host as the agent names it: (os-release ID-VERSION_ID, dpkg's
    architecture)."""
    fields = dict(line.rstrip("\n").split("=", 1) for line in open("/etc/os-release")
                  if "=" in line)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return f"{fields['ID'].strip(chr(34))}-{fields.get('VERSION_ID', '').strip(chr(34))}", arch


def run(args, kind, n):
    """One rollout to args.agents agents; kind "good" or "broken"."""
    work = args.work / f"{kind}-{n}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    src = work / "signatures"
    src.mkdir()
    (src / "demo.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar\n")
    os_name, arch = platform()
    packages = work / "packages"
    deb = make_deb(str(packages), NEW, arch=arch, fields={"Ward-Platform": os_name,
                                                         "Ward-Restart": "service"},
                   files={"usr/sbin/ward-agent": ((args.bin / "ward-agent").read_bytes(),
                                                  0o755)})
    wardd, api, port, data = start_wardd(
        args.bin, work, src, f"max_downloads = {args.cap}\n"
        f"[deploy]\npackage_dir = {packages}\n"
        f"[http]\nmax_connections = {args.agents + 200}\n"
        # Every simulated agent comes from 127.0.0.1.
        f"max_per_address = {args.agents + 200}\n")
    token = (data / "enroll-token").read_text().strip()
    argv = [args.bin / "ward-loadgen", "--server", f"https://localhost:{port}", "--ca",
            data / "ca.crt", "--token", token, "--agents", str(args.agents),
            "--concurrency", "64", "--long-poll", "55", "--upgrade-from", OLD,
            "--platform", f"{os_name}/{arch}"] + (["--broken"] if kind == "broken" else [])
    lg_err = open(work / "loadgen.log", "w")
    lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=lg_err, text=True)
    try:
        ready = lg.stdout.readline()
        if not ready.startswith("READY"):
            sys.exit(f"bench-upgrades: the agents did not all connect: {ready!r}")
        # Every agent's status (OLD on this platform) is in.
        for _ in range(600):
            listed = api.call("GET", "/api/v1/agent-upgrade")[1]
            if len(listed["packages"]) == 1:
                break
            time.sleep(0.1)
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], proc_stat(wardd.pid)[1])
                time.sleep(0.1)
        sampler = threading.Thread(target=sample)
        sampler.start()
        cpu0, _, _ = proc_stat(wardd.pid)
        t0 = time.monotonic()
        status, body = api.call("POST", "/api/v1/agent-upgrade", {
            "version": NEW, "batch": args.batch, "max_failures": 0, "window": 60})
        if status != 201 and status != 200:
            sys.exit(f"bench-upgrades: the rollout was refused: {status} {body}")
        rollout = None
        while time.monotonic() - t0 < args.timeout:
            rollout = api.call("GET", "/api/v1/agent-upgrade")[1]["rollout"]
            if rollout["state"] == "done":
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        cpu1, _, hwm = proc_stat(wardd.pid)
        stop.set()
        sampler.join()
        clients = api.call("GET", "/api/v1/clients")[1]["clients"]
        versions = {}
        for c in clients:
            v = (c.get("status") or {}).get("package_version")
            versions[v] = versions.get(v, 0) + 1
    finally:
        lg.send_signal(signal.SIGTERM)
        out, _ = lg.communicate(timeout=60)
        lg_err.close()
        wardd.terminate()
        wardd.wait(timeout=60)
    summary = json.loads(out.strip().splitlines()[-1])
    want = {NEW if kind == "good" else OLD: args.agents}
    result = {"kind": kind, "round": n, "agents": args.agents, "cap": args.cap,
              "batch": args.batch, "package_bytes": os.path.getsize(deb),
              "seconds": round(took, 1), "rollout": rollout, "server_cpu_s":
              round(cpu1 - cpu0, 2), "server_rss_peak_mib": round(peak[0] / 1024, 1),
              "server_vmhwm_mib": round(hwm / 1024, 1), "versions": versions,
              "loadgen": summary, "ok": rollout["state"] == "done" and versions == want}
    log(f"{kind} round {n}: {result['seconds']} s, cpu {result['server_cpu_s']} s, "
        f"rss peak {result['server_rss_peak_mib']} MiB, versions {versions}, "
        f"downloads {summary['downloads']} (503 {summary['refused']})")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-upgrades")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--cap", type=int, default=50, help="updates.max_downloads")
    ap.add_argument("--batch", type=int, default=1000,
                    help="agents upgrading at once (the rollout's batch)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args()
    results = []
    for n in range(1, args.rounds + 1):
        for kind in ("good", "broken"):
            results.append(run(args, kind, n))
    (args.work / "result.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| version | agents | cap | batch | time to done (median) | wardd CPU | "
          "wardd RSS peak | agents on it at the end |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("good", "broken"):
        rs = [r for r in results if r["kind"] == kind]
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        print(f"| {kind} | {args.agents} | {args.cap} | {args.batch} | "
              f"{med('seconds'):.1f} s ({', '.join(str(r['seconds']) for r in rs)}) | "
              f"{med('server_cpu_s'):.1f} s | {med('server_rss_peak_mib'):.1f} MiB | "
              f"{'; '.join(json.dumps(r['versions']) for r in rs)} |")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
