#!/usr/bin/env python3
"""wardd backup, wardd backup verify, wardd restore with real processes.

A server with real agents is backed up while it serves; its machine is
lost; a new one known by the same host name restores the archive, and the
agents come back by themselves, without enrolling again, with their
settings, their components (the next import is a delta from them) and the
queued notification of the one that was away. wardd backs itself up when
asked (API, `ward backup create`) and on backup.schedule, one at a time,
keeping backup.keep archives. Faults: a flipped byte
(refused, the part named), a truncated archive, a wrong passphrase, an
archive of a newer Ward (refused, both versions named), a restore onto a
running server or over a server's files, a backup killed outright (it
leaves nothing that looks complete, and the next one clears it away).
"""
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (SCHEMA, WARD, WARDD, Agent, AgentWire, Wardd, backend,  # noqa: E402
                      clamav_cvd, data_file, temp_dir, wait_for)

PASSPHRASE = "a passphrase for tests"
EXTRA = ("[http]\nlong_poll = 5s\n[notify]\nack_timeout = 60s\nretry_interval = 1s\n"
         "[agents]\nheartbeat_interval = 5s\noffline_after = 60s\n")


def run(*args, env=None, timeout=120):
    full = dict(os.environ, WARD_BACKUP_PASSPHRASE=PASSPHRASE)
    full.update(env or {})
    return subprocess.run([WARDD, *args], capture_output=True, text=True, timeout=timeout,
                          env=full)


