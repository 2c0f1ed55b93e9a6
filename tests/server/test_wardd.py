#!/usr/bin/env python3
"""wardd as a real daemon over real HTTPS on loopback (IPv4 and IPv6).

First start (data directory, CA, certificate, administrator, enrollment
bundle), the API's answers to good and bad requests, a restart that keeps
everything, configuration errors and a clean stop.  Python standard
library only; WARDD_BIN names the daemon.
"""
import http.client
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pg  # noqa: E402
from wardtest import (AGENT, WARD_SPS, WARDD, backend, temp_wardd, wait_for,  # noqa: E402
                      Wardd)


class WarddTest(unittest.TestCase):
    def setUp(self):
        self.tmp, self.w = temp_wardd("ward-wardd-", self.addCleanup)

    def test_first_start(self):
        names = ["ca.crt", "ca.key", "server.crt", "server.key", "initial-admin-password",
                 "enroll-token", "enroll.bundle", "signing.key", "signing.pub"]
        if not self.w.database:
            names.append("ward.db")
        for name in names:
            mode = stat.S_IMODE(os.stat(os.path.join(self.w.data, name)).st_mode)
            self.assertEqual(mode & 0o077, 0, f"{name} is readable by others: {oct(mode)}")
        with open(os.path.join(self.w.data, "enroll.bundle")) as f:
            bundle = json.load(f)
        self.assertEqual(bundle["server"], f"https://localhost:{self.w.port}")
        self.assertIn("BEGIN CERTIFICATE", bundle["ca"])
        self.assertEqual(len(bundle["token"]), 64)
        # The package signing key agents pin from the enrollment answer; the
        # bundle (kept for a year) does not carry it, so rotating it leaves
        # no stale copy behind.
        with open(os.path.join(self.w.data, "signing.pub")) as f:
            self.assertRegex(f.read(), "^[0-9a-f]{64}\n$")
        self.assertNotIn("package_key", bundle)
        log = self.w.log_text()
        self.assertIn("administrator 'admin' created", log)
        # Secrets are named in the log, never shown.
        with open(os.path.join(self.w.data, "initial-admin-password")) as f:
            self.assertNotIn(f.read().strip(), log)
        self.assertNotIn(bundle["token"], log)
        with open(os.path.join(self.w.data, "signing.key")) as f:
            self.assertNotIn(f.read().strip()[:64], log)

    def test_dual_stack(self):
        for host in ("127.0.0.1", "::1", "localhost"):
            status, body = self.w.request("GET", "/api/v1/health", host=host)
            self.assertEqual((status, body["status"]), (200, "ok"), host)

    def test_login_and_tree(self):
        token = self.w.login()
        status, tree = self.w.request("GET", "/api/v1/tree", token=token)
        self.assertEqual(status, 200)
        self.assertEqual((tree["kind"], tree["domains"], tree["clients"]), ("root", [], []))

    def test_bad_requests(self):
        w = self.w
        cases = [
            (("GET", "/api/v1/tree"), 401, "bearer token"),
            (("GET", "/api/v1/tree", None, "0" * 64), 401, "bearer token"),
            (("POST", "/api/v1/login", {"user": "admin", "password": "wrong"}), 401,
             "wrong user name or password"),
            (("POST", "/api/v1/login", {"user": "nobody", "password": "x"}), 401,
             "wrong user name or password"),
            (("POST", "/api/v1/login", {"user": "admin"}), 400, "expected"),
            (("POST", "/api/v1/login", None, None, "127.0.0.1", b"{bad"), 400,
             "invalid JSON at line 1 column"),
            (("POST", "/api/v1/login", None, None, "127.0.0.1", b"[1]"), 400,
             "expected a JSON object"),
            (("POST", "/api/v1/login", None, None, "127.0.0.1", b"x" * (2 << 20)), 413,
             "larger than 1048576 bytes"),
            (("GET", "/nope"), 404, "no such resource: /nope"),
            (("DELETE", "/api/v1/health"), 405, "DELETE is not allowed"),
        ]
        for args, want_status, want_text in cases:
            status, body = w.request(*args)
            self.assertEqual(status, want_status, (args[:2], body))
            self.assertIn(want_text, body["error"], args[:2])
        # Malformed HTTP and a TLS-less client do not hurt the server.
        with socket.create_connection(("127.0.0.1", w.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
            s.settimeout(5)
            try:
                s.recv(100)
            except OSError:
                pass
        self.assertEqual(w.request("GET", "/api/v1/health")[0], 200)

    def test_empty_body(self):
        """An empty or absent body is {} where every body argument is
        optional, and names the required argument where one is not."""
        token = self.w.login()

        def absent(path):
            ctx = ssl.create_default_context(cafile=os.path.join(self.w.data, "ca.crt"))
            conn = http.client.HTTPSConnection("127.0.0.1", self.w.port, context=ctx,
                                               timeout=10)
            try:
                conn.putrequest("POST", path)
                conn.putheader("Authorization", f"Bearer {token}")
                conn.endheaders()
                resp = conn.getresponse()
                return resp.status, json.loads(resp.read())
            finally:
                conn.close()

        for how, answer in (("empty", self.w.request("POST", "/api/v1/enroll/tokens",
                                                     token=token, raw=b"")),
                            ("blank", self.w.request("POST", "/api/v1/enroll/tokens",
                                                     token=token, raw=b" \r\n")),
                            ("absent", absent("/api/v1/enroll/tokens"))):
            status, body = answer
            self.assertEqual(status, 201, (how, body))
            self.assertEqual((body["domain"], len(body["token"])), ("/", 64), how)
        status, body = self.w.request("POST", "/api/v1/domains", token=token, raw=b"")
        self.assertEqual(status, 400, body)
        self.assertIn("path: missing (/PARENT/NAME): the request body is empty", body["error"])
        status, body = absent("/api/v1/domains")
        self.assertEqual(status, 400, body)
        self.assertIn("path: missing (/PARENT/NAME): the request body is empty", body["error"])

    def test_restart_settings(self):
        """restart.notify and restart.postpone_updates, which agent upgrades
        read, are offered at every level, off by default, and booleans."""
        w = self.w
        token = w.login()
        status, body = w.request("GET", "/api/v1/settings/keys", token=token)
        self.assertEqual(status, 200, body)
        keys = {k["key"]: k for k in body["settings"]}
        for key in ("restart.notify", "restart.postpone_updates"):
            self.assertEqual((keys[key]["type"], keys[key]["default"]), ("bool", False))
            status, body = w.request("PUT", "/api/v1/settings", {"scope": "root", "key": key,
                                                                 "value": "yes"}, token=token)
            self.assertEqual(status, 400, body)
            status, body = w.request("PUT", "/api/v1/settings", {"scope": "root", "key": key,
                                                                 "value": True}, token=token)
            self.assertEqual(status, 200, body)

    def test_restart_keeps_state(self):
        token = self.w.login()
        files = {}
        for name in ("ca.crt", "server.crt", "enroll.bundle", "initial-admin-password",
                     "signing.pub", "signing.key"):
            with open(os.path.join(self.w.data, name), "rb") as f:
                files[name] = f.read()
        self.assertEqual(self.w.stop(), 0)
        self.w.start()
        for name, before in files.items():
            with open(os.path.join(self.w.data, name), "rb") as f:
                self.assertEqual(f.read(), before, f"{name} changed on restart")
        # Sessions survive a restart; the first password still works.
        self.assertEqual(self.w.request("GET", "/api/v1/tree", token=token)[0], 200)
        self.w.login()

    def refused_start(self):
        """Starts wardd on the data as it is; returns its exit status and log."""
        log = os.path.join(self.tmp.name, "refused.log")
        with open(log, "wb") as out:
            code = subprocess.run([WARDD, "--config", self.w.conf], stdout=out,
                                  stderr=subprocess.STDOUT, timeout=30).returncode
        with open(log, errors="replace") as f:
            return code, f.read()

    @unittest.skipUnless(backend() == "postgresql", "the PostgreSQL backend's")
    def test_emptied_postgresql_database_is_no_first_start(self):
        """A PostgreSQL database emptied beside the server's files is
        refused as a lost one, pointing to a restore; nothing is made anew.
        A server that does not answer is named in the message, and the URI's
        password is not."""
        token = self.w.login()
        self.assertEqual(self.w.stop(), 0)
        with open(os.path.join(self.w.data, "initial-admin-password")) as f:
            password = f.read()
        saved = os.path.join(self.tmp.name, "saved.dump")
        name = self.w.database.split("?")[0].rsplit("/", 1)[1]
        subprocess.run([pg._bin("pg_dump"), "-Fc", "-f", saved, "-d", self.w.database],
                       check=True)
        self.w.db().execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        code, log = self.refused_start()
        self.assertNotEqual(code, 0)
        self.assertIn("the PostgreSQL database (server.database) is missing but", log)
        self.assertIn("restore", log)
        with open(os.path.join(self.w.data, "initial-admin-password")) as f:
            self.assertEqual(f.read(), password)
        self.assertEqual(self.w.db().execute("SELECT count(*) FROM pg_tables WHERE "
                                             "schemaname = 'public'").fetchone()[0], 0)
        # Unreachable: named, and its password never shown.
        good = open(self.w.conf).read()
        with open(self.w.conf, "w") as f:
            f.write(good.replace(self.w.database, f"postgresql://ward:s3cr3t@127.0.0.1:1/{name}"))
        code, log = self.refused_start()
        self.assertNotEqual(code, 0)
        self.assertIn(f"PostgreSQL database {name} on 127.0.0.1", log)
        self.assertNotIn("s3cr3t", log)
        with open(self.w.conf, "w") as f:
            f.write(good)
        subprocess.run([pg._bin("pg_restore"), "-d", self.w.database, saved], check=True)
        self.w.start()
        self.assertEqual(self.w.request("GET", "/api/v1/tree", token=token)[0], 200)

    @unittest.skipIf(backend() == "postgresql", "SQLite's file")
    def test_lost_or_damaged_database_is_no_first_start(self):
        """A zero-length, missing or damaged ward.db beside the server's files
        is refused, naming the file and pointing to a restore; nothing of the
        server (password, token, keys) is made anew."""
        token = self.w.login()
        self.assertEqual(self.w.stop(), 0)
        db = os.path.join(self.w.data, "ward.db")
        with open(db, "rb") as f:
            good = f.read()
        with open(os.path.join(self.w.data, "initial-admin-password")) as f:
            password = f.read()
        for wal in ("ward.db-wal", "ward.db-shm"):
            if os.path.exists(os.path.join(self.w.data, wal)):
                os.remove(os.path.join(self.w.data, wal))
        # Every page after the first with a b-tree page type that is none.
        damaged = bytearray(good)
        page = int.from_bytes(good[16:18], "big")
        for off in range(page, len(damaged), page):
            damaged[off] = 0xFF
        for what, content, want in (("empty", b"", "is empty: restore"),
                                    ("missing", None, "is missing but"),
                                    ("damaged", bytes(damaged), "is damaged"),
                                    ("not a database", b"x" * 4096, "is damaged")):
            if content is None:
                os.remove(db)
            else:
                with open(db, "wb") as f:
                    f.write(content)
            code, log = self.refused_start()
            self.assertNotEqual(code, 0, what)
            self.assertIn(db, log, what)
            self.assertIn(want, log, what)
            self.assertIn("restore", log, what)
            with open(os.path.join(self.w.data, "initial-admin-password")) as f:
                self.assertEqual(f.read(), password, what)
            if content is not None:
                with open(db, "rb") as f:
                    self.assertEqual(f.read(), content, f"{what}: the file was changed")
        with open(db, "wb") as f:
            f.write(good)
        self.w.start()
        self.assertEqual(self.w.request("GET", "/api/v1/tree", token=token)[0], 200)

    def test_stop_is_clean(self):
        start = time.monotonic()
        self.assertEqual(self.w.stop(), 0)
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("stopping", self.w.log_text())

    def test_stop_while_requests_come(self):
        """Requests still coming while wardd stops are answered 503 (or
        their connections closed); none reaches a handler whose module is
        freed already (the licenses', the rollout's: under ASan a
        use-after-free, else now and then a SIGSEGV at the stop)."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.w.data, "ca.crt"))
        for _ in range(5):
            token = self.w.login()
            stop = threading.Event()
            answers = []

            def ask(path):
                while not stop.is_set():
                    try:
                        conn = http.client.HTTPSConnection("127.0.0.1", self.w.port,
                                                           context=ctx, timeout=5)
                        while not stop.is_set():
                            conn.request("GET", path,
                                         headers={"Authorization": f"Bearer {token}"})
                            resp = conn.getresponse()
                            resp.read()
                            answers.append(resp.status)
                    except (OSError, http.client.HTTPException):
                        time.sleep(0.005)
            threads = [threading.Thread(target=ask, args=(path,)) for path in
                       ("/api/v1/licenses", "/api/v1/agent-upgrade", "/api/v1/posture",
                        "/api/v1/licenses")]
            for t in threads:
                t.start()
            wait_for(lambda: len(answers) > 20, what="requests answered")
            code = self.w.stop()
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(code, 0, self.w.log_text()[-3000:])
            self.assertNotIn("Sanitizer", self.w.log_text())
            self.assertTrue(set(answers) <= {200, 503}, set(answers))
            self.w.start()


class ConfigTest(unittest.TestCase):
    def run_with(self, text):
        with tempfile.TemporaryDirectory(prefix="ward-conf-") as d:
            path = os.path.join(d, "w.ini")
            with open(path, "w") as f:
                f.write(text.replace("DATA", os.path.join(d, "data")))
            done = subprocess.run([WARDD, "--config", path], capture_output=True, text=True,
                                  timeout=30)
            return done.returncode, done.stderr.replace(path, "CONF")

    def test_errors_name_file_and_line(self):
        for text, want in [
            ("[server]\nlisten = *:1\nport = 3\n", "CONF:3: unknown key 'port' in [server]"),
            ("[notify]\nbatch = 0\n", "CONF:2: notify.batch: 0 is out of range"),
            ("[agents]\nheartbeat_interval = 5x\n", "CONF:2: agents.heartbeat_interval"),
            ("[agents]\nheartbeat_interval = 5m\noffline_after = 1m\n",
             "offline_after (60s) must exceed agents.heartbeat_interval (300s)"),
            ("[server]\ndata_dir = DATA\nlisten = 127.0.0.1\n", "listen: '127.0.0.1' is not"),
            ("[server]\nfrontends = https://a.example:8443, http://b.example:8443\n",
             "server.frontends: http://b.example:8443 is no https://HOST:PORT"),
            ("[server]\nfrontends = https://a.example:8443,https://a.example:8443\n",
             "server.frontends: https://a.example:8443 is given twice"),
            ("[server]\ndatabase = mysql://x/y\n", "server.database is a PostgreSQL "
             "connection URI"),
        ]:
            code, err = self.run_with(text)
            self.assertEqual(code, 2 if "listen" not in want else 1, err)
            self.assertIn(want, err)

    def test_print_defaults(self):
        # docs/configuration.md shows each program's defaults whole, in
        # this order; an option added to one and not the other fails here.
        docs = os.path.join(os.path.dirname(__file__), "../../docs/configuration.md")
        with open(docs) as f:
            blocks = [b.split("```", 1)[0] for b in f.read().split("```ini\n")[1:]]
        programs = [WARDD, AGENT, WARD_SPS]
        self.assertEqual(len(blocks), len(programs), "docs/configuration.md: one ini block "
                         "per program (wardd, ward-agent, ward-sps)")
        for prog, block in zip(programs, blocks):
            with self.subTest(program=os.path.basename(prog)):
                out = subprocess.run([prog, "--print-defaults"], capture_output=True,
                                     text=True, check=True).stdout
                self.assertEqual(block, out, "docs/configuration.md is out of date: paste "
                                 f"`{os.path.basename(prog)} --print-defaults` into it")
        out = subprocess.run([WARDD, "--print-defaults"], capture_output=True, text=True,
                             check=True).stdout
        # The printed file is one wardd reads back.
        with tempfile.TemporaryDirectory(prefix="ward-defaults-") as d:
            w = Wardd(d)
            with open(w.conf, "w") as f:
                f.write(out.replace("listen = *:8443", f"listen = *:{w.port}")
                        .replace("hostname =", "hostname = localhost")
                        .replace("/var/lib/ward/server", w.data))
            w.start()
            self.assertEqual(w.stop(), 0)

    def test_missing_config_file(self):
        done = subprocess.run([WARDD, "--config", "/nonexistent/w.ini"], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("/nonexistent/w.ini: No such file", done.stderr)

    def test_bare_ip_warns(self):
        with tempfile.TemporaryDirectory(prefix="ward-ip-") as d:
            w = Wardd(d)
            with open(w.conf) as f:
                text = f.read()
            text = text.replace("hostname = localhost", "hostname = 127.0.0.1")
            with open(w.conf, "w") as f:
                f.write(text)
            w.start()
            try:
                self.assertIn("bare address 127.0.0.1", w.log_text())
                self.assertEqual(w.request("GET", "/api/v1/health")[0], 200)
            finally:
                w.stop()


if __name__ == "__main__":
    unittest.main(verbosity=1, buffer=False, argv=sys.argv[:1])
