#!/usr/bin/env python3
"""Signature components from a real ClamAV directory to real agents.

wardd imports ClamAV's signed test CVDs and custom files, builds the three
components and signs their packages; real ward-agent processes install them
in full and by delta, from the server or from the update source the table
names for their IPv4 or IPv6 address.  Faults: a corrupt CVD, a flipped
byte in a payload or an envelope, a replayed older version, a download cut
half-way, a broken delta chain; and the download cap under 200 clients.
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs.
"""
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, clamav_cvd, data_file, temp_dir, wait_for, Wardd  # noqa: E402


class Mirror:
    """An update source: plain HTTP on loopback serving wardd's package
    directory, recording what it is asked for; cut=True sends half of each
    file and hangs up."""

    def __init__(self, root, host):
        mirror = self
        self.requests = []
        self.cut = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                path = os.path.join(root, os.path.basename(self.path))
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2] if mirror.cut else data)

            def log_message(self, *args):
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(http.server.ThreadingHTTPServer):
            address_family = family

        self.server = Server((host, 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class UpdatesTest(unittest.TestCase):
    def setUp(self):
        # Undone even when what follows fails.
        self.tmp = temp_dir("ward-updates-", self.addCleanup)
        self.src = os.path.join(self.tmp.name, "source")
        os.makedirs(self.src)
        shutil.copy(clamav_cvd(5), os.path.join(self.src, "main.cvd"))
        shutil.copy(data_file("clamav", "sigs", "Clamav-Unit-Test-Signature.ndb"),
                    os.path.join(self.src, "local.ndb"))
        self.server = Wardd(self.tmp.name, extra=(
            f"[updates]\nsource_dir = {self.src}\nwatch_interval = 1s\n"
            "max_downloads = 2\nretry_after = 1s\n[http]\nlong_poll = 5s\n"
            "[notify]\nack_timeout = 60s\nretry_interval = 2s\n"
            # 200 simulated clients enroll at once, from one address.
            "[enroll]\nper_token = 0\nper_address = 0\n"))
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        self.agents = []
        self.mirrors = []
        wait_for(lambda: self.versions().get("virus-pattern") == 1, what="first import")

    def tearDown(self):
        for a in self.agents:
            a.stop()
        for m in self.mirrors:
            m.close()

    def api(self, method, path, body=None, expect=200, timeout=10):
        status, answer = self.server.request(method, path, body, token=self.token,
                                             timeout=timeout)
        self.assertEqual(status, expect, answer)
        return answer

    def versions(self):
        status = self.api("GET", "/api/v1/update")
        return {c["name"]: c["version"] for c in status["components"]}

    def add_agent(self, server_url=None):
        a = Agent(self.tmp.name, f"agent{len(self.agents)}")
        if server_url:
            with open(os.path.join(self.server.data, "enroll-token")) as f:
                token = f.read().strip()
            done = a.enroll("--server", server_url, "--token", token,
                            "--ca", os.path.join(self.server.data, "ca.crt"))
        else:
            done = a.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        a.start()
        self.agents.append(a)
        return a

    def installed(self, agent, component="virus-pattern"):
        link = os.path.join(agent.dir, "state", "components", component, "current")
        return int(os.readlink(link)) if os.path.islink(link) else 0

    def new_source_version(self):
        """Makes the source change: test-6.cvd (one more body signature)."""
        shutil.copy(clamav_cvd(6), os.path.join(self.src, "main.cvd"))
        wait_for(lambda: self.versions().get("virus-pattern") == 2, what="second import")

    def db(self):
        return self.server.db()

    def client_ids(self):
        return [c["id"] for c in self.api("GET", "/api/v1/clients")["clients"]]

    def test_components_full_then_delta_to_agents(self):
        status = self.api("GET", "/api/v1/update")
        comps = {c["name"]: c for c in status["components"]}
        self.assertEqual(set(comps), {"virus-pattern", "smart-agent-pattern", "smart-pattern"})
        for c in comps.values():
            self.assertEqual(c["version"], 1)
            self.assertGreater(c["size"], 0)
        a, b = self.add_agent(), self.add_agent()
        wait_for(lambda: self.installed(a) == 1 and self.installed(b) == 1, what="full install")
        self.assertIn("virus-pattern 0 -> 1 by full package", a.log_text())
        # The agent reports what it has; the server shows it.
        wait_for(lambda: all((c.get("status") or {}).get("components") == {"virus-pattern": 1}
                             for c in self.api("GET", "/api/v1/clients")["clients"]),
                 what="components reported")
        self.new_source_version()
        status = self.api("GET", "/api/v1/update")
        vp = next(c for c in status["components"] if c["name"] == "virus-pattern")
        self.assertEqual(vp["deltas"][0]["base"], 1)
        self.assertLess(vp["deltas"][0]["size"], vp["size"])
        # The smart pattern (hashes only) did not change: no new version.
        self.assertEqual(self.versions()["smart-pattern"], 1)
        answer = self.api("POST", "/api/v1/update/agents", {"scope": "root"})
        self.assertEqual(answer["notified"], 2)
        wait_for(lambda: self.installed(a) == 2 and self.installed(b) == 2, what="delta install")
        for x in (a, b):
            self.assertIn("virus-pattern 1 -> 2 by delta", x.log_text())
            # `current` is switched just before the line is logged.
            wait_for(lambda: "virus-pattern version 2 in use" in x.log_text(), what="the log")
        # An unchanged source is not imported again.
        answer = self.api("POST", "/api/v1/update/now")
        self.assertTrue(answer["ok"])
        self.assertEqual(answer["message"], "the source is unchanged")

    def test_scan_method_switch_acknowledged_once_installed(self):
        a = self.add_agent()
        wait_for(lambda: self.installed(a) == 1, what="virus pattern")
        self.assertEqual(self.installed(a, "smart-agent-pattern"), 0)
        cid = self.client_ids()[0]
        self.api("PUT", "/api/v1/settings", {"scope": f"client:{cid}", "key": "scan_method",
                                             "value": "smart"})
        wait_for(lambda: self.installed(a, "smart-agent-pattern") == 1, what="agent pattern")
        wait_for(lambda: self.api("GET", "/api/v1/notify/queue")["queue"] == [],
                 what="switch acknowledged")
        log = a.log_text()
        # Installed first, then the setting applied and acknowledged.
        self.assertLess(log.index("smart-agent-pattern version 1 in use"),
                        log.index('scan_method "conventional" -> "smart"'))
        # Back to conventional: the virus pattern held is current, nothing downloaded.
        self.api("PUT", "/api/v1/settings", {"scope": f"client:{cid}", "key": "scan_method",
                                             "value": "conventional"})
        wait_for(lambda: 'scan_method "smart" -> "conventional"' in a.log_text(),
                 what="switch back")
        self.assertEqual(a.log_text().count("virus-pattern 0 -> 1"), 1)

    def test_corrupt_cvd_keeps_previous_components(self):
        with open(clamav_cvd(6), "rb") as f:
            data = f.read()
        for name, content in (("main.cvd", data[:len(data) // 2]),
                              ("main.cvd", data[:600] + bytes([data[600] ^ 1]) + data[601:])):
            with open(os.path.join(self.src, name), "wb") as f:
                f.write(content)
            answer = self.api("POST", "/api/v1/update/now")
            self.assertFalse(answer["ok"])
            self.assertIn("main.cvd", answer["message"])
            self.assertEqual(self.versions()["virus-pattern"], 1)
        self.assertIn("the components in use stay as they were", self.server.log_text())
        # A malformed custom hash file names its line.
        shutil.copy(clamav_cvd(6), os.path.join(self.src, "main.cvd"))
        with open(os.path.join(self.src, "bad.hdb"), "w") as f:
            f.write("44d88612fea8a8f36de82e1278abb02f:68:Ok\nnot a hash\n")
        answer = self.api("POST", "/api/v1/update/now")
        self.assertFalse(answer["ok"])
        self.assertIn("bad.hdb line 2", answer["message"])
        os.unlink(os.path.join(self.src, "bad.hdb"))
        answer = self.api("POST", "/api/v1/update/now")
        self.assertTrue(answer["ok"], answer)
        self.assertEqual(self.versions()["virus-pattern"], 2)

    def test_tampered_packages_are_refused(self):
        a = self.add_agent()
        wait_for(lambda: self.installed(a) == 1, what="first install")
        # The running agent updates when told: Update Now through it.
        self.new_source_version()
        packages = os.path.join(self.server.data, "packages")
        delta = os.path.join(packages, "virus-pattern-1-2.tar.zst")
        full = os.path.join(packages, "virus-pattern-2.tar.zst")
        originals = {}
        for p in (delta, full):
            with open(p, "rb") as f:
                originals[p] = f.read()

        def update_now():
            return subprocess.run([a_bin(), "--config", a.conf, "update"],
                                  capture_output=True, text=True, timeout=120)

        # One flipped byte in each payload: refused, version 1 stays.
        for p, data in originals.items():
            with open(p, "wb") as f:
                f.write(data[:40] + bytes([data[40] ^ 0x20]) + data[41:])
        done = update_now()
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("refused", done.stderr)
        self.assertIn("differs", done.stderr)
        self.assertEqual(self.installed(a), 1)
        for p, data in originals.items():
            with open(p, "wb") as f:
                f.write(data)
        # One flipped byte in the manifest, then in the signature.
        with self.db() as db:
            env = db.execute("SELECT envelope FROM packages WHERE file = ?",
                             (os.path.basename(delta),)).fetchone()[0]
        doc = json.loads(env)
        for field, flip in (("manifest", lambda s: s.replace('"version":2', '"version":3')),
                            ("signature", lambda s: ("1" if s[0] == "0" else "0") + s[1:])):
            bad = dict(doc, **{field: flip(doc[field])})
            with self.db() as db:
                db.execute("UPDATE packages SET envelope = ? WHERE file = ?",
                           (json.dumps(bad), os.path.basename(delta)))
            done = update_now()
            self.assertNotEqual(done.returncode, 0, field)
            self.assertIn("signature does not match", done.stderr)
            self.assertEqual(self.installed(a), 1)
        with self.db() as db:
            db.execute("UPDATE packages SET envelope = ? WHERE file = ?",
                       (env, os.path.basename(delta)))
        done = update_now()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.installed(a), 2)
        # A replayed older version (version 1's package offered as newer) is refused.
        with self.db() as db:
            old = db.execute("SELECT envelope FROM packages WHERE component = "
                             "'virus-pattern' AND version = 1 AND base = 0").fetchone()
        self.assertIsNotNone(old)
        shutil.copy(os.path.join(packages, "virus-pattern-1.tar.zst"),
                    os.path.join(packages, "virus-pattern-9.tar.zst"))
        with self.db() as db:
            db.execute("INSERT INTO packages VALUES ('virus-pattern-9.tar.zst', "
                       "'virus-pattern', 9, 0, ?, ?, 0)",
                       (os.path.getsize(os.path.join(packages, "virus-pattern-1.tar.zst")),
                        old[0]))
        done = update_now()
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("not newer", done.stderr)
        self.assertEqual(self.installed(a), 2)

    def read_data(self, name):
        with open(os.path.join(self.server.data, name)) as f:
            return f.read()

    def pinned(self, agent):
        with open(os.path.join(agent.dir, "state", "credential.json")) as f:
            return json.load(f)["package_key"]

    def set_chain(self, chain):
        """Rewrites the stored rotation chain with wardd stopped."""
        self.assertEqual(self.server.stop(), 0)
        with self.db() as db:
            db.execute("UPDATE server_kv SET value = ? WHERE key = 'updates.rotations'",
                       (json.dumps(chain),))
        self.server.start()
        self.token = self.server.login()

    def test_key_rotation(self):
        """The signing key is rotated twice; a running agent and one that was
        stopped meanwhile follow the chain from their pin, re-pin, and take
        the version the newest key signed. A chain that does not start at an
        agent's pin moves nothing; a rotation cut off is finished or
        discarded at the next start."""
        a, b = self.add_agent(), self.add_agent()
        wait_for(lambda: self.installed(a) == 1 and self.installed(b) == 1, what="installs")
        k0 = self.read_data("signing.pub").strip()
        self.assertEqual(self.pinned(a), k0)
        a.stop()
        r1 = self.api("POST", "/api/v1/update/rotate-key")
        k1 = r1["key"]
        self.assertEqual((r1["previous"], r1["rotations"]), (k0, 1))
        self.assertNotEqual(k1, k0)
        k1_secret = self.read_data("signing.key")
        # Every stored package is signed anew, by the new key.
        with self.db() as db:
            envelopes = [json.loads(e) for (e,) in db.execute("SELECT envelope FROM packages")]
        self.assertEqual(r1["packages"], len(envelopes))
        self.assertEqual({e["key"] for e in envelopes}, {k1})
        self.assertEqual(self.read_data("signing.pub").strip(), k1)
        status = self.api("GET", "/api/v1/update")
        self.assertEqual((status["key"], status["rotations"]), (k1, 1))
        # New agents pin the key in use from the enrollment answer.
        status, body = self.server.request(
            "POST", "/api/v1/agent/enroll", {"uuid": "00000000-0000-4000-8000-000000000001",
                                             "hostname": "late"},
            token=self.read_data("enroll-token").strip())
        self.assertEqual((status, body["package_key"]), (201, k1))
        k2 = self.api("POST", "/api/v1/update/rotate-key")["key"]
        self.new_source_version()
        # The running agent follows both records and takes version 2.
        self.api("POST", "/api/v1/update/agents", {"scope": "root"})
        wait_for(lambda: self.installed(b) == 2, what="update after rotation")
        self.assertEqual(self.pinned(b), k2)
        for k in (k1, k2):
            self.assertIn(f"package signing key rotated to {k}", b.log_text())
        # A chain that does not start at a's pin (k0) cannot move it: the
        # packages k2 signed are refused and version 1 stays.
        status, plan = self.server.request(
            "POST", "/api/v1/agent/update", {"component": "virus-pattern", "have": 2},
            token=f"00000000-0000-4000-8000-000000000001:{body['secret']}")
        self.assertEqual((status, plan["steps"]), (200, []))
        chain = plan["rotations"]
        self.assertEqual([json.loads(r)["key"] for r in chain], [k1, k2])
        self.set_chain(chain[1:])
        a.start()  # Update Now goes through the running agent

        def update_a():
            return subprocess.run([a_bin(), "--config", a.conf, "update"],
                                  capture_output=True, text=True, timeout=120)
        done = update_a()
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("refused", done.stderr)
        self.assertEqual((self.installed(a), self.pinned(a)), (1, k0))
        self.set_chain(chain)
        done = update_a()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual((self.installed(a), self.pinned(a)), (2, k2))
        # A rotation cut off after the store recorded it (the new key still
        # in signing.key.new) is finished at the next start; one cut off
        # before (a key the chain does not name) is discarded.
        self.assertEqual(self.server.stop(), 0)
        data = self.server.data
        os.rename(os.path.join(data, "signing.key"), os.path.join(data, "signing.key.new"))
        with open(os.path.join(data, "signing.key"), "w") as f:
            f.write(k1_secret)
        self.server.start()
        self.token = self.server.login()
        self.assertIn("finished the key rotation", self.server.log_text())
        self.assertEqual(self.api("GET", "/api/v1/update")["key"], k2)
        self.assertEqual(self.read_data("signing.pub").strip(), k2)
        self.assertEqual(self.server.stop(), 0)
        with open(os.path.join(data, "signing.key.new"), "w") as f:
            f.write(k1_secret)
        self.server.start()
        self.token = self.server.login()
        self.assertIn("discarded a key rotation", self.server.log_text())
        self.assertFalse(os.path.exists(os.path.join(data, "signing.key.new")))
        self.assertEqual(self.api("GET", "/api/v1/update")["key"], k2)

    def test_broken_delta_chain_falls_back_to_full(self):
        a = self.add_agent()
        wait_for(lambda: self.installed(a) == 1, what="first install")
        a.stop()
        # The installed version was changed behind the agent's back.
        ndb = os.path.join(a.dir, "state", "components", "virus-pattern", "1", "test.ndb")
        with open(ndb, "a") as f:
            f.write("Extra.Sig:0:*:41424344454647\n")
        self.new_source_version()
        a.start()
        done = subprocess.run([a_bin(), "--config", a.conf, "update"], capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("taking the full package", a.log_text())
        self.assertIn("virus-pattern 1 -> 2 by full package", a.log_text())
        self.assertEqual(self.installed(a), 2)

    def test_scheduled_updates_and_roaming_agents(self):
        """Update Now reaches online agents; one with the roaming privilege is
        skipped and takes the new version at its next scheduled update."""
        a, b = self.add_agent(), self.add_agent()
        wait_for(lambda: self.installed(a) == 1 and self.installed(b) == 1, what="installs")
        with open(os.path.join(b.dir, "state", "credential.json")) as f:
            b_uuid = json.load(f)["uuid"]
        b_id = next(c["id"] for c in self.api("GET", "/api/v1/clients")["clients"]
                    if c["uuid"] == b_uuid)
        self.api("PUT", "/api/v1/settings", {"scope": "root", "key": "update.schedule",
                                             "value": "every 10s"})
        self.api("PUT", "/api/v1/settings", {"scope": "root", "key": "update.window",
                                             "value": 0})
        self.api("PUT", "/api/v1/settings", {"scope": f"client:{b_id}", "key": "roaming",
                                             "value": True})
        wait_for(lambda: "roaming false -> true" in b.log_text() and
                 "update.window 60 -> 0" in a.log_text(), what="settings applied")
        self.new_source_version()
        answer = self.api("POST", "/api/v1/update/agents", {"scope": "root"})
        self.assertEqual(answer["notified"], 1)
        self.assertEqual(answer["skipped"], {"roaming": 1})
        wait_for(lambda: self.installed(a) == 2, what="update now")
        wait_for(lambda: self.installed(b) == 2, timeout=40, what="scheduled update")
        log = b.log_text()
        self.assertIn("update: scheduled update", log)
        self.assertLess(log.index("update: scheduled update"),
                        log.index("virus-pattern 1 -> 2 by delta"))

    def test_update_now_can_be_switched_off(self):
        a = self.add_agent()
        wait_for(lambda: self.installed(a) == 1, what="first install")
        self.api("PUT", "/api/v1/settings", {"scope": "root", "key": "update.allow_update_now",
                                             "value": False})
        # The agent's first settings may come after the change (its log
        # then says "(unset) -> false").
        try:
            wait_for(lambda: re.search(r"update\.allow_update_now \S+ -> false", a.log_text()),
                     timeout=90, what="setting applied")
        except AssertionError:
            raise AssertionError("setting not applied; the agent's log:\n" + a.log_text() +
                                 "\nwardd's:\n" + self.server.log_text()[-6000:])
        done = subprocess.run([a_bin(), "--config", a.conf, "update"], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        self.assertIn("switched off by the administrator", done.stderr)

    def test_sources_for_ipv4_and_ipv6_agents_and_cut_download(self):
        packages = os.path.join(self.server.data, "packages")
        m4, m6 = Mirror(packages, "127.0.0.1"), Mirror(packages, "::1")
        self.mirrors += [m4, m6]
        self.api("PUT", "/api/v1/update-sources", {"sources": [
            {"range": "::1/128", "url": m6.url}, {"range": "127.0.0.0/8", "url": m4.url}]})
        a4 = self.add_agent(f"https://127.0.0.1:{self.server.port}")
        a6 = self.add_agent(f"https://[::1]:{self.server.port}")
        wait_for(lambda: self.installed(a4) == 1 and self.installed(a6) == 1, what="installs")
        self.assertEqual(m4.requests, ["/virus-pattern-1.tar.zst"])
        self.assertEqual(m6.requests, ["/virus-pattern-1.tar.zst"])
        # A source that cuts the download off: never installed half; the
        # agent takes it from the server instead.
        m4.cut = True
        self.new_source_version()
        self.api("POST", "/api/v1/update/agents", {"scope": "root"})
        wait_for(lambda: self.installed(a4) == 2 and self.installed(a6) == 2, what="updates")
        self.assertIn("/virus-pattern-1-2.tar.zst", m4.requests)
        self.assertIn("downloading from the server", a4.log_text())
        self.assertNotIn("downloading from the server", a6.log_text())

    def test_download_cap_under_200_clients(self):
        """200 clients download at once with max_downloads = 2: the server
        never serves more than 2, refuses the rest with 503 and Retry-After,
        and every client ends with the right bytes."""
        cap = 2
        # A payload of a few megabytes, so that downloads overlap.
        with open(os.path.join(self.src, "big.hdb"), "w") as f:
            for i in range(60000):
                f.write(f"{hashlib.md5(str(i).encode()).hexdigest()}:{1000 + i}:Big.{i}\n")
        # The answer waits for the import of 60,000 signatures: slow under
        # the sanitizers on a busy machine.
        self.assertTrue(self.api("POST", "/api/v1/update/now", timeout=120)["ok"])
        ids = []
        with open(os.path.join(self.server.data, "enroll-token")) as f:
            token = f.read().strip()
        for i in range(200):
            status, body = self.server.request("POST", "/api/v1/agent/enroll",
                                               {"uuid": f"00000000-0000-4000-8000-{i:012d}",
                                                "hostname": f"sim{i}"}, token=token)
            self.assertEqual(status, 201, body)
            ids.append(f"00000000-0000-4000-8000-{i:012d}:{body['secret']}")
        status, plan = self.server.request("POST", "/api/v1/agent/update",
                                           {"component": "virus-pattern", "have": 0},
                                           token=ids[0])
        self.assertEqual(status, 200, plan)
        step = plan["steps"][0]
        path = f"/api/v1/agent/download?file={step['file']}"
        with open(os.path.join(self.server.data, "packages", step["file"]), "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        results, refused, peak = [], [0], [0]
        lock = threading.Lock()
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                s = self.api("GET", "/api/v1/update")
                with lock:
                    peak[0] = max(peak[0], s["downloads"])
                time.sleep(0.1)

        def client(cred):
            # Until served: slow builds (sanitizers) take many rounds.
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                conn = http.client.HTTPSConnection("127.0.0.1", self.server.port,
                                                   context=ctx, timeout=30)
                conn.request("GET", path, headers={"Authorization": f"Bearer {cred}"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status == 200:
                    with lock:
                        results.append(hashlib.sha256(data).hexdigest())
                    return
                self.assertEqual(resp.status, 503)
                self.assertIsNotNone(resp.getheader("Retry-After"))
                with lock:
                    refused[0] += 1
                # Back again in 0.5 to 1 s (the server says 1 s and up): a
                # handshake per refused client every few ms starved the
                # downloads themselves under the sanitizers.
                time.sleep(0.5 + 0.5 * (hash(cred) % 100) / 100)

        sampler = threading.Thread(target=sample)
        sampler.start()
        threads = [threading.Thread(target=client, args=(c,)) for c in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        sampler.join()
        self.assertEqual(len(results), 200)
        self.assertEqual(set(results), {want})
        self.assertGreater(refused[0], 0)
        self.assertLessEqual(peak[0], cap)
        # The server's own high-water mark: the cap was reached, never passed.
        self.assertEqual(self.api("GET", "/api/v1/update")["downloads_peak"], cap)


def a_bin():
    return os.environ.get("WARD_AGENT_BIN", os.path.join(os.path.dirname(__file__),
                                                         "../../build/bin/ward-agent"))


if __name__ == "__main__":
    unittest.main()
