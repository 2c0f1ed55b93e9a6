#!/usr/bin/env python3
"""Two real wardd servers: the second duplicates the first's domain
structure and settings by export/import, then a real agent moves from the
first to the second and lands in the domain of the same path; the first
marks it moved."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, wait_for, WARD, Wardd  # noqa: E402


class MoveTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-move-")
        for name in ("a", "b"):
            os.makedirs(os.path.join(self.tmp.name, name))
        self.a = Wardd(os.path.join(self.tmp.name, "a"))
        self.b = Wardd(os.path.join(self.tmp.name, "b"))
        for s in (self.a, self.b):
            s.start()
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.stop()
        self.a.stop()
        self.b.stop()
        self.tmp.cleanup()

    def ward(self, server, *args, ok=True):
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(server.root, "cfg"))
        with open(os.path.join(server.data, "initial-admin-password")) as f:
            env["WARD_PASSWORD"] = f.read().strip()
        done = subprocess.run([WARD, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        if ok:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def login(self, server):
        self.ward(server, "login", "--server", f"https://localhost:{server.port}", "--ca",
                  os.path.join(server.data, "ca.crt"))

    def test_duplicate_then_move(self):
        a, b = self.a, self.b
        self.login(a)
        self.login(b)
        self.ward(a, "domain", "create", "/Sales/Berlin")
        self.ward(a, "settings", "set", "--scope", "domain:/Sales", "scan_method", "smart")
        self.ward(a, "settings", "set", "--scope", "domain:/Sales/Berlin", "update.schedule",
                  "weekly fri 22:00")
        self.ward(a, "grouping", "set",
                  '[{"match": "host", "value": "example.org", "domain": "/Ext"}]')
        export = os.path.join(self.tmp.name, "export.json")
        with open(export, "w") as f:
            f.write(self.ward(a, "export").stdout)
        done = self.ward(b, "import", f"@{export}", "--json")
        self.assertTrue(all(r["ok"] for r in json.loads(done.stdout)["results"]))
        self.assertEqual(json.loads(self.ward(b, "export").stdout),
                         json.loads(self.ward(a, "export").stdout))

        agent = self.agent = Agent(self.tmp.name, "agent")
        agent.enroll("--bundle", os.path.join(a.data, "enroll.bundle"))
        agent.start()
        wait_for(lambda: agent.version() > 0, what="settings from the first server")
        cid = json.loads(self.ward(a, "client", "list", "--json").stdout)["clients"][0]["id"]
        self.ward(a, "client", "move", str(cid), "--to", "/Sales/Berlin")
        wait_for(lambda: "weekly fri 22:00" in agent.log_text(), what="the domain's settings")

        with open(os.path.join(b.data, "enroll-token")) as f:
            token = f.read().strip()
        done = self.ward(a, "client", "move-server", str(cid), "--server",
                         f"https://localhost:{b.port}", "--token", token, "--ca",
                         "@" + os.path.join(b.data, "ca.crt"), "--json")
        self.assertEqual(json.loads(done.stdout)["moving"], 1)
        wait_for(lambda: "now served by https://localhost:%d" % b.port in agent.log_text(),
                 what="the agent moving")
        # On the second server: in the domain of the same path, with its settings.
        wait_for(lambda: json.loads(self.ward(b, "client", "list", "--json").stdout)
                 ["summary"]["online"] == 1, what="the agent online on the second server")
        tree = self.ward(b, "tree").stdout
        self.assertRegex(tree, r"Berlin/ \(domain \d+\)\n\s+\S+ \(client \d+\)")
        new = json.loads(self.ward(b, "client", "list", "--json").stdout)["clients"][0]
        self.assertEqual(new["uuid"], json.loads(self.ward(a, "client", "show", str(cid),
                                                           "--json").stdout)["uuid"])
        show = json.loads(self.ward(b, "client", "show", str(new["id"]), "--json").stdout)
        self.assertEqual(show["settings"]["scan_method"], "smart")
        self.assertEqual(show["settings"]["update.schedule"], "weekly fri 22:00")
        # The first server shows it moved.
        wait_for(lambda: json.loads(self.ward(a, "client", "show", str(cid), "--json").stdout)
                 ["state"] == "moved", what="the first server marking the client moved")
        self.assertEqual(agent.proc.poll(), None, "the agent exited")


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
