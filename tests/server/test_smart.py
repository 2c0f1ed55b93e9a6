#!/usr/bin/env python3
"""Smart scan against conventional scan, with real components: wardd imports
a ClamAV directory (the signed test CVD plus custom hash and allow-list
files), builds the Virus Pattern and the Smart Scan Agent Pattern, and
serves its integrated smart protection server. `ward scan --virus-pattern`
and `ward scan --agent-pattern --sps` then scan one corpus and must give
the same verdicts and names: hash signatures of whole files and of members
inside zip, 7z and tar.gz, sized and `*` entries, MD5/SHA-1/SHA-256, .fp/.sfp
allow-lists on a file and on the archive holding it, PUA entries (off in
both). Faults: the smart protection server down (files unverified, never
clean; a second source takes over), malformed source URLs.
WARDD_BIN and WARD_BIN name the programs.
"""
import http.client
import json
import os
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from smartcorpus import MD5_SIZED, start_server  # noqa: E402
from wardtest import AGENT, Agent, digest, payload, wait_for, WARD, Wardd  # noqa: E402


class SmartScanTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.corpus, cls.server = start_server("ward-smart-", cls.addClassCleanup)
        packages = os.path.join(cls.server.data, "packages")
        cls.vp = os.path.join(packages, "virus-pattern-1.tar.zst")
        cls.sap = os.path.join(packages, "smart-agent-pattern-1.tar.zst")
        cls.ca = os.path.join(cls.server.data, "ca.crt")
        cls.sps = f"https://127.0.0.1:{cls.server.port}"
        wait_for(lambda: os.path.exists(cls.vp) and os.path.exists(cls.sap) and
                 '"version":1' in cls.server_get("/sps/v1/status").replace(" ", ""),
                 what="the first components")

    def scan(self, *args, ok=(0, 1)):
        p = subprocess.run([WARD, "scan", "-r", "--no-cache", "--json", "-j", "2", *args,
                            self.corpus], capture_output=True, text=True, timeout=300)
        self.assertIn(p.returncode, ok, p.stderr)
        results = {}
        for line in p.stdout.splitlines():
            o = json.loads(line)
            if "path" in o:
                results[os.path.relpath(o["path"], self.corpus)] = (o["result"],
                                                                   o["signatures"])
        return results, p.stderr

    def smart(self, *args, sps=None, ok=(0, 1)):
        sps = sps or [self.sps]
        return self.scan("--agent-pattern", self.sap, "--sps-ca", self.ca,
                         *[f"--sps={u}" for u in sps], *args, ok=ok)

    def test_parity(self):
        for extra in ((), ("--allmatch",)):
            conventional, _ = self.scan("--virus-pattern", self.vp, *extra)
            smart, err = self.smart(*extra)
            self.assertEqual(len(conventional), 316)
            if extra:
                # allmatch reports the same names; their order may differ.
                conventional = {k: (r, sorted(n)) for k, (r, n) in conventional.items()}
                smart = {k: (r, sorted(n)) for k, (r, n) in smart.items()}
            differ = {k: (smart.get(k), conventional.get(k))
                      for k in set(smart) | set(conventional)
                      if smart.get(k) != conventional.get(k)}
            self.assertEqual(differ, {}, f"{extra}: (smart, conventional)\n{err}")
        # What both found, by name: the cases the corpus is made of.
        want = {
            "md5-sized.bin": "Ward.Test.Md5Sized", "md5-any.bin": "Ward.Test.Md5Any",
            "sha1-sized.bin": "Ward.Test.Sha1Sized", "sha256-any.bin": "Ward.Test.Sha256Any",
            "member.zip": "Ward.Test.ZipMember", "member.tar.gz": "Ward.Test.TgzMember",
            "nested.zip": "Ward.Test.Md5Any", "untrusted.bin": "Ward.Test.Body",
            "clam.exe": "Ward.Test.ClamExe", "clam.7z": "Ward.Test.ClamExe",
            "clam.zip": "Ward.Test.ClamExe", "clam.tar.gz": "Ward.Test.ClamExe",
        }
        smart, _ = self.smart("--allmatch")
        for k, name in want.items():
            self.assertEqual(smart[k][0], "infected", k)
            self.assertIn(name, smart[k][1], k)
        for clean in ("wrong-size.bin", "pua.bin", "trusted.bin", "trusted.zip"):
            self.assertEqual(smart[clean], ("clean", []), clean)

    def test_source_down_and_failover(self):
        # Nothing listens on port 1: every file a hash answer decides is
        # unverified, never clean; the others keep their verdicts.
        dead = "https://127.0.0.1:1"
        results, err = self.smart(sps=[dead], ok=(1,))
        self.assertEqual(results["md5-sized.bin"][0], "unverified")
        self.assertEqual(results["member.zip"][0], "unverified")
        self.assertEqual(results["untrusted.bin"][0], "infected")  # a body signature
        self.assertIn("127.0.0.1:1", err)
        self.assertIn("no source answers", err)
        unverified = [k for k, (r, _) in results.items() if r == "unverified"]
        # The hash entries' files, plus clean files whose prefix hit by chance.
        self.assertLess(len(unverified), 30, unverified)
        # The second source answers: the same as with it alone.
        results, err = self.smart(sps=[dead, self.sps])
        alone, _ = self.smart()
        self.assertEqual(results, alone)
        self.assertIn("trying the next source", err)

    def test_queries_few_and_batched(self):
        before = json.loads(self.server_get("/sps/v1/status"))["requests"]
        p = subprocess.run([WARD, "scan", "-r", "--no-cache", "--json", "--agent-pattern",
                            self.sap, "--sps-ca", self.ca, f"--sps={self.sps}",
                            os.path.join(self.corpus, "clean")],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        status = json.loads(self.server_get("/sps/v1/status"))
        # 300 clean files: a prefix hits by chance about once in 430 or more
        # lookups, so a handful of requests at most.
        self.assertLessEqual(status["requests"] - before, 10, status)

    @classmethod
    def server_get(cls, path):
        ctx = ssl.create_default_context(cafile=cls.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", cls.server.port, context=ctx,
                                           timeout=30)
        conn.request("GET", path)
        body = conn.getresponse().read().decode()
        conn.close()
        return body

    def test_bad_arguments(self):
        for args, want in ((["--agent-pattern", self.sap], "needs at least one --sps"),
                           (["--sps", self.sps], "need --agent-pattern"),
                           (["--agent-pattern", "/nonexistent", "--sps", self.sps],
                            "/nonexistent"),
                           (["--agent-pattern", self.vp, "--sps", self.sps],
                            "hash-prefixes.wpx")):
            p = subprocess.run([WARD, "scan", "--no-cache", *args, self.corpus],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(want, p.stderr, args)


class HashOnlyTest(unittest.TestCase):
    """A database of hash signatures only: the agent pattern is prefixes
    alone, with no signature file libclamav would load, and still scans."""

    def test_prefixes_alone(self):
        with tempfile.TemporaryDirectory(prefix="ward-smart-hashes-") as tmp:
            src = os.path.join(tmp, "source")
            os.makedirs(src)
            with open(os.path.join(src, "only.hdb"), "w") as f:
                f.write(f"{digest('md5', MD5_SIZED)}:{len(MD5_SIZED)}:Ward.Test.Md5Sized\n")
            corpus = os.path.join(tmp, "corpus")
            os.makedirs(corpus)
            for name, data in (("bad.bin", MD5_SIZED), ("good.bin", payload("good"))):
                with open(os.path.join(corpus, name), "wb") as f:
                    f.write(data)
            server = Wardd(tmp, extra=f"[updates]\nsource_dir = {src}\n")
            server.start()
            try:
                packages = os.path.join(server.data, "packages")
                sap = os.path.join(packages, "smart-agent-pattern-1.tar.zst")
                wait_for(lambda: os.path.exists(sap) and
                         server.request("GET", "/sps/v1/health")[0] == 200,
                         what="the components")
                p = subprocess.run([WARD, "scan", "--no-cache", "--agent-pattern", sap,
                                    f"--sps=https://127.0.0.1:{server.port}", "--sps-ca",
                                    os.path.join(server.data, "ca.crt"), corpus],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("bad.bin: Ward.Test.Md5Sized FOUND", p.stdout)
                self.assertIn("good.bin: OK", p.stdout)
            finally:
                server.stop()


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy listening on ::1 only, which reaches any
    address: what a dual-stack proxy does for IPv6-only hosts."""
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.tunnels = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(inner):
                line = inner.rfile.readline().decode()
                while inner.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                method, target, _ = line.split(" ", 2)
                if method != "CONNECT":
                    inner.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                host, port = target.rsplit(":", 1)
                self.tunnels.append(target)
                upstream = socket.create_connection((host.strip("[]"), int(port)))
                inner.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                inner.wfile.flush()
                ends = [inner.connection, upstream]
                while True:
                    ready, _, _ = select.select(ends, [], [], 30)
                    if not ready:
                        break
                    for r in ready:
                        data = r.recv(65536)
                        if not data:
                            upstream.close()
                            return
                        (upstream if r is inner.connection else inner.connection).sendall(data)
        super().__init__(("::1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SmartAgentTest(unittest.TestCase):
    """Real agents: one switched to smart scan by the server, one left on
    conventional scan, scanning the same corpus with `ward-agent scan`."""

    def setUp(self):
        self.tmp, self.corpus, self.server = start_server("ward-smart-agent-", self.addCleanup)
        self.token = self.server.login()
        wait_for(lambda: self.server.request("GET", "/sps/v1/health")[0] == 200,
                 what="the first components")
        # Both agents scan the same corpus: what they find is only reported,
        # not quarantined by the first one out of the second one's sight.
        for key in ("action.malware.first", "action.malware.second", "action.pua.first",
                    "action.pua.second"):
            status, body = self.server.request("PUT", "/api/v1/settings", {
                "scope": "root", "key": key, "value": "pass"}, token=self.token)
            self.assertEqual(status, 200, body)
        self.agents = {}
        for name in ("smart", "conventional"):
            a = Agent(self.tmp.name, name)
            self.addCleanup(a.stop)
            done = a.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
            self.assertEqual(done.returncode, 0, done.stderr)
            a.start()
            self.agents[name] = a
        wait_for(lambda: all(a.version() > 0 for a in self.agents.values()),
                 what="first settings")

    def client_id(self, agent):
        with open(os.path.join(agent.dir, "state", "credential.json")) as f:
            uuid = json.load(f)["uuid"]
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(status, 200, body)
        return next(c["id"] for c in body["clients"] if c["uuid"] == uuid)

    def installed(self, agent, component):
        return os.path.exists(os.path.join(agent.dir, "state", "components", component,
                                           "current"))

    def agent_scan(self, agent, ok=(0, 1)):
        """The running agent's scan of the corpus: its lines, its output, and
        what it said meanwhile (its errors, and the agent's log)."""
        before = len(agent.log_text())
        p = subprocess.run([AGENT, "--config", agent.conf, "scan", self.corpus],
                           capture_output=True, text=True, timeout=300)
        self.assertIn(p.returncode, ok, p.stderr)
        lines = sorted(l for l in p.stdout.splitlines() if l.startswith(self.corpus))
        return lines, p.stdout, p.stderr + agent.log_text()[before:]

    def switch_to_smart(self):
        smart = self.agents["smart"]
        status, body = self.server.request(
            "PUT", "/api/v1/settings", {"scope": f"client:{self.client_id(smart)}",
                                        "key": "scan_method", "value": "smart"},
            token=self.token)
        self.assertEqual(status, 200, body)
        settings = os.path.join(smart.dir, "state", "settings.json")

        def smart_in_effect():
            with open(settings) as f:
                return '"scan_method": "smart"' in f.read()
        wait_for(lambda: self.installed(smart, "smart-agent-pattern") and smart_in_effect(),
                 timeout=60, what="the agent pattern installed")
        return smart

    def test_smart_agent_detects_what_conventional_detects(self):
        smart = self.switch_to_smart()
        conventional = self.agents["conventional"]
        self.assertTrue(self.installed(conventional, "virus-pattern"))
        self.assertFalse(self.installed(conventional, "smart-agent-pattern"))
        want, _, _ = self.agent_scan(conventional)
        got, out, err = self.agent_scan(smart)
        self.assertEqual(got, want, err)
        self.assertIn("Scan method: smart", out)
        self.assertIn(f"{self.corpus}/member.zip: Ward.Test.ZipMember FOUND", got)
        self.assertIn(f"{self.corpus}/trusted.zip: OK", got)
        # Its queries went to the integrated smart protection server.
        status, body = self.server.request("GET", "/sps/v1/status")
        self.assertGreater(body["requests"], 0)

    def test_server_down_leaves_files_unverified_until_it_answers(self):
        smart = self.switch_to_smart()
        self.server.stop()
        lines, out, err = self.agent_scan(smart, ok=(1,))
        self.assertIn(f"{self.corpus}/md5-sized.bin: Unverified", lines)
        self.assertIn(f"{self.corpus}/untrusted.bin: Ward.Test.Body FOUND", lines)
        self.assertIn("Unverified files:", out)
        self.assertIn("no source answers", err)
        with open(os.path.join(smart.dir, "state", "unverified.json")) as f:
            unverified = json.load(f)
        self.assertIn({"path": f"{self.corpus}/md5-sized.bin", "source": "manual"}, unverified)
        # Back: the running agent rescans them, finds what they hold, and
        # reports the list empty.
        self.server.start()
        wait_for(lambda: "rescan: " in smart.log_text() and
                 "still unverified" in smart.log_text(), timeout=60, what="the rescan")
        self.assertIn(f"{self.corpus}/md5-sized.bin: Ward.Test.Md5Sized found",
                      smart.log_text())
        with open(os.path.join(smart.dir, "state", "unverified.json")) as f:
            self.assertEqual(json.load(f), [])

    def test_new_pattern_drops_cached_answers(self):
        smart = self.switch_to_smart()
        src = os.path.join(self.tmp.name, "source")
        x = os.path.join(self.tmp.name, "x.bin")
        data = payload("renamed-later")
        with open(x, "wb") as f:
            f.write(data)
        with open(os.path.join(src, "renamed.hdb"), "w") as f:
            f.write(f"{digest('md5', data)}:{len(data)}:Ward.Test.OldName\n")
        self.wait_imported(2)

        def unverified_then_rescanned(name):
            # With the server down the scan leaves x unverified; the running
            # agent rescans it once the server answers, with its own cache.
            self.server.stop()
            p = subprocess.run([AGENT, "--config", smart.conf, "scan", x],
                               capture_output=True, text=True, timeout=120)
            self.assertIn(f"{x}: Unverified", p.stdout, p.stderr)
            self.server.start()
            wait_for(lambda: f"{x}: {name} found" in smart.log_text(), timeout=60,
                     what=f"the rescan finding {name}")

        def agents_updated(version):
            status, body = self.server.request("POST", "/api/v1/update/agents",
                                               {"scope": "root"}, token=self.token)
            self.assertEqual(status, 200, body)
            wait_for(lambda: os.path.realpath(os.path.join(
                smart.dir, "state", "components", "smart-agent-pattern", "current")).endswith(
                    f"/{version}"), timeout=60, what=f"the agent on version {version}")

        agents_updated(2)
        unverified_then_rescanned("Ward.Test.OldName")
        # The entry is renamed in version 3, which also gains a hash (so the
        # agent pattern changes too). The agent's cached answer (good for
        # 600 s) names the old one: the new agent pattern must drop it.
        other = payload("another")
        with open(os.path.join(src, "renamed.hdb"), "w") as f:
            f.write(f"{digest('md5', data)}:{len(data)}:Ward.Test.NewName\n"
                    f"{digest('md5', other)}:{len(other)}:Ward.Test.Another\n")
        self.token = self.server.login()
        self.wait_imported(3)
        agents_updated(3)
        unverified_then_rescanned("Ward.Test.NewName")

    def wait_imported(self, version):
        status, body = self.server.request("POST", "/api/v1/update/now", token=self.token)
        self.assertEqual(status, 200, body)
        status = self.server.request("GET", "/api/v1/update", token=self.token)[1]
        versions = {c["name"]: c["version"] for c in status["components"]}
        self.assertEqual(versions["smart-agent-pattern"], version, body)

    def set_lists(self, lists):
        status, body = self.server.request("PUT", "/api/v1/sps-lists", {"lists": lists},
                                           token=self.token)
        self.assertEqual(status, 200, body)

    def test_ipv6_only_agent_and_an_ipv4_source(self):
        smart = self.switch_to_smart()
        smart.stop()
        with open(smart.conf, "a") as f:
            f.write("networks = ipv6\n")
        port = self.server.port
        self.set_lists([{"range": "*", "sources": [f"https://127.0.0.1:{port}"]}])
        smart.start()
        # The server sees the agent's networks and warns about the list.
        wait_for(lambda: self.server.request("GET", "/api/v1/sps-lists", token=self.token)
                 [1]["warnings"], timeout=30, what="the address-family warning")
        warning = self.server.request("GET", "/api/v1/sps-lists",
                                      token=self.token)[1]["warnings"][0]
        self.assertIn("1 agent reaches the network over IPv6 only", warning)
        # The agent does not try the source, says why, and leaves files
        # unverified rather than clean.
        lines, _, err = self.agent_scan(smart, ok=(1,))
        self.assertIn("reachable over IPv4 only and this host has IPv6 only: not tried",
                      smart.log_text())
        self.assertIn(f"{self.corpus}/md5-sized.bin: Unverified", lines)
        # Over IPv6 the same server answers.
        self.set_lists([{"range": "*", "sources": [f"https://[::1]:{port}"]}])
        self.assertEqual(self.server.request("GET", "/api/v1/sps-lists",
                                             token=self.token)[1]["warnings"], [])
        lines, _, err = self.agent_scan(smart)
        self.assertIn(f"{self.corpus}/md5-sized.bin: Ward.Test.Md5Sized FOUND", lines)

    def test_ipv6_only_agent_through_a_dual_stack_proxy(self):
        smart = self.switch_to_smart()
        smart.stop()
        with open(smart.conf, "a") as f:
            f.write("networks = ipv6\n")
        smart.start()
        proxy = ConnectProxy()
        try:
            target = f"127.0.0.1:{self.server.port}"
            self.set_lists([{"range": "*", "sources": [f"https://{target}"],
                             "proxy": f"http://[::1]:{proxy.port}"}])
            self.assertEqual(self.server.request("GET", "/api/v1/sps-lists",
                                                 token=self.token)[1]["warnings"], [])
            lines, _, err = self.agent_scan(smart)
            self.assertIn(f"{self.corpus}/md5-sized.bin: Ward.Test.Md5Sized FOUND", lines)
            self.assertIn(target, proxy.tunnels)
            # An IPv4 proxy is no use to it: not tried, and the server warns.
            self.set_lists([{"range": "*", "sources": [f"https://{target}"],
                             "proxy": "http://127.0.0.1:9"}])
            wait_for(lambda: self.server.request("GET", "/api/v1/sps-lists", token=self.token)
                     [1]["warnings"], what="the warning")
            lines, _, err = self.agent_scan(smart, ok=(1,))
            self.assertIn("not tried", err)
            self.assertIn(f"{self.corpus}/md5-sized.bin: Unverified", lines)
        finally:
            proxy.shutdown()
            proxy.server_close()

    def test_new_list_reaches_the_running_agent(self):
        # The agent starts smart scan with a list whose only source is dead.
        self.set_lists([{"range": "*", "sources": ["https://127.0.0.1:1"]}])
        smart = self.switch_to_smart()
        x = os.path.join(self.corpus, "md5-sized.bin")
        p = subprocess.run([AGENT, "--config", smart.conf, "scan", x], capture_output=True,
                           text=True, timeout=120)
        self.assertIn(f"{x}: Unverified", p.stdout, p.stderr)
        # The administrator names a working source: the running agent takes
        # the new list and rescans.
        self.set_lists([{"range": "*", "sources": ["integrated"]}])
        wait_for(lambda: f"{x}: Ward.Test.Md5Sized found" in smart.log_text(), timeout=60,
                 what="the rescan with the new list")
        self.assertIn("the source list changed", smart.log_text())

    def test_lists_checked(self):
        for lists, want in (([{"range": "10.0.0.0/8", "sources": ["ftp://x"]}],
                             "smart protection list 1, source 1"),
                            ([{"range": "*", "sources": ["integrated"], "extra": 1}],
                             "expected {\"range\""),
                            ({"range": "*"}, "expected a list")):
            status, body = self.server.request("PUT", "/api/v1/sps-lists", {"lists": lists},
                                               token=self.token)
            self.assertEqual(status, 400, body)
            self.assertIn(want, body["error"])
        # Failover across a list: a dead source first, the integrated one next.
        self.set_lists([{"range": "127.0.0.0/8", "sources": ["https://127.0.0.1:1",
                                                            "integrated"]}])
        smart = self.switch_to_smart()
        lines, _, err = self.agent_scan(smart)
        self.assertIn(f"{self.corpus}/md5-sized.bin: Ward.Test.Md5Sized FOUND", lines)
        self.assertIn("trying the next source", err)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
