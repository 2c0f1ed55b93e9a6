#!/usr/bin/env python3
"""Several wardd on one PostgreSQL database (the tests' own server,
tests/lib/pg.py): a second wardd joins with the first one's shared keys
(refused without them, and refused as a number another one runs as);
ward-loadgen agents enrolled with each; a change made through one server
reaches the agents of both, each delivery acknowledged exactly once; a
change of one agent reaches it on the other server (the doorbell) within 50 ms; a task
queued through one server is handed to an agent parked on the other at
once; an administrator's session works on both. Failover: with
server.frontends naming both, agents learn the list at enrollment; one
server killed outright (SIGKILL) in the middle of a rollout, its agents
turn to the other within 30 s and each gets the version once; a real
ward-agent does the same and keeps the server it turned to.
"""
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import types
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pg  # noqa: E402
from wardtest import (WARDD, Agent, AgentWire, Loadgen, Wardd, backend,  # noqa: E402
                      demo_signatures, free_port, temp_dir, wait_for)

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

    def test_a_frontend_cut_off_from_the_database_sends_its_agents_away(self):
        # b reaches the database through a relay the test cuts as a
        # partition would: nothing passes, no connection is ended.
        relay = pg.Relay()
        self.addCleanup(relay.close)
        self.b.use_database(self.a, relay.uri(self.a.database))
        self.both_listed()
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        gen = Loadgen(self, self.b, gens, 30, self.enroll_token, long_poll=60, spread=1)
        relay.cut()
        cut = time.monotonic()
        wait_for(lambda: self.status(self.b) == 503, timeout=30, what="b answering 503, cut off")
        self.assertLess(time.monotonic() - cut, 20)
        # Its agents turn to a and get a change made there, each once.
        self.set_root(self.a, "update.schedule", "daily 05:05")
        version = self.version(gen.clients[0])
        wait_for(lambda: {(c, version) for c in gen.clients} <= set(gen.acked()),
                 timeout=30, what="b's agents served by a")
        self.assertLess(time.monotonic() - cut, 45)
        got = gen.deliveries()
        self.assertEqual(len(got), len(set(got)), "a version delivered twice")
        try:
            # (The doorbell's look finds the silence, or a statement's wait
            # does first, under load: either says so.)
            wait_for(lambda: any(why in self.b.log_text() for why in (
                "doorbell: the database did not answer",
                "database: PostgreSQL did not answer within")),
                timeout=10, what="b saying why it answers 503")
            # The doorbell itself is lost too, even when a statement found
            # the silence first (its question stays unanswered): mended
            # before that, b would never have stopped hearing.
            wait_for(lambda: "answers 503 until it hears the other servers again"
                     in self.b.log_text(), timeout=30, what="b's doorbell lost")
        except AssertionError:
            print("b's log:\n" + self.b.log_text()[-6000:], file=sys.stderr)
            raise
        # Mended, b answers again and hears a change made through a.
        relay.mend()
        wait_for(lambda: self.status(self.b) == 200, timeout=40, what="b answering again")
        self.assertIn("hearing the other servers again", self.b.log_text())

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

    def status(self, server):
        """The status of GET /api/v1/clients on server (0: no answer in
        time; its loop may wait out a statement the database does not
        answer)."""
        try:
            return server.request("GET", "/api/v1/clients", token=self.token, timeout=3)[0]
        except OSError:
            return 0

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

    def test_a_change_through_one_server_reaches_the_other_at_once(self):
        # The doorbell wakes b, which answers its agent's parked poll then:
        # the answer waited for b's next timer (up to 250 ms) while nothing
        # else woke b's loop, for libmicrohttpd, run on wardd's loop, has
        # nothing a resumed connection would wake.
        self.join(self.b)
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        on_b = Loadgen(self, self.b, gens, 1, self.enroll_token, long_poll=60, spread=1)
        client = on_b.clients[0]
        took = []
        for i in range(12):
            time.sleep(0.3)  # acknowledged, parked again
            seen = len(on_b.deliveries())
            start = time.time()
            status, body = self.a.request("PUT", "/api/v1/settings", {
                "scope": f"client:{client}", "key": "update.schedule",
                "value": f"daily 05:{i:02d}"}, token=self.token)
            self.assertEqual((status, body.get("changed")), (200, 1), body)
            wait_for(lambda: len(on_b.deliveries()) > seen, timeout=10,
                     what="the change through a delivered by b")
            with open(on_b.events_path) as f:
                got_ns = int(f.read().splitlines()[seen].split()[2])
            took.append(got_ns / 1e9 - start)
        took.sort()
        self.assertLess(took[len(took) // 2], 0.05, took)

    def test_changes_at_once_through_both_lose_nothing(self):
        # Two settings changed at the same moment, one through each
        # server, 30 times: each time, every client's stored settings
        # (what it is sent) must hold both new values. A refresh that read
        # the settings before the other server's commit would write one
        # over.
        self.join(self.b)
        wires = AgentWire.enrolled(self.a, self.tmp, "one", "two")
        together = threading.Barrier(2, timeout=60)
        lost = []

        def change(server, key, first):
            for i in range(30):
                together.wait()
                status, body = server.request("PUT", "/api/v1/settings", {
                    "scope": "root", "key": key, "value": first + i, "apply": "all"},
                    token=self.token)
                self.assertEqual(status, 200, body)
                together.wait()
                if server is not self.a:
                    continue
                for wire in wires:
                    (text,) = self.a.db().execute("SELECT eff_json FROM clients WHERE "
                                                  "node = ?", (wire.id,)).fetchone()
                    eff = json.loads(text)
                    if (eff["update.window"], eff["realtime.timeout"]) != (61 + i, 11 + i):
                        lost.append((i, eff["update.window"], eff["realtime.timeout"]))
        threads = [threading.Thread(target=change, args=(self.a, "update.window", 61)),
                   threading.Thread(target=change, args=(self.b, "realtime.timeout", 11))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(lost, [])

    def test_a_long_wait_for_a_lock_is_waited_out(self):
        # Another session holds the tree's lock for 15 s, as a long change
        # through another frontend would: a change through a waits for
        # it (the server answers on the doorbell's connection meanwhile)
        # rather than giving its connection up after 10 s.
        held = threading.Thread(target=lambda: self.a.db().execute(
            "BEGIN; SELECT pg_advisory_xact_lock(1466004068, 1); SELECT pg_sleep(15); COMMIT"))
        held.start()
        time.sleep(1)
        started = time.monotonic()
        status, body = self.a.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": "update.window", "value": 77, "apply": "all"},
            token=self.token, timeout=60)
        self.assertEqual(status, 200, body)
        self.assertGreater(time.monotonic() - started, 12)
        held.join(30)
        self.assertNotIn("given up", self.a.log_text())

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


@unittest.skipUnless(backend() == "postgresql", "several wardd share a PostgreSQL database")
class SharedLimitsTest(unittest.TestCase):
    """The limits are the database's, not each server's: an address's wrong
    passwords given to one server make it wait at the other, the global
    brake engaged through one holds on both, and enrollments per address
    are counted across both."""

    def setUp(self):
        tmp = temp_dir("ward-limits-", self.addCleanup).name
        self.a, self.b = pair(self, tmp, "[enroll]\nper_token = 0\nper_address = 3\n[server]\n"
                              "signin_brake_failures = 8\nsignin_brake_window = 5m\n"
                              "signin_queue = 2\n")

    def login(self, server, password, source="127.0.0.1"):
        return server.request("POST", "/api/v1/login", {"user": "admin", "password": password},
                              source=source, timeout=60)

    def test_wrong_passwords_count_on_every_server(self):
        # Five wrong passwords from one address, spread over both servers.
        for server in (self.a, self.b, self.a, self.b):
            self.assertEqual(self.login(server, "wrong")[0], 401)
        self.assertEqual(self.login(self.a, "wrong")[0], 401)
        for server in (self.a, self.b):
            status, body = self.login(server, self.a.password())
            self.assertEqual(status, 429, body)
            self.assertIn("too many wrong passwords from 127.0.0.1", body["error"])
        # Another address is not held back; the brake (8 of all addresses)
        # engages with the next three, through b, and shows on a.
        self.assertEqual(self.login(self.a, self.a.password(), source="127.0.0.2")[0], 200)
        for n in range(3):
            self.assertEqual(self.login(self.b, "wrong", source=f"127.0.0.{3 + n}")[0], 401)
        status, body = self.a.request("GET", "/api/v1/logs?kind=system&limit=1000",
                                      token=self.login(self.a, self.a.password(),
                                                       source="127.0.0.2")[1]["token"])
        self.assertEqual(status, 200, body)
        self.assertTrue(any(e["message"].startswith("sign-in brake engaged")
                            for e in body["events"]))

    def test_enrollments_per_address_count_on_every_server(self):
        with open(os.path.join(self.a.data, "enroll-token")) as f:
            token = f.read().strip()

        def enroll(server):
            status, _ = server.request("POST", "/api/v1/agent/enroll", {
                "uuid": str(uuid.uuid4()), "hostname": "limited.test"}, token=token)
            return status
        self.assertEqual([enroll(s) for s in (self.a, self.b, self.a, self.b, self.a)],
                         [201, 201, 201, 429, 429])
        self.assertIn("address 127.0.0.1 is over enroll.per_address", self.b.log_text())


@unittest.skipUnless(backend() == "postgresql", "several wardd share a PostgreSQL database")
class SharedPackagesTest(unittest.TestCase):
    """Signature imports on several servers: one at a time, the packages it
    builds served by every server (copied from the database, checked
    against their signed envelopes), the same Smart Scan Pattern loaded by
    every server's smart protection server."""

    def setUp(self):
        self.tmp = temp_dir("ward-packages-", self.addCleanup).name
        self.src = demo_signatures(self.tmp)
        # b joins after a built the first components.
        self.a, self.b = pair(self, self.tmp, f"[updates]\nsource_dir = {self.src}\n"
                              f"watch_interval = 1s\n{EXTRA}", first=self.first_import)

    def first_import(self, a):
        self.token = a.login()
        a.wait_component(self.token)

    def smart_version(self):
        return self.a.components(self.token)["smart-pattern"]

    def test_packages_built_by_one_are_served_by_every_server(self):
        # b joined after a's import: it copies every package and puts the
        # newest versions together, its smart protection server loading
        # the pattern a built.
        wait_for(lambda: f"sps: Smart Scan Pattern version {self.smart_version()} in use" in
                 self.b.log_text(), what="b's smart protection server on a's pattern")
        self.assertIn("copied from the database", self.b.log_text())
        for name in os.listdir(os.path.join(self.a.data, "packages")):
            with open(os.path.join(self.a.data, "packages", name), "rb") as f, \
                    open(os.path.join(self.b.data, "packages", name), "rb") as g:
                self.assertEqual(f.read(), g.read(), name)
        # An agent of b updates from b.
        with open(os.path.join(self.a.data, "enroll.bundle")) as f:
            bundle = json.load(f)
        bundle["server"] = f"https://localhost:{self.b.port}"
        with open(os.path.join(self.b.data, "enroll.bundle"), "w") as f:
            json.dump(bundle, f)
        agent = Agent(self.tmp, "on-b")
        agent.enroll_with(self.b)
        agent.start()
        self.addCleanup(agent.stop)
        wait_for(lambda: installed(agent) == 1, timeout=60, what="version 1 from b")
        # A new source: both servers watch it; one imports, once.
        with open(os.path.join(self.src, "more.hdb"), "w") as f:
            f.write("0123456789abcdef0123456789abcdef:12:Demo.More\n")
        self.a.wait_component(self.token, version=2, what="the second import")
        # Asked through a, the agent updates from b.
        status, body = self.a.request("POST", "/api/v1/update/agents", {"scope": "root"},
                                      token=self.token)
        self.assertEqual((status, body["notified"]), (200, 1), body)
        wait_for(lambda: installed(agent) == 2, timeout=60, what="version 2 from b")
        wait_for(lambda: f"sps: Smart Scan Pattern version {self.smart_version()} in use" in
                 self.b.log_text(), what="b's smart protection server on the new pattern")
        time.sleep(2)
        self.assertEqual(self.a.components(self.token)["virus-pattern"], 2)
        for server in (self.a, self.b):
            self.assertNotIn("import of", server.log_text())
            self.assertNotIn("refused", server.log_text())

    def test_a_copy_that_fails_its_check_is_not_served(self):
        # A part altered in the database: b refuses the copy, serves nothing
        # of it, and says which package and why.
        self.b.stop()
        for name in os.listdir(os.path.join(self.b.data, "packages")):
            os.unlink(os.path.join(self.b.data, "packages", name))
        self.a.db().execute("UPDATE package_parts SET data = overlay(data placing '\\x00' "
                            "from 20 for 1) WHERE file LIKE 'virus-pattern-1%'")
        self.b.start()
        wait_for(lambda: "the copy of package virus-pattern-1.tar.zst from the database is "
                 "refused" in self.b.log_text(), what="the altered copy refused")
        self.assertFalse(os.path.exists(os.path.join(self.b.data, "packages",
                                                     "virus-pattern-1.tar.zst")))


HAPROXY_CFG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging",
                           "ward-haproxy.cfg")


@unittest.skipUnless(backend() == "postgresql", "several wardd share a PostgreSQL database")
class BalancerTest(unittest.TestCase):
    """Debian's HAProxy in front of two wardd, with the configuration Ward
    ships (packaging/ward-haproxy.cfg): agents enrolled through it are
    spread over both; one wardd killed, its agents come back through the
    balancer to the other and get a change once; one cut off from the
    database answers 503 to the balancer's health check and is taken out."""

    def setUp(self):
        self.tmp = temp_dir("ward-balancer-", self.addCleanup).name
        self.port = free_port()
        url = f"https://localhost:{self.port}"
        extra = f"{EXTRA}[server]\nfrontends = {url}\n"
        self.relay = pg.Relay()
        self.addCleanup(self.relay.close)
        self.a, self.b = pair(self, self.tmp, extra, relay=self.relay)
        self.token = self.a.login()
        # HAProxy says on stderr when it takes a server out or back.
        self.haproxy_log = open(os.path.join(self.tmp, "haproxy.log"), "w")
        self.addCleanup(self.haproxy_log.close)
        self.haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", HAPROXY_CFG],
            env=dict(os.environ, WARD_LISTEN=f"127.0.0.1:{self.port}",
                     WARDD1=f"127.0.0.1:{self.a.port}", WARDD2=f"127.0.0.1:{self.b.port}"),
            stdout=subprocess.DEVNULL, stderr=self.haproxy_log)
        self.addCleanup(self.stop_haproxy)
        # The balancer, as agents see it: a's CA and enrollment token.
        self.balancer = types.SimpleNamespace(port=self.port, data=self.a.data)
        wait_for(lambda: self.health() == 200, what="HAProxy passing requests")

    def haproxy_text(self):
        with open(os.path.join(self.tmp, "haproxy.log")) as f:
            return f.read()

    def stop_haproxy(self):
        self.haproxy.terminate()
        self.haproxy.wait(timeout=30)

    def health(self):
        """The status of GET /api/v1/health through the balancer (0: none)."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.a.data, "ca.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/api/v1/health")
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    def change(self, value):
        status, body = self.a.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": "update.schedule", "value": value, "apply": "all"},
            token=self.token)
        self.assertEqual(status, 200, body)

    def version(self, client, server):
        status, body = server.request("GET", f"/api/v1/client?id={client}", token=self.token)
        self.assertEqual(status, 200, body)
        return body["version"]

    def test_agents_through_the_balancer(self):
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        gen = Loadgen(self, self.balancer, gens, 40, long_poll=60, spread=1)
        # Spread over both (by connections): the frontend each agent last
        # polled, as the database holds it.
        for server in (self.a, self.b):
            self.assertIn("enrolled from 127.0.0.1", server.log_text())
        # (Written within a second of their polls.)
        polled = lambda: dict(self.a.db().execute("SELECT frontend, count(*) FROM clients "
                                                  "GROUP BY frontend").fetchall())
        wait_for(lambda: polled().get(0) and polled().get(1), timeout=10,
                 what=f"agents polling both frontends: {polled()}")
        # One cut off from the database: out of the balancer's rotation,
        # its agents served by the other, each change once.
        self.relay.cut()
        self.change("daily 06:06")
        version = self.version(gen.clients[0], self.a)
        wait_for(lambda: {(c, version) for c in gen.clients} <= set(gen.acked()),
                 timeout=45, what="every agent served through the balancer")
        wait_for(lambda: "Server wardd/wardd2 is DOWN" in self.haproxy_text(), timeout=30,
                 what="the balancer taking the cut-off wardd out")
        # The other killed: mended first, the cut-off one takes them all.
        self.relay.mend()
        wait_for(lambda: "Server wardd/wardd2 is UP" in self.haproxy_text(), timeout=60,
                 what="the balancer taking b back")
        time.sleep(3)
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait()
        status, body = self.b.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": "update.schedule", "value": "daily 07:07", "apply": "all"},
            token=self.token)
        self.assertEqual(status, 200, body)
        second = self.version(gen.clients[0], self.b)
        wait_for(lambda: {(c, second) for c in gen.clients} <= set(gen.acked()),
                 timeout=45, what="every agent served by b after a was killed")
        got = gen.deliveries()
        self.assertEqual(len(got), len(set(got)), "a version delivered twice")


def pair(test, tmp, extra, relay=None, first=None):
    """Two wardd on one database, started (and stopped at test's end): a in
    tmp/a with extra, then (after first(a), when given) b in tmp/b as
    frontend 1 with a's shared keys, reaching the database through relay
    (a pg.Relay) when given."""
    for name in ("a", "b"):
        os.makedirs(os.path.join(tmp, name), exist_ok=True)
    a = Wardd(os.path.join(tmp, "a"), extra=extra)
    a.start()
    test.addCleanup(a.stop)
    if first:
        first(a)
    b = Wardd(os.path.join(tmp, "b"), extra=extra + "[server]\nfrontend = 1\n")
    b.use_database(a, relay.uri(a.database) if relay else None)
    b.copy_shared_keys(a)
    b.start()
    test.addCleanup(b.stop)
    return a, b


def installed(agent, component="virus-pattern"):
    """The version of component agent has in use (0: none)."""
    link = os.path.join(agent.dir, "state", "components", component, "current")
    return int(os.readlink(link)) if os.path.islink(link) else 0


if __name__ == "__main__":
    unittest.main()
