#!/usr/bin/env python3
"""Several wardd on one PostgreSQL database (the tests' own server,
tests/lib/pg.py): a second wardd joins with the first one's shared keys
(refused without them, and refused as a number another one runs as);
ward-loadgen agents enrolled with each; a change made through one server
reaches the agents of both, each delivery acknowledged exactly once; a
change of one agent reaches it on the other server (the doorbell); a task
queued through one server is handed to an agent parked on the other at
once; an administrator's session works on both. Failover: with
server.frontends naming both, agents learn the list at enrollment; one
server killed outright (SIGKILL) in the middle of a rollout, its agents
turn to the other within 30 s and each gets the version once; a real
ward-agent does the same and keeps the server it turned to.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (WARDD, Agent, AgentWire, Loadgen, Wardd, backend,  # noqa: E402
                      temp_dir, wait_for)

EXTRA = ("[enroll]\nper_token = 0\nper_address = 0\n[http]\nlong_poll = 60s\n"
         "[notify]\nbatch = 50\n[agents]\nverify_interval = 86400s\noffline_after = 600s\n"
         "[alerts]\ncheck_interval = 3600s\n")


@unittest.skipUnless(backend() == "postgresql", "several wardd share a PostgreSQL database")
class FrontendsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = temp_dir("ward-frontends-", self.addCleanup).name
        self.a = Wardd(os.path.join(self.tmp, "a"), extra=EXTRA)
        self.a.start()
        self.addCleanup(self.a.stop)
        self.token = self.a.login()
        with open(os.path.join(self.a.data, "enroll-token")) as f:
            self.enroll_token = f.read().strip()
        self.b = Wardd(os.path.join(self.tmp, "b"),
                       extra=f"{EXTRA}[server]\nfrontend = 1\n")
        self.b.use_database(self.a)

    def refused(self, server):
        done = subprocess.run([WARDD, "--config", server.conf], capture_output=True,
                              text=True, timeout=60)
        self.assertNotEqual(done.returncode, 0)
        return done.stderr

    def join(self, server):
        server.copy_shared_keys(self.a)
        server.start()
        self.addCleanup(server.stop)
        # a's enrollment bundle, naming this server.
        with open(os.path.join(self.a.data, "enroll.bundle")) as f:
            bundle = json.load(f)
        bundle["server"] = f"https://localhost:{server.port}"
        with open(os.path.join(server.data, "enroll.bundle"), "w") as f:
            json.dump(bundle, f)

    def both_listed(self):
        """server.frontends naming a then b, in both configurations; a
        restarted to read it, b joined."""
        urls = f"https://localhost:{self.a.port}, https://localhost:{self.b.port}"
        for server in (self.a, self.b):
            with open(server.conf, "a") as f:
                f.write(f"[server]\nfrontends = {urls}\n")
        self.assertEqual(self.a.stop(), 0)
        self.a.start()
        self.join(self.b)

    def test_killed_frontend_agents_fail_over_each_delivery_once(self):
        self.both_listed()
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        gen = Loadgen(self, self.a, gens, 60, self.enroll_token, long_poll=60, spread=1)
        # A rollout through b to a's agents, a killed in its middle.
        body = self.set_root(self.b, "update.schedule", "daily 01:01")
        self.assertEqual(body["changed"], 60)
        version = self.version(gen.clients[0])
        time.sleep(0.05)
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait()
        killed = time.monotonic()
        wait_for(lambda: {(c, version) for c in gen.clients} <= set(gen.deliveries()),
                 timeout=30, what="every agent of the killed server served by the other")
        self.assertLess(time.monotonic() - killed, 30)
        # A change after the failover reaches them from b alone.
        self.set_root(self.b, "update.schedule", "daily 02:02")
        second = self.version(gen.clients[0], self.b)
        wait_for(lambda: {(c, second) for c in gen.clients} <= set(gen.acked()),
                 timeout=30, what="the next change acknowledged through b")
        time.sleep(1)
        got = gen.deliveries()
        self.assertEqual(len(got), len(set(got)), "a version delivered twice")
        status, body = self.b.request("GET", "/api/v1/notify/queue", token=self.token)
        self.assertEqual((status, body["queue"]), (200, []))

    def test_ward_agent_fails_over_and_keeps_the_server(self):
        self.both_listed()
        agent = Agent(self.tmp, "roamer")
        agent.enroll_with(self.a)
        self.assertEqual(agent.credential()["servers"],
                         [f"https://localhost:{self.a.port}", f"https://localhost:{self.b.port}"])
        agent.start()
        self.addCleanup(agent.stop)
        agent.wait_settings(self.a, self.token)
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait()
        self.set_root(self.b, "update.schedule", "daily 03:03")
        agent.wait_settings(self.b, self.token, what="the change through b applied")
        self.assertEqual(agent.credential()["server"], f"https://localhost:{self.b.port}")
        self.assertIn("does not answer; turning to", agent.log_text())

    def set_root(self, server, key, value):
        status, body = server.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": key, "value": value, "apply": "all"}, token=self.token)
        self.assertEqual(status, 200, body)
        return body

    def version(self, client, server=None):
        status, body = (server or self.a).request("GET", f"/api/v1/client?id={client}",
                                                  token=self.token)
        self.assertEqual(status, 200, body)
        return body["version"]

    def test_join_refused_without_the_shared_keys(self):
        err = self.refused(self.b)
        self.assertIn("lacks what each wardd of it shares: ca.key ca.crt sps-ca.key "
                      "sps-ca.crt signing.key signing.pub", err)
        # Nothing was made in its place.
        self.assertFalse(os.path.exists(os.path.join(self.b.data, "ca.key")))
        self.join(self.b)
        # A third wardd as the same number is refused while the second runs.
        c = Wardd(os.path.join(self.tmp, "c"), extra=f"{EXTRA}[server]\nfrontend = 1\n")
        c.use_database(self.a)
        c.copy_shared_keys(self.a)
        self.assertIn("another wardd on this database runs as frontend 1", self.refused(c))

    def test_changes_reach_the_agents_of_every_server_once(self):
        self.join(self.b)
        # One session serves on both.
        self.assertEqual(self.b.request("GET", "/api/v1/tree", token=self.token)[0], 200)
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        on_a = Loadgen(self, self.a, gens, 40, self.enroll_token, long_poll=60, spread=1)
        on_b = Loadgen(self, self.b, gens, 40, self.enroll_token, long_poll=60, spread=1)
        everyone = on_a.clients + on_b.clients
        # A root change made through either server reaches all 80, each
        # acknowledged once.
        for server, value in ((self.a, "daily 03:10"), (self.b, "daily 03:20")):
            body = self.set_root(server, "update.schedule", value)
            self.assertEqual(body["changed"], 80)
            version = self.version(everyone[0])
            wait_for(lambda: {(c, version) for c in everyone} <=
                     set(on_a.acks() + on_b.acks()), timeout=60,
                     what=f"the change through {server.port} acknowledged by every agent")
        time.sleep(1)
        acks = on_a.acks() + on_b.acks()
        self.assertEqual(len(acks), len(set(acks)), "a delivery acknowledged twice")
        # A change of one agent of b, made through a.
        client = on_b.clients[7]
        status, body = self.a.request("PUT", "/api/v1/settings", {
            "scope": f"client:{client}", "key": "update.schedule", "value": "daily 04:44"},
            token=self.token)
        self.assertEqual((status, body.get("changed")), (200, 1), body)
        version = self.version(client)
        started = time.monotonic()
        wait_for(lambda: (client, version) in on_b.acks(), timeout=30,
                 what="the change through a acknowledged by b's agent")
        self.assertLess(time.monotonic() - started, 10)
        # Nothing is left in the queue, as both servers see it.
        for server in (self.a, self.b):
            status, body = server.request("GET", "/api/v1/notify/queue", token=self.token)
            self.assertEqual((status, body["queue"]), (200, []))

    def test_task_reaches_an_agent_parked_on_the_other_server(self):
        self.join(self.b)
        (wire,) = AgentWire.enrolled(self.b, self.tmp, "parked")
        self.assertEqual(wire.poll(self.token, wait=1)[0], 204)
        answer = {}

        def park():
            answer["poll"] = wire.poll(self.token, wait=30)
        t = threading.Thread(target=park)
        t.start()
        time.sleep(1)
        started = time.monotonic()
        status, body = self.a.request("POST", "/api/v1/scans", {
            "scope": f"client:{wire.id}", "paths": ["/srv"]}, token=self.token)
        self.assertEqual(status, 200, body)
        self.assertEqual([t["client"] for t in body["tasks"]], [wire.id], body)
        t.join(40)
        self.assertLess(time.monotonic() - started, 10)
        status, got = answer["poll"]
        self.assertEqual(status, 200, got)
        self.assertEqual([x["id"] for x in got["tasks"]], [body["tasks"][0]["task"]])


if __name__ == "__main__":
    unittest.main()