def moved_to(server, port):
    """Makes server listen on port (its configuration rewritten)."""
    server.port = port
    with open(server.conf) as f:
        text = f.read()
    with open(server.conf, "w") as f:
        f.write(text.replace("listen = *:", f"listen = *:{port}\n# was ", 1))


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.tmp = temp_dir("ward-backup-", self.addCleanup).name
        self.src = os.path.join(self.tmp, "source")
        os.makedirs(self.src)
        shutil.copy(clamav_cvd(5), os.path.join(self.src, "main.cvd"))
        shutil.copy(data_file("clamav", "sigs", "Clamav-Unit-Test-Signature.ndb"),
                    os.path.join(self.src, "local.ndb"))
        self.old = os.path.join(self.tmp, "old-machine")
        os.makedirs(self.old)
        self.server = Wardd(self.old, extra=f"[updates]\nsource_dir = {self.src}\n"
                            f"watch_interval = 1s\n{EXTRA}")
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        self.server.wait_component(self.token)
        self.archives = os.path.join(self.tmp, "archives")

    def api(self, server, method, path, body=None, expect=200):
        status, answer = server.request(method, path, body, token=self.token)
        self.assertEqual(status, expect, answer)
        return answer

    def agent(self, name):
        a = Agent(self.tmp, name)
        client = a.enroll_with(self.server)
        a.start()
        self.addCleanup(a.stop)
        return a, client

    def backup(self, server, out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        done = run("backup", "--config", server.conf, "--out", out)
        self.assertEqual(done.returncode, 0, done.stderr)
        return out

    def installed(self, agent, component="virus-pattern"):
        link = os.path.join(agent.dir, "state", "components", component, "current")
        return int(os.readlink(link)) if os.path.islink(link) else 0

    def test_restore_on_a_new_machine(self):
        a, ida = self.agent("a")
        b, idb = self.agent("b")
        wait_for(lambda: self.installed(a) == 1 and self.installed(b) == 1, what="installs")
        self.api(self.server, "PUT", "/api/v1/settings",
                 {"scope": f"client:{ida}", "key": "scan_method", "value": "smart"})
        a.wait_settings(self.server, self.token)
        # b is away when its setting changes: its delivery waits in the queue.
        b.stop()
        self.api(self.server, "PUT", "/api/v1/settings",
                 {"scope": f"client:{idb}", "key": "update.window", "value": 90})
        queued = self.api(self.server, "GET", "/api/v1/notify/queue")["queue"]
        self.assertEqual([q["client"] for q in queued], [idb])
        creds = {x: pathlib.Path(x.dir, "state", "credential.json").read_text()
                 for x in (a, b)}
        # What else the server keeps goes along: the package signing key,
        # rotated (its chain lets agents trust the new one); an enrollment
        # token not used yet; a central quarantine copy.
        self.api(self.server, "POST", "/api/v1/update/rotate-key")
        bundle = os.path.join(self.tmp, "later.bundle")
        with open(bundle, "w") as f:
            json.dump(self.api(self.server, "POST", "/api/v1/enroll/tokens", {"days": 1},
                               expect=201), f)
        q, = AgentWire.enrolled(self.server, self.tmp, "q")
        self.api(self.server, "PUT", "/api/v1/settings",
                 {"scope": f"client:{q.id}", "key": "quarantine.central", "value": True})
        item = {"id": "q1", "path": "/home/u/eicar.com", "size": 68, "sha256": "ab" * 32,
                "names": ["Eicar-Signature"], "time": 1700000000, "source": "realtime",
                "state": "stored"}
        self.assertEqual(q.call("POST", "/api/v1/agent/quarantine",
                                {"items": [item], "complete": True})[0], 200)
        copy = os.urandom(3000)
        self.assertEqual(q.upload("q1", copy)[0], 201)
        clients = {c["id"]: c for c in self.api(self.server, "GET", "/api/v1/clients")
                   ["clients"]}
        # Backed up while it serves: a change made meanwhile is answered.
        proc = subprocess.Popen([WARDD, "backup", "--config", self.server.conf, "--out",
                                 os.path.join(self.tmp, "server.wbk")],
                                env=dict(os.environ, WARD_BACKUP_PASSPHRASE=PASSPHRASE),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None:
            self.api(self.server, "PUT", "/api/v1/settings",
                     {"scope": "root", "key": "update.schedule", "value": "daily 02:30"})
            time.sleep(0.05)
        out, err = proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("3 clients", out)
        archive = os.path.join(self.tmp, "server.wbk")
        self.assertEqual(os.stat(archive).st_mode & 0o777, 0o600)
        port = self.server.port
        self.server.stop()
        # The old machine is gone; the new one has the same name and port.
        shutil.rmtree(self.old)
        new = os.path.join(self.tmp, "new-machine")
        os.makedirs(new)
        server = Wardd(new, extra=f"[updates]\nsource_dir = {self.src}\nwatch_interval = 1s\n"
                       f"{EXTRA}")
        moved_to(server, port)
        done = run("restore", "--config", server.conf, archive)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"restored into {server.data}", done.stdout)
        server.start()
        self.addCleanup(server.stop)
        self.token = server.login()
        # Before b is back, its delivery is queued as it was.
        queued = self.api(server, "GET", "/api/v1/notify/queue")["queue"]
        self.assertIn(idb, [q["client"] for q in queued])
        b.start()
        for x in (a, b):
            x.wait_settings(server, self.token, what=f"{x.dir} back with its settings")
        now = {c["id"]: c for c in self.api(server, "GET", "/api/v1/clients")["clients"]}
        self.assertEqual(set(now), set(clients))
        for cid, c in now.items():
            self.assertEqual(c["uuid"], clients[cid]["uuid"])
        wait_for(lambda: all(c["state"] == "online" for c in self.api(
            server, "GET", "/api/v1/clients")["clients"] if c["id"] != q.id),
            what="both online")
        for x in (a, b):
            with open(os.path.join(x.dir, "state", "credential.json")) as f:
                self.assertEqual(f.read(), creds[x], "enrolled again")
        settings = self.api(server, "GET", f"/api/v1/client?id={ida}")["settings"]
        self.assertEqual(settings["scan_method"], "smart")
        self.assertEqual(self.api(server, "GET", f"/api/v1/client?id={idb}")
                         ["settings"]["update.window"], 90)
        # The components as they were: the next version comes as a delta.
        shutil.copy(clamav_cvd(6), os.path.join(self.src, "main.cvd"))
        server.wait_component(self.token, version=2, what="the import after the restore")
        self.api(server, "POST", "/api/v1/update/agents", {"scope": "root"})
        # a scans smart: its component is the Smart Scan Agent Pattern.
        wait_for(lambda: self.installed(a, "smart-agent-pattern") == 2 and
                 self.installed(b) == 2, what="deltas")
        self.assertIn("smart-agent-pattern 1 -> 2 by delta", a.log_text())
        self.assertIn("virus-pattern 1 -> 2 by delta", b.log_text())
        # Signed with the key rotated before the backup.
        key = self.api(server, "GET", "/api/v1/update")["key"]
        self.assertIn(f"package signing key rotated to {key}", b.log_text())
        # The central quarantine's copy, byte for byte, and its record.
        with open(os.path.join(server.data, "quarantine", str(q.id), "q1"), "rb") as f:
            self.assertEqual(f.read(), copy)
        listed = self.api(server, "GET", f"/api/v1/quarantine?client={q.id}")["items"]
        self.assertEqual([(i["id"], i["central"]) for i in listed], [("q1", len(copy))])
        # The token made before the backup enrolls a new agent.
        c = Agent(self.tmp, "c")
        done = c.enroll("--bundle", bundle)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_damage_and_refusals(self):
        archive = self.backup(self.server, os.path.join(self.archives, "first.wbk"))
        done = run("backup", "verify", "--config", self.server.conf, archive)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("every part and the database check", done.stdout)
        with open(archive, "rb") as f:
            good = f.read()
        # A flipped byte in a part, and in the cleartext header: refused,
        # and the part named.
        for offset, want in ((len(good) // 3, "is damaged in part data"),
                             (40, "header is damaged")):
            bad = bytearray(good)
            bad[offset] ^= 0x01
            path = os.path.join(self.tmp, f"flipped-{offset}.wbk")
            with open(path, "wb") as f:
                f.write(bad)
            done = run("backup", "verify", "--config", self.server.conf, path)
            self.assertEqual(done.returncode, 1)
            self.assertIn(want, done.stderr)
        # Truncated: its end missing, however much is there.
        for cut in (1, 100, len(good) // 2):
            path = os.path.join(self.tmp, "cut.wbk")
            with open(path, "wb") as f:
                f.write(good[:-cut])
            done = run("backup", "verify", "--config", self.server.conf, path)
            self.assertEqual(done.returncode, 1)
            self.assertIn("is truncated", done.stderr)
        done = run("backup", "verify", "--config", self.server.conf, archive,
                   env={"WARD_BACKUP_PASSPHRASE": "not the passphrase"})
        self.assertEqual(done.returncode, 1)
        self.assertIn("the passphrase is wrong", done.stderr)
        done = run("backup", "--config", self.server.conf, "--out",
                   os.path.join(self.tmp, "short.wbk"), env={"WARD_BACKUP_PASSPHRASE": "short"})
        self.assertEqual(done.returncode, 1)
        self.assertIn("shorter than 12", done.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "short.wbk")))
        # Onto the running server: refused, its files untouched.
        before = self.files(self.server.data)
        done = run("restore", "--config", self.server.conf, "--force", archive)
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"wardd pid {self.server.proc.pid} runs on {self.server.data}",
                      done.stderr)
        self.assertEqual(self.files(self.server.data), before)
        self.assertEqual(self.server.stop(), 0)
        # Over a server's files without --force: refused.
        done = run("restore", "--config", self.server.conf, archive)
        self.assertEqual(done.returncode, 1)
        self.assertIn("holds a server's files; restore over them with --force",
                      done.stderr)
        # A damaged archive restores nothing, even with --force.
        path = os.path.join(self.tmp, f"flipped-{len(good) // 3}.wbk")
        done = run("restore", "--config", self.server.conf, "--force", path)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(self.files(self.server.data), before)
        self.assertEqual([n for n in os.listdir(self.old) if "restore" in n], [])
        # An archive of a newer Ward: refused before anything, both named.
        newer = self.newer(good, "99.1.0", 99)
        done = run("restore", "--config", self.server.conf, "--force", newer)
        self.assertEqual(done.returncode, 1)
        self.assertIn("was made by Ward 99.1.0 (database schema 99); this is Ward ",
                      done.stderr)
        self.assertIn("restore it with Ward 99.1.0 or later", done.stderr)
        # With --force over a stopped server: the former files are kept.
        done = run("restore", "--config", self.server.conf, "--force", archive)
        self.assertEqual(done.returncode, 0, done.stderr)
        kept = [n for n in os.listdir(self.old) if n.startswith("data.before-restore-")]
        self.assertEqual(len(kept), 1)
        self.server.start()
        self.assertEqual(self.api(self.server, "GET", "/api/v1/update")["components"][0]
                         ["version"], 1)

    @unittest.skipUnless(backend() == "postgresql", "the PostgreSQL backend's")
    def test_postgresql_refusals(self):
        """On PostgreSQL the database is no file of the data directory: a
        restore over a database that holds a server's data needs --force
        even when the data directory is gone, is refused while any wardd
        serves from it (as an upgrade is), and an archive of one backend is
        not restored to the other."""
        archive = self.backup(self.server, os.path.join(self.archives, "pg.wbk"))
        # From another machine's data directory on the same database: with
        # a wardd serving from it, a restore is refused even with --force,
        # and so would an upgrade be (the preflight says why).
        other_conf = os.path.join(self.tmp, "other.ini")
        with open(self.server.conf) as f, open(other_conf, "w") as out:
            out.write(f.read().replace(self.server.data, os.path.join(self.tmp, "other-data")))
        done = run("restore", "--config", other_conf, "--force", archive)
        self.assertEqual(done.returncode, 1)
        self.assertIn("restore refused: 1 wardd serve from the database (server.database) now, "
                      "server number [0]: stop every one of them first", done.stderr)
        done = run("upgrade", "--check", "--config", other_conf)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn("fail  servers: 1 wardd serve from this database now (server.frontend "
                      "[0]): stop every one of them, then start the new one", done.stdout)
        done = run("upgrade", "--check", "--config", self.server.conf)
        self.assertIn("ok    servers: 1 wardd serve from this database now", done.stdout)
        self.server.stop()
        done = run("upgrade", "--check", "--config", other_conf)
        self.assertIn("ok    servers: no wardd serves from this database now", done.stdout)
        shutil.rmtree(self.server.data)
        done = run("restore", "--config", self.server.conf, archive)
        self.assertEqual(done.returncode, 1)
        self.assertIn("the database (server.database) holds a server's data, of schema "
                      f"{SCHEMA}: restore over it with --force", done.stderr)
        self.assertFalse(os.path.exists(self.server.data))
        sqlite_conf = os.path.join(self.tmp, "sqlite.ini")
        with open(self.server.conf) as f, open(sqlite_conf, "w") as out:
            out.write(f.read().replace(f"database = {self.server.database}\n", "")
                      .replace(self.server.data, os.path.join(self.tmp, "sqlite-data")))
        done = run("restore", "--config", sqlite_conf, archive)
        self.assertEqual(done.returncode, 1)
        self.assertIn("the archive holds the database of a server on PostgreSQL, and this "
                      "one's is on SQLite", done.stderr)
        done = run("restore", "--config", self.server.conf, "--force", archive)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.server.start()
        self.assertEqual(self.api(self.server, "GET", "/api/v1/update")["components"][0]
                         ["version"], 1)

    @staticmethod
    def files(folder):
        """The names in folder but SQLite's journal, which comes and goes."""
        return sorted(n for n in os.listdir(folder) if not n.startswith("ward.db-"))

    def newer(self, good, version, schema):
        """good with its cleartext header saying version and schema (the
        header's own checksum made anew, as a newer wardd would write it)."""
        n = int.from_bytes(good[8:12], "little")
        header = json.loads(good[12:12 + n])
        header.update(ward_version=version, schema=schema)
        text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        head = good[:8] + len(text).to_bytes(4, "little") + text
        path = os.path.join(self.tmp, "newer.wbk")
        with open(path, "wb") as f:
            f.write(head + hashlib.sha256(head).digest() + good[12 + n + 32:])
        return path

    def test_backup_killed_outright(self):
        """SIGKILL while it writes: nothing named like an archive; the next
        backup into that folder clears what was left and completes."""
        os.makedirs(self.archives)
        out = os.path.join(self.archives, "killed.wbk")
        proc = subprocess.Popen([WARDD, "backup", "--config", self.server.conf, "--out", out],
                                env=dict(os.environ, WARD_BACKUP_PASSPHRASE=PASSPHRASE),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(out + ".partial"), what="the backup under way")
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertFalse(os.path.exists(out))
        left = sorted(os.listdir(self.archives))
        self.assertIn("killed.wbk.partial", left)
        done = run("backup", "verify", "--config", self.server.conf, out + ".partial")
        self.assertEqual(done.returncode, 1)
        second = self.backup(self.server, os.path.join(self.archives, "second.wbk"))
        self.assertEqual(sorted(os.listdir(self.archives)), ["second.wbk"])
        done = run("backup", "verify", "--config", self.server.conf, second)
        self.assertEqual(done.returncode, 0, done.stderr)


