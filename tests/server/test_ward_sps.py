#!/usr/bin/env python3
"""The standalone smart protection server, ward-sps, with real daemons: it
enrolls with wardd (which issues its certificate), takes the Smart Scan
Pattern through the signed update channel, answers lookups over IPv4 and
IPv6, swaps a new pattern in while lookups keep coming without one failing,
reports to wardd, serves smart scans with the verdicts of conventional
scan, and when killed during a scan leaves files unverified, never clean.
WARDD_BIN, WARD_BIN and WARD_SPS_BIN name the programs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from smartcorpus import start_server  # noqa: E402
from wardtest import (  # noqa: E402
    AGENT, Agent, digest, payload, query, sps_bundle, wait_for, WARD, WardSps)


MALWARE = [payload(f"malware-{i}") for i in range(150)]


class WardSpsTest(unittest.TestCase):
    def setUp(self):
        self.tmp, self.corpus, self.server = start_server("ward-sps-", self.addCleanup)
        self.src = os.path.join(self.tmp.name, "source")
        self.token = self.server.login()
        wait_for(lambda: self.server.request("GET", "/sps/v1/health")[0] == 200,
                 what="the first components")
        self.sps = WardSps(self.tmp.name, os.path.join(self.server.data, "sps-ca.crt"))
        self.addCleanup(self.sps.stop)
        # wardd is "localhost" here: the smart protection server is reached by
        # the loopback addresses, names of its own.
        done = self.sps.run("enroll", "--bundle", sps_bundle(self.server, self.token,
                                                             self.tmp.name),
                            "--name", "127.0.0.1", "--name", "::1")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.sps.start()
        wait_for(lambda: self.health() == 200, timeout=60, what="ward-sps serving")

    def health(self):
        try:
            return self.sps.request("GET", "/sps/v1/health")[0]
        except OSError:
            return 0

    def lookup(self, lines, host="127.0.0.1"):
        status, text = self.sps.request("POST", "/sps/v1/lookup",
                                        "".join(f"{l}\n" for l in lines), host=host)
        self.assertEqual(status, 200, text)
        return text

    def test_serves_reports_and_swaps_patterns(self):
        md5 = digest("md5", payload("md5-sized"))
        q = query("md5", md5)
        for host in ("127.0.0.1", "::1"):
            text = self.lookup([q], host=host).split("\n")
            self.assertEqual(text[0], "ward-sps 1 1 300")
            self.assertIn(f"{q} 1", text)
        # wardd lists it, online, with what it last reported.
        def reported():
            return self.server.request("GET", "/api/v1/sps-servers",
                                       token=self.token)[1]["servers"][0]
        wait_for(lambda: (reported()["status"] or {}).get("version") == 1,
                 what="a heartbeat with version 1")
        server = reported()
        self.assertEqual(server["state"], "online")
        self.assertEqual(server["names"], ["127.0.0.1", "::1"])
        self.assertEqual(server["state"], "online")
        self.assertTrue(server["pin"].startswith("sha256//"))
        self.assertGreater(server["status"]["entries"], 0)
        # Bad requests: 400 naming the line, 413 when oversized; still serving.
        status, text = self.sps.request("POST", "/sps/v1/lookup", "md5:zz/32\n")
        self.assertEqual(status, 400)
        self.assertIn("line 1", text)
        status, _ = self.sps.request("POST", "/sps/v1/lookup", "md5:00000000/32\n" * 20000)
        self.assertEqual(status, 413)
        # A new pattern while lookups keep coming: none fails, and the new
        # entry is answered once it is in.
        new = payload("added-later")
        failures, answered, stop = [], [0], threading.Event()

        def hammer():
            while not stop.is_set():
                try:
                    status, text = self.sps.request("POST", "/sps/v1/lookup", f"{q}\n")
                    if status != 200 or f"{q} 1" not in text:
                        failures.append((status, text))
                    answered[0] += 1
                except OSError as e:
                    failures.append(str(e))
        t = threading.Thread(target=hammer)
        t.start()
        with open(os.path.join(self.src, "later.hdb"), "w") as f:
            f.write(f"{digest('md5', new)}:{len(new)}:Ward.Test.Later\n")
        q_new = query("md5", digest("md5", new))
        try:
            wait_for(lambda: f"{q_new} 1" in self.lookup([q_new]), timeout=90,
                     what="version 2 at ward-sps")
        finally:
            stop.set()
            t.join()
        self.assertEqual(failures, [])
        self.assertGreater(answered[0], 10)
        self.assertIn("Smart Scan Pattern version 2 in use", self.sps.log_text())
        # A restart serves the installed version at once.
        self.sps.stop()
        self.sps.start()
        wait_for(lambda: self.health() == 200, what="ward-sps again")
        self.assertIn(f"{q_new} 1", self.lookup([q_new]))

    def scan(self, sps, *paths, ok=(0, 1)):
        packages = os.path.join(self.server.data, "packages")
        p = subprocess.run([WARD, "scan", "-r", "--no-cache", "--json", "-j", "1",
                            "--agent-pattern",
                            os.path.join(packages, "smart-agent-pattern-1.tar.zst"),
                            "--sps-ca", os.path.join(self.server.data, "sps-ca.crt"),
                            *[f"--sps={u}" for u in sps], *paths],
                           capture_output=True, text=True, timeout=300)
        self.assertIn(p.returncode, ok, p.stderr)
        return {json.loads(l)["path"]: json.loads(l)["result"]
                for l in p.stdout.splitlines() if '"path"' in l}

    def test_smart_scan_through_ward_sps(self):
        packages = os.path.join(self.server.data, "packages")
        conventional = subprocess.run(
            [WARD, "scan", "-r", "--no-cache", "--json", "--virus-pattern",
             os.path.join(packages, "virus-pattern-1.tar.zst"), self.corpus],
            capture_output=True, text=True, timeout=300)
        want = {json.loads(l)["path"]: json.loads(l)["result"]
                for l in conventional.stdout.splitlines() if '"path"' in l}
        got = self.scan([f"https://127.0.0.1:{self.sps.port}"], self.corpus)
        self.assertEqual(got, want)
        self.assertIn("infected", set(got.values()))

    def test_enrollment_checked(self):
        with open(sps_bundle(self.server, self.token, self.tmp.name)) as f:
            token = json.load(f)["token"]
        good = {"uuid": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "hostname": "sps2",
                "names": ["sps2.example.net"]}
        for body, status, want in (
                (dict(good, names=["not a name!"]), 400, "not a name!"),
                (dict(good, names=[]), 400, "1 to 8 host names"),
                (dict(good, uuid="x"), 400, "36 lowercase hex"),
                (dict(good, hostname="a\x1b[2Jb"), 400, "letters, digits"),
                (dict(good, extra=1), 400, "expected")):
            got, answer = self.server.request("POST", "/api/v1/sps/enroll", body, token=token)
            self.assertEqual(got, status, answer)
            self.assertIn(want, answer["error"])
        self.assertEqual(self.server.request("POST", "/api/v1/sps/enroll", good)[0], 401)
        # The update channel takes its credential, but the agent routes do not.
        got, answer = self.server.request("POST", "/api/v1/sps/enroll", good, token=token)
        self.assertEqual(got, 201, answer)
        # The token was good for that one server.
        again = dict(good, uuid="1" * 8 + "-0000-4000-8000-" + "0" * 12)
        self.assertEqual(self.server.request("POST", "/api/v1/sps/enroll", again,
                                             token=token)[0], 401)
        cred = f"{good['uuid']}:{answer['secret']}"
        self.assertEqual(self.server.request("POST", "/api/v1/agent/update", {
            "component": "smart-pattern", "have": 0}, token=cred)[0], 200)
        self.assertEqual(self.server.request("POST", "/api/v1/agent/events", {"version": 0},
                                             token=cred)[0], 401)
        self.assertEqual(len(self.server.request("GET", "/api/v1/sps-servers",
                                                 token=self.token)[1]["servers"]), 2)

    def smart_agent(self):
        """A running ward-agent whose smart scan asks this ward-sps."""
        agent = Agent(self.tmp.name, "agent")
        done = agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        agent.start()
        self.addCleanup(agent.stop)
        status, body = self.server.request(
            "PUT", "/api/v1/sps-lists", {"lists": [{"range": "*", "sources": [
                f"https://127.0.0.1:{self.sps.port}"]}]}, token=self.token)
        self.assertEqual(status, 200, body)
        status, body = self.server.request(
            "PUT", "/api/v1/settings", {"scope": "root", "key": "scan_method",
                                        "value": "smart"}, token=self.token)
        self.assertEqual(status, 200, body)
        wait_for(lambda: os.path.exists(os.path.join(
            agent.dir, "state", "components", "smart-agent-pattern", "current")),
            timeout=60, what="the agent pattern")
        return agent

    def test_smart_agent_uses_ward_sps(self):
        agent = self.smart_agent()
        before = json.loads(self.sps.request("GET", "/sps/v1/status")[1])["requests"]
        p = subprocess.run([AGENT, "--config", agent.conf, "scan", self.corpus],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"{self.corpus}/member.tar.gz: Ward.Test.TgzMember FOUND", p.stdout)
        self.assertIn("Scan method: smart", p.stdout)
        after = json.loads(self.sps.request("GET", "/sps/v1/status")[1])["requests"]
        self.assertGreater(after, before)
        # Revoked, it is trusted no more: the agent does not even finish a
        # handshake with it, and what needed its answers is unverified.
        queries = json.loads(self.sps.request("GET", "/sps/v1/status")[1])["queries"]
        sid = self.server.request("GET", "/api/v1/sps-servers",
                                  token=self.token)[1]["servers"][0]["id"]
        self.assertEqual(self.server.request("POST", "/api/v1/sps-servers/revoke",
                                             {"id": sid}, token=self.token)[0], 200)
        p = subprocess.run([AGENT, "--config", agent.conf, "scan", self.corpus],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("Unverified files:", p.stdout)
        self.assertEqual(json.loads(self.sps.request("GET", "/sps/v1/status")[1])[
            "queries"], queries)

    def test_rescan_takes_the_actions(self):
        """A file left unverified while ward-sps was down is rescanned once
        it answers again: found, it is quarantined and reported with the
        action, like any detection of its scan."""
        agent = self.smart_agent()
        d = os.path.join(self.tmp.name, "rescan")
        os.makedirs(d)
        victim = os.path.join(d, "x.bin")
        shutil.copy(os.path.join(self.corpus, "md5-sized.bin"), victim)
        self.sps.stop()
        p = subprocess.run([AGENT, "--config", agent.conf, "scan", d], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{victim}: Unverified", p.stdout)
        unverified = os.path.join(agent.dir, "state", "unverified.json")
        with open(unverified) as f:
            self.assertEqual(json.load(f), [{"path": victim, "source": "manual"}])
        self.sps.start()
        client = agent.credential()["client"]

        def reported():
            _, body = self.server.request("GET", f"/api/v1/logs?kind=detection&client={client}",
                                          token=self.token)
            return [e["detail"] for e in body["events"] if e["detail"]["path"] == victim]
        wait_for(reported, timeout=120, what="the rescan's detection at the server")
        det = reported()[0]
        self.assertEqual((det["name"], det["source"], det["action"], det["action_result"]),
                         ("Ward.Test.Md5Sized", "manual", "quarantine", "ok"), det)
        self.assertIn("quarantine", det)
        self.assertFalse(os.path.exists(victim))
        with open(unverified) as f:
            self.assertEqual(json.load(f), [])
        listed = agent.command("quarantine", "list")
        self.assertIn(f"{det['quarantine']}  {victim}", listed.stdout)

    def test_killed_during_a_scan(self):
        # Many files whose verdicts need answers, scanned one at a time.
        bad = os.path.join(self.tmp.name, "bad")
        os.makedirs(bad)
        with open(os.path.join(self.src, "many.hdb"), "w") as f:
            for i, data in enumerate(MALWARE):
                f.write(f"{digest('md5', data)}:{len(data)}:Ward.Test.Many{i}\n")
                with open(os.path.join(bad, f"{i:03d}.bin"), "wb") as out:
                    out.write(data)
        wait_for(lambda: os.path.exists(os.path.join(
            self.server.data, "packages", "smart-agent-pattern-2.tar.zst")), timeout=60,
            what="version 2")
        q = query("md5", digest("md5", MALWARE[0]))
        wait_for(lambda: f"{q} 1" in self.lookup([q]), timeout=90, what="ward-sps on v2")
        packages = os.path.join(self.server.data, "packages")
        # (stderr to a file: communicate() would read stdout past what
        # readline() buffered, losing the lines in that buffer.)
        errors = open(os.path.join(self.tmp.name, "scan.err"), "w+")
        self.addCleanup(errors.close)
        proc = subprocess.Popen([WARD, "scan", "-r", "--no-cache", "--json", "-j", "1",
                                 "--agent-pattern",
                                 os.path.join(packages, "smart-agent-pattern-2.tar.zst"),
                                 "--sps-ca", os.path.join(self.server.data, "sps-ca.crt"),
                                 f"--sps=https://127.0.0.1:{self.sps.port}", bad],
                                stdout=subprocess.PIPE, stderr=errors, text=True)
        first = proc.stdout.readline()
        self.sps.stop(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait(timeout=300)
        errors.seek(0)
        err = errors.read()
        results = [json.loads(l) for l in (first + rest).splitlines() if '"path"' in l]
        self.assertEqual(len(results), len(MALWARE), err)
        kinds = {r["result"] for r in results}
        # Infected while it answered, unverified after: never clean.
        self.assertNotIn("clean", kinds, err)
        self.assertIn("unverified", kinds)
        self.assertIn("infected", kinds)
        self.assertEqual(proc.returncode, 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
