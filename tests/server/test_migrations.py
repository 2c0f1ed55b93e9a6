#!/usr/bin/env python3
"""Upgrades from every earlier schema: a data directory made by the wardd of
each older schema version (tests/data/schemas/vN, made by that commit's own
programs: see its README.md) is opened by this wardd, which migrates it one
step per transaction; every client keeps each effective setting it had
(its scan method among them), its own settings, and its identity; every
package, event, removed client, administrator, task and quarantine record
is there; agents are sent settings that hold every setting offered now.
Archives made by `wardd backup` of earlier versions are restored and
migrated with the same outcome."""
import json
import os
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from wardtest import DATA, SCHEMA, WARDD, Wardd, temp_dir, untar  # noqa: E402

SCHEMAS = os.path.join(DATA, "schemas")
# The passphrase of the fixtures' archives (tests/data/schemas/make.py).
ARCHIVE_PASSPHRASE = "the schema fixtures' archives"
# Settings offered before schema 8 though nothing read them, taken out by
# the step to 8 and offered again since agents restart for updates: what
# was placed before never survives (each is at its default, false).
REVIVED = {"restart.notify", "restart.postpone_updates"}


def fixtures():
    return sorted((int(d[1:]), os.path.join(SCHEMAS, d)) for d in os.listdir(SCHEMAS)
                  if d.startswith("v") and d[1:].isdigit())


