#!/usr/bin/env python3
"""The posture report for network access control: each client compliant or
not under the posture.* settings in effect for it, with the reasons (its
pattern out of date past the limit, the Smart Scan Agent Pattern for
smart-scan clients; real-time protection off; no full scan within the
limit; no valid license; a detection left unresolved; no report yet), the
policy inherited down the tree; a policy server's check of one host (by
name, address, MAC address or uuid) with a posture token good for that
route alone, revoked at once. Agents speak through their real
credentials (AgentWire); time passes through libfaketime. WARDD_BIN and
WARD_BIN name the programs; WARD_TEST_BACKEND=postgresql runs it on
PostgreSQL."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AgentWire, clock_ahead, demo_wardd, free_port,  # noqa: E402
                      temp_dir, wait_for)

# A FreeRADIUS server (Debian's freeradius and freeradius-rest) that asks
# wardd for the posture of the host named by User-Name, with a posture
# token, on each Access-Request: Access-Accept for a compliant host, else
# Access-Reject (403: userlock; 404: notfound; anything else: fail).
RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = radiusd
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
proxy_requests = no
log {{
    destination = stderr
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}
client localhost {{
    ipaddr = 127.0.0.1
    secret = testing123
}}
thread pool {{
    start_servers = 1
    max_servers = 2
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}}
modules {{
    rest {{
        tls {{
            ca_info_file = "{ca}"
            check_cert = yes
            check_cert_cn = yes
        }}
        connect_uri = "https://localhost:{port}"
        authorize {{
            uri = "${{..connect_uri}}/api/v1/posture/host?name=%{{User-Name}}&reject=1"
            method = "get"
            tls = ${{..tls}}
        }}
        pool {{
            start = 0
            min = 0
            max = 2
            spare = 1
            uses = 0
            retry_delay = 1
            lifetime = 0
            idle_timeout = 60
        }}
    }}
}}
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {radius_port}
    }}
    authorize {{
        update control {{
            &REST-HTTP-Header += "Authorization: Bearer {token}"
        }}
        rest
        if (ok || updated) {{
            update control {{
                &Auth-Type := Accept
            }}
        }}
        else {{
            update control {{
                &Auth-Type := Reject
            }}
        }}
    }}
    authenticate {{
    }}
}}
"""


def status(host, method="conventional", version=1, realtime="on", full_scan=0, threats=0,
           ipv4=(), macs=()):
    """A status as the agent reports it; full_scan: seconds since the last
    full scan completed (None: never)."""
    comp = "smart-agent-pattern" if method == "smart" else "virus-pattern"
    s = {"hostname": host, "agent_version": "0.1.0", "scan_method": method,
         "components": {comp: version}, "ipv4": list(ipv4), "ipv6": [], "macs": list(macs),
         "realtime": {"state": realtime, "mode": "block", "reason": ""},
         "unresolved": {"count": threats, "newest": [
             {"time": int(time.time()), "path": "/home/u/x.exe", "name": "Demo.Eicar"}]
             if threats else []}}
    if full_scan is not None:
        s["last_full_scan"] = {"finished": int(time.time()) - full_scan,
                               "source": "scheduled", "task": None}
    return s


class PostureTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir("ward-posture-", self.addCleanup).name
        self.server, self.admin = demo_wardd(self.root, self.addCleanup)
        # The smart-scan client needs its pattern too.
        wait_for(lambda: self.version("smart-agent-pattern") > 0, timeout=60,
                 what="the Smart Scan Agent Pattern built")

    def version(self, comp):
        _, body = self.server.request("GET", "/api/v1/update", token=self.admin)
        return next(c["version"] for c in body["components"] if c["name"] == comp) or 0

    def api(self, method, path, body=None, token=None, want=200):
        status, answer = self.server.request(method, path, body, token=token or self.admin)
        self.assertEqual(status, want, answer)
        return answer

    def beat(self, wire, s):
        self.assertEqual(wire.call("POST", "/api/v1/agent/heartbeat", s)[0], 200)

    def posture(self, **query):
        """{client id: its posture}."""
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return {c["id"]: c for c in
                self.api("GET", "/api/v1/posture" + (f"?{q}" if q else ""))["clients"]}

    def compliant(self, **query):
        """{client id: whether compliant}."""
        return {i: c["compliant"] for i, c in self.posture(**query).items()}

    def reasons(self, wire):
        return [(r["check"], r["message"]) for r in self.posture()[wire.id]["reasons"]]

    def set(self, scope, key, value):
        self.api("PUT", "/api/v1/settings", {"scope": scope, "key": key, "value": value})

    def restart(self, env=None):
        self.assertEqual(self.server.stop(), 0)
        self.server.start(env=env)
        self.admin = self.server.login()

    def test_each_check_fails_with_its_reason(self):
        wires = AgentWire.enrolled(self.server, self.root, "good", "smart", "norealtime",
                                   "noscan", "threat", "silent")
        good, smart, norealtime, noscan, threat, silent = wires
        self.beat(good, status("good"))
        self.beat(smart, status("smart", method="smart",
                                version=self.version("smart-agent-pattern")))
        self.beat(norealtime, status("norealtime", realtime="off"))
        self.beat(noscan, status("noscan", full_scan=8 * 86400))
        self.beat(threat, status("threat", threats=2))
        self.assertEqual(self.compliant(), {good.id: True, smart.id: True, norealtime.id: False,
                                            noscan.id: False, threat.id: False,
                                            silent.id: False})
        self.assertEqual(self.posture()[smart.id]["scan_method"], "smart")
        self.assertEqual(self.reasons(norealtime),
                         [("realtime", "real-time protection is off")])
        (check, msg), = self.reasons(noscan)
        self.assertEqual(check, "full_scan")
        self.assertRegex(msg, r"^no full scan completed in the last 7 days \(the last: "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\)$")
        self.assertEqual(self.reasons(threat), [
            ("threats", "2 detections left unresolved (the newest: Demo.Eicar in "
                        "/home/u/x.exe)")])
        self.assertEqual(self.reasons(silent), [("report", "has not reported its status yet")])
        # An agent that does not say which threats it left is not taken
        # to have left none.
        old = status("good")
        del old["unresolved"]
        self.beat(good, old)
        self.assertEqual(self.reasons(good), [
            ("threats", "its agent does not report the threats it left (agent 0.1.0)")])
        self.beat(good, status("good"))
        listed = self.api("GET", "/api/v1/posture?only=noncompliant")
        self.assertEqual(listed["summary"], {"compliant": 2, "noncompliant": 4})
        self.assertEqual(sorted(c["id"] for c in listed["clients"]),
                         sorted([norealtime.id, noscan.id, threat.id, silent.id]))
        self.api("GET", "/api/v1/posture?only=maybe", want=400)
        # The policy is inherited down the tree: a domain that does not
        # ask for real time, nor checks full scans.
        self.api("POST", "/api/v1/domains", {"path": "/Lab"}, want=201)
        self.api("POST", "/api/v1/clients/move", {"ids": [norealtime.id, noscan.id],
                                                  "to": "/Lab"})
        self.set("domain:/Lab", "posture.realtime_required", False)
        self.set("domain:/Lab", "posture.full_scan_max_age_days", 0)
        self.assertEqual(self.compliant(scope="domain:/Lab"),
                         {norealtime.id: True, noscan.id: True})
        # The CLI shows the same.
        done = self.server.cli("posture", "--only", "noncompliant", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(sorted(c["id"] for c in json.loads(done.stdout)["clients"]),
                         sorted([threat.id, silent.id]))

    def test_patterns_that_age_past_the_limit(self):
        conv, smart = AgentWire.enrolled(self.server, self.root, "conv", "smart")
        have_smart = self.version("smart-agent-pattern")
        self.beat(conv, status("conv", full_scan=None))
        self.beat(smart, status("smart", method="smart", version=have_smart, full_scan=None))
        self.set("root", "posture.full_scan_max_age_days", 0)
        # A new version of each pattern: the clients are behind, within the
        # 24 hours the policy allows.
        with open(os.path.join(self.root, "signatures", "demo.hdb"), "a") as f:
            f.write("0123456789abcdef0123456789abcdef:10:Demo.Second\n")
        self.api("POST", "/api/v1/update/now")
        self.assertEqual(self.version("virus-pattern"), 2)
        self.assertGreater(self.version("smart-agent-pattern"), have_smart)
        self.assertEqual(self.compliant(), {conv.id: True, smart.id: True})
        # Two days later.
        self.restart(env=clock_ahead(2))
        got = self.posture()
        self.assertEqual(self.compliant(), {conv.id: False, smart.id: False})
        self.assertEqual([r["check"] for r in got[conv.id]["reasons"]], ["component"])
        self.assertRegex(got[conv.id]["reasons"][0]["message"],
                         r"^virus-pattern version 1 is out of date: a newer one came 4[78] "
                         r"hours ago \(the policy allows 24\)$")
        self.assertRegex(got[smart.id]["reasons"][0]["message"],
                         rf"^smart-agent-pattern version {have_smart} is out of date: a newer "
                         r"one came 4[78] hours ago \(the policy allows 24\)$")
        # Taking the new versions makes them compliant again.
        self.beat(conv, status("conv", version=2, full_scan=None))
        self.beat(smart, status("smart", method="smart", full_scan=None,
                                version=self.version("smart-agent-pattern")))
        self.assertEqual(self.compliant(), {conv.id: True, smart.id: True})

    def test_no_valid_license(self):
        smart, = AgentWire.enrolled(self.server, self.root, "smart")
        self.beat(smart, status("smart", method="smart",
                                version=self.version("smart-agent-pattern")))
        self.assertEqual(self.compliant(), {smart.id: True})
        self.set("root", "posture.full_scan_max_age_days", 0)
        # Past the evaluation license's 30 days (no grace).
        self.restart(env=clock_ahead(31))
        self.beat(smart, status("smart", method="smart",
                                version=self.version("smart-agent-pattern")))
        got = self.reasons(smart)
        self.assertEqual([c for c, _ in got], ["license", "license"], got)
        self.assertIn("the smart-scan license expired on", got[1][1])
        self.set("root", "posture.license_required", False)
        self.assertEqual(self.compliant(), {smart.id: True})

    def test_a_policy_server_asks_for_one_host(self):
        a, b, twin1, twin2 = AgentWire.enrolled(self.server, self.root, "pc-a", "pc-b",
                                                "twin1", "twin2")
        self.beat(a, status("pc-a.example.org", ipv4=["192.0.2.7"], macs=["52:54:00:12:34:56"]))
        self.beat(b, status("pc-b", realtime="off", ipv4=["192.0.2.8"]))
        self.beat(twin1, status("twin", ipv4=["192.0.2.9"]))
        self.beat(twin2, status("twin", ipv4=["192.0.2.10"]))
        done = self.server.cli("posture", "token", "radius-1", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        made = json.loads(done.stdout)
        token, tid = made["token"], made["id"]
        self.assertEqual(len(token), 64)

        def host(query, want=200, tok=token):
            return self.api("GET", f"/api/v1/posture/host?{query}", token=tok, want=want)

        for query in ("name=pc-a", "name=PC-A.example.org", "address=192.0.2.7",
                      "address=::ffff:192.0.2.7", "mac=52-54-00-12-34-56",
                      "mac=525400123456", f"uuid={a.token.split(':')[0]}"):
            got = host(query)
            self.assertEqual((got["id"], got["compliant"], got["reasons"]), (a.id, True, []),
                             query)
        got = host("name=pc-b")
        self.assertEqual((got["compliant"], got["reasons"]),
                         (False, [{"check": "realtime",
                                   "message": "real-time protection is off"}]))
        self.assertIn("no client is that host", host("name=pc-z", 404)["error"])
        twins = host("name=twin", 409)
        self.assertEqual(sorted(twins["clients"]), sorted([twin1.id, twin2.id]))
        for bad in ("", "name=a&mac=52:54:00:12:34:56", "address=300.1.1.1",
                    "mac=52:54:00:12:34", "uuid=nope", "name=pc-a&reject=2"):
            host(bad, 400)
        # A host that changes its address is known by the new one at once
        # (within the second the index may wait on a miss), and its old one
        # is never answered with its posture, even when another took it.
        self.beat(a, status("pc-a.example.org", ipv4=["192.0.2.77"]))
        self.beat(b, status("pc-b", realtime="off", ipv4=["192.0.2.7"]))
        wait_for(lambda: self.server.request("GET", "/api/v1/posture/host?address=192.0.2.77",
                                             token=token)[0] == 200, timeout=5,
                 what="the new address known")
        self.assertEqual(host("address=192.0.2.77")["id"], a.id)
        old = self.server.request("GET", "/api/v1/posture/host?address=192.0.2.7",
                                  token=token)
        self.assertIn(old[0], (200, 404), old)
        self.assertNotEqual(old[1].get("id"), a.id)
        wait_for(lambda: self.server.request("GET", "/api/v1/posture/host?address=192.0.2.7",
                                             token=token)[1].get("id") == b.id, timeout=5,
                 what="the old address known as the host that took it")
        self.assertEqual(host("name=pc-b&reject=1", 403)["compliant"], False)
        # The token opens that route alone; an administrator opens it too.
        for path in ("/api/v1/posture", "/api/v1/clients", "/api/v1/posture/tokens"):
            self.assertEqual(self.server.request("GET", path, token=token)[0], 401, path)
        self.assertEqual(host("name=pc-a", tok=self.admin)["id"], a.id)
        listed = self.api("GET", "/api/v1/posture/tokens")["tokens"]
        self.assertEqual([(t["id"], t["name"]) for t in listed], [(tid, "radius-1")])
        self.assertNotIn(token, json.dumps(listed))
        done = self.server.cli("posture", "revoke", tid)
        self.assertEqual(done.returncode, 0, done.stderr)
        host("name=pc-a", 401)
        self.assertEqual(self.api("GET", "/api/v1/posture/tokens")["tokens"], [])
        # Made and revoked, each logged with who did it.
        _, log = self.server.request("GET", "/api/v1/logs?kind=system", token=self.admin)
        texts = [e["message"] for e in log["events"]]
        self.assertTrue(any(f"created posture token {tid} for radius-1" in t for t in texts))
        self.assertTrue(any(f"revoked posture token {tid}" in t for t in texts))
        # Malformed names and terms are refused.
        for body in ({"name": "a b"}, {"name": ""}, {"name": "x" * 65},
                     {"name": "ok", "days": 0}, {"name": "ok", "days": 3651}):
            self.api("POST", "/api/v1/posture/tokens", body, want=400)


    def test_freeradius_admits_compliant_hosts(self):
        """FreeRADIUS's rest module, configured as docs/api.md shows, asks
        for each host joining: radtest sees Access-Accept for a compliant
        host, Access-Reject for one that is not, for an unknown one, and
        for every host once the token is revoked."""
        good, bad = AgentWire.enrolled(self.server, self.root, "good", "bad")
        self.beat(good, status("ws-good"))
        self.beat(bad, status("ws-bad", realtime="off"))
        done = self.server.cli("posture", "token", "radius-1", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        made = json.loads(done.stdout)
        conf = os.path.join(self.root, "raddb")
        os.makedirs(conf)
        port = free_port()
        with open(os.path.join(conf, "radiusd.conf"), "w") as f:
            f.write(RADIUSD_CONF.format(dir=conf, ca=os.path.join(self.server.data, "ca.crt"),
                                        port=self.server.port, radius_port=port,
                                        token=made["token"]))
        radiusd = shutil.which("freeradius") or "/usr/sbin/freeradius"
        log = open(os.path.join(self.root, "radiusd.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([radiusd, "-f", "-l", "stdout", "-xx", "-d", conf],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)

        def radius_log():
            with open(os.path.join(self.root, "radiusd.log"), errors="replace") as f:
                return f.read()
        wait_for(lambda: "Ready to process requests" in radius_log() or proc.poll() is not None,
                 timeout=30, what="FreeRADIUS ready")
        self.assertIsNone(proc.poll(), radius_log())

        def radtest(user):
            # (The NAS named by address: radtest would resolve the host's
            # name, which a fresh machine may not.)
            done = subprocess.run(["radtest", user, "unused", f"127.0.0.1:{port}", "0",
                                   "testing123", "0", "127.0.0.1"], capture_output=True,
                                  text=True, timeout=60)
            for answer in ("Access-Accept", "Access-Reject"):
                if f"Received {answer}" in done.stdout:
                    return answer
            raise AssertionError(done.stdout + done.stderr + radius_log()[-4000:])
        self.assertEqual(radtest("ws-good"), "Access-Accept", radius_log()[-4000:])
        self.assertEqual(radtest("ws-bad"), "Access-Reject")
        self.assertEqual(radtest("ws-unknown"), "Access-Reject")
        # Compliant once its real-time protection is on.
        self.beat(bad, status("ws-bad"))
        self.assertEqual(radtest("ws-bad"), "Access-Accept")
        self.assertEqual(self.server.cli("posture", "revoke", made["id"]).returncode, 0)
        self.assertEqual(radtest("ws-good"), "Access-Reject")


if __name__ == "__main__":
    unittest.main()
