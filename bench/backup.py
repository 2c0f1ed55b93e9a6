#!/usr/bin/env python3
"""Benchmark backups, restores and upgrades of a large server (issue 18):
wardd holding --agents simulated agents (ward-loadgen, real HTTPS) with
--events events in its log.

1. `wardd backup` while it serves: the archive's time and size, how long
   the database copy held its read transaction, single-agent changes timed
   throughout (p99), and whether any agent was ever shown offline.
2. A restore of an archive of the same size taken from a schema-9 data
   directory (tests/data/schemas/v9, grown to the same size): unpacking,
   checking and the migration to the current schema, with its progress.
3. An upgrade whose migration fails (a column of the last step there
   already): the time until the wardd of schema 9 serves again on the
   data directory put back, and that nothing was lost. The old wardd is
   built from the commit that made the fixture (git worktree under
   build/bench-old-wardd, from `git archive`), or given with --old-wardd.

Prints a markdown report and writes it to --out; exits 1 when a target is
missed (snapshot <= 5 s, none offline, p99 <= 1 s, restore plus migration
< 60 s, back serving < 60 s).
"""
import argparse
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lib"))
from server import REPO, Api, Events, free_port  # noqa: E402
from wardtest import untar  # noqa: E402

PASSPHRASE = "a passphrase for the benchmark"
# The commit whose wardd made tests/data/schemas/v9 (its README).
OLD_COMMIT = "50325059f8f3ab78d9c8af68830c75a5520354bf"


def log(msg):
    print(f"bench-backup: {msg}", file=sys.stderr, flush=True)


def add_events(db_path, n, clients):
    """n events, spread over the clients, as the log holds them."""
    db = sqlite3.connect(db_path)
    now = int(time.time())
    kinds = ("system", "verify", "delivery", "detection", "task")
    db.executemany(
        "INSERT INTO events (time, kind, client, hostname, domain, message, observed) "
        "VALUES (?, ?, ?, ?, '/', ?, 0)",
        ((now - n + i, kinds[i % 5], clients[i % len(clients)] if clients else None,
          f"host-{i % 10000}", f"event {i}: settings version {i} delivered and acknowledged")
         for i in range(n)))
    db.commit()
    db.close()


def add_clients(db_path, n):
    """n clients like the first one there, in its domain."""
    db = sqlite3.connect(db_path)
    eff, parent = db.execute("SELECT c.eff_json, n.parent FROM clients c JOIN nodes n ON "
                             "n.id = c.node LIMIT 1").fetchone()
    base = db.execute("SELECT max(id) FROM nodes").fetchone()[0] + 1
    db.executemany("INSERT INTO nodes (id, parent, kind, name) VALUES (?, ?, 2, ?)",
                   ((base + i, parent, f"bench-{i}") for i in range(n)))
    db.executemany("INSERT INTO clients (node, uuid, hostname, secret, eff_json, eff_version, "
                   "acked_version) VALUES (?, ?, ?, x'00', ?, 1, 1)",
                   ((base + i, f"bench-uuid-{i}", f"bench-{i}", eff) for i in range(n)))
    db.commit()
    db.close()


def counts(db_path):
    db = sqlite3.connect(db_path)
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("clients", "events", "settings"))
    finally:
        db.close()


def wardd(binary, conf, logfile):
    return subprocess.Popen([binary, "--config", conf], stdout=open(logfile, "ab"),
                            stderr=subprocess.STDOUT)


