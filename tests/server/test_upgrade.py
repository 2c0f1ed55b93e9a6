#!/usr/bin/env python3
"""Upgrades: `wardd upgrade --check` and the preflight every start on an
older schema runs (deliveries queued and not held, an import running, a
damaged database refuse it, before anything changes); the copy of the
database and the archive made before migrating; a migration that fails
puts the database back as the old wardd left it, byte for byte; wardd
killed during a migration rolls it back at its next start and upgrades
again. The data directories are those of tests/data/schemas, made by the
wardd of each schema."""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import DATA, SCHEMA, WARDD, Wardd, temp_dir, untar, wait_for  # noqa: E402

PASSPHRASE = "a passphrase for tests"
CURRENT = SCHEMA


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class UpgradeTest(unittest.TestCase):
    def server(self, schema, extra=""):
        """A wardd (not started) on a data directory of schema."""
        root = temp_dir("ward-upgrade-", self.addCleanup).name
        untar(os.path.join(DATA, "schemas", f"v{schema}", "data.tar.gz"), root)
        server = Wardd(root, extra=extra)
        self.addCleanup(server.stop)
        self.db = os.path.join(server.data, "ward.db")
        return server

    def sql(self, *statements):
        db = sqlite3.connect(self.db)
        for s in statements:
            db.execute(s)
        db.commit()
        db.close()

    def schema(self):
        db = sqlite3.connect(self.db)
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()

    def check(self, server, *args):
        done = subprocess.run([WARDD, "upgrade", "--check", "--config", server.conf, *args],
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout

    def refused_start(self, server):
        """Starts server, which must exit; its status and log."""
        proc = subprocess.run([WARDD, "--config", server.conf], capture_output=True,
                              text=True, timeout=60)
        return proc.returncode, proc.stderr

    def test_preflight(self):
        server = self.server(8)
        code, out = self.check(server)
        self.assertEqual(code, 0, out)
        for line in ("ok    database: schema 8, structure intact: 6 clients",
                     "ok    upgrade path: schema 8 to ", "ok    disk space: ",
                     "ok    deliveries: none queued", "ok    agents: every agent"):
            self.assertIn(line, out)
        # A delivery queued and not held: refused, by the check and at start.
        self.sql("INSERT INTO deliveries (client, version, created) SELECT node, 999, 0 "
                 "FROM clients WHERE state = 'online' LIMIT 1")
        code, out = self.check(server, "--json")
        self.assertEqual(code, 1)
        pre = json.loads(out)
        self.assertFalse(pre["ok"])
        failed = [c for c in pre["checks"] if c["result"] == "fail"]
        self.assertEqual([c["name"] for c in failed], ["deliveries"])
        self.assertIn("1 deliveries of settings are queued", failed[0]["detail"])
        before = digest(self.db)
        code, log = self.refused_start(server)
        self.assertEqual(code, 1)
        self.assertIn("is refused before it starts (nothing changed): deliveries: 1 "
                      "deliveries of settings are queued", log)
        self.assertEqual(digest(self.db), before)
        self.assertEqual(sorted(n for n in os.listdir(server.data) if "upgrade" in n), [])
        # Held for the upgrade: it goes ahead, and they stay held after.
        self.sql("INSERT INTO server_kv VALUES ('notify.paused', '1')")
        code, out = self.check(server)
        self.assertEqual(code, 0, out)
        self.assertIn("ok    deliveries: 1 queued and held", out)
        server.start()
        token = server.login()
        status, queue = server.request("GET", "/api/v1/notify/queue", token=token)
        # Every client has a delivery now: the settings schema 10 adds.
        self.assertEqual((status, queue["paused"], len(queue["queue"])), (200, True, 5))
        status, answer = server.request("POST", "/api/v1/notify/resume", token=token)
        self.assertEqual((status, answer), (200, {"paused": False}))
        self.assertIn(f"upgrade: {self.db} is at schema {CURRENT}", server.log_text())
        # Beside a running wardd: an import running refuses it, and the
        # check says a wardd runs there. (Its own first import done first:
        # it would write over the mark, then remove it.)
        def imported():
            update = server.request("GET", "/api/v1/update", token=token)[1]
            return update["last_import"]["time"] is not None and not update["importing"]
        wait_for(imported, timeout=60, what="wardd's own import done")
        self.sql("INSERT INTO server_kv VALUES ('updates.importing', '1796500000') "
                 "ON CONFLICT (key) DO UPDATE SET value = '1796500000'")
        code, out = self.check(server)
        self.assertEqual(code, 1, out)
        self.assertIn("fail  imports: a signature import runs (started at 1796500000)", out)
        self.assertIn(f"ok    server: a wardd runs on {server.data}", out)

    def test_deployment_in_progress_refuses_the_start(self):
        """An agent deployment under way (a host fetched its install script
        and has not enrolled yet, its deadline ahead): the new wardd
        refuses to upgrade at its start, naming the host, and changes
        nothing; once it has ended (cancelled), the upgrade goes ahead."""
        server = self.server(11)
        now = int(time.time())
        self.sql("INSERT INTO deployments (id, token, domain, address, state, started, "
                 f"updated, deadline) VALUES ('{'d' * 32}', 't', '/', '192.0.2.7', 'package', "
                 f"{now}, {now}, {now + 3600})")
        before = digest(self.db)
        code, log = self.refused_start(server)
        self.assertEqual(code, 1)
        self.assertIn("is refused before it starts (nothing changed): deployments: 1 agent "
                      f"deployments are in progress: 192.0.2.7 ({'d' * 32})", log)
        self.assertEqual(digest(self.db), before)
        self.assertEqual(self.schema(), 11)
        self.assertEqual(sorted(n for n in os.listdir(server.data) if "upgrade" in n), [])
        self.sql("UPDATE deployments SET state = 'cancelled' WHERE address = '192.0.2.7'")
        server.start()
        self.assertEqual(self.schema(), CURRENT)

    def test_old_agents_listed(self):
        """Agents that last reported a version older than the new wardd serves
        fully are listed by name, id and version: a warning, which refuses
        nothing."""
        server = self.server(8)
        self.sql("UPDATE clients SET status = json_set(status, '$.agent_version', '0.0.9') "
                 "WHERE hostname = 'ws-eu-1'")
        node = sqlite3.connect(self.db).execute(
            "SELECT node FROM clients WHERE hostname = 'ws-eu-1'").fetchone()[0]
        code, out = self.check(server)
        self.assertEqual(code, 0, out)
        self.assertIn(f"warn  agents: 1 older than 0.1.0, which this wardd serves fully: "
                      f"ws-eu-1 (client {node}, 0.0.9)", out)

    def test_damaged_database_refused(self):
        server = self.server(7)
        with open(self.db, "r+b") as f:
            f.seek(4096 * 2)
            f.write(b"\xff" * 64)
        code, out = self.check(server)
        self.assertEqual(code, 1)
        self.assertIn("fail  database: database " + self.db + " is damaged", out)

    def test_index_that_disagrees_with_its_table_refused(self):
        """Every page readable, but an index whose entries are not its
        table's (as its definition says them): the preflight's integrity
        check finds it, which a check of the pages alone does not."""
        server = self.server(8)
        self.sql("PRAGMA writable_schema = ON",
                 "UPDATE sqlite_master SET sql = 'CREATE INDEX events_time ON events(kind)' "
                 "WHERE name = 'events_time'")
        code, out = self.check(server)
        self.assertEqual(code, 1, out)
        self.assertIn(f"fail  database: database {self.db} is damaged (row 1 missing from "
                      "index events_time)", out)

    def test_failed_migration_puts_the_database_back(self):
        """Step 9 cannot run (its table exists already, made by a hand):
        wardd stops, the database is the old wardd's byte for byte, and an
        archive was made before; once the cause is gone, it upgrades."""
        root = temp_dir("ward-upgrade-pass-", self.addCleanup).name
        passfile = os.path.join(root, "passphrase")
        with open(passfile, "w") as f:
            f.write(PASSPHRASE)
        archives = os.path.join(root, "archives")
        server = self.server(8, extra=f"[backup]\ndir = {archives}\npassphrase_file = "
                             f"{passfile}\n")
        self.sql("CREATE TABLE tasks (id INTEGER PRIMARY KEY)")
        before = digest(self.db)
        started = time.monotonic()
        code, log = self.refused_start(server)
        self.assertLess(time.monotonic() - started, 60)
        self.assertEqual(code, 1)
        self.assertIn(f"from schema 8 to {CURRENT} failed, and the database is back as it was",
                      log)
        self.assertIn("schema step 9 (tasks, last scans, event details, quarantines) failed",
                      log)
        self.assertIn("table tasks already exists", log)
        self.assertEqual(digest(self.db), before)
        self.assertEqual(self.schema(), 8)
        self.assertEqual(sorted(n for n in os.listdir(server.data) if "upgrade" in n), [])
        made = os.listdir(archives)
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].endswith("-schema-8.wbk"), made)
        done = subprocess.run([WARDD, "backup", "verify", "--config", server.conf,
                               os.path.join(archives, made[0])], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("schema 8", done.stdout)
        self.sql("DROP TABLE tasks")
        server.start()
        self.assertEqual(self.schema(), CURRENT)

    def test_killed_during_migration(self):
        """SIGKILL while step 10 fills a column for 200,000 clients: the next
        start puts the database back and upgrades it again; nothing lost."""
        server = self.server(9)
        db = sqlite3.connect(self.db)
        eff = db.execute("SELECT eff_json FROM clients LIMIT 1").fetchone()[0]
        base = db.execute("SELECT max(id) FROM nodes").fetchone()[0] + 1
        n = 200000
        db.executemany("INSERT INTO nodes (id, parent, kind, name) VALUES (?, 1, 2, ?)",
                       ((base + i, f"h{i}") for i in range(n)))
        db.executemany("INSERT INTO clients (node, uuid, hostname, secret, eff_json) "
                       "VALUES (?, ?, ?, x'00', ?)",
                       ((base + i, f"u-{i}", f"h{i}", eff) for i in range(n)))
        db.commit()
        clients = db.execute("SELECT count(*) FROM clients").fetchone()[0]
        db.close()
        log = open(server.log_path, "ab")
        proc = subprocess.Popen([WARDD, "--config", server.conf], stdout=log,
                                stderr=subprocess.STDOUT)
        wait_for(lambda: "schema version 9 to 10" in server.log_text(), timeout=60,
                 what="step 10 under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
        self.assertTrue(os.path.exists(os.path.join(server.data, "upgrade.json")),
                        "killed after the step: " + server.log_text()[-2000:])
        server.start()
        text = server.log_text()
        self.assertIn("wardd stopped during an upgrade of " + self.db, text)
        # Each step after the first says how long the rest will take.
        self.assertRegex(text, r"schema version 10 to 11 of \d+: .* \(\d+\.\d s so far, "
                         r"about \d+\.\d s left\)")
        self.assertIn(f"is at schema {CURRENT}", text)
        self.assertEqual(self.schema(), CURRENT)
        self.assertEqual(sorted(n for n in os.listdir(server.data) if "upgrade" in n), [])
        db = sqlite3.connect(self.db)
        self.assertEqual(db.execute("SELECT count(*) FROM clients").fetchone()[0], clients)
        db.close()


if __name__ == "__main__":
    unittest.main()
