#!/usr/bin/env python3
"""wardd with several real ward-agent processes on loopback.

Enrollment over IPv4 and IPv6, a settings change reaching every agent in
batches of notify.batch, a server killed with SIGKILL in the middle of a
batched notification resuming its queue without losing or repeating a
delivery, and an offline agent getting the change when it comes back.
WARDD_BIN and WARD_AGENT_BIN name the programs.
"""
import json
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, wait_for, Wardd  # noqa: E402


class AgentsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-agents-")
        self.server = Wardd(self.tmp.name, extra="[notify]\nbatch = 2\n[http]\nlong_poll = 5s\n")
        self.server.start()
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.stop()
        self.server.stop()
        self.tmp.cleanup()

    def add_agents(self, n):
        bundle = os.path.join(self.server.data, "enroll.bundle")
        for i in range(n):
            a = Agent(self.tmp.name, f"agent{len(self.agents)}")
            done = a.enroll("--bundle", bundle)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("enrolled with", done.stdout)
            a.uuid = done.stdout.split()[-1]
            a.start()
            self.agents.append(a)
        wait_for(lambda: all(a.version() > 0 for a in self.agents), what="first settings")

    def set_root(self, key, value, token):
        status, body = self.server.request("PUT", "/api/v1/settings",
                                           {"scope": "root", "key": key, "value": value,
                                            "apply": "all"}, token=token)
        self.assertEqual(status, 200, body)
        return body["changed"]

    def test_change_reaches_every_agent_in_batches(self):
        self.add_agents(5)
        token = self.server.login()
        _, tree = self.server.request("GET", "/api/v1/tree", token=token)
        self.assertEqual(len(tree["clients"]), 5)
        self.assertEqual(self.set_root("scan_method", "smart", token), 5)
        peak = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, q = self.server.request("GET", "/api/v1/notify/queue", token=token)
            peak = max(peak, q["in_flight"])
            if not q["queue"]:
                break
        self.assertLessEqual(peak, 2, "more agents notified at once than notify.batch")
        wait_for(lambda: all("scan_method \"conventional\" -> \"smart\"" in a.log_text()
                             for a in self.agents), what="every agent switching to smart")

    def test_agents_pin_the_package_key(self):
        self.add_agents(1)
        with open(os.path.join(self.agents[0].dir, "state", "credential.json")) as f:
            cred = json.load(f)
        with open(os.path.join(self.server.data, "signing.pub")) as f:
            self.assertEqual(cred["package_key"], f.read().strip())

    def test_enroll_over_ipv6_and_bad_tokens(self):
        a = Agent(self.tmp.name, "v6")
        token_file = os.path.join(self.server.data, "enroll-token")
        with open(token_file) as f:
            token = f.read().strip()
        ca = os.path.join(self.server.data, "ca.crt")
        done = a.enroll("--server", f"https://[::1]:{self.server.port}", "--token", token,
                        "--ca", ca)
        self.assertEqual(done.returncode, 0, done.stderr)
        a.start()
        self.agents.append(a)
        wait_for(lambda: a.version() > 0, what="settings over IPv6")
        bad = Agent(self.tmp.name, "bad")
        done = bad.enroll("--server", f"https://127.0.0.1:{self.server.port}", "--token",
                          "0" * 64, "--ca", ca)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("401", done.stderr)
        self.assertIn("POST /api/v1/agent/enroll from 127.0.0.1: 401 missing, expired or "
                      "unknown bearer token", self.server.log_text())

    def test_enroll_bundle_with_server(self):
        """--server beside --bundle replaces the bundle's address (https only)."""
        bundle = os.path.join(self.server.data, "enroll.bundle")
        with open(bundle) as f:
            self.assertEqual(json.load(f)["server"], f"https://localhost:{self.server.port}")
        agent = Agent(self.tmp.name, "elsewhere")
        url = f"https://[::1]:{self.server.port}"
        done = agent.enroll("--bundle", bundle, "--server", url)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"enrolled with {url} as ", done.stdout)
        with open(os.path.join(agent.dir, "state", "credential.json")) as f:
            cred = json.load(f)
        self.assertEqual(cred["server"], url)
        _, logs = self.server.request("GET", "/api/v1/logs?kind=system",
                                      token=self.server.login())
        self.assertIn(f"enrolled from ::1 as client {cred['client']}",
                      "\n".join(e["message"] for e in logs["events"]))
        for i, bad in enumerate(("http://localhost:1", "https://", "https://host:0",
                                 "https://host:99999", "https://host/path", "https://ho st",
                                 "localhost:1", "https://[::1")):
            other = Agent(self.tmp.name, f"bad{i}")
            done = other.enroll("--bundle", bundle, "--server", bad)
            self.assertEqual(done.returncode, 2, bad)
            self.assertIn(f"server '{bad}' is not https://HOST[:PORT]", done.stderr)
            self.assertFalse(os.path.exists(os.path.join(other.dir, "state")), bad)
        done = Agent(self.tmp.name, "both").enroll("--bundle", bundle, "--token", "0" * 64)
        self.assertEqual(done.returncode, 2)
        self.assertIn("only --server may go with it", done.stderr)

    def test_sigkill_mid_batch_resumes_without_loss_or_repeat(self):
        self.add_agents(6)
        token = self.server.login()
        self.set_root("roaming", True, token)
        # Kill the server while the batch of 2 is being worked through.
        time.sleep(0.05)
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait()
        self.server.log.close()
        self.server.start()
        wait_for(lambda: all(a.version() == self.agents[0].version() and a.version() >= 2
                             for a in self.agents) and
                 all("roaming false -> true" in a.log_text() for a in self.agents),
                 timeout=60, what="every agent getting the change after the restart")
        token = self.server.login()
        wait_for(lambda: not self.server.request("GET", "/api/v1/notify/queue",
                                                 token=token)[1]["queue"],
                 what="an empty queue")
        for a in self.agents:
            applied = a.applied()
            self.assertEqual(len(applied), len(set(applied)),
                             f"an agent applied a version twice: {applied}")

    def test_offline_agent_gets_change_on_reconnect(self):
        self.add_agents(2)
        off = self.agents[1]
        off.stop()
        token = self.server.login()
        self.set_root("update.schedule", "weekly mon 01:00", token)
        wait_for(lambda: "weekly mon 01:00" in self.agents[0].log_text(),
                 what="the online agent")
        # The online agent logs the change before its acknowledgement lands.
        queue = lambda: self.server.request("GET", "/api/v1/notify/queue",
                                            token=token)[1]["queue"]
        wait_for(lambda: len(queue()) == 1, what="the online agent's acknowledgement")
        self.assertNotIn("weekly mon 01:00", off.log_text())
        self.assertEqual(queue()[0]["uuid"], off.uuid)
        off.start()
        wait_for(lambda: "weekly mon 01:00" in off.log_text(), what="the returning agent")

    def test_lost_acknowledgement(self):
        """An agent that applied a delivery but stopped before acknowledging
        it polls again with that version: the send is done, and a newer
        change reaches it at once (not after notify.ack_timeout)."""
        with open(os.path.join(self.server.data, "enroll-token")) as f:
            enroll = f.read().strip()
        uuid = "00000000-0000-4000-8000-00000000000a"
        status, body = self.server.request("POST", "/api/v1/agent/enroll",
                                           {"uuid": uuid, "hostname": "lossy"}, token=enroll)
        self.assertEqual(status, 201, body)
        cred = f"{uuid}:{body['secret']}"
        status, first = self.server.request("POST", "/api/v1/agent/events",
                                            {"version": 0, "wait": 5}, token=cred)
        self.assertEqual(status, 200, first)
        token = self.server.login()
        self.set_root("scan_method", "smart", token)
        started = time.monotonic()
        status, second = self.server.request("POST", "/api/v1/agent/events",
                                             {"version": first["version"], "wait": 5},
                                             token=cred)
        self.assertEqual(status, 200, second)
        self.assertGreater(second["version"], first["version"])
        self.assertEqual(second["settings"]["scan_method"], "smart")
        self.assertLess(time.monotonic() - started, 4)
        _, q = self.server.request("GET", "/api/v1/notify/queue", token=token)
        self.assertEqual(q["in_flight"], 1)

    def test_roaming_agent_gets_change_when_back(self):
        self.add_agents(2)
        token = self.server.login()
        roamer = self.agents[1]
        status, body = self.server.request("GET", "/api/v1/clients", token=token)
        rid = max(c["id"] for c in body["clients"])
        self.server.request("PUT", "/api/v1/settings", {"scope": f"client:{rid}",
                                                        "key": "roaming", "value": True},
                            token=token)
        wait_for(lambda: "roaming false -> true" in roamer.log_text(), what="the privilege")
        roamer.stop()
        # Away (its channel closed, its last poll long ago): roaming, and
        # nothing reaches it until it is back. Its last poll is written
        # within a second: the change comes after.
        time.sleep(1.5)
        db = self.server.db()
        db.execute("UPDATE clients SET last_seen = last_seen - 600 WHERE node = ?", (rid,))
        db.commit()
        db.close()
        wait_for(lambda: {c["id"]: c["state"] for c in self.server.request(
            "GET", "/api/v1/clients", token=token)[1]["clients"]}[rid] == "roaming",
            timeout=90, what="the agent counted as roaming")
        self.set_root("update.allow_update_now", False, token)
        wait_for(lambda: "update.allow_update_now true -> false" in self.agents[0].log_text(),
                 what="the agent at home")
        self.assertNotIn("update.allow_update_now true -> false", roamer.log_text())
        roamer.start()
        wait_for(lambda: "update.allow_update_now true -> false" in roamer.log_text(),
                 what="the roaming agent once back")


