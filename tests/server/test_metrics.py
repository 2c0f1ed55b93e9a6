#!/usr/bin/env python3
"""GET /metrics: the Prometheus text format, every line well formed; a
scraper's token (metrics.token_file) opens it and nothing else; what it
shows follows what the server does: an agent online by its scan method, a
delivery's latency once the agent acknowledges it, imports, requests by
route and status, the newest backup's age."""
import os
import re
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import Agent, demo_wardd, temp_dir, wait_for  # noqa: E402

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"\\]*",?)*\})? -?[0-9.e+]+$')
TOKEN = "a scraper's token for tests"


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = temp_dir("ward-metrics-", cls.addClassCleanup).name
        token_file = os.path.join(cls.tmp, "metrics-token")
        passphrase = os.path.join(cls.tmp, "passphrase")
        for path, text in ((token_file, TOKEN + "\n"), (passphrase, "a passphrase for tests")):
            with open(path, "w") as f:
                f.write(text)
        cls.server, cls.admin = demo_wardd(
            cls.tmp, cls.addClassCleanup,
            extra=f"[metrics]\ntoken_file = {token_file}\n[backup]\ndir = {cls.tmp}/archives\n"
                  f"passphrase_file = {passphrase}\n[http]\nlong_poll = 5s\n"
                  f"[agents]\nheartbeat_interval = 5s\noffline_after = 20s\n")

    def scrape(self, token=TOKEN):
        conn = self.server.connection("127.0.0.1", ssl.create_default_context(
            cafile=os.path.join(self.server.data, "ca.crt")))
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        return resp.status, resp.getheader("Content-Type"), text

    def samples(self):
        status, ctype, text = self.scrape()
        self.assertEqual(status, 200, text)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        out = {}
        for line in text.splitlines():
            if line.startswith("#"):
                self.assertRegex(line, r"^# (HELP|TYPE) [a-z_]+ ")
                continue
            self.assertRegex(line, SAMPLE)
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def test_metrics(self):
        agent = Agent(self.tmp, "agent")
        client = agent.enroll_with(self.server)
        agent.start()
        self.addCleanup(agent.stop)
        # The method as the agent reports it (at its next heartbeat).
        wait_for(lambda: self.samples().get(
            'ward_agents{state="online",method="conventional"}') == 1,
            what="the agent online")
        before = self.samples().get("ward_delivery_seconds_count", 0)
        status, _ = self.server.client_setting(self.admin, client, "scan_method", "smart")
        self.assertEqual(status, 200)
        agent.wait_settings(self.server, self.admin)
        wait_for(lambda: self.samples()["ward_delivery_seconds_count"] > before,
                 what="the delivery's latency")
        got = self.samples()
        self.assertGreaterEqual(got['ward_delivery_seconds_bucket{le="+Inf"}'],
                                got['ward_delivery_seconds_bucket{le="1"}'])
        self.assertGreaterEqual(got['ward_imports_total{result="ok"}'], 1)
        self.assertEqual(got["ward_deliveries_queued"], 0)
        self.assertGreaterEqual(got['ward_http_requests_total{method="PUT",route='
                                    '"/api/v1/settings",status="200"}'], 1)
        self.assertNotIn("ward_backup_age_seconds", got)
        # The evaluation license: every service active; the agent uses smart scan.
        self.assertEqual(got['ward_license_state{service="smart-scan",state="active"}'], 1)
        self.assertEqual(got['ward_license_state{service="smart-scan",state="ended"}'], 0)
        self.assertEqual(got['ward_license_seats{service="antivirus"}'], 1000)
        wait_for(lambda: self.samples()['ward_license_in_use{service="smart-scan"}'] == 1,
                 what="the agent counted as using smart scan")
        self.assertGreater(got['ward_license_expiry_timestamp_seconds{service="realtime"}'],
                           time.time() + 29 * 86400)
        status, _ = self.server.request("POST", "/api/v1/backups", token=self.admin,
                                        timeout=60)
        self.assertEqual(status, 201)
        got = self.samples()
        self.assertLess(got["ward_backup_age_seconds"], 60)
        self.assertEqual(got["ward_backup_archives"], 1)
        self.assertEqual(got["ward_backup_last_failed"], 0)

    def test_credentials(self):
        """The scraper's token opens /metrics and nothing else; a session
        opens it too; no or a wrong token, 401."""
        self.assertEqual(self.scrape()[0], 200)
        self.assertEqual(self.scrape(self.admin)[0], 200)
        self.assertEqual(self.scrape("not the token")[0], 401)
        status, _ = self.server.request("GET", "/api/v1/clients", token=TOKEN)
        self.assertEqual(status, 401)


if __name__ == "__main__":
    unittest.main()
