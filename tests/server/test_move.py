#!/usr/bin/env python3
"""Two real wardd servers: the second duplicates the first's domain
structure and settings by export/import, then a real agent moves from the
first to the second and lands in the domain of the same path; the first
marks it moved. A moved agent takes the second server's components, though
the first counted more versions."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import AGENT, Agent, wait_for, WARD, Wardd  # noqa: E402


class MoveTest(unittest.TestCase):
    def setUp(self):
        # Undone even when what follows fails.
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-move-")
        self.addCleanup(self.tmp.cleanup)
        for name in ("a", "b"):
            os.makedirs(os.path.join(self.tmp.name, name))
        self.a = Wardd(os.path.join(self.tmp.name, "a"))
        self.b = Wardd(os.path.join(self.tmp.name, "b"))
        for s in (self.a, self.b):
            s.start()
            self.addCleanup(s.stop)
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.stop()

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

    def test_moved_client_is_shown_apart_and_no_target(self):
        """A change made while the move is on its way does not keep the
        client from counting moved; its delivery is cancelled and logged,
        none is queued for it after, it is marked in the tree, the client
        list and the overview, and actions naming it are refused."""
        a, b = self.a, self.b
        self.login(a)
        token = a.login()
        agent = self.agent = Agent(self.tmp.name, "agent")
        agent.enroll("--bundle", os.path.join(a.data, "enroll.bundle"))
        agent.start()
        wait_for(lambda: agent.version() > 0, what="settings from the first server")
        cid = json.loads(self.ward(a, "client", "list", "--json").stdout)["clients"][0]["id"]
        queue = lambda: a.request("GET", "/api/v1/notify/queue", token=token)[1]["queue"]
        wait_for(lambda: queue() == [], what="the first delivery acknowledged")
        # Frozen in its long poll, the agent gets the move; a change follows
        # before it acknowledges.
        os.kill(agent.proc.pid, signal.SIGSTOP)
        with open(os.path.join(b.data, "enroll-token")) as f:
            enroll = f.read().strip()
        self.ward(a, "client", "move-server", str(cid), "--server",
                  f"https://localhost:{b.port}", "--token", enroll, "--ca",
                  "@" + os.path.join(b.data, "ca.crt"))
        wait_for(lambda: a.request("GET", "/api/v1/notify/queue", token=token)[1]
                 ["in_flight"] == 1, what="the move sent over the parked channel")
        self.ward(a, "settings", "set", "--scope", "root", "update.window", "30")
        os.kill(agent.proc.pid, signal.SIGCONT)
        wait_for(lambda: "now served by https://localhost:%d" % b.port in agent.log_text(),
                 what="the agent moving")
        wait_for(lambda: json.loads(self.ward(a, "client", "show", str(cid), "--json").stdout)
                 ["state"] == "moved", what="the first server marking the client moved")
        self.assertEqual(queue(), [])
        logs = self.ward(a, "logs", "--kind", "delivery", "--json").stdout
        self.assertIn("moved to another server: its queued delivery is cancelled", logs)
        # Nothing is queued for it after.
        self.ward(a, "settings", "set", "--scope", "root", "update.window", "40")
        status, o = a.request("GET", "/api/v1/overview", token=token)
        self.assertEqual((o["queued"], o["agents"]["total"], o["agents"]["moved"]), (0, 0, 1))
        self.assertEqual(queue(), [])
        # Shown apart.
        self.assertRegex(self.ward(a, "tree").stdout,
                         r"\S+ \(client %d, moved to another server\)" % cid)
        status, tree = a.request("GET", "/api/v1/tree", token=token)
        self.assertIs(tree["clients"][0]["moved"], True)
        listed = json.loads(self.ward(a, "client", "list", "--json").stdout)
        self.assertEqual((listed["clients"][0]["state"], listed["summary"].get("moved")),
                         ("moved", 1))
        # No action's target, but it can be removed.
        for args in (["client", "move", str(cid), "--to", "/"],
                     ["client", "move-server", str(cid), "--server",
                      f"https://localhost:{b.port}", "--token", enroll, "--ca",
                      "@" + os.path.join(b.data, "ca.crt")],
                     ["settings", "set", "--scope", f"client:{cid}", "roaming", "true"],
                     ["settings", "unset", "--scope", f"client:{cid}", "roaming"],
                     ["update", "agents", "--scope", f"client:{cid}"]):
            done = self.ward(a, *args, ok=False)
            self.assertEqual(done.returncode, 1, args)
            self.assertIn(f"client {cid} was moved to another server", done.stderr, args)
        status, body = a.request("PUT", "/api/v1/settings", {"scope": f"client:{cid}",
                                                             "key": "roaming", "value": True},
                                 token=token)
        self.assertEqual(status, 409, body)
        self.ward(a, "client", "remove", str(cid))
        self.assertEqual(json.loads(self.ward(a, "client", "list", "--json").stdout)
                         ["clients"], [])


def hdb_line(data, name):
    """A hash signature of data (MD5:size:name)."""
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n"


class MoveComponentsTest(unittest.TestCase):
    """Version numbers count per server: the agent holds version 3 of the
    first server's Virus Pattern; the second server's newest is 1."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-move-comp-")
        self.servers = []
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.stop()
        for s in self.servers:
            s.stop()
        self.tmp.cleanup()

    def server(self, name, signatures):
        root = os.path.join(self.tmp.name, name)
        src = os.path.join(root, "source")
        os.makedirs(src)
        with open(os.path.join(src, f"{name}.hdb"), "w") as f:
            f.write(signatures)
        s = Wardd(root, extra=f"[updates]\nsource_dir = {src}\n")
        s.start()
        self.servers.append(s)
        s.src = src
        s.token = s.login()
        wait_for(lambda: self.version(s) == 1, what=f"server {name}'s first import")
        return s

    def version(self, s):
        status, answer = s.request("GET", "/api/v1/update", token=s.token)
        self.assertEqual(status, 200, answer)
        return next(c["version"] for c in answer["components"] if c["name"] == "virus-pattern")

    def installed(self):
        link = os.path.join(self.agent.dir, "state", "components", "virus-pattern", "current")
        return int(os.readlink(link)) if os.path.islink(link) else 0

    def scan(self, path):
        return subprocess.run([AGENT, "--config", self.agent.conf, "scan", path],
                              capture_output=True, text=True, timeout=120)

    def test_moved_agent_takes_the_new_servers_components(self):
        self.move_and_check(3)

    def test_moved_agent_replaces_a_version_of_the_same_number(self):
        """Both servers at version 1: the second's version 1 takes the place
        of the first's."""
        self.move_and_check(1)

    def move_and_check(self, a_versions):
        a_file = os.path.join(self.tmp.name, "a-sample")
        b_file = os.path.join(self.tmp.name, "b-sample")
        with open(a_file, "wb") as f:
            f.write(b"detected by the first server only\n")
        with open(b_file, "wb") as f:
            f.write(b"detected by the second server only\n")
        with open(a_file, "rb") as f:
            a_sig = hdb_line(f.read(), "Ward.Test.FirstServer")
        with open(b_file, "rb") as f:
            b_sig = hdb_line(f.read(), "Ward.Test.SecondServer")
        a = self.server("a", a_sig)
        b = self.server("b", b_sig)
        # The first server imports its source a_versions times.
        for n in range(2, a_versions + 1):
            with open(os.path.join(a.src, "a.hdb"), "a") as f:
                f.write(hdb_line(b"another sample %d\n" % n, f"Ward.Test.Other{n}"))
            status, answer = a.request("POST", "/api/v1/update/now", token=a.token)
            self.assertEqual(status, 200, answer)
            wait_for(lambda: self.version(a) == n, what=f"version {n} on the first server")
        self.assertEqual(self.version(b), 1)

        agent = self.agent = Agent(self.tmp.name, "agent")
        done = agent.enroll("--bundle", os.path.join(a.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        agent.start()
        wait_for(lambda: self.installed() == a_versions, what="the first server's version")
        scanned = self.scan(b_file)
        self.assertEqual(scanned.returncode, 0, scanned.stdout + scanned.stderr)

        status, clients = a.request("GET", "/api/v1/clients", token=a.token)
        cid = clients["clients"][0]["id"]
        with open(os.path.join(b.data, "enroll-token")) as f:
            token = f.read().strip()
        with open(os.path.join(b.data, "ca.crt")) as f:
            ca = f.read()
        status, answer = a.request("POST", "/api/v1/clients/move-server", token=a.token,
                                   body={"ids": [cid], "server": f"https://localhost:{b.port}",
                                         "token": token, "ca": ca})
        self.assertEqual(status, 200, answer)
        wait_for(lambda: f"now served by https://localhost:{b.port}" in agent.log_text(),
                 what="the agent moving")
        # It starts over with the second server's sequence: the full package
        # of its version 1, verified by the second server's key.
        wait_for(lambda: agent.log_text().count("virus-pattern 0 -> 1 by full package") ==
                 (2 if a_versions == 1 else 1), what="the second server's version 1")
        wait_for(lambda: self.installed() == 1, what="the second server's version 1 in use")
        with open(os.path.join(b.data, "signing.pub")) as f:
            b_key = f.read().strip() + " 1\n"

        def origin():
            with open(os.path.join(agent.dir, "state", "components", "virus-pattern",
                                   "origin")) as f:
                return f.read()
        wait_for(lambda: origin() == b_key, what="the second server's key and version 1 "
                 "as the origin")
        wait_for(lambda: not os.path.exists(os.path.join(
            agent.dir, "state", "components", "virus-pattern", ".previous")),
            what="the first server's version gone")

        def counted():
            status, answer = b.request("GET", "/api/v1/update", token=b.token)
            vp = next(c for c in answer["components"] if c["name"] == "virus-pattern")
            return vp["agents"]
        wait_for(lambda: counted() == {"current": 1, "outdated": 0, "missing": 0},
                 what="the second server counting the agent current")
        scanned = self.scan(b_file)
        self.assertEqual(scanned.returncode, 1, scanned.stdout + scanned.stderr)
        self.assertIn("Ward.Test.SecondServer", scanned.stdout)
        self.assertEqual(self.scan(a_file).returncode, 0)

    def test_server_offers_full_package_to_an_agent_ahead(self):
        """An agent reporting a version newer than the server's newest is
        given the full package of the newest, not nothing."""
        s = self.server("a", hdb_line(b"x\n", "Ward.Test.X"))
        agent = self.agent = Agent(self.tmp.name, "agent")
        self.assertEqual(agent.enroll("--bundle", os.path.join(s.data, "enroll.bundle"))
                         .returncode, 0)
        with open(os.path.join(agent.dir, "state", "credential.json")) as f:
            cred = json.load(f)
        token = f"{cred['uuid']}:{cred['secret']}"
        for have, steps in ((99, 1), (2, 1), (1, 0), (0, 1)):
            status, plan = s.request("POST", "/api/v1/agent/update", token=token,
                                     body={"component": "virus-pattern", "have": have,
                                           "full": False})
            self.assertEqual(status, 200, plan)
            self.assertEqual((plan["version"], len(plan["steps"])), (1, steps), have)


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
