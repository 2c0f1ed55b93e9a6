#!/usr/bin/env python3
"""The ward administration commands against a real wardd and agent:
login, the tree, domains, moving clients, settings (the agent gets them),
the queue, --json, and the errors a user meets."""
import datetime
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, temp_wardd, wait_for, WARD  # noqa: E402

# The CLI shows times in the local zone: one of its own (a POSIX rule, no
# time zone database needed), an offset that is not whole hours.
TZ = "WRD-1:30"
ZONE = datetime.timezone(datetime.timedelta(hours=1, minutes=30))


def local_iso(t):
    """Unix seconds as the CLI shows them under TZ."""
    return datetime.datetime.fromtimestamp(t, ZONE).isoformat(timespec="seconds")


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.server = temp_wardd("ward-cli-", cls.addClassCleanup)
        cls.agent = Agent(cls.tmp.name, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.agent.enroll("--bundle", os.path.join(cls.server.data, "enroll.bundle"))
        cls.agent.start()
        wait_for(lambda: cls.agent.version() > 0, what="the agent's first settings")
        cls.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(cls.tmp.name, "cfg"), TZ=TZ)
        with open(os.path.join(cls.server.data, "initial-admin-password")) as f:
            cls.password = f.read().strip()

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
        db = self.server.db()
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
        self.assertIn(f"{made['id']} agent /Branch {local_iso(made['expires'])}", listed)
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