class ServerBackupsTest(unittest.TestCase):
    """The backups wardd makes itself."""

    def setUp(self):
        self.tmp = temp_dir("ward-backups-", self.addCleanup).name
        self.dir = os.path.join(self.tmp, "archives")
        self.pass_file = os.path.join(self.tmp, "passphrase")
        with open(self.pass_file, "w") as f:
            f.write(PASSPHRASE + "\n")
        os.chmod(self.pass_file, 0o600)
        self.server = Wardd(self.tmp, extra=f"[backup]\ndir = {self.dir}\npassphrase_file = "
                            f"{self.pass_file}\nkeep = 2\nschedule = every 10s\n")
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()

    def api(self, method, path, expect=200):
        status, answer = self.server.request(method, path, token=self.token, timeout=60)
        self.assertEqual(status, expect, answer)
        return answer

    def test_asked_scheduled_and_kept(self):
        made = self.api("POST", "/api/v1/backups", expect=201)
        self.assertTrue(made["archive"].startswith(self.dir + "/ward-"))
        self.assertEqual(made["manifest"]["parts"][0]["name"],
                         "database/ward.pgdump" if self.server.database else "data/ward.db")
        done = run("backup", "verify", "--passphrase-file", self.pass_file, made["archive"],
                   env={"WARD_BACKUP_PASSPHRASE": ""})
        self.assertEqual(done.returncode, 0, done.stderr)
        status = self.api("GET", "/api/v1/backups")
        # (backup.schedule, every 10 s, may have made one since, on a slow
        # machine: then it is the last.)
        self.assertTrue(status["last"]["ok"])
        self.assertIn(status["last"]["by"], ("admin", "schedule"))
        names = [a["name"] for a in status["archives"]]
        self.assertIn(os.path.basename(made["archive"]), names)
        # (One it is writing may be listed before it is the last.)
        self.assertLessEqual(len(names), 2)
        self.assertEqual((status["schedule"], status["keep"]), ("every 10s", 2))
        # One at a time: asked while one runs, the answer says so. (Asked
        # when the schedule's next backup is a few seconds away, so that the
        # first is the one asked here.)
        wait_for(lambda: (lambda s: not s["running"] and s["next"] - time.time() > 5)(
            self.api("GET", "/api/v1/backups")), timeout=30, what="a quiet moment")
        results = {}
        first = threading.Thread(target=lambda: results.update(
            a=self.server.request("POST", "/api/v1/backups", token=self.token, timeout=60)))
        first.start()
        wait_for(lambda: self.api("GET", "/api/v1/backups")["running"], what="running")
        status, answer = self.server.request("POST", "/api/v1/backups", token=self.token)
        self.assertEqual(status, 409, answer)
        self.assertIn("a backup is running", answer["error"])
        first.join()
        self.assertEqual(results["a"][0], 201, results["a"])
        # The schedule makes the next; two are kept.
        wait_for(lambda: (self.api("GET", "/api/v1/backups")["last"] or {}).get("by") ==
                 "schedule", timeout=30, what="a scheduled backup")
        wait_for(lambda: len(os.listdir(self.dir)) == 2, what="the oldest removed")
        self.assertFalse(os.path.exists(made["archive"]))
        events = self.api("GET", "/api/v1/logs?kind=system&limit=1000")["events"]
        self.assertTrue(any(e["message"].startswith("backup by schedule written to ")
                            for e in events))
        # The command line.
        env = self.server.cli_env()
        login = subprocess.run([WARD, "login", "--server", f"https://localhost:"
                                f"{self.server.port}", "--ca",
                                os.path.join(self.server.data, "ca.crt")],
                               capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(login.returncode, 0, login.stderr)
        done = subprocess.run([WARD, "backup", "create"], capture_output=True, text=True,
                              env=env, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(self.dir, done.stdout)

    def test_archives_in_the_data_directory(self):
        """A backup.dir inside the data directory: no archive holds those
        made before it (each would grow by all of them)."""
        inside = os.path.join(self.server.data, "archives")
        os.makedirs(inside)
        first = run("backup", "--config", self.server.conf, "--out",
                    os.path.join(inside, "first.wbk"))
        self.assertEqual(first.returncode, 0, first.stderr)
        second = run("backup", "--config", self.server.conf, "--out",
                     os.path.join(inside, "second.wbk"))
        self.assertEqual(second.returncode, 0, second.stderr)
        sizes = [os.path.getsize(os.path.join(inside, n)) for n in ("first.wbk",
                                                                   "second.wbk")]
        self.assertLess(abs(sizes[1] - sizes[0]), sizes[0] // 2, sizes)

    def test_no_passphrase(self):
        # Asked when the schedule (every 10 s) is not about to make one: on
        # a slow machine it may have made one already, which stays.
        wait_for(lambda: (lambda s: not s["running"] and s["next"] - time.time() > 5)(
            self.api("GET", "/api/v1/backups")), timeout=30, what="a quiet moment")
        made = sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []
        os.remove(self.pass_file)
        status, answer = self.server.request("POST", "/api/v1/backups", token=self.token)
        self.assertEqual(status, 409, answer)
        self.assertIn(f"passphrase file {self.pass_file}: No such file", answer["error"])
        self.assertEqual(sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else [], made)
        # A schedule without a passphrase file is refused at start.
        bad = Wardd(os.path.join(self.tmp, "other"), extra="[backup]\nschedule = daily 03:00\n")
        with self.assertRaises(AssertionError) as e:
            bad.start()
        self.assertIn("backup.schedule needs backup.passphrase_file", str(e.exception))


if __name__ == "__main__":
    unittest.main()
