#!/usr/bin/env python3
"""Licenses: license files an issuer of the test's own signs (`ward
license-issuer`), activated with `ward license add` and the API, refused
with the reason when forged, altered, of an unknown issuer or over; the
evaluation license a first start makes; switching clients to smart scan
or real-time scanning refused without an active license; at expiry
protection goes on and pattern updates go on through the grace period,
then stop; reminders at 60, 30 and 7 days, at expiry and at the grace
period's end, once each, in the event log and as alerts; seats in use.
The server's clock is the test's: libfaketime moves wardd's wall clock
days ahead (clock_ahead())."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from syslogrecv import SyslogReceiver  # noqa: E402
from wardtest import (EICAR, WARD, AgentWire, Wardd, clock_ahead, demo_signatures,  # noqa: E402
                      issue_license as issue, license_issuer as issuer, temp_dir, wait_for)

DAY = 86400
SERVICES = ["antivirus", "smart-scan", "realtime"]


class LicenseTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir("ward-license-", self.addCleanup).name
        self.key, self.pub = issuer(self.root, "issuer")
        src = demo_signatures(self.root)
        self.server = Wardd(self.root, extra=(
            f"[updates]\nsource_dir = {src}\n[license]\nissuers = {self.pub}\n"
            "[alerts]\ncheck_interval = 1s\n"))
        self.start()

    def start(self, days=0):
        """(Re)starts wardd with its wall clock days ahead."""
        self.server.stop()
        self.server.start(env=clock_ahead(days) if days else None)
        self.addCleanup(self.server.stop)
        self.admin = self.server.login()

    def api(self, method, path, body=None, want=200):
        status, answer = self.server.request(method, path, body, token=self.admin)
        self.assertEqual(status, want, answer)
        return answer

    def licenses(self):
        return self.api("GET", "/api/v1/licenses")

    def service(self, name):
        return next(s for s in self.licenses()["services"] if s["service"] == name)

    def add(self, text, want=201):
        return self.api("POST", "/api/v1/licenses", {"license": json.loads(text)}, want=want)

    def drop_evaluation(self):
        for lic in self.licenses()["licenses"]:
            if lic.get("evaluation"):
                self.api("DELETE", f"/api/v1/licenses?id={lic['id']}")

    def events(self):
        logs = self.api("GET", "/api/v1/logs?kind=system&limit=1000")
        return [e["message"] for e in logs["events"] if e["message"].startswith("license: ")]

    def test_evaluation_at_first_start(self):
        """Every service for 30 days, made once: not again after a restart,
        nor after it was removed."""
        now = time.time()
        got = self.licenses()
        self.assertEqual(len(got["licenses"]), 1, got)
        lic = got["licenses"][0]
        self.assertTrue(lic["evaluation"] and lic["trusted"], lic)
        self.assertEqual(lic["services"], SERVICES)
        self.assertAlmostEqual(lic["expires"] - lic["start"], 30 * DAY, delta=2)
        self.assertAlmostEqual(lic["start"], now, delta=120)
        for s in got["services"]:
            self.assertEqual((s["state"], s["days_left"], s["evaluation"]), ("active", 30, True))
        # Within 60 days of its end: told once, and on every page.
        told = ("the antivirus, smart-scan and realtime licenses (evaluation) expire on "
                f"{time.strftime('%Y-%m-%d', time.gmtime(lic['expires']))}, in 30 days")
        self.assertEqual([e for e in self.events() if "expire" in e], [f"license: {told}"])
        self.assertEqual(got["notices"], [{"services": SERVICES, "kind": "warning",
                                           "text": told}])
        self.start()
        self.assertEqual([x["id"] for x in self.licenses()["licenses"]], [lic["id"]])
        self.drop_evaluation()
        self.start()
        self.assertEqual(self.licenses()["licenses"], [])
        self.assertEqual({s["state"] for s in self.licenses()["services"]}, {"unlicensed"})

    def test_cli_add_list_remove(self):
        path = os.path.join(self.root, "site.lic")
        with open(path, "w") as f:
            f.write(issue(self.key, "site-2027", "+400d", seats=250, grace=30))
        ward = self.server.cli
        done = ward("license", "add", f"@{path}")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("site-2027", done.stdout)
        done = ward("license", "add", f"@{path}")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("this server has it already", done.stderr)
        done = ward("license", "list", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        listed = json.loads(done.stdout)
        site = next(x for x in listed["licenses"] if x["id"] == "site-2027")
        self.assertEqual((site["customer"], site["seats"], site["grace_days"], site["trusted"]),
                         ("Example Ltd", 250, 30, True))
        # The evaluation's 1000 seats and these 250.
        self.assertEqual({s["seats"] for s in listed["services"]}, {1250})
        self.assertTrue(any("added site-2027 of Example Ltd (250 seats)" in e
                            for e in self.events()))
        done = ward("license", "remove", "site-2027")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("site-2027", json.dumps(self.licenses()))
        done = ward("license", "remove", "site-2027")
        self.assertIn("no license has that id", done.stderr)

    def test_refused(self):
        """Forged, altered, unknown and useless license files are refused,
        naming what was wrong; nothing is stored."""
        good = issue(self.key, "good", "+100d")
        other_key, _ = issuer(self.root, "other")
        altered = json.loads(good)
        claims = json.loads(altered["license"])
        claims["seats"] = 100000
        altered["license"] = json.dumps(claims, sort_keys=True, separators=(",", ":"))
        cases = [
            ("not json", "license: not JSON"),
            (json.dumps({"license": "{}"}), "expected {\"license\", \"key\", \"signature\"}"),
            (json.dumps(altered), "the signature does not verify"),
            (issue(other_key, "stranger", "+100d"), "which is not among license.issuers"),
            (issue(self.key, "over", str(int(time.time()) - 20 * DAY), grace=10,
                   start=str(int(time.time()) - 100 * DAY)),
             "its grace period ended"),
            (json.dumps({**json.loads(good), "extra": 1}), "expected {\"license\""),
            ("x" * 20000, "more than a license file's 16384"),
        ]
        for text, want in cases:
            status, answer = self.server.request("POST", "/api/v1/licenses", {"license": text},
                                                 token=self.admin)
            self.assertEqual(status, 400, (want, answer))
            self.assertIn(want, answer["error"])
        self.assertEqual(len(self.licenses()["licenses"]), 1)
        self.add(good)
        self.add(good, want=409)

    def test_switch_refused_without_license(self):
        """Smart scan and real-time scanning are switched on only under an
        active license; conventional scan, and switching off, always."""
        self.drop_evaluation()
        for key, value, service in (("scan_method", "smart", "smart-scan"),
                                    ("realtime.enabled", True, "realtime")):
            status, answer = self.server.request(
                "PUT", "/api/v1/settings", {"scope": "root", "key": key, "value": value},
                token=self.admin)
            self.assertEqual(status, 403, answer)
            self.assertIn(f"needs an active {service} license: no license covers {service}",
                          answer["error"])
        self.api("PUT", "/api/v1/settings", {"scope": "root", "key": "scan_method",
                                            "value": "conventional"})
        self.api("POST", "/api/v1/domains", {"path": "/eu"}, want=201)
        export = self.api("GET", "/api/v1/export")
        for d in export["domains"]:
            if d["path"] == "/eu":
                d["settings"]["scan_method"] = "smart"
        result = self.api("POST", "/api/v1/import", {"export": export})
        eu = next(r for r in result["results"] if r["path"] == "/eu")
        self.assertFalse(eu["ok"])
        self.assertIn("needs an active smart-scan license", eu["error"])
        self.add(issue(self.key, "smart-only", "+100d", services=["smart-scan"]))
        self.api("PUT", "/api/v1/settings", {"scope": "domain:/eu", "key": "scan_method",
                                            "value": "smart"})
        status, answer = self.server.request(
            "PUT", "/api/v1/settings", {"scope": "root", "key": "realtime.enabled",
                                        "value": True}, token=self.admin)
        self.assertEqual(status, 403, answer)
        # Without it again, a domain below /eu that opted out cannot take
        # smart scan from /eu by removing its own setting; switching away
        # from smart scan is always allowed.
        self.api("POST", "/api/v1/domains", {"path": "/eu/lab"}, want=201)
        self.api("PUT", "/api/v1/settings", {"scope": "domain:/eu/lab", "key": "scan_method",
                                            "value": "conventional"})
        self.api("DELETE", "/api/v1/licenses?id=smart-only")
        status, answer = self.server.request(
            "DELETE", "/api/v1/settings?scope=domain:/eu/lab&key=scan_method", token=self.admin)
        self.assertEqual(status, 403, answer)
        self.assertIn("needs an active smart-scan license", answer["error"])
        # Nor by an import that leaves its setting out.
        export = self.api("GET", "/api/v1/export")
        for d in export["domains"]:
            if d["path"] == "/eu/lab":
                del d["settings"]["scan_method"]
        result = self.api("POST", "/api/v1/import", {"export": export})
        lab = next(r for r in result["results"] if r["path"] == "/eu/lab")
        self.assertFalse(lab["ok"], result)
        self.assertIn("needs an active smart-scan license", lab["error"])
        # Nor by moving a client into /eu, unless it keeps a method of its own.
        wire, = AgentWire.enrolled(self.server, self.root, "mover")
        moved = self.api("POST", "/api/v1/clients/move", {"ids": [wire.id], "to": "/eu"})
        self.assertEqual(moved["moved"], 0, moved)
        self.assertIn("needs an active smart-scan license", moved["results"][0]["error"])
        self.api("PUT", "/api/v1/settings", {"scope": f"client:{wire.id}", "key": "scan_method",
                                            "value": "conventional"})
        moved = self.api("POST", "/api/v1/clients/move", {"ids": [wire.id], "to": "/eu"})
        self.assertEqual(moved["moved"], 1, moved)
        # Nor by moving a domain under /eu, unless it keeps a method of its own.
        self.api("POST", "/api/v1/domains", {"path": "/us"}, want=201)
        status, answer = self.server.request("POST", "/api/v1/domains/move",
                                             {"path": "/us", "to": "/eu"}, token=self.admin)
        self.assertEqual(status, 403, answer)
        self.assertIn("needs an active smart-scan license", answer["error"])
        self.api("PUT", "/api/v1/settings", {"scope": "domain:/us", "key": "scan_method",
                                            "value": "conventional"})
        self.api("POST", "/api/v1/domains/move", {"path": "/us", "to": "/eu"})
        # Nor by a grouping rule, when an agent's address changes: it stays.
        self.api("PUT", "/api/v1/grouping", {"rules": [
            {"match": "ip", "value": "198.51.100.0/24", "domain": "/eu"}]})
        roamer, = AgentWire.enrolled(self.server, self.root, "roamer")
        before = self.api("GET", f"/api/v1/client?id={roamer.id}")["domain"]
        self.assertEqual(roamer.call("POST", "/api/v1/agent/heartbeat", {
            "hostname": "roamer", "ipv4": ["198.51.100.5"], "ipv6": []})[0], 200)
        client = self.api("GET", f"/api/v1/client?id={roamer.id}")
        self.assertEqual((client["domain"], client["settings"]["scan_method"]),
                         (before, "conventional"))
        events = self.api("GET", f"/api/v1/logs?client={roamer.id}")["events"]
        self.assertTrue(any("not regrouped after an address change: " in e["message"] and
                            "needs an active smart-scan license" in e["message"]
                            for e in events), events)
        self.api("PUT", "/api/v1/grouping", {"rules": []})
        self.api("DELETE", "/api/v1/settings?scope=domain:/eu&key=scan_method")
        self.api("DELETE", "/api/v1/settings?scope=domain:/eu/lab&key=scan_method")

    def test_expiry_and_grace(self):
        """After expiry, updates go on through the grace period and
        switching to smart scan is refused; after it, pattern updates stop
        with a message that says so; the smart protection server and
        scanning go on. Each step told once."""
        self.drop_evaluation()
        self.add(issue(self.key, "term", "+10d", grace=10, seats=5))
        wire, = AgentWire.enrolled(self.server, self.root, "host1")
        self.server.wait_component(self.admin)

        def plan(component="virus-pattern"):
            return wire.call("POST", "/api/v1/agent/update",
                             {"component": component, "have": 0, "full": False})

        self.assertEqual(plan()[0], 200)
        self.start(days=15)
        svc = self.service("antivirus")
        self.assertEqual((svc["state"], svc["updates"]), ("grace", True), svc)
        self.assertEqual(plan()[0], 200)
        self.assertEqual(plan("smart-agent-pattern")[0], 200)
        status, answer = self.server.request(
            "PUT", "/api/v1/settings", {"scope": "root", "key": "scan_method", "value": "smart"},
            token=self.admin)
        self.assertEqual(status, 403, answer)
        self.assertIn("the smart-scan license expired on", answer["error"])
        notices = self.licenses()["notices"]
        self.assertTrue(all("pattern updates for them stop on" in n["text"] for n in notices),
                        notices)
        self.start(days=25)
        for component in ("virus-pattern", "smart-agent-pattern", "smart-pattern"):
            status, answer = plan(component)
            self.assertEqual(status, 403, (component, answer))
            self.assertIn("its grace period ended on", answer["error"])
            self.assertIn("pattern updates for it stopped", answer["error"])
        notices = self.licenses()["notices"]
        self.assertEqual([(n["kind"], n["services"]) for n in notices],
                         [("error", SERVICES), ("warning", ["antivirus"])], notices)
        self.assertEqual(notices[1]["text"], "1 client uses antivirus, which no active license "
                         "covers")
        # Protection goes on: smart scan's lookups are answered, and it finds.
        packages = os.path.join(self.server.data, "packages")
        eicar = os.path.join(self.root, "eicar.com")
        with open(eicar, "wb") as f:
            f.write(EICAR)
        done = subprocess.run([WARD, "scan", "--no-cache", "--agent-pattern",
                               os.path.join(packages, "smart-agent-pattern-1.tar.zst"),
                               "--sps-ca", os.path.join(self.server.data, "ca.crt"),
                               f"--sps=https://127.0.0.1:{self.server.port}", eicar],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("Demo.Eicar FOUND", done.stdout)
        told = [e for e in self.events() if "(evaluation)" not in e]
        for text in ("expire on", "pattern updates for them stop on",
                     "pattern updates for them stopped"):
            self.assertEqual(len([e for e in told if "the antivirus, smart-scan and realtime "
                                  "licenses" in e and text in e]), 1, (text, told))

    def test_reminders_and_alerts(self):
        """60, 30 and 7 days before the end, at expiry and when updates
        stop: an event and an alert each, once; a renewal that starts at
        the end stops the reminders."""
        syslog = SyslogReceiver()
        self.api("PUT", "/api/v1/alerts/channels", {"name": "log", "kind": "syslog", "config": {
            "address": f"udp://127.0.0.1:{syslog.udp.getsockname()[1]}"}})
        self.api("PUT", "/api/v1/alerts/rules", {"name": "lic", "kind": "license",
                                                "channels": ["log"], "every": 0})
        self.drop_evaluation()
        end = int(time.time()) + 90 * DAY
        self.add(issue(self.key, "year", end, services=["antivirus"], grace=5))
        wanted = []
        for days, text in ((31, "in 59 days"), (61, "in 29 days"), (84, "in 6 days"),
                           (91, "pattern updates for it stop on"),
                           (96, "pattern updates for it stopped")):
            self.start(days=days)
            wanted.append(text)
            wait_for(lambda: len(syslog.messages) >= len(wanted), timeout=20,
                     what=f"the alert at +{days} days")
            self.assertIn(text, syslog.messages[-1].decode())
            wait_for(lambda: {m["state"] for m in self.api("GET", "/api/v1/alerts/log")[
                "messages"]} == {"sent"}, what="the alert recorded as sent")
            # A restart tells nothing again.
            self.start(days=days)
            time.sleep(2)
            self.assertEqual(len(syslog.messages), len(wanted), syslog.messages)
        for text in wanted:
            self.assertEqual(len([e for e in self.events() if text in e]), 1, (text,
                                                                               self.events()))
        # Renewed: the coverage runs on, nothing more to tell.
        self.start(days=0)
        self.add(issue(self.key, "renewal", end + 365 * DAY, start=end, services=["antivirus"]))
        self.start(days=84)
        self.assertEqual(self.service("antivirus")["days_left"], 371)
        self.assertEqual(self.licenses()["notices"], [])

    def test_seats_in_use(self):
        self.drop_evaluation()
        self.add(issue(self.key, "small", "+100d", seats=1))
        wires = AgentWire.enrolled(self.server, self.root, "a", "b")
        for w in wires:
            status = {"hostname": "h", "agent_version": "0.1.0", "scan_method": "smart",
                      "components": {}, "realtime": {"state": "on", "mode": "block"}}
            self.assertEqual(w.call("POST", "/api/v1/agent/heartbeat", status)[0], 200)
        wait_for(lambda: all(s["in_use"] == 2 for s in self.licenses()["services"]),
                 what="two clients counted for every service")
        texts = [n["text"] for n in self.licenses()["notices"]]
        for s in SERVICES:
            self.assertIn(f"2 clients use {s}; the licenses cover 1 seat", texts)


if __name__ == "__main__":
    unittest.main()
