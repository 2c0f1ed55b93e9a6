#!/usr/bin/env python3
"""The ward administration commands against a real wardd and agent:
login, the tree, domains, moving clients, settings (the agent gets them),
the queue, --json, and the errors a user meets."""
import http.client
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from test_agents import Agent, wait_for  # noqa: E402
from test_wardd import Wardd  # noqa: E402

WARD = os.environ.get("WARD_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin/ward"))


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ward-cli-")
        cls.server = Wardd(cls.tmp.name)
        cls.server.start()
        cls.agent = Agent(cls.tmp.name, "agent")
        cls.agent.enroll("--bundle", os.path.join(cls.server.data, "enroll.bundle"))
        cls.agent.start()
        wait_for(lambda: cls.agent.version() > 0, what="the agent's first settings")
        cls.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(cls.tmp.name, "cfg"))
        with open(os.path.join(cls.server.data, "initial-admin-password")) as f:
            cls.password = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        cls.server.stop()
        cls.tmp.cleanup()

    def ward(self, *args, password=None, ok=True):
        env = dict(self.env)
        if password is not None:
            env["WARD_PASSWORD"] = password
        done = subprocess.run([WARD, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        if ok:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def login(self):
        self.ward("login", "--server", f"https://localhost:{self.server.port}", "--ca",
                  os.path.join(self.server.data, "ca.crt"), password=self.password)

    def test_1_not_logged_in(self):
        done = self.ward("tree", ok=False)
        self.assertEqual(done.returncode, 1)
        self.assertIn("not logged in", done.stderr)

    def test_2_login(self):
        done = self.ward("login", "--server", f"https://localhost:{self.server.port}", "--ca",
                         os.path.join(self.server.data, "ca.crt"), password="wrong", ok=False)
        self.assertEqual(done.returncode, 1)
        self.assertIn("wrong user name or password", done.stderr)
        self.login()
        path = os.path.join(self.env["XDG_CONFIG_HOME"], "ward", "cli.json")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_3_domains_clients_settings(self):
        self.login()
        out = self.ward("domain", "create", "/Sales/Berlin").stdout
        self.assertIn("path: /Sales/Berlin", out)
        clients = json.loads(self.ward("client", "list", "--json").stdout)["clients"]
        cid = clients[0]["id"]
        self.assertEqual(clients[0]["state"], "online")
        moved = json.loads(self.ward("client", "move", str(cid), "--to", "/Sales/Berlin",
                                     "--json").stdout)
        self.assertEqual(moved["moved"], 1)
        tree = self.ward("tree").stdout
        self.assertIn("  Sales/ (domain", tree)
        self.assertIn("    Berlin/ (domain", tree)
        self.assertIn(f"(client {cid})", tree)
        # A setting on the domain reaches the agent.
        self.ward("settings", "set", "--scope", "domain:/Sales", "scan_method", "smart")
        wait_for(lambda: '"conventional" -> "smart"' in self.agent.log_text(),
                 what="the agent switching to smart scan")
        eff = json.loads(self.ward("settings", "get", "--scope", f"client:{cid}",
                                   "--json").stdout)["effective"]
        self.assertEqual(eff["scan_method"], "smart")
        show = json.loads(self.ward("client", "show", str(cid), "--json").stdout)
        self.assertEqual(show["settings"]["scan_method"], "smart")
        self.assertEqual(show["state"], "online")
        # A bulk move reports each item; a bad one fails the command.
        done = self.ward("client", "move", f"[{cid}, 99999]", "--to", "/Sales", "--json",
                         ok=False)
        self.assertEqual(done.returncode, 1)
        results = json.loads(done.stdout)["results"]
        self.assertEqual([r["ok"] for r in results], [True, False])
        self.assertIn("no node with id 99999", results[1]["error"])
        queue = json.loads(self.ward("notify", "queue", "--json").stdout)
        self.assertIn("in_flight", queue)

    def test_4_errors(self):
        self.login()
        for args, want in [
            (("settings", "set", "--scope", "root", "scan_method", "fast"),
             "scan_method: expected one of smart, conventional"),
            (("settings", "set", "--scope", "domain:/Nope", "roaming", "true"),
             "no domain 'Nope'"),
            (("domain", "delete", "/"), "not a domain"),
            (("client", "show", "abc"), "id: 'abc' is not a number"),
            (("domain", "create"), "missing path"),
            (("tree", "--bogus", "1"), "unknown option"),
        ]:
            done = self.ward(*args, ok=False)
            self.assertNotEqual(done.returncode, 0, args)
            self.assertIn(want, done.stderr, args)


    def test_5_grouping(self):
        """Automatic grouping: at enrollment and when an agent's addresses change."""
        self.login()
        host = socket.gethostname()
        self.ward("grouping", "set",
                  json.dumps([{"match": "host", "value": host, "domain": "/ByHost"}]))
        rules = json.loads(self.ward("grouping", "get", "--json").stdout)["rules"]
        self.assertEqual(rules[0]["domain"], "/ByHost")
        second = Agent(self.tmp.name, "second")
        done = second.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(second.dir, "state", "credential.json")) as f:
            cred = json.load(f)
        cid = cred["client"]
        tree = self.ward("tree").stdout
        self.assertRegex(tree, rf"ByHost/ \(domain \d+\)\n\s+\S+ \(client {cid}\)")
        # A new address matching an IP rule moves the client.
        self.ward("grouping", "set",
                  json.dumps([{"match": "ip", "value": "198.51.100.0/24", "domain": "/Moved"}]))
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        conn = http.client.HTTPSConnection("localhost", self.server.port, context=ctx)
        conn.request("POST", "/api/v1/agent/heartbeat", body=json.dumps(
            {"hostname": host, "ipv4": ["198.51.100.5"], "ipv6": []}),
            headers={"Authorization": f"Bearer {cred['uuid']}:{cred['secret']}"})
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()
        tree = self.ward("tree").stdout
        self.assertRegex(tree, rf"Moved/ \(domain \d+\)\n\s+\S+ \(client {cid}\)")
        done = self.ward("grouping", "set", '[{"match": "ip", "value": "10.0.0.0/40", '
                         '"domain": "/X"}]', ok=False)
        self.assertIn("rule 1: '10.0.0.0/40' is not an IPv4 or IPv6", done.stderr)
        self.ward("grouping", "set", "[]")

    def test_6_verify_states_and_removal(self):
        """Connection verification on demand: states, changes logged, and
        removal of clients inactive too long (time is moved by editing
        last_seen in the database, as if the agents had been away)."""
        self.login()
        away = Agent(self.tmp.name, "away")
        gone = Agent(self.tmp.name, "gone")
        for a in (away, gone):
            self.assertEqual(a.enroll("--bundle", os.path.join(self.server.data,
                                                               "enroll.bundle")).returncode, 0)
        ids = {}
        for a in (away, gone):
            with open(os.path.join(a.dir, "state", "credential.json")) as f:
                ids[a] = json.load(f)["client"]
        self.ward("client", "verify")
        db = sqlite3.connect(os.path.join(self.server.data, "ward.db"), timeout=10)
        now = int(time.time())
        # Away by the clock and by the server's own running time, which
        # removal needs both of.
        for a, ago in ((away, 300), (gone, 100 * 86400)):
            db.execute("UPDATE clients SET last_seen = ?, seen_observed = seen_observed - ? "
                       "WHERE node = ?", (now - ago, ago, ids[a]))
        db.commit()
        db.close()
        report = json.loads(self.ward("client", "verify", "--json").stdout)
        changed = {c["id"]: (c["from"], c["to"]) for c in report["changed"]}
        self.assertEqual(changed.get(ids[away]), ("online", "offline"))
        self.assertEqual([r["id"] for r in report["removed"]], [ids[gone]])
        self.assertEqual(report["summary"]["online"], 2)  # the running agent, second
        self.assertIn(f"verify: client {ids[away]} (", self.server.log_text())
        self.assertIn(f"client {ids[gone]} (vm) removed from the tree", self.server.log_text())
        self.assertNotIn(f"(client {ids[gone]})", self.ward("tree").stdout)
        # With the roaming privilege an absent agent is roaming, not offline.
        self.ward("settings", "set", "--scope", f"client:{ids[away]}", "roaming", "true")
        report = json.loads(self.ward("client", "verify", "--json").stdout)
        self.assertIn({"id": ids[away], "hostname": socket.gethostname(), "from": "offline",
                       "to": "roaming"}, report["changed"])

    def test_7_update_sources(self):
        """The update source table picks by the agent's address, IPv4 or IPv6."""
        self.login()
        done = self.ward("sources", "set", '[{"range": "10.0.0.0/8", "url": "ftp://x"}]',
                         ok=False)
        self.assertIn("update source 1: 'ftp://x' is not an http:// or https:// URL", done.stderr)
        self.ward("sources", "set", json.dumps([
            {"range": "0.0.0.1", "url": "https://never.example"},
            {"range": "127.0.0.0/8", "url": "https://v4.example/updates"},
            {"range": "::1", "url": "https://v6.example/updates"}]))
        self.assertEqual(len(json.loads(self.ward("sources", "get", "--json").stdout)
                             ["sources"]), 3)
        with open(os.path.join(self.agent.dir, "state", "credential.json")) as f:
            cred = json.load(f)
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        for host, want in (("127.0.0.1", "https://v4.example/updates"),
                           ("::1", "https://v6.example/updates")):
            conn = http.client.HTTPSConnection(host, self.server.port, context=ctx)
            conn.request("GET", "/api/v1/agent/update-source",
                         headers={"Authorization": f"Bearer {cred['uuid']}:{cred['secret']}"})
            self.assertEqual(json.loads(conn.getresponse().read())["source"], want, host)
            conn.close()
        self.ward("sources", "set", "[]")
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=ctx)
        conn.request("GET", "/api/v1/agent/update-source",
                     headers={"Authorization": f"Bearer {cred['uuid']}:{cred['secret']}"})
        self.assertIsNone(json.loads(conn.getresponse().read())["source"])
        conn.close()

    def test_8_rotate_key(self):
        """`ward update rotate-key` replaces the key signing.pub shows."""
        self.login()
        with open(os.path.join(self.server.data, "signing.pub")) as f:
            old = f.read().strip()
        answer = json.loads(self.ward("update", "rotate-key", "--json").stdout)
        self.assertEqual(answer["previous"], old)
        with open(os.path.join(self.server.data, "signing.pub")) as f:
            self.assertEqual(f.read().strip(), answer["key"])
        self.assertIn(f"rotated the package signing key from {old} to {answer['key']}",
                      self.server.log_text())
        self.assertIn(answer["key"], self.ward("update", "status").stdout)

    def test_9_enrollment_tokens(self):
        """A token made for a domain places the agents it enrolls there, its
        answer is the bundle, and once revoked it enrolls no one."""
        self.login()
        self.ward("domain", "create", "/Branch")
        done = self.ward("enroll", "new", "--domain", "/Branch", "--days", "7", "--json")
        bundle = os.path.join(self.tmp.name, "branch.bundle")
        with open(bundle, "w") as f:
            f.write(done.stdout)
        made = json.loads(done.stdout)
        self.assertEqual((made["domain"], len(made["token"]), len(made["id"])),
                         ("/Branch", 64, 16))
        self.assertAlmostEqual(made["expires"], time.time() + 7 * 86400, delta=60)
        listed = self.ward("enroll", "tokens").stdout
        self.assertIn(f"{made['id']} agent /Branch {made['expires']}", listed)
        self.assertNotIn(made["token"], listed)
        branch = Agent(self.tmp.name, "branch")
        enrolled = branch.enroll("--bundle", bundle)
        self.assertEqual(enrolled.returncode, 0, enrolled.stderr)
        uuid = enrolled.stdout.split()[-1]
        clients = json.loads(self.ward("client", "list", "--json").stdout)["clients"]
        self.assertEqual(next(c["domain"] for c in clients if c["uuid"] == uuid),
                         next(d["id"] for d in json.loads(self.ward("tree", "--json").stdout)
                              ["domains"] if d["name"] == "Branch"))
        self.ward("enroll", "revoke", made["id"])
        late = Agent(self.tmp.name, "late").enroll("--bundle", bundle)
        self.assertEqual(late.returncode, 1)
        self.assertIn("401", late.stderr)
        self.assertNotIn(made["id"], self.ward("enroll", "tokens").stdout)
        # With no options at all: the default domain and lifetime.
        done = self.ward("enroll", "new", "--json")
        plain = json.loads(done.stdout)
        self.assertEqual((plain["domain"], len(plain["token"])), ("/", 64))
        self.assertAlmostEqual(plain["expires"], time.time() + 30 * 86400, delta=60)
        self.assertRegex(self.ward("enroll", "new").stdout, "[0-9a-f]{64}")
        self.ward("enroll", "revoke", plain["id"])
        # Mistakes are named.
        for args, word in ((["enroll", "new", "--domain", "/Nowhere"], "no domain /Nowhere"),
                           (["enroll", "new", "--days", "0"], "days: expected 1 to 3650"),
                           (["enroll", "revoke", made["id"]], "no enrollment token"),
                           (["enroll", "revoke", "xyz"], "16 lowercase hex")):
            done = self.ward(*args, ok=False)
            self.assertEqual(done.returncode, 1, args)
            self.assertIn(word, done.stderr)
        # The token never reaches the server's log or the event log.
        self.assertNotIn(made["token"], self.server.log_text())
        self.assertIn(f"admin created enrollment token {made['id']} for /Branch, valid for "
                      "7 days", self.ward("logs", "--kind", "system").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