class ReconnectTest(unittest.TestCase):
    """An agent restarted (within agents.offline_after) after a delivery to
    it went unacknowledged gets it at once, not after notify.retry_interval."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-reconnect-")
        self.server = Wardd(self.tmp.name, extra="[notify]\nack_timeout = 2s\n"
                            "retry_interval = 15m\n[http]\nlong_poll = 5s\n")
        self.server.start()
        self.agent = Agent(self.tmp.name, "agent")

    def tearDown(self):
        self.agent.stop()
        self.server.stop()
        self.tmp.cleanup()

    def test_restarted_agent_gets_pending_delivery_at_once(self):
        agent = self.agent
        done = agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        agent.start()
        wait_for(lambda: agent.version() > 0, what="first settings")
        # Frozen in its long poll: the delivery reaches its socket, is never
        # acknowledged, and its retry is put 15 minutes off.
        os.kill(agent.proc.pid, signal.SIGSTOP)
        token = self.server.login()
        status, body = self.server.request("PUT", "/api/v1/settings",
                                           {"scope": "root", "key": "update.schedule",
                                            "value": "weekly tue 04:00"}, token=token)
        self.assertEqual(status, 200, body)
        wait_for(lambda: "not acknowledged (attempt 1); retried later" in
                 self.server.log_text(), what="the delivery counted unacknowledged")
        agent.stop()
        self.assertNotIn("weekly tue 04:00", agent.log_text())
        agent.start()
        wait_for(lambda: "weekly tue 04:00" in agent.log_text(), timeout=20,
                 what="the pending delivery reaching the restarted agent")
        wait_for(lambda: self.server.request("GET", "/api/v1/notify/queue",
                                             token=token)[1]["queue"] == [],
                 what="its acknowledgement")


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
