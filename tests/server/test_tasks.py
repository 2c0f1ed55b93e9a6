#!/usr/bin/env python3
"""Scan Now and the agents' tasks, against a real wardd over HTTPS.

Real ward-agents are enrolled with the fixtures (their credentials are
real, made by the real enrollment); the test then speaks for them itself
with the standard library, over a real socket to the real server: the
event poll that carries the tasks, the task reports, the status with the
agent's real-time state and last scan. (The agent that runs the tasks is
another slice's; this is the server's side of the wire format in
docs/protocol.md.) Scan Now reaches only the online agents of a scope,
a parked event channel is woken at once, progress and completion are
recorded (the client's last_scan), queued and running tasks can be
cancelled, an agent cannot report on another agent's task, malformed
reports are refused naming the member. The CLI's words go through too.
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs.
"""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import AgentWire, temp_wardd, wait_for, WARD  # noqa: E402


class TasksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.server = temp_wardd(
            "ward-tasks-", cls.addClassCleanup, "[agents]\nheartbeat_interval = 5s\n"
            "offline_after = 10s\n[http]\nlong_poll = 30s\n")
        cls.admin = cls.server.login()
        cls.off, cls.a, cls.b = AgentWire.enrolled(cls.server, cls.tmp.name, "off", "a", "b")
        # "off" is never heard from again: offline once agents.offline_after
        # has passed since its enrollment.
        wait_for(lambda: cls.client(cls.off.id)["state"] == "offline", timeout=30,
                 what="an offline agent")
        cls.env = cls.server.cli_env()

    @classmethod
    def client(cls, cid):
        status, body = cls.server.request("GET", f"/api/v1/client?id={cid}", token=cls.admin)
        assert status == 200, body
        return body

    def admin_call(self, method, path, body=None):
        return self.server.request(method, path, body, token=self.admin)

    def online(self, *wires):
        for w in wires:
            status, _ = w.call("POST", "/api/v1/agent/heartbeat", {"hostname": "h"})
            self.assertEqual(status, 200)

    def task(self, tid):
        status, body = self.admin_call("GET", f"/api/v1/task?id={tid}")
        self.assertEqual(status, 200, body)
        return body

    def events(self, client):
        _, body = self.admin_call("GET", f"/api/v1/logs?kind=task&client={client}")
        return [e["message"] for e in body["events"]]

    def scan_now(self, scope, **body):
        status, answer = self.admin_call("POST", "/api/v1/scans", dict(scope=scope, **body))
        self.assertEqual(status, 200, answer)
        return answer

    def finish(self, wire, tid, state="completed"):
        status, body = wire.report(id=tid, state=state)
        self.assertEqual(status, 200, body)

    def test_scan_now_reaches_online_agents_and_reports(self):
        self.online(self.a, self.b)
        answer = self.scan_now("root", paths=["/home", "/srv"], cpu="normal")
        self.assertEqual(sorted(t["client"] for t in answer["tasks"]),
                         sorted([self.a.id, self.b.id]))
        self.assertEqual(answer["skipped"], {"offline": 1})
        self.assertEqual(answer["refused"], [])
        tasks = {t["client"]: t["task"] for t in answer["tasks"]}
        ta, tb = tasks[self.a.id], tasks[self.b.id]
        self.assertEqual(self.task(ta)["state"], "queued")
        # The agent's next poll is answered at once with its task.
        started = time.monotonic()
        status, body = self.a.poll(self.admin, wait=20)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tasks"], [{"id": ta, "kind": "scan", "paths": ["/home", "/srv"],
                                          "cpu": "normal"}])
        self.assertEqual(self.task(ta)["state"], "delivered")
        # Delivered and not reported on: not sent again before
        # notify.ack_timeout (the agent works on it).
        status, _ = self.a.poll(self.admin, wait=1)
        self.assertEqual(status, 204)
        now = int(time.time())
        status, body = self.a.report(id=ta, state="running", started=now,
                                     progress={"files": 10, "bytes": 4096, "detections": 0})
        self.assertEqual(status, 200, body)
        t = self.task(ta)
        self.assertEqual((t["state"], t["progress"], t["started"]),
                         ("running", {"files": 10, "bytes": 4096, "detections": 0}, now))
        # The client's last scan follows the running task's progress; a
        # status saying that the scan runs (as the agent writes it at the
        # start) does not take it back to nothing.
        running = {"task": ta, "source": "scan_now", "started": now, "finished": None,
                   "state": "running", "files": 10, "bytes": 4096, "detections": 0}
        self.assertEqual(self.client(self.a.id)["last_scan"], running)
        status, body = self.a.call("POST", "/api/v1/agent/heartbeat", {"last_scan": {
            "task": ta, "source": "scan_now", "started": now, "state": "running", "files": 0,
            "bytes": 0, "detections": 0}})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.client(self.a.id)["last_scan"], running)
        status, body = self.a.report(id=ta, state="completed", started=now, finished=now + 1,
                                     progress={"files": 120, "bytes": 99999, "detections": 2})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.task(ta)["state"], "completed")
        last = self.client(self.a.id)["last_scan"]
        self.assertEqual(last, {"task": ta, "source": "scan_now", "started": now,
                                "finished": now + 1, "state": "completed", "files": 120,
                                "bytes": 99999, "detections": 2})
        _, listed = self.admin_call("GET", "/api/v1/clients")
        self.assertEqual([c["last_scan"] for c in listed["clients"] if c["id"] == self.a.id],
                         [last])
        log = self.events(self.a.id)
        for what in (f"task {ta} (scan) queued by admin", f"task {ta} (scan) delivered",
                     f"task {ta} (scan) running",
                     f"task {ta} (scan) completed: 120 files, 99999 bytes, 2 detections"):
            self.assertIn(what, log)
        # A finished task takes no more reports; B's task is B's alone.
        status, body = self.a.report(id=ta, state="running")
        self.assertEqual(status, 409, body)
        self.assertIn(f"task {ta} is completed already", body["error"])
        status, body = self.a.report(id=tb, state="completed")
        self.assertEqual(status, 404, body)
        self.assertIn(f"this agent has no task {tb}", body["error"])
        self.assertEqual(self.task(tb)["state"], "queued")
        # One scan at a time per client: a second Scan Now names the first.
        answer = self.scan_now(f"client:{self.b.id}")
        self.assertEqual(answer["tasks"], [])
        self.assertIn(f"already has scan task {tb} unfinished", answer["refused"][0]["error"])
        status, body = self.b.report(id=tb, state="failed", error="disk gone")
        self.assertEqual(status, 200, body)
        self.assertIn(f"task {tb} (scan) failed: disk gone", self.events(self.b.id))
        # Filters.
        _, body = self.admin_call("GET", f"/api/v1/tasks?client={self.b.id}&state=failed")
        self.assertEqual([t["id"] for t in body["tasks"]], [tb])
        self.assertEqual(body["tasks"][0]["error"], "disk gone")
        _, body = self.admin_call("GET", f"/api/v1/tasks?state=completed&since={now - 60}")
        self.assertIn(ta, [t["id"] for t in body["tasks"]])
        self.assertNotIn(tb, [t["id"] for t in body["tasks"]])
        _, body = self.admin_call("GET", f"/api/v1/tasks?since={int(time.time()) + 3600}")
        self.assertEqual(body["tasks"], [])
        status, body = self.admin_call("GET", "/api/v1/tasks?state=sleeping")
        self.assertEqual(status, 400)
        self.assertIn("state: expected queued", body["error"])

    def test_parked_poll_is_woken_when_a_task_is_queued(self):
        self.online(self.b)
        got = {}

        def poll():
            got["started"] = time.monotonic()
            got["answer"] = self.b.poll(self.admin, wait=25)
            got["took"] = time.monotonic() - got["started"]

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(1.5)  # the poll is parked by now
        answer = self.scan_now(f"client:{self.b.id}")
        self.assertEqual(len(answer["tasks"]), 1, answer)
        tid = answer["tasks"][0]["task"]
        thread.join(30)
        status, body = got["answer"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tasks"], [{"id": tid, "kind": "scan"}])
        self.assertLess(got["took"], 10)
        self.finish(self.b, tid)

    def test_a_lost_answer_is_sent_again_at_the_next_poll(self):
        """An agent that cut its long poll short as the answer came (it had
        a report to send) never got the task in it: its next poll says the
        highest task id it got, and the task comes again at once, not
        notify.ack_timeout (120 s) later. With the id it got, it does not."""
        self.online(self.a)
        answer = self.scan_now(f"client:{self.a.id}")
        tid = answer["tasks"][0]["task"]
        status, body = self.a.poll(self.admin, wait=20)
        self.assertEqual((status, [t["id"] for t in body["tasks"]]), (200, [tid]), body)
        # That answer was lost: the agent has seen only earlier tasks.
        started = time.monotonic()
        status, body = self.a.poll(self.admin, wait=20, tasks_seen=tid - 1)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual((status, [t["id"] for t in body["tasks"]]), (200, [tid]), body)
        self.assertEqual(self.task(tid)["state"], "delivered")
        # Got this time: not again.
        status, _ = self.a.poll(self.admin, wait=1, tasks_seen=tid)
        self.assertEqual(status, 204)
        for bad in (-1, "7", 1.5):
            status, body = self.a.poll(self.admin, wait=1, tasks_seen=bad)
            self.assertEqual(status, 400, body)
            self.assertIn("tasks_seen", body["error"])
        self.finish(self.a, tid)
        # Delivered once in the log: a resend is no new delivery.
        self.assertEqual(self.events(self.a.id).count(f"task {tid} (scan) delivered"), 1)

    def test_cancel_queued_and_running(self):
        self.online(self.a)
        tid = self.scan_now(f"client:{self.a.id}")["tasks"][0]["task"]
        status, body = self.admin_call("POST", "/api/v1/tasks/cancel", {"id": tid})
        self.assertEqual((status, body), (200, {"task": tid, "state": "cancelled"}))
        self.assertEqual(self.task(tid)["state"], "cancelled")
        status, _ = self.a.poll(self.admin, wait=1)
        self.assertEqual(status, 204, "a cancelled task was delivered")
        self.assertIn(f"task {tid} (scan) cancelled by admin before its agent had it",
                      self.events(self.a.id))
        status, body = self.admin_call("POST", "/api/v1/tasks/cancel", {"id": tid})
        self.assertEqual(status, 409, body)
        status, body = self.admin_call("POST", "/api/v1/tasks/cancel", {"id": 999999})
        self.assertEqual(status, 404, body)

        # Running: the agent gets a cancel task and reports both.
        tid = self.scan_now(f"client:{self.a.id}")["tasks"][0]["task"]
        status, body = self.a.poll(self.admin, wait=5)
        self.assertEqual([t["id"] for t in body["tasks"]], [tid])
        self.finish(self.a, tid, "running")
        status, body = self.admin_call("POST", "/api/v1/tasks/cancel", {"id": tid})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["state"], "cancelling")
        cancel = body["cancel_task"]
        status, again = self.admin_call("POST", "/api/v1/tasks/cancel", {"id": tid})
        self.assertEqual(status, 409, again)
        self.assertIn(f"cancel task {cancel} unfinished", again["error"])
        self.assertEqual(self.task(tid)["state"], "running")
        status, body = self.a.poll(self.admin, wait=5)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tasks"], [{"id": cancel, "kind": "cancel", "task": tid}])
        self.finish(self.a, tid, "cancelled")
        self.finish(self.a, cancel, "completed")
        self.assertEqual(self.task(tid)["state"], "cancelled")
        self.assertEqual(self.task(cancel)["state"], "completed")
        self.assertEqual(self.client(self.a.id)["last_scan"]["state"], "cancelled")

    def test_malformed_reports_name_the_member(self):
        self.online(self.a)
        tid = self.scan_now(f"client:{self.a.id}")["tasks"][0]["task"]
        bad = [
            ({"state": "running"}, "id: expected a task id"),
            ({"id": "7", "state": "running"}, "id: expected a task id"),
            ({"id": tid}, "state: expected running, completed, cancelled or failed"),
            ({"id": tid, "state": "queued"}, "state: expected running"),
            ({"id": tid, "state": "running", "bogus": 1}, "bogus: no such member"),
            ({"id": tid, "state": "running", "progress": {"files": -1}}, "progress.files"),
            ({"id": tid, "state": "running", "progress": {"lines": 1}}, "progress.lines"),
            ({"id": tid, "state": "running", "progress": [1]}, "progress: expected"),
            ({"id": tid, "state": "completed", "error": "x"}, "error: only a failed task"),
            ({"id": tid, "state": "failed", "error": ""}, "error: expected text"),
            ({"id": tid, "state": "failed", "error": "x" * 1025}, "error: expected text"),
            ({"id": tid, "state": "running", "started": "now"}, "started: expected a time"),
            ({"id": tid, "state": "running", "started": int(time.time()) + 10 * 86400},
             "started: expected a time"),
            ({"id": tid, "state": "completed", "started": 2000, "finished": 1000},
             "finished: before started"),
            ({"id": tid, "state": "running", "finished": 1000},
             "finished: a running task has not finished"),
        ]
        for body, want in bad:
            with self.subTest(body=body):
                status, answer = self.a.report(**body)
                self.assertEqual(status, 400, answer)
                self.assertIn(want, answer["error"])
        status, answer = self.a.call("POST", "/api/v1/agent/tasks", None)
        self.assertEqual(status, 400)
        self.assertEqual(self.task(tid)["state"], "queued")
        # An administrator's token is no agent's credential.
        status, _ = self.server.request("POST", "/api/v1/agent/tasks",
                                        {"id": tid, "state": "running"}, token=self.admin)
        self.assertEqual(status, 401)
        self.finish(self.a, tid, "cancelled")

    def test_status_realtime_and_last_scan(self):
        realtime = {"state": "unavailable", "mode": "block",
                    "reason": "fanotify: no CAP_SYS_ADMIN",
                    "counters": {"events": 12, "scans": 3,
                                 "top_processes": [{"exe": "/usr/bin/tar", "ms": 40}]}}
        scan = {"task": None, "source": "scheduled", "started": int(time.time()) + 100,
                "finished": int(time.time()) + 200, "state": "completed", "files": 7,
                "bytes": 70, "detections": 0}
        status, body = self.b.poll(self.admin, wait=1,
                                   status={"hostname": "b", "realtime": realtime,
                                           "last_scan": scan})
        self.assertIn(status, (200, 204), body)
        shown = self.client(self.b.id)
        self.assertEqual(shown["realtime"], realtime)
        self.assertEqual(shown["last_scan"], scan)
        # An older one does not replace it.
        older = dict(scan, started=1000, finished=2000, files=1)
        status, body = self.b.call("POST", "/api/v1/agent/heartbeat", {"last_scan": older})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.client(self.b.id)["last_scan"], scan)
        for status_body, want in [
                ({"realtime": {"state": "maybe"}}, "status.realtime.state"),
                ({"realtime": {"state": "on", "mode": "fast"}}, "status.realtime.mode"),
                ({"realtime": {"mode": "block"}}, "status.realtime"),
                ({"realtime": {"state": "on", "extra": 1}}, "status.realtime.extra"),
                ({"realtime": {"state": "on", "unscanned_recent": -1}},
                 "status.realtime.unscanned_recent"),
                ({"realtime": "on"}, "status.realtime"),
                ({"last_scan": {"state": "completed", "started": 1, "files": -1}},
                 "status.last_scan.files"),
                ({"last_scan": {"state": "done", "started": 1}}, "status.last_scan.state"),
                ({"last_scan": {"state": "completed"}}, "status.last_scan"),
                ({"last_scan": {"state": "completed", "started": 1, "source": "cron"}},
                 "status.last_scan.source"),
                ({"clamd": {"state": "serving"}}, "status.clamd.state"),
                ({"clamd": {"requests": 1}}, "status.clamd"),
                ({"clamd": {"state": "on", "found": -1}}, "status.clamd.found"),
                ({"clamd": {"state": "on", "sockets": 2}}, "status.clamd.sockets"),
                ({"clamd": []}, "status.clamd")]:
            with self.subTest(status=status_body):
                status, body = self.b.call("POST", "/api/v1/agent/heartbeat", status_body)
                self.assertEqual(status, 400, body)
                self.assertIn(want, body["error"])

    def test_protection_settings(self):
        """The settings the agent reads for Scan Now and the rest: listed with
        their types, paths checked entry by entry through the API."""
        status, body = self.admin_call("GET", "/api/v1/settings/keys")
        keys = {k["key"]: k for k in body["settings"]}
        self.assertEqual(keys["scan.paths"]["type"], "paths")
        self.assertEqual(keys["scan.paths"]["default"], ["/"])
        self.assertEqual(keys["realtime.timeout"]["max"], 60)
        self.assertEqual(keys["action.pua.second"]["default"], "pass")
        status, body = self.admin_call("PUT", "/api/v1/settings",
                                       {"scope": f"client:{self.a.id}", "key": "scan.paths",
                                        "value": ["/home", "/srv/../etc"]})
        self.assertEqual(status, 400, body)
        self.assertIn("scan.paths[1]: '/srv/../etc' is not a path it takes: a . or .. "
                      "component", body["error"])
        status, body = self.admin_call("PUT", "/api/v1/settings",
                                       {"scope": f"client:{self.a.id}", "key": "scan.paths",
                                        "value": ["/home", "/srv"]})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.client(self.a.id)["settings"]["scan.paths"], ["/home", "/srv"])

    def test_cli_words(self):
        self.online(self.b)
        ward = lambda *args: subprocess.run([WARD, *args], capture_output=True, text=True,
                                            env=self.env, timeout=60)
        done = ward("login", "--server", f"https://localhost:{self.server.port}", "--ca",
                    os.path.join(self.server.data, "ca.crt"))
        self.assertEqual(done.returncode, 0, done.stderr)
        done = ward("scan-now", f"client:{self.b.id}", "--paths", '["/srv"]', "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        tid = json.loads(done.stdout)["tasks"][0]["task"]
        done = ward("task", "list", "--client", str(self.b.id), "--state", "queued", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual([t["id"] for t in json.loads(done.stdout)["tasks"]], [tid])
        done = ward("task", "show", str(tid))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("queued", done.stdout)
        done = ward("task", "cancel", str(tid))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.task(tid)["state"], "cancelled")
        done = ward("scan-now", "client:1", "--paths", '["relative"]')
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("paths[0]: not an absolute path", done.stderr)


class ExpiryTest(unittest.TestCase):
    """A task its agent does not report on fails once tasks.expire has
    passed (10 s here): an agent that went offline with it keeps it till
    then, and then the administrator sees why."""

    def test_unreported_task_expires(self):
        tmp, server = temp_wardd("ward-expire-", self.addCleanup, "[tasks]\nexpire = 10s\n")
        admin = server.login()
        wire, = AgentWire.enrolled(server, tmp.name, "a")
        status, body = server.request("POST", "/api/v1/scans",
                                      {"scope": f"client:{wire.id}"}, token=admin)
        self.assertEqual(status, 200, body)
        tid = body["tasks"][0]["task"]
        status, body = wire.poll(admin, wait=1)
        self.assertEqual([t["id"] for t in body["tasks"]], [tid])

        def state():
            return server.request("GET", f"/api/v1/task?id={tid}", token=admin)[1]
        wait_for(lambda: state()["state"] == "failed", timeout=40,
                 what="the unreported task to expire")
        self.assertIn("expired (no report from its agent for 10s, tasks.expire)",
                      state()["error"])
        status, body = wire.report(id=tid, state="completed")
        self.assertEqual(status, 409, body)
        _, log = server.request("GET", f"/api/v1/logs?kind=task&client={wire.id}",
                                token=admin)
        self.assertIn(f"task {tid} (scan) failed: expired (no report from its agent "
                      "for 10s, tasks.expire)", [e["message"] for e in log["events"]])


if __name__ == "__main__":
    unittest.main()
