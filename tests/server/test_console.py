#!/usr/bin/env python3
"""What the web console stands on, over real HTTPS against a real wardd.

The console's files under /console/ (types, caching, security headers,
nothing outside them); the cookie session (HttpOnly, Secure,
SameSite=Strict), CSRF tokens, sign-out and idle expiry; wrong passwords
rate-limited per address; the event log with its filters and CSV export;
agents reporting detections (a real ward-agent scanning the EICAR file);
removing clients; settings showing where each value comes from; the
overview behind the dashboard. WARDD_BIN and WARD_AGENT_BIN name the
programs.
"""
import csv
import http.client
import io
import json
import os
import ssl
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (  # noqa: E402
    AGENT, Agent, demo_signatures, EICAR, temp_dir, temp_wardd, wait_for, wait_for_components,
    Wardd)


class Console(Wardd):
    """A wardd with raw requests: any headers in, every header out."""

    def raw(self, method, path, body=None, headers=None, host="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=os.path.join(self.data, "ca.crt"))
        conn = http.client.HTTPSConnection(host, self.port, context=ctx, timeout=10)
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def password(self):
        with open(os.path.join(self.data, "initial-admin-password")) as f:
            return f.read().strip()

    def cookie_login(self, host="127.0.0.1"):
        """Signs in as the console does; returns (cookie header, csrf)."""
        status, headers, body = self.raw("POST", "/api/v1/login", {
            "user": "admin", "password": self.password(), "cookie": True}, host=host)
        assert status == 200, body
        cookie = headers["Set-Cookie"].split(";")[0]
        return cookie, json.loads(body)["csrf"]


class Base(unittest.TestCase):
    extra = "[http]\nlong_poll = 5s\n"

    def setUp(self):
        self.tmp, self.server = temp_wardd("ward-console-", self.addCleanup, self.extra,
                                           Console)
        self.agents = []
        # The import at start logs an event: let it land before a test
        # reads the log.
        token = self.server.login()
        wait_for(lambda: self.server.request("GET", "/api/v1/update", token=token)[1]
                 ["last_import"]["time"], what="the first import")

    def tearDown(self):
        # Before the cleanups stop the server and remove the directory.
        for a in self.agents:
            a.stop()

    def enroll(self, hostname):
        """Enrolls a client through the API; returns (id, its bearer credential)."""
        with open(os.path.join(self.server.data, "enroll-token")) as f:
            token = f.read().strip()
        u = str(uuid.uuid4())
        status, body = self.server.request("POST", "/api/v1/agent/enroll",
                                           {"uuid": u, "hostname": hostname}, token=token)
        self.assertEqual(status, 201, body)
        return body["client"], f"{u}:{body['secret']}"


class ConsoleTest(Base):

    def test_console_files(self):
        s = self.server
        status, headers, _ = s.raw("GET", "/")
        self.assertEqual((status, headers["Location"]), (302, "/console/"))
        status, headers, body = s.raw("GET", "/console/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertIn(b'<script type="module" src="js/main.js">', body)
        self.assertIn("default-src 'self'", headers["Content-Security-Policy"])
        self.assertIn("frame-ancestors 'none'", headers["Content-Security-Policy"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["X-Frame-Options"], "DENY")
        etag = headers["ETag"]
        status, headers, body = s.raw("GET", "/console/index.html",
                                      headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        status, headers, body = s.raw("GET", "/console/js/main.js")
        self.assertEqual((status, headers["Content-Type"]),
                         (200, "text/javascript; charset=utf-8"))
        status, headers, _ = s.raw("GET", "/console/console.css")
        self.assertEqual(headers["Content-Type"], "text/css; charset=utf-8")
        for path in ("/console/nope.js", "/console/../data/ca.key", "/console/js/../../x"):
            self.assertEqual(s.raw("GET", path)[0], 404, path)
        self.assertEqual(s.raw("POST", "/console/", b"x")[0], 405)
        # Every asset comes from wardd itself: nothing names another host.
        for name in ("index.html", "js/main.js", "console.css"):
            self.assertNotIn(b"http://", s.raw("GET", f"/console/{name}")[2])
            self.assertNotIn(b"https://", s.raw("GET", f"/console/{name}")[2])

    def test_cookie_session_csrf_and_sign_out(self):
        s = self.server
        status, headers, body = s.raw("POST", "/api/v1/login", {
            "user": "admin", "password": s.password(), "cookie": True})
        self.assertEqual(status, 200, body)
        flags = [f.strip() for f in headers["Set-Cookie"].split(";")]
        self.assertTrue(flags[0].startswith("__Host-ward_session="))
        for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(flag, flags)
        answer = json.loads(body)
        self.assertNotIn("token", answer)   # the token lives in the cookie alone
        cookie, csrf = flags[0], answer["csrf"]
        status, _, body = s.raw("GET", "/api/v1/session", headers={"Cookie": cookie})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["user"], "admin")
        self.assertEqual(json.loads(body)["csrf"], csrf)
        # A change without the CSRF token, or with another, is refused.
        for h in ({}, {"X-Ward-CSRF": "0" * 64}, {"X-Ward-CSRF": csrf[:-1]}):
            status, _, _ = s.raw("POST", "/api/v1/domains", {"path": "/X"},
                                 headers={"Cookie": cookie, **h})
            self.assertEqual(status, 401, h)
        status, _, body = s.raw("POST", "/api/v1/domains", {"path": "/X"},
                                headers={"Cookie": cookie, "X-Ward-CSRF": csrf})
        self.assertEqual(status, 201, body)
        # The cookie's token is no bearer token.
        token = cookie.split("=", 1)[1]
        self.assertEqual(s.request("GET", "/api/v1/tree", token=token)[0], 401)
        status, headers, _ = s.raw("POST", "/api/v1/logout",
                                   headers={"Cookie": cookie, "X-Ward-CSRF": csrf})
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", headers["Set-Cookie"])
        self.assertEqual(s.raw("GET", "/api/v1/session", headers={"Cookie": cookie})[0], 401)
        # Sign-in takes JSON only: no other site's form can spend the tries.
        status, _, body = s.raw("POST", "/api/v1/login", json.dumps(
            {"user": "admin", "password": s.password()}),
            headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415, body)
        # A bearer session signs out the same way.
        bearer = s.login()
        self.assertEqual(s.request("POST", "/api/v1/logout", token=bearer)[0], 200)
        self.assertEqual(s.request("GET", "/api/v1/tree", token=bearer)[0], 401)

    def test_wrong_passwords_are_rate_limited(self):
        s = self.server
        wrong = {"user": "admin", "password": "guess"}
        for i in range(5):
            status, _, _ = s.raw("POST", "/api/v1/login", wrong)
            self.assertEqual(status, 401, i)
        # From now on the address waits, even with the right password.
        status, headers, body = s.raw("POST", "/api/v1/login",
                                      {"user": "admin", "password": s.password()})
        self.assertEqual(status, 429, body)
        self.assertTrue(25 <= int(headers["Retry-After"]) <= 30)
        self.assertIn("too many wrong passwords", json.loads(body)["error"])
        # Another address is not held back, and a good sign-in is no reset
        # for the first one.
        self.assertEqual(s.raw("POST", "/api/v1/login", {"user": "admin", "password":
                                                         s.password()}, host="::1")[0], 200)
        self.assertEqual(s.raw("POST", "/api/v1/login", wrong)[0], 429)
        token = json.loads(s.raw("POST", "/api/v1/login", {"user": "admin", "password":
                                                           s.password()}, host="::1")[2])["token"]
        status, body = s.request("GET", "/api/v1/logs?kind=system", token=token, host="::1")
        refused = [e for e in body["events"] if "sign-in refused" in e["message"]]
        self.assertEqual(len(refused), 5)
        self.assertIn("must wait", refused[0]["message"])
        self.assertIn("for user 'admin' from 127.0.0.1", refused[0]["message"])
        # A name no administrator has may be a password typed in the wrong
        # field: it is never written down.
        s.raw("POST", "/api/v1/login", {"user": "Tr0ub4dor&3", "password": "x"}, host="::1")
        status, body = s.request("GET", "/api/v1/logs?kind=system", token=token, host="::1")
        self.assertNotIn("Tr0ub4dor", json.dumps(body))
        # Other system events (a scheduled import) may come in between.
        self.assertIn("sign-in refused for an unknown user name from ::1",
                      [e["message"] for e in body["events"]])

    def test_event_log_filters_and_csv(self):
        s = self.server
        token = s.login()
        a, _ = self.enroll("alpha")
        # A host name may start with '-', which a spreadsheet takes for a
        # formula (quoting itself is unit.session's).
        b, _ = self.enroll("-bravo")
        for path in ("/Sales", "/Sales/EU", "/Ops"):
            self.assertEqual(s.request("POST", "/api/v1/domains", {"path": path},
                                       token=token)[0], 201)
        s.request("POST", "/api/v1/clients/move", {"ids": [a], "to": "/Sales/EU"}, token=token)
        s.request("POST", "/api/v1/clients/move", {"ids": [b], "to": "/Ops"}, token=token)
        s.request("POST", "/api/v1/clients/verify", token=token)

        def events(q):
            status, body = s.request("GET", f"/api/v1/logs?{q}", token=token)
            self.assertEqual(status, 200, body)
            return body["events"]

        every = events("limit=1000")
        self.assertEqual([e["id"] for e in every], sorted((e["id"] for e in every),
                                                          reverse=True))
        self.assertTrue(all(e["kind"] == "verify" for e in events("kind=verify")))
        self.assertTrue(events("kind=verify"))
        mine = events(f"client={a}")
        self.assertTrue(mine and all(e["client"] == a for e in mine))
        self.assertIn("alpha", [e["hostname"] for e in mine])
        # A domain holds the events of its clients and of those below it.
        self.assertEqual({e["client"] for e in events("domain=/Sales")}, {a})
        self.assertEqual({e["client"] for e in events("domain=/Sales/")}, {a})
        self.assertEqual({e["client"] for e in events("domain=/Ops")}, {b})
        self.assertEqual({e["client"] for e in events("domain=/Sal")}, set())
        # The root's domain: every client's events, and no server-wide ones.
        self.assertEqual({e["client"] for e in events("domain=/&limit=1000")}, {a, b})
        # Time bounds and pages.
        self.assertEqual(events(f"until={every[-1]['time'] - 1}"), [])
        # Pages from where `every` began: events logged since (a retried
        # import, say) do not shift them.
        page = events(f"limit=2&before={every[0]['id'] + 1}")
        older = events(f"limit=2&before={page[-1]['id']}")
        self.assertEqual([e["id"] for e in page + older], [e["id"] for e in every[:4]])
        for q, word in (("kind=nope", "kind"), ("limit=0", "limit"), ("since=abc", "since"),
                        ("format=xml", "format"), ("client=-1", "client")):
            status, body = s.request("GET", f"/api/v1/logs?{q}", token=token)
            self.assertEqual(status, 400, q)
            self.assertIn(word, body["error"])
        # CSV: a header, quoting, and no cell a spreadsheet would run.
        status, headers, body = s.raw("GET", "/api/v1/logs?format=csv&limit=1000",
                                      headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn("attachment", headers["Content-Disposition"])
        rows = list(csv.reader(io.StringIO(body.decode())))
        self.assertEqual(rows[0], ["time", "kind", "client", "hostname", "domain", "message",
                                   "source", "action", "action_result", "second_action",
                                   "second_result", "quarantine", "task"])
        self.assertEqual(len(rows), len(every) + 1)
        hosts = {r[3] for r in rows[1:]}
        self.assertIn("'-bravo", hosts)
        self.assertFalse(any(cell[:1] in "=+-@" and cell for r in rows for cell in r))
        # The command line prints the same CSV.
        env = dict(os.environ, WARD_SERVER=f"https://localhost:{s.port}",
                   WARD_CA=os.path.join(s.data, "ca.crt"), WARD_TOKEN=token)
        ward = os.environ.get("WARD_BIN", os.path.join(os.path.dirname(__file__),
                                                       "../../build/bin/ward"))
        out = subprocess.run([ward, "logs", "--format", "csv", "--kind", "verify"], env=env,
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith(b"time,kind,client,hostname,domain,message,source,action,"
                                                     b"action_result,second_action,second_result,"
                                                     b"quarantine,task\r\n"))
        self.assertIn(b",verify,", out.stdout)

    def test_detection_reports(self):
        s = self.server
        token = s.login()
        a, cred = self.enroll("beta")
        now = int(time.time())
        report = {"detections": [{"time": now - 60, "path": "/home/x/eicar.com",
                                  "name": "Eicar-Signature", "method": "conventional"}]}
        self.assertEqual(s.request("POST", "/api/v1/agent/detections", report,
                                   token=cred), (200, {"logged": 1}))
        # A bad report is refused whole, naming the entry.
        bad = {"detections": [report["detections"][0], {"time": now, "path": "/x"}]}
        status, body = s.request("POST", "/api/v1/agent/detections", bad, token=cred)
        self.assertEqual(status, 400)
        self.assertIn("detections[1]", body["error"])
        many = {"detections": report["detections"] * 1001}
        self.assertEqual(s.request("POST", "/api/v1/agent/detections", many,
                                   token=cred)[0], 400)
        self.assertEqual(s.request("POST", "/api/v1/agent/detections", report,
                                   token=token)[0], 401)   # an admin is no agent
        status, body = s.request("GET", "/api/v1/logs?kind=detection", token=token)
        self.assertEqual(len(body["events"]), 1)
        e = body["events"][0]
        self.assertEqual((e["client"], e["hostname"], e["time"]), (a, "beta", now - 60))
        self.assertEqual(e["message"], "Eicar-Signature in /home/x/eicar.com (conventional "
                         "scan)")
        status, o = s.request("GET", "/api/v1/overview", token=token)
        self.assertEqual(o["detections"][0]["id"], e["id"])
        # An agent whose clock runs ahead is not believed past the server's.
        ahead = {"detections": [dict(report["detections"][0], time=now + 86400 * 365)]}
        self.assertEqual(s.request("POST", "/api/v1/agent/detections", ahead,
                                   token=cred)[0], 200)
        status, body = s.request("GET", "/api/v1/logs?kind=detection&limit=1", token=token)
        self.assertLessEqual(body["events"][0]["time"], int(time.time()))
        # What found it and what was done (issue 16): in the message, the
        # event's detail and the CSV's columns; each member checked.
        full = dict(report["detections"][0], source="realtime", action="quarantine",
                    action_result="failed", action_error="no space left on device",
                    second_action="delete", second_result="ok", task=7,
                    process={"pid": 4242, "exe": "/usr/bin/cp"})
        q = dict(report["detections"][0], source="scan_now", action="quarantine",
                 action_result="ok", quarantine="q-17", task=8)
        self.assertEqual(s.request("POST", "/api/v1/agent/detections",
                                   {"detections": [full, q]}, token=cred), (200, {"logged": 2}))
        status, body = s.request("GET", "/api/v1/logs?kind=detection&limit=2", token=token)
        second, first = body["events"]
        self.assertEqual(first["message"], "Eicar-Signature in /home/x/eicar.com (conventional "
                         "scan, realtime): quarantine failed (no space left on device), then "
                         "delete ok")
        self.assertEqual(first["detail"], full)
        self.assertEqual(second["message"], "Eicar-Signature in /home/x/eicar.com "
                         "(conventional scan, scan_now): quarantine ok; quarantine item q-17")
        status, _, text = s.raw("GET", "/api/v1/logs?kind=detection&limit=2&format=csv",
                                headers={"Authorization": f"Bearer {token}"})
        rows = list(csv.reader(io.StringIO(text.decode())))
        self.assertEqual(rows[1][6:], ["scan_now", "quarantine", "ok", "", "", "q-17", "8"])
        self.assertEqual(rows[2][6:], ["realtime", "quarantine", "failed", "delete", "ok", "",
                                       "7"])
        for member, value in (("source", "cron"), ("action", "shred"),
                              ("action_result", "maybe"), ("action_error", ""),
                              ("second_action", 1), ("second_result", "fine"),
                              ("quarantine", "../q"), ("task", 0),
                              ("process", {"pid": 0}), ("process", {"pid": 1, "cwd": "/"}),
                              ("colour", "red")):
            with self.subTest(member=member, value=value):
                bad = {"detections": [report["detections"][0],
                                      dict(report["detections"][0], **{member: value})]}
                status, body = s.request("POST", "/api/v1/agent/detections", bad, token=cred)
                self.assertEqual(status, 400, body)
                self.assertIn(f"detections[1].{member}", body["error"])

    def test_client_remove(self):
        s = self.server
        token = s.login()
        keep, _ = self.enroll("keep")
        gone, cred = self.enroll("gone")
        status, body = s.request("POST", "/api/v1/clients/remove", {"ids": [gone, 999]},
                                 token=token)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["removed"], 1)
        self.assertEqual([r["ok"] for r in body["results"]], [True, False])
        status, tree = s.request("GET", "/api/v1/tree", token=token)
        self.assertEqual([c["id"] for c in tree["clients"]], [keep])
        # Its credential no longer opens anything.
        self.assertEqual(s.request("POST", "/api/v1/agent/heartbeat", {}, token=cred)[0], 401)
        status, body = s.request("GET", f"/api/v1/logs?client={gone}", token=token)
        self.assertIn("removed from the tree by admin", body["events"][0]["message"])
        self.assertEqual(body["events"][0]["hostname"], "gone")

    def test_settings_origin_keys_and_overview(self):
        s = self.server
        token = s.login()
        c, _ = self.enroll("gamma")
        s.request("POST", "/api/v1/domains", {"path": "/A/B"}, token=token)
        s.request("POST", "/api/v1/clients/move", {"ids": [c], "to": "/A/B"}, token=token)
        for scope, key, value in (("domain:/A", "roaming", True),
                                  (f"client:{c}", "scan_method", "smart")):
            self.assertEqual(s.request("PUT", "/api/v1/settings", {
                "scope": scope, "key": key, "value": value}, token=token)[0], 200)
        status, body = s.request("GET", f"/api/v1/settings?scope=client:{c}", token=token)
        self.assertEqual(body["origin"]["roaming"], "domain:/A")
        self.assertEqual(body["origin"]["scan_method"], f"client:{c}")
        self.assertEqual(body["origin"]["update.window"], "root")
        self.assertEqual(set(body["origin"]), set(body["effective"]))
        status, body = s.request("GET", "/api/v1/settings?scope=domain:/A/B", token=token)
        self.assertEqual(body["origin"]["roaming"], "domain:/A")
        status, body = s.request("GET", "/api/v1/settings/keys", token=token)
        keys = {k["key"]: k for k in body["settings"]}
        self.assertEqual(keys["scan_method"]["choices"], ["smart", "conventional"])
        self.assertEqual(keys["roaming"]["levels"], ["root", "domain", "client"])
        self.assertEqual(keys["restart.notify"]["type"], "bool")
        self.assertIs(keys["roaming"]["default"], False)
        self.assertEqual(keys["update.window"]["type"], "int")
        status, o = s.request("GET", "/api/v1/overview", token=token)
        self.assertEqual(status, 200, o)
        self.assertEqual(o["agents"]["total"], 1)
        self.assertEqual(sum(o["agents"]["states"].values()), 1)
        self.assertEqual(o["agents"]["methods"]["unknown"], 1)
        self.assertEqual([c["name"] for c in o["components"]],
                         ["virus-pattern", "smart-agent-pattern", "smart-pattern"])
        self.assertIsNotNone(o["sps"]["integrated"])
        self.assertGreaterEqual(o["server"]["uptime"], 0)


class UpdateSettingsTest(Base):
    def test_source_schedule_and_cap_set_while_running(self):
        s = self.server
        token = s.login()
        status, u = s.request("GET", "/api/v1/update/settings", token=token)
        self.assertEqual((status, u["set"], u["max_downloads"]), (200, {}, 50))
        for body, word in (({"max_downloads": 0}, "max_downloads"),
                           ({"check_interval": "1h"}, "check_interval"),
                           ({"source_dir": "relative/dir"}, "source_dir"),
                           ({"source_dir": "/no/such/dir"}, "not a directory"),
                           ({"bogus": 1}, "bogus: no such option"), ({}, "expected")):
            status, answer = s.request("PUT", "/api/v1/update/settings", body, token=token)
            self.assertEqual(status, 400, body)
            self.assertIn(word, answer["error"])
        self.assertEqual(s.request("GET", "/api/v1/update/settings", token=token)[1]["set"], {})
        # A new source is imported at once.
        source = demo_signatures(self.tmp.name)
        status, u = s.request("PUT", "/api/v1/update/settings",
                              {"source_dir": source, "max_downloads": 7}, token=token)
        self.assertEqual(status, 200, u)
        self.assertEqual(u["set"], {"source_dir": source, "max_downloads": 7})
        wait_for_components(s, token)
        status, st = s.request("GET", "/api/v1/update", token=token)
        self.assertEqual((st["source_dir"], st["max_downloads"]), (source, 7))
        # Kept over wardd.conf's values across a restart, until set back.
        s.stop()
        s.start()
        token = s.login()
        self.assertEqual(s.request("GET", "/api/v1/update/settings", token=token)[1]
                         ["max_downloads"], 7)
        status, u = s.request("PUT", "/api/v1/update/settings", {"max_downloads": None},
                              token=token)
        self.assertEqual((u["max_downloads"], u["set"]), (50, {"source_dir": source}))
        status, body = s.request("GET", "/api/v1/logs?kind=system", token=token)
        self.assertIn("set the update settings", json.dumps(body))


class ConsoleAgentTest(Base):
    """With signatures: a real agent scans, detects and reports."""

    def setUp(self):
        self.tmp = temp_dir("ward-console-", self.addCleanup)
        source = demo_signatures(self.tmp.name)
        self.server = Console(self.tmp.name, extra=(
            f"[server]\nsession_idle = 5s\n[updates]\nsource_dir = {source}\n"
            "[http]\nlong_poll = 5s\n"))
        self.server.start()
        self.addCleanup(self.server.stop)
        self.agents = []

    def test_agent_reports_what_it_detects(self):
        s = self.server
        token = s.login()
        wait_for_components(s, token)
        agent = Agent(self.tmp.name, "agent")
        self.assertEqual(agent.enroll("--bundle", os.path.join(s.data, "enroll.bundle"))
                         .returncode, 0)
        agent.start()
        self.agents.append(agent)
        wait_for(lambda: "virus-pattern" in agent.log_text(), timeout=60, what="a pattern")
        infected = os.path.join(self.tmp.name, "files")
        os.makedirs(infected)
        with open(os.path.join(infected, "eicar.com"), "wb") as f:
            f.write(EICAR)
        # Any bytes may name a file; this one is reported all the same.
        with open(os.path.join(os.fsencode(infected), b"bad-\xff-name"), "wb") as f:
            f.write(EICAR)
        scan = subprocess.run([AGENT, "--config", agent.conf, "scan", infected],
                              capture_output=True, encoding="utf-8", errors="replace",
                              timeout=120)
        self.assertIn("Demo.Eicar FOUND", scan.stdout, scan.stderr)

        def logged():
            status, body = s.request("GET", "/api/v1/logs?kind=detection", token=token)
            return body["events"]
        wait_for(lambda: len(logged()) == 2, timeout=30,
                 what="the detections in the server's log")
        messages = sorted(x["message"] for x in logged())
        e = logged()[0]
        self.assertIn("Demo.Eicar in ", messages[0])
        # A manual scan's detections are quarantined (the default action).
        self.assertIn("bad-\\xff-name (conventional scan, manual): quarantine ok", messages[0])
        self.assertIn("eicar.com (conventional scan, manual): quarantine ok", messages[1])
        # A change reaches it and is acknowledged: a delivery event.
        self.assertEqual(s.request("PUT", "/api/v1/settings", {
            "scope": f"client:{e['client']}", "key": "roaming", "value": True},
            token=token)[0], 200)

        def delivered():
            status, body = s.request(
                "GET", f"/api/v1/logs?kind=delivery&client={e['client']}", token=token)
            return any("delivered and acknowledged" in x["message"] for x in body["events"])
        wait_for(delivered, timeout=60, what="the delivery in the server's log")
        # Reported once: the agent forgot what the server took.
        wait_for(lambda: not os.path.exists(os.path.join(agent.dir, "state",
                                                         "detections.json")),
                 what="the agent's report spool emptied")
        self.assertEqual(len(logged()), 2)
        # What the server refuses would be refused again: dropped, logged,
        # and the next detections still go through.
        spool = os.path.join(agent.dir, "state", "detections.json")
        with open(spool + ".tmp", "w") as f:
            json.dump([{"time": 1, "path": "/x", "name": "N", "method": "bogus"}], f)
        os.rename(spool + ".tmp", spool)
        wait_for(lambda: "the server refused 1 detection" in agent.log_text(), timeout=30,
                 what="the refused report dropped")
        wait_for(lambda: not os.path.exists(spool), what="the spool emptied")
        self.assertEqual(len(logged()), 2)

    def test_console_session_ends_when_unused(self):
        s = self.server
        cookie, _ = s.cookie_login()
        for _ in range(3):    # each use moves the end further
            time.sleep(2)
            self.assertEqual(s.raw("GET", "/api/v1/session", headers={"Cookie": cookie})[0],
                             200)
        # A page refreshing itself does not: the session ends all the same.
        statuses = []
        for _ in range(4):
            time.sleep(2)
            statuses.append(s.raw("GET", "/api/v1/overview", headers={
                "Cookie": cookie, "X-Ward-Background": "1"})[0])
        self.assertEqual(statuses[0], 200)
        self.assertEqual(statuses[-1], 401)


if __name__ == "__main__":
    unittest.main()
