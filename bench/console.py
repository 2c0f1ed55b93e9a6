#!/usr/bin/env python3
"""The web console with 10,000 agents (`make bench-console`).

Starts wardd and ward-loadgen holding --agents simulated agents over real
HTTPS (each reporting a status: an address, a scan method, a component),
then measures, on the same server:

- the REST routes the console's pages use: GET /api/v1/clients (every
  agent), /api/v1/tree, /api/v1/overview (the dashboard), /api/v1/logs
  (a page of 200 and a CSV export of up to 100,000 events) -- median of
  --rounds requests each, with the answer's size;
- the console in Debian's chromium (bench/console.mjs): the dashboard, the
  agent list ready with every agent, a host-name search, a scan-method
  filter, select-all and scrolling to the end -- median of --rounds.

Writes a Markdown table to --out (and prints it).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from updates import start_wardd  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=REPO / "build/bin", type=Path)
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default=REPO / "build/bench-console", type=Path)
    ap.add_argument("--out", default=REPO / "build/bench-console.md", type=Path)
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    src = args.work / "signatures"
    src.mkdir()
    (src / "demo.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar\n")
    wardd, api, port, data = start_wardd(args.bin, args.work, src,
                                         "[http]\nlong_poll = 55s\n"
                                         # Every simulated agent comes from 127.0.0.1.
                                         f"max_per_address = {args.agents + 100}\n")
    lg_err = open(args.work / "loadgen.err", "w")
    t0 = time.monotonic()
    loadgen = subprocess.Popen(
        [args.bin / "ward-loadgen", "--server", f"https://localhost:{port}", "--ca",
         data / "ca.crt", "--token", (data / "enroll-token").read_text().strip(),
         "--agents", str(args.agents), "--heartbeat", "60"],
        stdout=subprocess.PIPE, stderr=lg_err, text=True)
    try:
        ready = loadgen.stdout.readline().split()
        if not ready or ready[0] != "READY":
            sys.exit("bench-console: the load generator failed; see "
                     f"{args.work / 'loadgen.err'}")
        print(f"bench-console: {args.agents} agents enrolled and connected in "
              f"{time.monotonic() - t0:.1f}s", flush=True)
        # Every agent's first status arrives with its first poll.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            clients = api.call("GET", "/api/v1/clients")[1]["clients"]
            if sum(1 for c in clients if (c.get("status") or {}).get("scan_method")) == \
                    args.agents:
                break
            time.sleep(2)

        def timed(path):
            times, size = [], 0
            for _ in range(args.rounds):
                t = time.monotonic()
                status, body = api.call("GET", path)
                times.append((time.monotonic() - t) * 1000)
                assert status == 200, (path, status)
                size = len(json.dumps(body)) if not isinstance(body, str) else len(body)
            return statistics.median(times), size

        routes = [("GET /api/v1/clients (every agent)", "/api/v1/clients"),
                  ("GET /api/v1/tree", "/api/v1/tree"),
                  ("GET /api/v1/overview (dashboard)", "/api/v1/overview"),
                  ("GET /api/v1/logs (a page of 200)", "/api/v1/logs?limit=200"),
                  ("GET /api/v1/logs as CSV (every event)",
                   "/api/v1/logs?limit=100000&format=csv")]
        api_rows = [(name, *timed(path)) for name, path in routes]
        env = dict(os.environ, WARD_URL=f"https://localhost:{port}",
                   WARD_PASSWORD=(data / "initial-admin-password").read_text().strip(),
                   WARD_AGENTS=str(args.agents), WARD_ROUNDS=str(args.rounds))
        run = subprocess.run(["node", REPO / "bench/console.mjs"], env=env, capture_output=True,
                             text=True, timeout=1800)
        if run.returncode != 0:
            sys.exit(f"bench-console: the browser run failed:\n{run.stdout}{run.stderr}")
        b = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        loadgen.terminate()
        loadgen.wait()
        wardd.terminate()
        wardd.wait()

    lines = [f"{args.agents} agents, medians of {args.rounds} rounds.", "",
             "| REST route | time | answer |", "|---|---|---|"]
    lines += [f"| {n} | {t:.0f} ms | {s / 1024:.0f} KiB |" for n, t, s in api_rows]
    lines += ["", "| in the browser (chromium, headless) | time |", "|---|---|",
              f"| dashboard shown (from another page) | {b['dashboard']} ms |",
              f"| agent list ready with every agent (fetch, filter, draw) | {b['agents']} ms |",
              f"| search by host name (one match) | {b['search']} ms |",
              f"| clear the search (every agent again) | {b['clear']} ms |",
              f"| filter by scan method (a third) | {b['method']} ms |",
              f"| select all | {b['select']} ms |",
              f"| scroll to the last agent | {b['scroll']} ms |",
              f"| rows in the page (the virtual list) | {b['rows_in_page']} |",
              f"| page's JavaScript heap | {b['heap_mb']} MiB |"]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