class MigrationTest(unittest.TestCase):
    def open_fixture(self, folder, archive=None):
        """The fixture's data directory, or what `wardd restore` made of
        archive, opened by this wardd (the restore's output in
        self.restored)."""
        root = temp_dir("ward-migrate-", self.addCleanup).name
        if not archive:
            untar(os.path.join(folder, "data.tar.gz"), root)
        with open(os.path.join(folder, "expected.json")) as f:
            expected = json.load(f)
        # Ended deployments are kept for deploy.keep after their last
        # change, by the clock: the fixtures' for as long as they are used.
        server = Wardd(root, extra="[deploy]\nkeep = 3650d\n")
        if archive:
            done = subprocess.run([WARDD, "restore", "--config", server.conf, archive],
                                  env=dict(os.environ, WARD_BACKUP_PASSPHRASE=ARCHIVE_PASSPHRASE),
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.restored = done.stdout + done.stderr
        server.start()
        self.addCleanup(server.stop)
        return server, expected

    def api(self, server, token, path):
        status, body = server.request("GET", path, token=token)
        self.assertEqual(status, 200, (path, body))
        return body

    def check(self, n, folder, archive=None):
        server, exp = self.open_fixture(folder, archive)
        self.assertEqual(exp["user_version"], n)
        token = server.login()
        api = lambda path: self.api(server, token, path)  # noqa: E731
        offered = {k["key"] for k in api("/api/v1/settings/keys")["settings"]}
        now = {c["hostname"]: c for c in api("/api/v1/clients")["clients"]}
        live = {}
        for host, old in exp["clients"].items():
            self.assertIn(host, now, f"v{n}: client {host}")
            c = api(f"/api/v1/client?id={now[host]['id']}")
            self.assertEqual(c["uuid"], old["uuid"], f"v{n} {host}")
            self.assertEqual(c["id"], old["id"], f"v{n} {host}")
            want = {k: v for k, v in old["settings"].items() if k not in REVIVED}
            got = {k: v for k, v in c["settings"].items() if k in want}
            self.assertEqual(got, want, f"v{n} {host}: effective settings")
            self.assertEqual(set(c["settings"]), offered, f"v{n} {host}: every setting")
            self.assertEqual({k: c["settings"][k] for k in REVIVED},
                             dict.fromkeys(REVIVED, False), f"v{n} {host}: at their defaults")
            own = {k: v for k, v in old.get("own_settings", {}).items() if k not in REVIVED}
            self.assertEqual(c.get("own_settings", {}), own, f"v{n} {host}: own settings")
            live[host] = c["settings"]
        # Domains' and the root's own settings.
        for name, old in exp["settings"].items():
            if name.startswith("client:"):
                continue
            scope = name if name == "root" else f"domain:{name}"
            own = api(f"/api/v1/settings?scope={scope}")["own"]
            want = {k: v for k, v in old["own"].items() if k not in REVIVED}
            self.assertEqual({k: v for k, v in own.items() if k in want}, want,
                             f"v{n} {name}: own settings")
        if "update" in exp:
            old_c = {c["name"]: c["version"] for c in exp["update"]["components"]}
            new_c = {c["name"]: c["version"] for c in api("/api/v1/update")["components"]}
            self.assertEqual(new_c, old_c, f"v{n}: components")
        if "events" in exp:
            events = {e["id"]: e for e in api("/api/v1/logs?limit=100000")["events"]}
            for e in exp["events"]["events"]:
                got = events.get(e["id"])
                self.assertIsNotNone(got, f"v{n}: event {e['id']} {e['message']}")
                self.assertEqual((got["kind"], got["time"], got["message"]),
                                 (e["kind"], e["time"], e["message"]), f"v{n}: event")
        if "removed_clients" in exp:
            self.assertEqual({c["uuid"] for c in api("/api/v1/clients/removed")["clients"]},
                             {c["uuid"] for c in exp["removed_clients"]["clients"]})
        if "admins" in exp:
            self.assertEqual(api("/api/v1/admins"), exp["admins"])
        if "tasks" in exp:
            self.assertEqual([(t["id"], t["state"]) for t in api("/api/v1/tasks")["tasks"]],
                             [(t["id"], t["state"]) for t in exp["tasks"]["tasks"]])
        if "quarantine" in exp:
            self.assertEqual(api("/api/v1/quarantine")["items"], exp["quarantine"]["items"])
        if "deployments" in exp:
            fields = ("state", "client", "domain", "address", "arch", "version", "message",
                      "started", "deadline")
            by_id = lambda d: {x["id"]: tuple(x[f] for f in fields)  # noqa: E731
                               for x in d["deployments"]}
            self.assertEqual(by_id(api("/api/v1/deployments?all=1")),
                             by_id(exp["deployments"]), f"v{n}: deployments")
        self.assertEqual(server.stop(), 0)
        db = sqlite3.connect(os.path.join(server.data, "ward.db"))
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            stored = {h: json.loads(e) for h, e in
                      db.execute("SELECT hostname, eff_json FROM clients")}
            counts = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                      for t in ("packages", "events", "removed_clients", "tasks")
                      if t in exp["tables"]}
        finally:
            db.close()
        self.assertEqual(version, CURRENT)
        # What agents are sent is what the server shows: every setting.
        for host, settings in live.items():
            self.assertEqual(stored[host], settings, f"v{n} {host}: stored settings")
        for table, count in counts.items():
            self.assertGreaterEqual(count, exp["tables"][table], f"v{n}: {table}")
        # Migrated by the restore, or by the server's start.
        log = self.restored if archive else server.log_text()
        if n < CURRENT:
            self.assertIn(f"schema version {n} to {n + 1} of {CURRENT}", log)

    def test_every_earlier_schema(self):
        found = fixtures()
        self.assertEqual([n for n, _ in found], list(range(1, len(found) + 1)))
        self.assertGreaterEqual(len(found), 9)
        for n, folder in found:
            with self.subTest(schema=n):
                self.check(n, folder)

    def test_archives_of_earlier_versions(self):
        """An archive that the wardd of an earlier schema made of its server
        (tests/data/schemas/vN/backup.wbk, from vN's data directory) is
        restored and migrated by this wardd, and all of it is there as
        after an upgrade in place."""
        found = [(n, f) for n, f in fixtures() if os.path.exists(os.path.join(f, "backup.wbk"))]
        self.assertEqual([n for n, _ in found], [10, 13])
        for n, folder in found:
            with self.subTest(schema=n):
                self.check(n, folder, os.path.join(folder, "backup.wbk"))
                self.assertIn(f"schema {n}", self.restored)

    def test_a_newer_schema_is_refused(self):
        """A database from a later wardd is refused with both versions named,
        and left as it was."""
        server, _ = self.open_fixture(fixtures()[-1][1])
        self.assertEqual(server.stop(), 0)
        path = os.path.join(server.data, "ward.db")
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {CURRENT + 5}")
        db.commit()
        db.close()
        with open(path, "rb") as f:
            before = f.read()
        with self.assertRaises(AssertionError) as e:
            server.start()
        self.assertIn(f"schema version {CURRENT + 5} is newer than this wardd understands "
                      f"({CURRENT})", str(e.exception))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)


CURRENT = SCHEMA

if __name__ == "__main__":
    unittest.main()
