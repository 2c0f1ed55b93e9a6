#!/usr/bin/env python3
"""Linear costs: the work wardd's database does per operation stays the
same whether the fleet has a few hundred agents or a few thousand --
enrolling an agent, a change of one agent's settings delivered and
acknowledged, a root-level change per agent reached, and the same with
most of the fleet offline (their deliveries wait in the queue). Counts,
never times: the work is ward_store_work_total on SQLite (its virtual
machine steps, which grow with every row a statement visits), and on
PostgreSQL the pages of shared buffers the database's statements touched
(pg_stat_statements); the agents are ward-loadgen's, over real HTTPS
connections.
"""
import http.client
import os
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pg  # noqa: E402
from wardtest import Loadgen, Wardd, backend, temp_dir, wait_for  # noqa: E402

METRICS_TOKEN = "scale-test-scraper-token-0123456789abcdef"
SMALL, LARGE = 300, 2400
# Work per operation may grow this much while the fleet grows eightfold.
# PostgreSQL's planner reads a whole table of a few thousand rows where it
# looks rows up by key in a larger one (cheaper by its measure): more
# room there, and still none for work in proportion to the fleet (its
# generic plans made 5 to 7 times the work at 2,400 agents).
SLACK = 2.0 if backend() == "postgresql" else 1.4


class ScaleTest(unittest.TestCase):

    def setUp(self):
        self.tmp = temp_dir("ward-scale-", self.addCleanup).name
        self.gens = os.path.join(self.tmp, "loadgen")
        os.mkdir(self.gens)
        token_file = os.path.join(self.tmp, "metrics-token")
        with open(token_file, "w") as f:
            f.write(METRICS_TOKEN + "\n")
        os.chmod(token_file, 0o600)
        # Nothing on a timer during the test: no alert checks, a long poll
        # longer than the test, no verification.
        self.server = Wardd(self.tmp, extra=(
            "[enroll]\nper_token = 0\nper_address = 0\n"
            f"[http]\nmax_per_address = {LARGE + 500}\nlong_poll = 600s\n"
            "[notify]\nbatch = 100\n[alerts]\ncheck_interval = 3600s\n"
            "[agents]\nverify_interval = 86400s\n"
            f"[metrics]\ntoken_file = {token_file}\n"))
        if backend() == "postgresql":
            pg.query(self.server.database, "CREATE EXTENSION pg_stat_statements")
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        self.online = []
        self.offline = []

    def grow(self, n):
        self.online.append(Loadgen(self, self.server, self.gens, n))

    def work(self):
        if backend() == "postgresql":
            return pg.query(self.server.database,
                            "SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0) "
                            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM "
                            "pg_database WHERE datname = current_database())")[0][0]
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        conn = http.client.HTTPSConnection("localhost", self.server.port, context=ctx,
                                           timeout=30)
        try:
            conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            resp = conn.getresponse()
            text = resp.read().decode()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200, text)
        for line in text.splitlines():
            if line.startswith("ward_store_work_total "):
                return int(line.split()[1])
        raise AssertionError("ward_store_work_total missing from /metrics")

    def window(self, operation):
        """The work operation() makes the database do. (A scrape of
        /metrics counts every agent, a cost of its own, measured and
        taken out; so is a look at PostgreSQL's counts, each window's
        from nothing: its table of statements, full of earlier suites',
        loses entries.)"""
        if backend() == "postgresql":
            pg.query(self.server.database, "SELECT pg_stat_statements_reset(0, (SELECT oid "
                     "FROM pg_database WHERE datname = current_database()), 0)")
        first = self.work()
        scrape = self.work() - first
        before = self.work()
        operation()
        return self.work() - before - scrape

    def version(self, client):
        status, body = self.server.request("GET", f"/api/v1/client?id={client}",
                                           token=self.token)
        self.assertEqual(status, 200, body)
        return body["version"]

    def acknowledged(self, pairs):
        """Waits for the agents' acknowledgements of pairs, and the next
        poll each makes after its acknowledgement."""
        wait_for(lambda: pairs <= set().union(*(g.acked() for g in self.online)),
                 timeout=120, what=f"{len(pairs)} acknowledgements")
        time.sleep(0.5)

    def switch(self, value, reached):
        """A root-level change reaching every agent online (each agent's
        own value goes); self.changed gets the clients it changed."""
        status, body = self.server.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": "update.schedule", "value": value, "apply": "all"},
            token=self.token)
        self.assertEqual(status, 200, body)
        version = self.version(reached[0])
        self.acknowledged({(c, version) for c in reached})
        self.changed = body["changed"]

    def costs(self, size):
        """Work per enrollment, per single change and per agent of a root
        switch with size agents online, then with most of them offline."""
        have = sum(len(g.clients) for g in self.online)
        if size - have - 100 > 0:
            self.grow(size - have - 100)
        if backend() == "postgresql":
            # The statistics autovacuum keeps (it looks every minute; the
            # fleet grew in seconds).
            pg.query(self.server.database, "ANALYZE")
        costs = {"enroll": self.window(lambda: self.grow(100)) / 100}
        ids = sorted(c for g in self.online for c in g.clients)
        self.assertEqual(len(ids), size)

        def change(i):
            client = ids[i * len(ids) // 20]
            status, body = self.server.request(
                "PUT", "/api/v1/settings", {"scope": f"client:{client}", "key": "update.schedule",
                                            "value": f"daily 05:{i:02d}", "apply": "all"},
                token=self.token)
            self.assertEqual((status, body.get("changed")), (200, 1), body)
            self.acknowledged({(client, self.version(client))})
        costs["single"] = sorted(self.window(lambda: change(i)) for i in range(20))[10]
        costs["switch"] = self.window(lambda: self.switch(f"daily 06:{size // 100:02d}",
                                                          ids)) / size
        self.assertEqual(self.changed, size + len(self.offline_ids()))
        # All but the last hundred go offline: a change to everyone waits
        # in the queue for them.
        while len(self.online) > 1:
            gone = self.online.pop(0)
            gone.stop()
            self.offline.append(gone)
        left = self.online[0].clients
        work = self.window(lambda: self.switch(f"daily 07:{size // 100:02d}", left))
        # (Per client changed: the change itself is the fleet's size.)
        costs["switch, most offline"] = work / self.changed
        self.assertEqual(self.changed, len(left) + len(self.offline_ids()))
        return costs

    def offline_ids(self):
        return [c for g in self.offline for c in g.clients]

    def test_work_per_operation_is_flat(self):
        small = self.costs(SMALL)
        large = self.costs(LARGE)
        print(f"work per operation at {SMALL} agents: {small}; at {LARGE}: {large}",
              file=sys.stderr)
        for op in small:
            self.assertLessEqual(large[op], small[op] * SLACK,
                                 f"{op}: {small[op]:.0f} at {SMALL} agents, {large[op]:.0f} "
                                 f"at {LARGE}")


if __name__ == "__main__":
    unittest.main()
