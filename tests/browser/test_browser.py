#!/usr/bin/env python3
"""The web console in a real browser against a real wardd and agent.

Starts wardd (with a signature source, so components are built) and one
enrolled ward-agent, then runs console.mjs: playwright-core driving
Debian's chromium headless through sign-in, a refused wrong password,
creating a domain, moving the agent into it, switching its scan method
until the agent reports the change, and every main page, saving a
screenshot of each under WARD_SHOTS (default: build/console-screenshots).
What the browser did is then checked through the API.

The protection pages (issue 16) need what the agent reports of real time,
its quarantine, its detections and its tasks; the agent that does so is
another slice's, so this test speaks for the enrolled agent itself, with
its real credential over HTTPS (tests/lib/wardtest.py AgentWire), when
console.mjs asks: it prints "ask: WHAT [TASK]" and reads "ok" or
"error: WHY" on its standard input.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (Agent, AgentWire, demo_signatures, wait_for,  # noqa: E402
                      wait_for_components, Wardd)

HERE = os.path.dirname(os.path.abspath(__file__))

SHOTS = os.environ.get("WARD_SHOTS", os.path.join(HERE, "../../build/console-screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

REASON = "fanotify: no CAP_SYS_ADMIN (the agent does not run as root)"
# A quarantined file's path as the agent writes it: a byte that is not
# UTF-8 as \xNN, and a control character (an escape sequence) as it is.
EVIL_PATH = "/home/user/inv\\xffoice\x1b[31m.pdf.exe"


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
        self.wire = AgentWire(self.server, self.agent)
        self.status = None
        self.alive = threading.Event()

    def tearDown(self):
        self.alive.set()
        self.agent.stop()
        self.server.stop()
        self.tmp.cleanup()

    def client(self):
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(status, 200, body)
        return body["clients"][0] if body["clients"] else {}

    def task(self, tid):
        status, body = self.server.request("GET", f"/api/v1/task?id={tid}", token=self.token)
        self.assertEqual(status, 200, body)
        return body

    def agent_call(self, method, path, body):
        status, answer = self.wire.call(method, path, body)
        if status != 200:
            raise AssertionError(f"{method} {path}: {status} {answer}")
        return answer

    def keep_online(self):
        """Heartbeats with the status the test reports, every 3 s, in place
        of the stopped agent (Scan Now reaches online agents only)."""
        while not self.alive.wait(3):
            self.wire.call("POST", "/api/v1/agent/heartbeat", self.status)

    def protection(self):
        """The agent's reports the protection pages show."""
        # The real agent's own status would replace the one sent here.
        self.agent.stop()
        now = int(time.time())
        c = self.server.request("GET", f"/api/v1/client?id={self.wire.id}",
                                token=self.token)[1]
        self.status = dict(c["status"], realtime={
            "state": "unavailable", "mode": "block", "reason": REASON,
            "counters": {"events": 1234, "cache_hits": 1000, "scans": 234, "denials": 2,
                         "timeouts": 1, "queue_high": 17, "latency_p50_us": 80,
                         "latency_p99_us": 2500,
                         "top_processes": [{"exe": "/usr/bin/tar", "scans": 200,
                                            "scan_us": 90000}],
                         "top_paths": [{"path": "/home/user/big.iso", "scans": 3,
                                        "scan_us": 40000}]}},
            last_scan={"task": None, "source": "scheduled", "started": now - 7200,
                       "finished": now - 3600, "state": "completed", "files": 5000,
                       "bytes": 3 << 30, "detections": 0})
        self.agent_call("POST", "/api/v1/agent/heartbeat", self.status)
        threading.Thread(target=self.keep_online, daemon=True).start()
        self.items = [{"id": "q1", "path": EVIL_PATH, "size": 68, "sha256": "ab" * 32,
                       "names": ["Eicar-Signature"], "time": now - 600,
                       "source": "realtime", "state": "stored"},
                      {"id": "q2", "path": "/srv/www/shell.php", "size": 2048,
                       "sha256": "cd" * 32, "names": ["Php.Webshell"], "time": now - 300,
                       "source": "scheduled", "state": "stored"}]
        self.agent_call("POST", "/api/v1/agent/quarantine",
                        {"items": self.items, "complete": True})
        found = {"path": "/tmp/eicar.com", "name": "Eicar-Signature", "method": "conventional",
                 "source": "realtime"}
        self.agent_call("POST", "/api/v1/agent/detections", {"detections": [
            dict(found, time=now - 900, action="quarantine", action_result="ok",
                 quarantine="q1"),
            dict(found, time=now - 7200, action="quarantine", action_result="ok",
                 quarantine="q2"),
            dict(found, time=now - 3 * 86400, action="quarantine", action_result="failed",
                 action_error="read-only filesystem", second_action="delete",
                 second_result="ok")]})

    def answer(self, what):
        """Does what console.mjs asks for; returns the line it reads."""
        word, _, arg = what.partition(" ")
        tid = int(arg) if arg else 0
        now = int(time.time())
        if word == "protection":
            self.protection()
        elif word == "scan-running":
            t = self.task(tid)
            self.assertEqual((t["kind"], t["client"]), ("scan", self.wire.id))
            self.agent_call("POST", "/api/v1/agent/tasks", {
                "id": tid, "state": "running", "started": now,
                "progress": {"files": 1234, "bytes": 5 << 20, "detections": 1}})
        elif word in ("scan-completed", "scan-failed"):
            report = {"id": tid, "state": word[5:], "started": now - 1, "finished": now,
                      "progress": {"files": 4321, "bytes": 50 << 20, "detections": 1}}
            if word == "scan-failed":
                report["error"] = "/srv: Permission denied"
            self.agent_call("POST", "/api/v1/agent/tasks", report)
        elif word == "scan-cancelled":
            _, body = self.server.request(
                "GET", f"/api/v1/tasks?client={self.wire.id}&kind=cancel", token=self.token)
            cancel = [t["id"] for t in body["tasks"] if t["args"].get("task") == tid]
            self.assertEqual(len(cancel), 1, body)
            self.agent_call("POST", "/api/v1/agent/tasks", {"id": tid, "state": "cancelled",
                                                             "started": now - 1,
                                                             "finished": now})
            self.agent_call("POST", "/api/v1/agent/tasks", {"id": cancel[0],
                                                             "state": "completed"})
        elif word == "restore-done":
            t = self.task(tid)
            self.assertEqual((t["kind"], t["args"]), ("quarantine_restore", {
                "item": "q1", "overwrite": True, "exclude": True}))
            self.agent_call("POST", "/api/v1/agent/tasks", {"id": tid, "state": "completed"})
            self.agent_call("POST", "/api/v1/agent/quarantine", {
                "items": [dict(self.items[0], state="restored")], "complete": False})
        else:
            raise AssertionError(f"console.mjs asked for {what!r}")
        return "ok"

    def run_console(self, env):
        """Runs console.mjs, answering what it asks; its output and exit code."""
        node = subprocess.Popen(["node", os.path.join(HERE, "console.mjs")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(600, node.kill)
        timer.start()
        out = []
        try:
            for line in node.stdout:
                out.append(line)
                if line.startswith("ask: "):
                    try:
                        reply = self.answer(line[5:].strip())
                    except Exception as e:  # noqa: BLE001 -- told to console.mjs, which fails
                        reply = f"error: {e}"
                        out.append(f"test_browser.py: {reply}\n")
                    node.stdin.write(reply.replace("\n", " ") + "\n")
                    node.stdin.flush()
            node.wait()
        finally:
            timer.cancel()
            if node.poll() is None:
                node.kill()
                node.wait()
            node.stdin.close()
            node.stdout.close()
        return node.returncode, "".join(out)

    def test_console(self):
        with open(os.path.join(self.server.data, "initial-admin-password")) as f:
            password = f.read().strip()
        env = dict(os.environ, WARD_URL=f"https://localhost:{self.server.port}",
                   WARD_PASSWORD=password, WARD_AGENT=self.client()["hostname"],
                   WARD_SHOTS=SHOTS, CHROMIUM=CHROMIUM)
        code, output = self.run_console(env)
        self.assertEqual(code, 0, output + "\nwardd log:\n" + self.server.log_text()[-4000:])
        for name in ("signin", "dashboard", "agents", "settings", "updates",
                     "smart-protection", "logs", "administrators", "read-only",
                     "agent-protection", "scan-now", "quarantine", "dashboard-detections"):
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
        # What the console asked of the agent: Scan Now's paths and cpu, a
        # cancel, the restore with its options, the delete.
        status, body = self.server.request("GET", f"/api/v1/tasks?client={self.wire.id}",
                                           token=self.token)
        self.assertEqual(status, 200, body)
        self.assertEqual([(t["kind"], t["state"]) for t in body["tasks"]], [
            ("quarantine_delete", "queued"), ("quarantine_restore", "completed"),
            ("scan", "failed"), ("cancel", "completed"), ("scan", "cancelled"),
            ("scan", "completed")])
        self.assertEqual(body["tasks"][-1]["args"], {"paths": ["/home", "/srv"],
                                                     "cpu": "normal"})
        self.assertEqual(body["tasks"][0]["args"], {"item": "q2"})
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
