#!/usr/bin/env python3
"""PostgreSQL restarted under two wardd frontends and their agents, on a
PostgreSQL server of this test's own (tests/lib/pg.py in a directory of
its own: the shared one serves other suites meanwhile): stopped as a crash
would (immediate) right after a change was committed, and cleanly (fast).
Each time the change is still there, both frontends carry on without a
restart (their connections, and the doorbell's, opened again), and a
change made through one reaches every agent of both, once (a version an
agent took while its acknowledgement was cut off is not sent again).
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
# Beside the shared server's directory (build/pg by default, as pg.py's).
HERE_PG = os.path.join(os.environ.get("WARD_PG_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "pg")), "..", "pg-faults")
os.environ["WARD_PG_DIR"] = os.path.abspath(HERE_PG)
import pg  # noqa: E402
from wardtest import Loadgen, Wardd, backend, temp_dir, wait_for  # noqa: E402

EXTRA = ("[enroll]\nper_token = 0\nper_address = 0\n[http]\nlong_poll = 60s\n"
         "[agents]\nverify_interval = 86400s\noffline_after = 600s\n"
         "[alerts]\ncheck_interval = 3600s\n")


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL's restarts")
class PostgresRestartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pg.start()
        pg.drop_leftovers()
        cls.addClassCleanup(pg.stop)

    def setUp(self):
        self.tmp = temp_dir("ward-pg-faults-", self.addCleanup).name
        self.a = Wardd(os.path.join(self.tmp, "a"), extra=EXTRA)
        self.a.start()
        self.addCleanup(self.a.stop)
        self.token = self.a.login()
        self.b = Wardd(os.path.join(self.tmp, "b"), extra=f"{EXTRA}[server]\nfrontend = 1\n")
        self.b.use_database(self.a)
        self.b.copy_shared_keys(self.a)
        self.b.start()
        self.addCleanup(self.b.stop)
        with open(os.path.join(self.a.data, "enroll-token")) as f:
            token = f.read().strip()
        gens = os.path.join(self.tmp, "gens")
        os.mkdir(gens)
        self.gens = [Loadgen(self, s, gens, 30, token, long_poll=60, spread=1)
                     for s in (self.a, self.b)]
        self.clients = [c for g in self.gens for c in g.clients]

    def change(self, server, value):
        """A root change through server: the version it gave the first
        client."""
        status, body = server.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": "update.schedule", "value": value, "apply": "all"},
            token=self.token, timeout=60)
        self.assertEqual((status, body.get("changed")), (200, 60), body)
        return self.version(server, self.clients[0])

    def version(self, server, client):
        status, body = server.request("GET", f"/api/v1/client?id={client}", token=self.token)
        if status != 200:
            print(server.log_text()[-2000:], file=sys.stderr)
        self.assertEqual(status, 200, body)
        return body["version"]

    def reached(self, version):
        try:
            wait_for(lambda: {(c, version) for c in self.clients} <=
                     set().union(*(g.deliveries() for g in self.gens)), timeout=60,
                     what=f"version {version} received by every agent")
        except AssertionError:
            print(self.a.log_text()[-3000:], self.b.log_text()[-3000:], file=sys.stderr)
            raise

    def test_restarts(self):
        back = "doorbell: hearing the other servers again"
        for n, mode in enumerate(("immediate", "fast"), 1):
            committed = self.change(self.a, f"daily 0{n}:11")
            pg.restart(mode)
            # Committed before the stop: there after it, through either,
            # once it answers again (cut off from the database, a server
            # answers 503 until its doorbell is back).
            for server in (self.a, self.b):
                wait_for(lambda: server.request("GET", "/api/v1/health")[0] == 200,
                         timeout=30, what=f"{server.port} answering after the {mode} stop")
                self.assertEqual(self.version(server, self.clients[0]), committed, mode)
            self.reached(committed)
            # The doorbells open again (every second).
            for server in (self.a, self.b):
                wait_for(lambda: server.log_text().count(back) >= n, timeout=30,
                         what=f"{server.port}'s doorbell open again after the {mode} stop")
            after = self.change(self.b, f"daily 1{n}:22")
            self.reached(after)
        time.sleep(1)
        got = [d for g in self.gens for d in g.deliveries()]
        self.assertEqual(len(got), len(set(got)), "a version delivered twice")


if __name__ == "__main__":
    unittest.main()
