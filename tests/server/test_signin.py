#!/usr/bin/env python3
"""Signing in, against a real wardd over real HTTPS on loopback.

Password hashing off the loop (health checks answered while sign-ins
hash), the same work for unknown and known user names, the global brake
on wrong passwords from all addresses, `ward admin passwd` (the old
password refused afterwards, the initial password file gone), several
administrators with the roles admin and read-only, and a removed or
demoted administrator's session losing its rights at once. WARDD_BIN and
WARD_BIN name the programs. Sign-ins come from several loopback addresses
(127.0.0.x) so that the per-address brake stays out of the way.
"""
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import WARD, Wardd  # noqa: E402


NEW_PASSWORD = "correct horse battery staple"


class Server(Wardd):
    def call(self, method, path, body=None, token=None, source="127.0.0.1"):
        """(status, headers, JSON body) of a request from address source."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.data, "ca.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=60,
                                           source_address=(source, 0))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            return resp.status, resp.headers, (json.loads(text) if text else None)
        finally:
            conn.close()

    def password(self):
        with open(os.path.join(self.data, "initial-admin-password")) as f:
            return f.read().strip()

    def sign_in(self, user, password, source="127.0.0.1"):
        """(status, token or None)."""
        status, _, body = self.call("POST", "/api/v1/login",
                                    {"user": user, "password": password}, source=source)
        return status, (body or {}).get("token")

    def token(self, user="admin", password=None):
        status, token = self.sign_in(user, password or self.password())
        assert status == 200, status
        return token

    def events(self, token):
        return [e["message"] for e in self.call("GET", "/api/v1/logs?kind=system&limit=1000",
                                                 token=token)[2]["events"]]


class SigninBase(unittest.TestCase):
    extra = ""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-signin-")
        self.w = Server(self.tmp.name, extra=self.extra)
        self.w.start()

    def tearDown(self):
        # A clean stop: sign-ins in flight released (and, under the
        # sanitizers, nothing leaked).
        code = self.w.stop()
        log = self.w.log_text()
        self.tmp.cleanup()
        self.assertEqual(code, 0, log[-4000:])


class OffTheLoopTest(SigninBase):
    def test_health_answered_while_signins_hash(self):
        results = []
        # From 16 addresses, so that the per-address brake refuses none.
        threads = [threading.Thread(target=lambda i=i: results.append(
            self.w.sign_in("admin", "wrong", source=f"127.0.0.{50 + i}")[0]))
            for i in range(16)]
        for t in threads:
            t.start()
        delays = []
        while any(t.is_alive() for t in threads):
            start = time.monotonic()
            self.assertEqual(self.w.call("GET", "/api/v1/health")[0], 200)
            delays.append(time.monotonic() - start)
        for t in threads:
            t.join()
        # On the loop, 16 Argon2id verifications held health checks for
        # about a second each.
        self.assertLess(statistics.median(delays), 0.1, delays)
        self.assertGreaterEqual(len(delays), 3, "the sign-ins ended before health was asked")
        self.assertEqual(sorted(results), [401] * 16)

    def test_stops_with_signins_in_flight(self):
        def attempt(i):
            try:
                self.w.sign_in("admin", "wrong", source=f"127.0.0.{80 + i}")
            except (OSError, http.client.HTTPException):
                pass  # the server stopped under it

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        # Stopped while sign-ins wait or hash: cleanly, nothing leaked
        # (under the sanitizers), and it starts again.
        self.assertEqual(self.w.stop(), 0, self.w.log_text()[-4000:])
        for t in threads:
            t.join()
        self.w.start()

    def test_unknown_and_known_names_take_the_same_time(self):
        def timed(user, source):
            start = time.monotonic()
            self.assertEqual(self.w.sign_in(user, "not the password", source=source)[0], 401)
            return time.monotonic() - start

        known, unknown = [], []
        for i in range(6):
            # Two tries per address: never near the per-address brake.
            source = f"127.0.0.{10 + i}"
            known.append(timed("admin", source))
            unknown.append(timed(f"nobody{i}", source))
        known, unknown = statistics.median(known), statistics.median(unknown)
        # Before: 2-16 ms for an unknown name, 180-290 ms for a known one.
        self.assertLess(max(known, unknown) / min(known, unknown), 2.0, (known, unknown))
        token = self.w.token()
        self.assertTrue(any("sign-in refused for an unknown user name" in m
                            for m in self.w.events(token)))


class BrakeTest(SigninBase):
    extra = ("[server]\nsignin_brake_failures = 4\nsignin_brake_window = 5m\n"
             "signin_queue = 2\nsignin_brake_pace = 1s\n")

    def test_global_brake_engages(self):
        # Four addresses, one wrong password each: no address is braked on
        # its own, all of them together are.
        for i in range(4):
            self.assertEqual(self.w.sign_in("admin", "wrong", source=f"127.0.0.{20 + i}")[0],
                             401)
        answers = []

        def attempt():
            status, headers, _ = self.w.call("POST", "/api/v1/login", {
                "user": "admin", "password": self.w.password()}, source="127.0.0.30")
            answers.append((status, headers.get("Retry-After")))

        threads = [threading.Thread(target=attempt) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        busy = [a for a in answers if a[0] == 503]
        self.assertTrue(busy, answers)
        self.assertTrue(all(int(after) >= 1 for _, after in busy), busy)
        self.assertIn(200, [a[0] for a in answers])
        self.assertTrue(all(a[0] in (200, 503) for a in answers), answers)
        token = self.w.token()
        self.assertTrue(any(m.startswith("sign-in brake engaged") for m in self.w.events(token)))


class AdminsTest(SigninBase):
    def ward(self, *args, ok=True, **env):
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp.name, "cfg"), **env)
        done = subprocess.run([WARD, *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=60)
        if ok:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def test_passwd(self):
        initial = self.w.password()
        other = self.w.token()
        self.ward("login", "--server", f"https://localhost:{self.w.port}", "--ca",
                  os.path.join(self.w.data, "ca.crt"), WARD_PASSWORD=initial)
        done = self.ward("admin", "passwd", ok=False, WARD_PASSWORD="wrong password",
                         WARD_NEW_PASSWORD=NEW_PASSWORD)
        self.assertIn("wrong current password", done.stderr)
        done = self.ward("admin", "passwd", ok=False, WARD_PASSWORD=initial,
                         WARD_NEW_PASSWORD="short")
        self.assertIn("a password must be 12 to 1024 bytes long", done.stderr)
        self.ward("admin", "passwd", WARD_PASSWORD=initial, WARD_NEW_PASSWORD=NEW_PASSWORD)
        self.assertFalse(os.path.exists(os.path.join(self.w.data, "initial-admin-password")))
        self.assertEqual(self.w.sign_in("admin", initial, source="127.0.0.40")[0], 401)
        token = self.w.token(password=NEW_PASSWORD)
        # The session that changed it goes on; the other one ended.
        self.assertIn("admin", self.ward("session").stdout)
        self.assertEqual(self.w.call("GET", "/api/v1/tree", token=other)[0], 401)
        events = self.w.events(token)
        self.assertTrue(any("admin changed their password" in m for m in events), events)
        self.assertTrue(any("initial password file" in m and "was removed" in m
                            for m in events), events)

    def test_admin_commands(self):
        self.ward("login", "--server", f"https://localhost:{self.w.port}", "--ca",
                  os.path.join(self.w.data, "ca.crt"), WARD_PASSWORD=self.w.password())
        self.ward("admin", "add", "bob", "--role", "read-only", WARD_NEW_PASSWORD=NEW_PASSWORD)
        done = self.ward("admin", "add", "eve", ok=False, WARD_NEW_PASSWORD="short")
        self.assertEqual(done.returncode, 1)
        self.assertIn("12 to 1024 bytes", done.stderr)
        lines = self.ward("admin", "list").stdout.splitlines()
        self.assertEqual([line.split() for line in lines[2:]],
                         [["admin", "admin"], ["bob", "read-only"]])
        self.ward("admin", "role", "bob", "admin")
        self.assertIn("bob", self.ward("admin", "list", "--json").stdout)
        done = self.ward("admin", "role", "bob", "root", ok=False)
        self.assertIn("neither", done.stderr)
        self.ward("admin", "remove", "bob")
        done = self.ward("admin", "remove", "admin", ok=False)
        self.assertIn("last administrator", done.stderr)
        self.assertIn("admin passwd", self.ward("help").stdout)

    def test_read_only_administrator(self):
        admin = self.w.token()
        status, _, body = self.w.call("POST", "/api/v1/admins", {
            "name": "auditor", "role": "read-only", "new_password": NEW_PASSWORD}, token=admin)
        self.assertEqual(status, 201, body)
        reader = self.w.token("auditor", NEW_PASSWORD)
        self.assertEqual(self.w.call("GET", "/api/v1/tree", token=reader)[0], 200)
        self.assertEqual(self.w.call("GET", "/api/v1/session", token=reader)[2]["role"],
                         "read-only")
        setting = {"scope": "root", "key": "update.window", "value": 90}
        status, _, body = self.w.call("PUT", "/api/v1/settings", setting, token=reader)
        self.assertEqual(status, 403, body)
        self.assertIn("read-only", body["error"])
        self.assertEqual(self.w.call("POST", "/api/v1/admins", {
            "name": "intruder", "new_password": NEW_PASSWORD}, token=reader)[0], 403)
        self.assertEqual(self.w.call("POST", "/api/v1/admins/passwd", {
            "user": "admin", "password": NEW_PASSWORD, "new_password": NEW_PASSWORD + "!"},
            token=reader)[0], 403)
        # Promoted, the same session may change things at once.
        self.assertEqual(self.w.call("PUT", "/api/v1/admins/role", {
            "name": "auditor", "role": "admin"}, token=admin)[0], 200)
        self.assertEqual(self.w.call("PUT", "/api/v1/settings", setting, token=reader)[0], 200)
        listed = self.w.call("GET", "/api/v1/admins", token=reader)[2]["admins"]
        self.assertEqual(listed, [{"name": "admin", "role": "admin"},
                                  {"name": "auditor", "role": "admin"}])

    def test_removed_administrator(self):
        admin = self.w.token()
        self.assertEqual(self.w.call("POST", "/api/v1/admins", {
            "name": "second", "new_password": NEW_PASSWORD}, token=admin)[0], 201)
        self.assertEqual(self.w.call("POST", "/api/v1/admins", {
            "name": "second", "new_password": NEW_PASSWORD}, token=admin)[0], 409)
        second = self.w.token("second", NEW_PASSWORD)
        self.assertEqual(self.w.call("GET", "/api/v1/tree", token=second)[0], 200)
        # The last administrator of role admin stays.
        self.assertEqual(self.w.call("PUT", "/api/v1/admins/role", {
            "name": "second", "role": "read-only"}, token=admin)[0], 200)
        self.assertEqual(self.w.call("PUT", "/api/v1/admins/role", {
            "name": "admin", "role": "read-only"}, token=admin)[0], 409)
        self.assertEqual(self.w.call("DELETE", "/api/v1/admins?name=admin", token=admin)[0],
                         409)
        self.assertEqual(self.w.call("DELETE", "/api/v1/admins?name=second", token=admin)[0],
                         200)
        self.assertEqual(self.w.call("GET", "/api/v1/tree", token=second)[0], 401)
        self.assertEqual(self.w.sign_in("second", NEW_PASSWORD)[0], 401)
        events = self.w.events(admin)
        self.assertTrue(any("admin added administrator 'second' (admin)" in m for m in events))
        self.assertTrue(any("admin removed administrator 'second'" in m for m in events))


if __name__ == "__main__":
    unittest.main()
