#!/usr/bin/env python3
"""The web console in a real browser against a real wardd and agent.

Starts wardd (with a signature source, so components are built) and one
enrolled ward-agent, then runs console.mjs: playwright-core driving
Debian's chromium headless through sign-in, a refused wrong password,
creating a domain, moving the agent into it, switching its scan method
until the agent reports the change, and every main page, saving a
screenshot of each under WARD_SHOTS (default: build/console-screenshots).
What the browser did is then checked through the API.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, demo_signatures, wait_for, wait_for_components, Wardd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SHOTS = os.environ.get("WARD_SHOTS", os.path.join(HERE, "../../build/console-screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class ConsoleBrowserTest(unittest.TestCase):
    def setUp(self):
        for need in (shutil.which("node"), os.path.exists(CHROMIUM),
                     os.path.isdir(os.path.join(HERE, "node_modules/playwright-core"))):
            self.assertTrue(need, "node, chromium and playwright-core are needed: "
                            "scripts/deps.sh installs them")
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-browser-")
        source = demo_signatures(self.tmp.name)
        self.server = Wardd(self.tmp.name, extra=(
            f"[agents]\nheartbeat_interval = 5s\noffline_after = 20s\n"
            f"[updates]\nsource_dir = {source}\n[http]\nlong_poll = 5s\n"))
        self.server.start()
        self.token = self.server.login()
        wait_for_components(self.server, self.token)
        self.agent = Agent(self.tmp.name, "agent")
        done = self.agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.agent.start()
        wait_for(lambda: (self.client().get("status") or {}).get("components", {})
                 .get("virus-pattern"), timeout=60, what="the agent's first pattern")
        # A client moved to another server: a move recorded for it, which
        # its agent acknowledges (test_move.py moves a real agent).
        with open(os.path.join(self.server.data, "enroll-token")) as f:
            enroll = f.read().strip()
        uuid = "00000000-0000-4000-8000-00000000c0de"
        status, body = self.server.request("POST", "/api/v1/agent/enroll", {
            "uuid": uuid, "hostname": "moved-away"}, token=enroll)
        self.assertEqual(status, 201, body)
        db = sqlite3.connect(os.path.join(self.server.data, "ward.db"), timeout=10)
        db.execute("UPDATE clients SET move = '{}' WHERE node = ?", (body["client"],))
        db.commit()
        (version,) = db.execute("SELECT eff_version FROM clients WHERE node = ?",
                                (body["client"],)).fetchone()
        db.close()
        status, _ = self.server.request("POST", "/api/v1/agent/ack", {"version": version},
                                        token=f"{uuid}:{body['secret']}")
        self.assertEqual(status, 200)

    def tearDown(self):
        self.agent.stop()
        self.server.stop()
        self.tmp.cleanup()

    def client(self):
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(status, 200, body)
        return body["clients"][0] if body["clients"] else {}

    def test_console(self):
        with open(os.path.join(self.server.data, "initial-admin-password")) as f:
            password = f.read().strip()
        env = dict(os.environ, WARD_URL=f"https://localhost:{self.server.port}",
                   WARD_PASSWORD=password, WARD_AGENT=self.client()["hostname"],
                   WARD_SHOTS=SHOTS, CHROMIUM=CHROMIUM)
        run = subprocess.run(["node", os.path.join(HERE, "console.mjs")], env=env,
                             capture_output=True, text=True, timeout=600)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr +
                         "\nwardd log:\n" + self.server.log_text()[-4000:])
        for name in ("signin", "dashboard", "agents", "settings", "updates",
                     "smart-protection", "logs", "administrators", "read-only"):
            self.assertTrue(os.path.getsize(os.path.join(SHOTS, f"{name}.png")) > 10000, name)
        # The console changed admin's password: the initial one's file is
        # gone, and so are the sessions it opened.
        self.assertFalse(os.path.exists(os.path.join(self.server.data,
                                                     "initial-admin-password")))
        self.assertEqual(self.server.request("GET", "/api/v1/tree", token=self.token)[0], 401)
        status, body = self.server.request("POST", "/api/v1/login", {
            "user": "admin", "password": "a new password for admin"})
        self.assertEqual(status, 200, body)
        self.token = body["token"]
        # What the browser did, as the API sees it.
        c = self.client()
        status, tree = self.server.request("GET", "/api/v1/tree", token=self.token)
        berlin = [d for d in tree["domains"] if d["name"] == "Berlin"]
        self.assertEqual(len(berlin), 1)
        self.assertEqual(c["domain"], berlin[0]["id"])
        self.assertEqual(c["status"]["scan_method"], "smart")
        status, s = self.server.request(
            "GET", f"/api/v1/settings?scope=client:{c['id']}", token=self.token)
        self.assertEqual(s["own"], {"scan_method": "smart"})
        status, s = self.server.request("GET", "/api/v1/settings?scope=root", token=self.token)
        self.assertIs(s["own"]["update.allow_update_now"], False)
        status, u = self.server.request("GET", "/api/v1/update/settings", token=self.token)
        self.assertEqual((u["max_downloads"], u["set"]), (20, {"max_downloads": 20}))
        status, logs = self.server.request("GET", "/api/v1/logs?kind=system&limit=1000",
                                           token=self.token)
        text = json.dumps(logs)
        self.assertIn("sign-in refused for user 'admin'", text)
        self.assertIn("admin signed out", text)
        # The bundle the console downloaded enrolls an agent into /Berlin.
        second = Agent(self.tmp.name, "second")
        done = second.enroll("--bundle", os.path.join(SHOTS, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        uuid = done.stdout.split()[-1]
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(next(c["domain"] for c in body["clients"] if c["uuid"] == uuid),
                         berlin[0]["id"])


if __name__ == "__main__":
    unittest.main()