def wait_health(api, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if api.call("GET", "/api/v1/health")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def run(*argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          env={"WARD_BACKUP_PASSPHRASE": PASSPHRASE, "PATH": "/usr/bin:/bin"},
                          **kw)


def serving_backup(args):
    """Phase 1: a backup of a server holding the fleet, while it serves."""
    work = args.work / "serving"
    work.mkdir(parents=True)
    port = free_port()
    conf = work / "wardd.ini"
    conf.write_text(f"[server]\nlisten = *:{port}\nhostname = localhost\n"
                    f"data_dir = {work}/data\n[notify]\nbatch = 500\n"
                    "[enroll]\nper_token = 0\nper_address = 0\n"
                    f"[http]\nmax_per_address = {args.agents + 100}\n")
    data = work / "data"
    proc = wardd(args.bin / "wardd", conf, work / "wardd.log")
    deadline = time.monotonic() + 60
    while not (data / "enroll-token").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("bench-backup: wardd did not start")
        time.sleep(0.1)
    api = Api(port, str(data / "ca.crt"))
    proc.terminate()
    proc.wait(timeout=60)
    t = time.monotonic()
    add_events(data / "ward.db", args.events, [])
    log(f"{args.events} events added in {time.monotonic() - t:.1f} s")
    proc = wardd(args.bin / "wardd", conf, work / "wardd.log")
    if not wait_health(api, proc):
        sys.exit("bench-backup: wardd did not start again")
    status, body = api.call("POST", "/api/v1/login", {
        "user": "admin", "password": (data / "initial-admin-password").read_text().strip()})
    api.token = body["token"]
    events_path = work / "deliveries.txt"
    loadgen = subprocess.Popen([args.bin / "ward-loadgen", "--server",
                                f"https://localhost:{port}", "--ca", data / "ca.crt", "--token",
                                (data / "enroll-token").read_text().strip(), "--agents",
                                str(args.agents), "--events", events_path],
                               stdout=subprocess.PIPE, stderr=open(work / "loadgen.err", "w"),
                               text=True)
    if loadgen.stdout.readline().split()[:1] != ["READY"]:
        sys.exit("bench-backup: the load generator failed")
    log(f"{args.agents} agents connected")
    events = Events(events_path)
    _, tree = api.call("GET", "/api/v1/clients")
    ids = [c["id"] for c in tree["clients"]]
    time.sleep(10)
    archive = work / "server.wbk"
    t0 = time.monotonic()
    backup = subprocess.Popen([args.bin / "wardd", "backup", "--config", conf, "--out", archive],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={"WARD_BACKUP_PASSPHRASE": PASSPHRASE})
    latencies, during, offline, checks, i = [], [], 0, 0, 0
    random.seed(1)
    while backup.poll() is None or i < args.singles:
        running = backup.poll() is None
        cid = random.choice(ids)
        t = time.time()
        status, body = api.call("PUT", "/api/v1/settings", {
            "scope": f"client:{cid}", "key": "update.schedule",
            "value": f"daily {4 + i // 60 % 20:02d}:{i % 60:02d}"})
        assert status == 200, body
        while True:
            events.poll()
            if events.last.get(cid, 0) >= t or time.time() - t > 30:
                latencies.append(min(events.last.get(cid, 0) - t, 30.0)
                                 if events.last.get(cid, 0) >= t else 30.0)
                if running:
                    during.append(latencies[-1])
                break
            time.sleep(0.002)
        if running:
            _, s = api.call("GET", "/api/v1/clients?summary=1")
            offline = max(offline, s["summary"]["offline"] + s["summary"]["inactive"])
            checks += 1
        i += 1
    elapsed = time.monotonic() - t0
    out, err = backup.communicate()
    if backup.returncode != 0:
        sys.exit("bench-backup: the backup failed: " + err)
    snapshot = float(re.search(r"copied in ([0-9.]+) s", out).group(1))
    # The changes made while the backup ran.
    during.sort()
    p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
    log(f"backup in {elapsed:.1f} s ({archive.stat().st_size >> 20} MiB), database copied in "
        f"{snapshot:.2f} s; {len(during)} changes during it, p99 {p99 * 1000:.0f} ms; "
        f"offline at worst {offline}")
    loadgen.terminate()
    loadgen.communicate(timeout=60)
    proc.terminate()
    proc.wait(timeout=60)
    return {"backup_s": elapsed, "size": archive.stat().st_size, "snapshot_s": snapshot,
            "changes": len(during), "p50": during[len(during) // 2], "p99": p99,
            "offline": offline, "checks": checks,
            "db": (data / "ward.db").stat().st_size}


def grown_v9(args, name, clients):
    """A schema-9 data directory (the fixture) with clients and events added."""
    root = args.work / name
    root.mkdir(parents=True)
    untar(REPO / "tests/data/schemas/v9/data.tar.gz", root)
    db = root / "data" / "ward.db"
    add_clients(db, clients)
    ids = [r[0] for r in sqlite3.connect(db).execute("SELECT node FROM clients")]
    add_events(db, args.events, ids)
    conf = root / "wardd.ini"
    conf.write_text(f"[server]\nlisten = *:{free_port()}\nhostname = localhost\n"
                    f"data_dir = {root}/data\n[updates]\nsource_dir = {root}\n")
    return root, conf


def restore_and_migrate(args):
    """Phase 2: restore an archive of schema 9 of the same size, migrated."""
    root, conf = grown_v9(args, "old-schema", args.agents)
    archive = args.work / "schema-9.wbk"
    done = run(args.bin / "wardd", "backup", "--config", conf, "--out", archive)
    if done.returncode != 0:
        sys.exit("bench-backup: backup of the schema-9 directory failed: " + done.stderr)
    target = args.work / "restored"
    target.mkdir()
    tconf = target / "wardd.ini"
    tconf.write_text(f"[server]\ndata_dir = {target}/data\n")
    t = time.monotonic()
    done = run(args.bin / "wardd", "restore", "--config", tconf, archive)
    spent = time.monotonic() - t
    if done.returncode != 0:
        sys.exit("bench-backup: the restore failed: " + done.stderr)
    progress = [line for line in done.stderr.splitlines() if "schema version" in line]
    log(f"restore and migration in {spent:.1f} s")
    return {"restore_s": spent, "progress": progress, "archive": archive.stat().st_size,
            "counts": counts(target / "data" / "ward.db")}


def old_wardd(args):
    """The wardd of schema 9: given, or built from OLD_COMMIT."""
    if args.old_wardd:
        return args.old_wardd
    tree = REPO / "build" / "bench-old-wardd"
    binary = tree / "build" / "bin" / "wardd"
    if not binary.exists():
        if not tree.exists():
            tree.mkdir(parents=True)
            tar = subprocess.run(["git", "-C", REPO, "archive", OLD_COMMIT], check=True,
                                 capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=tar, check=True)
        subprocess.run(["cmake", "-S", tree, "-B", tree / "build", "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, capture_output=True)
        subprocess.run(["cmake", "--build", tree / "build", "-j2", "--target", "wardd"],
                       check=True, capture_output=True)
    return binary


def failed_upgrade(args):
    """Phase 3: an upgrade whose last step fails; the old wardd serves again."""
    old = old_wardd(args)
    root, conf = grown_v9(args, "failed-upgrade", args.agents)
    db = root / "data" / "ward.db"
    sqlite3.connect(db).execute("ALTER TABLE clients ADD COLUMN roaming INTEGER").connection \
        .commit()
    before = counts(db)
    port = int(re.search(r"listen = \*:(\d+)", conf.read_text()).group(1))
    t = time.monotonic()
    done = subprocess.run([args.bin / "wardd", "--config", conf], capture_output=True,
                          text=True, timeout=600)
    failed = time.monotonic() - t
    if done.returncode == 0 or "back as it was" not in done.stderr:
        sys.exit("bench-backup: the failing upgrade did not fail as expected: " + done.stderr)
    put_back = counts(db)
    proc = wardd(old, conf, root / "old-wardd.log")
    api = Api(port, str(root / "data" / "ca.crt"))
    serving = wait_health(api, proc)
    back = time.monotonic() - t
    proc.terminate()
    proc.wait(timeout=60)
    log(f"failed upgrade: refused in {failed:.1f} s, the old wardd serving after {back:.1f} s")
    return {"failed_s": failed, "back_s": back, "serving": serving, "same": before == put_back,
            "counts": put_back}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=REPO / "build/bin", type=Path)
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--singles", type=int, default=20,
                    help="single-agent changes at least (those during the backup are timed)")
    ap.add_argument("--old-wardd", type=Path, help="the wardd of schema 9 (else built)")
    ap.add_argument("--work", default=REPO / "build/bench-backup", type=Path)
    ap.add_argument("--out", default=REPO / "build/bench-backup.md", type=Path)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    a = serving_backup(args)
    b = restore_and_migrate(args)
    c = failed_upgrade(args)
    lines = [
        "# Backup, restore and upgrade benchmark",
        "",
        f"- {args.agents} simulated agents (ward-loadgen) connected; {args.events} events in "
        f"the log; database {a['db'] >> 20} MiB",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
        f"| backup while serving: wall time (Argon2id, copy, encryption) | "
        f"{a['backup_s']:.1f} s | |",
        f"| backup: the database copy's read transaction | {a['snapshot_s']:.2f} s | <= 5 s |",
        f"| backup: archive size | {a['size'] >> 20} MiB | |",
        f"| single-agent changes during the backup: p50 / p99 ({a['changes']} changes) | "
        f"{a['p50'] * 1000:.0f} / {a['p99'] * 1000:.0f} ms | p99 <= 1 s |",
        f"| agents shown offline or inactive during the backup ({a['checks']} checks) | "
        f"{a['offline']} | 0 |",
        f"| restore of a schema-9 archive of that size ({b['archive'] >> 20} MiB), with its "
        f"migration | {b['restore_s']:.1f} s | < 60 s |",
        f"| failed upgrade: refused and put back | {c['failed_s']:.1f} s | |",
        f"| failed upgrade: the old wardd serving again | {c['back_s']:.1f} s | < 60 s |",
        f"| nothing lost (clients, events, settings) | {c['same']} {c['counts']} | True |",
        "",
        "Migration progress as the restore printed it:",
        "",
        "```",
        *b["progress"],
        "```",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.write_text(report)
    ok = (a["snapshot_s"] <= 5 and a["offline"] == 0 and a["p99"] <= 1 and b["restore_s"] < 60
          and c["back_s"] < 60 and c["serving"] and c["same"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