class CliValuesTest(unittest.TestCase):
    """How ward reads the values administrators type (client lists, times)
    and shows the answers (local times, blank cells, domain paths), the
    password ward login sends.
    A server of its own: the clients enrolled here would change the
    counts CliTest checks."""

    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.server = temp_wardd("ward-cli-values-", cls.addClassCleanup)
        cls.bundle = os.path.join(cls.server.data, "enroll.bundle")
        cls.ids = []
        for name in ("one", "two", "three"):
            done = Agent(cls.tmp.name, name).enroll("--bundle", cls.bundle)
            assert done.returncode == 0, done.stderr
            with open(os.path.join(cls.tmp.name, name, "state", "credential.json")) as f:
                cls.ids.append(json.load(f)["client"])
        with open(os.path.join(cls.server.data, "initial-admin-password")) as f:
            cls.password = password = f.read().strip()
        cls.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(cls.tmp.name, "cfg"), TZ=TZ)
        cls.env.pop("WARD_PASSWORD", None)
        done = subprocess.run([WARD, "login", "--server", f"https://localhost:{cls.server.port}",
                               "--ca", os.path.join(cls.server.data, "ca.crt")],
                              capture_output=True, text=True, timeout=60,
                              env=dict(cls.env, WARD_PASSWORD=password))
        assert done.returncode == 0, done.stderr

    def ward(self, *args, ok=True, env=None):
        done = subprocess.run([WARD, *args], capture_output=True, text=True,
                              env=env or self.env, stdin=subprocess.DEVNULL, timeout=60)
        if ok:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def domains(self):
        clients = json.loads(self.ward("client", "list", "--json").stdout)["clients"]
        return {c["id"]: c["domain"] for c in clients}

    def test_client_lists(self):
        """6 8, 6,8, [6,8] and mixtures, for every command taking clients."""
        a, b, c = self.ids
        self.ward("domain", "create", "/L1")
        self.ward("domain", "create", "/L2")
        self.ward("domain", "create", "/L3")
        start = self.domains()
        for i, form in enumerate(([str(a), str(b)], [f"{a},{b}"], [f"[{a}, {b}]"],
                                  [f"{a}, {b}"], [f"{a},", str(b)])):
            target = f"/L{i % 3 + 1}"
            moved = json.loads(self.ward("client", "move", *form, "--to", target,
                                         "--json").stdout)
            self.assertEqual(moved["moved"], 2, form)
            now = self.domains()
            self.assertEqual(now[a], now[b], form)
            self.assertNotEqual(now[a], start[c], form)
            self.assertEqual(now[c], start[c], form)
        # Remove and restore take the same forms.
        removed = json.loads(self.ward("client", "remove", f"{b},{c}", "--json").stdout)
        self.assertEqual(removed["removed"], 2)
        self.assertEqual(set(self.domains()) & {a, b, c}, {a})
        restored = json.loads(self.ward("client", "restore", str(b), str(c), "--json").stdout)
        self.assertEqual(restored["restored"], 2)
        self.assertEqual(set(self.domains()) & {a, b, c}, {a, b, c})
        for bad in (["x"], [str(a), "7x"], ["[1, \"2\"]"], ["1,,2"], ["0"], ["[]"]):
            done = self.ward("client", "move", *bad, "--to", "/L1", ok=False)
            self.assertEqual(done.returncode, 2, bad)
            self.assertIn("is not a list of client ids (give 6, 6 8, 6,8 or [6,8])",
                          done.stderr, bad)

    def test_times_local_iso(self):
        """Times in local ISO 8601 with the offset; --json keeps the numbers."""
        a = self.ids[0]
        raw = json.loads(self.ward("client", "show", str(a), "--json").stdout)
        self.assertIsInstance(raw["last_seen"], int)
        self.assertIn(f"last_seen: {local_iso(raw['last_seen'])}\n",
                      self.ward("client", "show", str(a)).stdout)
        self.assertRegex(self.ward("client", "list").stdout,
                         rf"\n{a} .* {re.escape(local_iso(raw['last_seen']))} ")
        session = json.loads(self.ward("session", "--json").stdout)
        self.assertIn(f"expires: {local_iso(session['expires'])}\n",
                      self.ward("session").stdout)
        events = json.loads(self.ward("logs", "--kind", "system", "--json").stdout)["events"]
        self.assertIsInstance(events[0]["time"], int)
        self.assertIn(f"\n{events[0]['id']} {local_iso(events[0]['time'])} system ",
                      self.ward("logs", "--kind", "system").stdout)

    def test_empty_cells_blank(self):
        """null is shown as nothing, in "key: value" lines and in tables; a
        column only some rows have (a failed item's error) is shown."""
        a = self.ids[0]
        raw = json.loads(self.ward("client", "show", str(a), "--json").stdout)
        empty = [k for k, v in raw.items() if v is None]  # status: none reported yet
        self.assertTrue(empty)
        show = self.ward("client", "show", str(a)).stdout
        for key in empty:
            self.assertIn(f"\n{key}:\n", show)
        self.assertNotIn("null", show)
        events = json.loads(self.ward("logs", "--kind", "system", "--json").stdout)["events"]
        self.assertTrue(any(e["client"] is None for e in events))
        self.assertNotIn("null", self.ward("logs", "--kind", "system").stdout)
        done = self.ward("client", "move", f"[{a}, 99999]", "--to", "/", ok=False)
        self.assertEqual(done.returncode, 1)
        self.assertRegex(done.stdout, r"\n99999 +false +no node with id 99999\n")

    def test_domains_by_path(self):
        """A client's domain by its path where the API gives its number."""
        b = self.ids[1]
        self.ward("domain", "create", "/Sales/Berlin")
        self.ward("client", "move", str(b), "--to", "/Sales/Berlin")
        self.assertIsInstance(json.loads(self.ward("client", "show", str(b),
                                                   "--json").stdout)["domain"], int)
        self.assertIn("\ndomain: /Sales/Berlin\n", self.ward("client", "show", str(b)).stdout)
        self.assertRegex(self.ward("client", "list").stdout, rf"\n{b} +\S+ +\S+ +/Sales/Berlin ")
        self.ward("client", "move", str(b), "--to", "/")
        self.assertIn("\ndomain: /\n", self.ward("client", "show", str(b)).stdout)

    def test_since_until(self):
        """--since/--until: ISO 8601 with or without an offset (local time),
        a date, a time ago, Unix seconds; anything else named."""
        self.ward("domain", "create", "/Marker")
        events = json.loads(self.ward("logs", "--kind", "system", "--json").stdout)["events"]
        mark = next(e for e in events if e["message"].endswith("created domain /Marker"))
        t = mark["time"]

        def ids(*args):
            got = json.loads(self.ward("logs", "--kind", "system", *args, "--json").stdout)
            return [e["id"] for e in got["events"]]

        local = datetime.datetime.fromtimestamp(t, ZONE)
        utc = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        naive = local.strftime("%Y-%m-%dT%H:%M:%S")
        later = (local + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        for args, present in [
            (["--since", str(t)], True),
            (["--since", str(t + 1)], False),
            (["--since", naive], True),                       # local time
            (["--since", later], False),
            (["--since", naive.replace("T", " ")[:16]], True),  # without seconds
            (["--since", utc.strftime("%Y-%m-%dT%H:%M:%SZ")], True),
            (["--since", local.isoformat()], True),
            (["--since", (local + datetime.timedelta(seconds=1)).isoformat()], False),
            (["--until", (local - datetime.timedelta(seconds=1)).isoformat()], False),
            (["--until", naive], True),
            (["--since", local.strftime("%Y-%m-%d")], True),   # the local day's midnight
            (["--until", "2000-01-01"], False),
            (["--since", "2h"], True),
            (["--since", "15m", "--until", "30s"], False) if time.time() - t < 25 else
            (["--since", "15m"], True),
            (["--since", "7d"], True),
            (["--since", "3600s"], True),
        ]:
            self.assertEqual(mark["id"] in ids(*args), present, args)
        for bad in ("yesterday", "2026-13-01", "2026-02-30", "12:00", "5x", "2026-12-05T25:00",
                    "-1h", "2026-12-05T10:00+25:00"):
            done = self.ward("logs", "--since", bad, ok=False)
            self.assertEqual(done.returncode, 2, bad)
            self.assertIn(f"ward logs: --since: '{bad}' is not a time (give 2026-12-05, ",
                          done.stderr)
            self.assertIn("2h or 7d ago, or Unix seconds", done.stderr)
        done = self.ward("logs", "--until", "soon", ok=False)
        self.assertIn("--until: 'soon' is not a time", done.stderr)

    def test_login_never_sends_an_empty_password(self):
        """No $WARD_PASSWORD, no terminal, nothing on standard input: an
        error before any connection (a wrong password would count toward
        the address's sign-in brake)."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            listener.settimeout(0.5)
            url = f"https://127.0.0.1:{listener.getsockname()[1]}"
            ca = os.path.join(self.server.data, "ca.crt")
            env = dict(self.env, XDG_CONFIG_HOME=os.path.join(self.tmp.name, "other"))
            done = self.ward("login", "--server", url, "--ca", ca, ok=False, env=env)
            self.assertEqual(done.returncode, 2)
            self.assertIn("ward: $WARD_PASSWORD is not set and standard input "
                          "(not a terminal) gave an empty line; nothing was sent", done.stderr)
            done = self.ward("login", "--server", url, "--ca", ca, ok=False,
                             env=dict(env, WARD_PASSWORD=""))
            self.assertEqual(done.returncode, 2)
            self.assertIn("ward: $WARD_PASSWORD is empty; nothing was sent", done.stderr)
            with self.assertRaises(socket.timeout):
                listener.accept()
        usage = self.ward("login", ok=False).stderr
        self.assertIn("$WARD_PASSWORD, else the terminal, else standard", usage)
        # A password on standard input still works.
        done = subprocess.run([WARD, "login", "--server", f"https://localhost:{self.server.port}",
                               "--ca", ca], input=self.password, capture_output=True,
                              text=True, env=env, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
