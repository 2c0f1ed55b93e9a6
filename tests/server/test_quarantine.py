#!/usr/bin/env python3
"""The quarantine on the server, against a real wardd over HTTPS.

Real ward-agents are enrolled with the fixtures; the test speaks for them
with their real credentials, over a real socket, as docs/protocol.md
says (the agent's side is another slice's): inventories (complete, or
changes), bounded per report and per agent and checked member by member;
the list fleet-wide, by client, by domain, by item and state; restore and
delete queue tasks that reach the agent in its event poll; copies for the
central quarantine only when quarantine.central is on for the client,
within the server's cap and the client's, kept once per item and removed
when the item leaves the agent's quarantine. The CLI's words too.
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import AgentWire, quarantine_upload, temp_wardd, WARD  # noqa: E402


def record(item, path="/home/u/eicar.com", state="stored", t=1700000000):
    return {"id": item, "path": path, "size": 68, "sha256": "ab" * 32,
            "names": ["Eicar-Signature"], "time": t, "source": "realtime", "state": state}


class QuarantineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.server = temp_wardd(
            "ward-quarantine-", cls.addClassCleanup, "[quarantine]\nmax_items = 8\n"
            "max_report = 5\ncentral_max_file = 4096\n[http]\nlong_poll = 5s\n")
        cls.admin = cls.server.login()
        a, b = AgentWire.enrolled(cls.server, cls.tmp.name, "a", "b")
        (cls.a, cls.ta), (cls.b, cls.tb) = (a.id, a.token), (b.id, b.token)
        status, body = cls.server.request("POST", "/api/v1/domains", {"path": "/Sales"},
                                          token=cls.admin)
        assert status == 201, body
        status, body = cls.server.request("POST", "/api/v1/clients/move",
                                          {"ids": [cls.b], "to": "/Sales"}, token=cls.admin)
        assert status == 200, body
        cls.env = cls.server.cli_env()

    def admin_call(self, method, path, body=None):
        return self.server.request(method, path, body, token=self.admin)

    def inventory(self, token, items, complete):
        return self.server.request("POST", "/api/v1/agent/quarantine",
                                   {"items": items, "complete": complete}, token=token)

    def listed(self, query=""):
        status, body = self.admin_call("GET", "/api/v1/quarantine" + query)
        self.assertEqual(status, 200, body)
        return sorted((i["client"], i["id"]) for i in body["items"])

    def upload(self, token, item, data):
        """PUT of a copy: (status, answer)."""
        return quarantine_upload(self.server, token, item, data)

    def setting(self, client, key, value):
        status, body = self.server.client_setting(self.admin, client, key, value)
        self.assertEqual(status, 200, body)

    def poll(self, token, client):
        _, c = self.admin_call("GET", f"/api/v1/client?id={client}")
        return self.server.request("POST", "/api/v1/agent/events",
                                   {"version": c["version"], "wait": 1}, token=token,
                                   timeout=15)

    def test_1_inventory_and_list(self):
        status, body = self.inventory(self.ta, [record("q1"), record("q2", t=1700000100),
                                                record("q3")], True)
        self.assertEqual((status, body), (200, {"stored": 3}))
        status, body = self.inventory(self.tb, [record("q1", path="/srv/x")], True)
        self.assertEqual(status, 200, body)
        # A name with control characters (a hostile file's) is no reason to
        # refuse the report: it is kept, and escaped where it is shown.
        status, body = self.inventory(self.tb, [record("qx", path="/tmp/a\nb\x1b[2J")], False)
        self.assertEqual(status, 200, body)
        _, body = self.admin_call("GET", f"/api/v1/quarantine?client={self.b}&item=qx")
        self.assertEqual(body["items"][0]["path"], "/tmp/a\nb\x1b[2J")
        status, body = self.inventory(self.tb, [record("q1", path="/srv/x")], True)
        self.assertEqual(status, 200, body)
        a, b = self.a, self.b
        self.assertEqual(self.listed(), [(a, "q1"), (a, "q2"), (a, "q3"), (b, "q1")])
        self.assertEqual(self.listed(f"?client={a}"), [(a, "q1"), (a, "q2"), (a, "q3")])
        self.assertEqual(self.listed("?domain=/Sales"), [(b, "q1")])
        self.assertEqual(self.listed("?domain=/"), self.listed())
        self.assertEqual(self.listed("?item=q1"), [(a, "q1"), (b, "q1")])
        _, body = self.admin_call("GET", f"/api/v1/quarantine?client={b}")
        item = body["items"][0]
        self.assertEqual({k: item[k] for k in ("path", "size", "sha256", "names", "time",
                                                "source", "state", "central")},
                         {"path": "/srv/x", "size": 68, "sha256": "ab" * 32,
                          "names": ["Eicar-Signature"], "time": 1700000000,
                          "source": "realtime", "state": "stored", "central": 0})
        # Changes: q3 restored; then a complete inventory without q2.
        status, _ = self.inventory(self.ta, [record("q3", state="restored")], False)
        self.assertEqual(status, 200)
        self.assertEqual(self.listed(f"?client={a}&state=restored"), [(a, "q3")])
        status, _ = self.inventory(self.ta, [record("q1"), record("q3", state="restored")],
                                   True)
        self.assertEqual(status, 200)
        self.assertEqual(self.listed(f"?client={a}"), [(a, "q1"), (a, "q3")])
        for query, want in [("?state=lost", "state: expected stored"),
                            ("?limit=0", "limit: expected 1"),
                            (f"?client={a}&domain=/", "give one or the other"),
                            ("?domain=/Nowhere", "Nowhere")]:
            status, body = self.admin_call("GET", "/api/v1/quarantine" + query)
            self.assertIn(status, (400, 404), body)
            self.assertIn(want, body["error"])

    def test_2_inventory_checked_and_bounded(self):
        bad = [
            ({"items": [record("q 1")], "complete": False}, "items[0].id"),
            ({"items": [dict(record("q1"), sha256="AB" * 32)], "complete": False},
             "items[0].sha256"),
            ({"items": [record("q1"), dict(record("q2"), size=-1)], "complete": False},
             "items[1].size"),
            ({"items": [dict(record("q1"), path="relative")], "complete": False},
             "items[0].path"),
            ({"items": [dict(record("q1"), path="/" + "x" * 16384)], "complete": False},
             "items[0].path"),
            ({"items": [dict(record("q1"), names=[])], "complete": False}, "items[0].names"),
            ({"items": [dict(record("q1"), source="cron")], "complete": False},
             "items[0].source"),
            ({"items": [dict(record("q1"), state="gone")], "complete": False},
             "items[0].state"),
            ({"items": [dict(record("q1"), owner=0)], "complete": False},
             "items[0].owner: no such member"),
            ({"items": [record("q1")]}, "complete: expected true"),
            ({"items": {}, "complete": True}, "items: expected a list"),
            ({"items": [], "complete": True, "more": 1}, "more: no such member"),
        ]
        for body, want in bad:
            with self.subTest(body=body):
                status, answer = self.server.request("POST", "/api/v1/agent/quarantine", body,
                                                     token=self.tb)
                self.assertEqual(status, 400, answer)
                self.assertIn(want, answer["error"])
        self.assertEqual(self.listed(f"?client={self.b}"), [(self.b, "q1")])
        # At most quarantine.max_report a report, quarantine.max_items an agent.
        status, body = self.inventory(self.tb, [record(f"m{i}") for i in range(6)], False)
        self.assertEqual(status, 413, body)
        self.assertIn("quarantine.max_report", body["error"])
        status, body = self.inventory(self.tb, [record(f"m{i}") for i in range(5)], False)
        self.assertEqual(status, 200, body)
        status, body = self.inventory(self.tb, [record(f"n{i}") for i in range(5)], False)
        self.assertEqual(status, 413, body)
        self.assertIn("quarantine.max_items", body["error"])
        self.assertEqual(len(self.listed(f"?client={self.b}")), 6, "a refused report stored")
        status, body = self.inventory(self.tb, [record("q1", path="/srv/x")], True)
        self.assertEqual(status, 200, body)

    def test_3_restore_and_delete_are_tasks(self):
        status, body = self.admin_call("POST", "/api/v1/quarantine/restore",
                                       {"client": self.a, "item": "q1", "overwrite": True})
        self.assertEqual(status, 200, body)
        restore = body["task"]
        status, body = self.admin_call("POST", "/api/v1/quarantine/restore",
                                       {"client": self.a, "item": "q1"})
        self.assertEqual(status, 409, body)
        self.assertIn(f"quarantine_restore task {restore} unfinished", body["error"])
        status, body = self.admin_call("POST", "/api/v1/quarantine/delete",
                                       {"client": self.b, "item": "q1"})
        self.assertEqual(status, 200, body)
        delete = body["task"]
        for req, want, code in [
                ({"client": self.a, "item": "nope"}, "has no item nope", 404),
                ({"client": self.a, "item": "q3"}, "is restored already", 409),
                ({"client": self.a, "item": "../x"}, "item: expected an item id", 400),
                ({"client": self.a, "item": "q1", "overwrite": "yes"},
                 "overwrite: expected true or false", 400)]:
            status, body = self.admin_call("POST", "/api/v1/quarantine/restore", req)
            self.assertEqual(status, code, body)
            self.assertIn(want, body["error"])
        status, body = self.poll(self.ta, self.a)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tasks"], [{"id": restore, "kind": "quarantine_restore",
                                          "item": "q1", "overwrite": True, "exclude": False}])
        status, body = self.poll(self.tb, self.b)
        self.assertEqual(body["tasks"], [{"id": delete, "kind": "quarantine_delete",
                                          "item": "q1"}])
        for token, tid in ((self.ta, restore), (self.tb, delete)):
            status, body = self.server.request("POST", "/api/v1/agent/tasks",
                                               {"id": tid, "state": "completed"}, token=token)
            self.assertEqual(status, 200, body)
        _, body = self.admin_call("GET", "/api/v1/tasks?kind=quarantine_restore")
        self.assertEqual([(t["id"], t["state"]) for t in body["tasks"]],
                         [(restore, "completed")])

    def test_4_central_copies(self):
        data = os.urandom(1000)
        status, body = self.upload(self.ta, "q1", data)
        self.assertEqual(status, 403, body)
        self.assertIn("quarantine.central is off", body["error"])
        self.setting(self.a, "quarantine.central", True)
        status, body = self.upload(self.ta, "q1", data)
        self.assertEqual((status, body), (201, {"item": "q1", "stored": True, "size": 1000}))
        path = os.path.join(self.server.data, "quarantine", str(self.a), "q1")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        _, body = self.admin_call("GET", f"/api/v1/quarantine?client={self.a}&item=q1")
        self.assertEqual(body["items"][0]["central"], 1000)
        # Once per item.
        status, body = self.upload(self.ta, "q1", os.urandom(10))
        self.assertEqual((status, body), (200, {"item": "q1", "stored": False}))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        # The server's cap (4096 here), then the client's lower one.
        status, _ = self.inventory(self.ta, [record("big"), record("q4")], False)
        self.assertEqual(status, 200)
        status, body = self.upload(self.ta, "big", os.urandom(4097))
        self.assertEqual(status, 413, body)
        self.assertIn("at most 4096", body["error"])
        self.setting(self.a, "quarantine.central_max_file", 100)
        status, body = self.upload(self.ta, "q4", os.urandom(101))
        self.assertEqual(status, 413, body)
        self.assertIn("at most 100", body["error"])
        status, body = self.upload(self.ta, "q4", os.urandom(100))
        self.assertEqual(status, 201, body)
        for token, item, code in ((self.ta, "nope", 404), (self.ta, "bad.id", 400),
                                  (self.ta, "a/b", 404),
                                  (self.tb, "q1", 403), (self.admin, "q1", 401)):
            status, body = self.upload(token, item, b"x")
            self.assertEqual(status, code, body)
        self.assertFalse(os.path.exists(os.path.join(self.server.data, "quarantine",
                                                     str(self.b))))
        # Gone from the agent's quarantine: gone from the server's.
        status, _ = self.inventory(self.ta, [record("q4")], True)
        self.assertEqual(status, 200)
        self.assertFalse(os.path.exists(path))
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(path), "q4")))
        # A client removed from the tree takes its records and copies along.
        status, body = self.admin_call("POST", "/api/v1/clients/remove", {"ids": [self.a]})
        self.assertEqual((status, body["removed"]), (200, 1))
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        self.assertEqual(self.listed(f"?client={self.a}"), [])

    def test_5_cli_words(self):
        def ward(*args):
            return subprocess.run([WARD, *args], capture_output=True, text=True, env=self.env,
                                  timeout=60)
        done = ward("login", "--server", f"https://localhost:{self.server.port}", "--ca",
                    os.path.join(self.server.data, "ca.crt"))
        self.assertEqual(done.returncode, 0, done.stderr)
        status, _ = self.inventory(self.tb, [record("c1")], False)
        self.assertEqual(status, 200)
        done = ward("quarantine", "list", "--domain", "/Sales", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("c1", [i["id"] for i in json.loads(done.stdout)["items"]])
        done = ward("quarantine", "list", "--client", str(self.b))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("c1", done.stdout)
        done = ward("quarantine", "restore", str(self.b), "c1", "--exclude", "true", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        tid = json.loads(done.stdout)["task"]
        _, task = self.admin_call("GET", f"/api/v1/task?id={tid}")
        self.assertEqual((task["kind"], task["args"]),
                         ("quarantine_restore", {"item": "c1", "overwrite": False,
                                                 "exclude": True}))
        done = ward("task", "cancel", str(tid))
        self.assertEqual(done.returncode, 0, done.stderr)
        done = ward("quarantine", "delete", str(self.b), "c1")
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_6_copies_no_record_holds_are_removed(self):
        """A copy no record holds any more (left by a kill between writing it
        and recording it; or kept here while another wardd on the same
        database heard of its removal, or of its client's) is removed at the
        next start; copies with their records stay."""
        c, = AgentWire.enrolled(self.server, self.tmp.name, "c")
        self.setting(c.id, "quarantine.central", True)
        status, _ = self.inventory(c.token, [record("s1")], False)
        self.assertEqual(status, 200)
        self.assertEqual(c.upload("s1", b"a copy with its record\n")[0], 201)
        base = os.path.join(self.server.data, "quarantine")
        kept = os.path.join(base, str(c.id), "s1")
        orphan = os.path.join(base, str(c.id), "orphan")
        gone = os.path.join(base, "999999")
        os.makedirs(gone)
        for path in (orphan, os.path.join(gone, "x1")):
            with open(path, "wb") as f:
                f.write(b"no record\n")
        self.server.stop()
        self.server.start()
        type(self).admin = self.server.login()
        self.assertTrue(os.path.exists(kept))
        self.assertFalse(os.path.exists(orphan))
        self.assertFalse(os.path.exists(gone))
        self.assertIn("quarantine: removed 2 central copies no record holds any more",
                      self.server.log_text())


if __name__ == "__main__":
    unittest.main()
