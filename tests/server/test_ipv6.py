#!/usr/bin/env python3
"""IPv6 as a site has it, in real networks: network namespaces joined by
veth pairs to bridges (tests/lib/netns.py), never loopback. Needs root.

- wardd, known by its host name, on a pure-IPv6 network and an IPv4 one
  (a dual-stack host), and agents on a pure-IPv6 host, a pure-IPv4 host
  and a dual-stack one, each enrolling by the server's name (A and AAAA
  records in every host's hosts file): each comes online, reports the
  families it has, is grouped by an IPv6 prefix or an IPv4 range, takes
  its component, takes a settings change (smart scan) with its pattern,
  and detects a file through the integrated smart protection server,
  reached by name over its own family.
- a pure-IPv6 agent whose smart protection source is a ward-sps on a
  pure-IPv4 host: unreachable directly (files unverified, never clean),
  reached through a dual-stack HTTP CONNECT proxy (tests/lib/
  connect_proxy.py) named in the source list.
- wardd named by a bare IPv6 address: warned about in its log and in the
  overview's health, and still reachable by agents at that address.
- enrollments counted per IPv6 /64 and per IPv4 address.

WARDD_BIN, WARD_AGENT_BIN and WARD_SPS_BIN name the programs.
"""
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import netns  # noqa: E402
from wardtest import AGENT, Agent, free_port, sps_bundle, wait_for, Wardd, WardSps  # noqa: E402

PROXY = os.path.join(HERE, "..", "lib", "connect_proxy.py")

# A file only the smart protection server's answer names (a hash signature).
BAD = hashlib.sha256(b"ward ipv6 test").digest() * 64
BAD_NAME = "Ward.Test.Ipv6"


class NetTest(unittest.TestCase):
    """A lab per test, a signature source and a wardd on a host of it."""

    def setUp(self):
        why = netns.available()
        if why:
            self.skipTest(why)
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-ipv6-")
        self.root = self.tmp.name
        self.lab = netns.Lab()
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(self.check_clean)
        self.addCleanup(self.lab.cleanup)
        self.bad = os.path.join(self.root, "bad.bin")
        with open(self.bad, "wb") as f:
            f.write(BAD)
        self.good = os.path.join(self.root, "good.bin")
        with open(self.good, "wb") as f:
            f.write(b"nothing to see\n" * 100)

    def check_clean(self):
        self.assertEqual(self.lab.leftovers(), [], "namespaces left behind")

    def start_server(self, host, hostname, extra="", listen="*:{port}"):
        src = os.path.join(self.root, "source")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "demo.hdb"), "w") as f:
            f.write(f"{hashlib.md5(BAD).hexdigest()}:{len(BAD)}:{BAD_NAME}\n")
        os.makedirs(os.path.join(self.root, "server"))
        server = Wardd(os.path.join(self.root, "server"), extra=(
            f"[updates]\nsource_dir = {src}\nwatch_interval = 1s\n"
            f"[http]\nlong_poll = 5s\n{extra}"))
        with open(server.conf) as f:
            conf = f.read().replace("hostname = localhost", f"hostname = {hostname}").replace(
                f"listen = *:{server.port}", "listen = " + listen.format(port=server.port))
        with open(server.conf, "w") as f:
            f.write(conf)
        server.wrap = host.wrap
        server.connection = lambda addr, ctx, timeout=10: host.https(addr, server.port, ctx,
                                                                       timeout)
        server.start()
        self.addCleanup(server.stop)
        self.token = server.login()
        wait_for(lambda: server.request("GET", "/sps/v1/health")[0] == 200, timeout=60,
                 what="the first components")
        return server

    def agent(self, server, host, name, *enroll):
        a = Agent(self.root, name)
        a.wrap = host.wrap
        done = a.enroll(*(enroll or ("--bundle", os.path.join(server.data, "enroll.bundle"))))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        a.uuid = done.stdout.split()[-1]
        a.host = host
        a.start()
        self.addCleanup(a.stop)
        return a

    def clients(self, server):
        status, body = server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(status, 200, body)
        return {c["uuid"]: c for c in body["clients"]}

    def installed(self, agent, component):
        return os.path.exists(os.path.join(agent.dir, "state", "components", component,
                                           "current"))

    def settings(self, agent):
        try:
            with open(os.path.join(agent.dir, "state", "settings.json")) as f:
                return json.load(f)["settings"]
        except (OSError, ValueError, KeyError):
            return {}

    def scan(self, agent, path):
        """ward-agent scan on the agent's host, by the running agent: (exit
        status, output and what the agent logged meanwhile)."""
        before = len(agent.log_text())
        # What a scan finds is quarantined (the default action): the sample
        # is written again for each scan.
        if path == self.bad:
            with open(self.bad, "wb") as f:
                f.write(BAD)
        p = agent.host.run([AGENT, "--config", agent.conf, "scan", path], timeout=120)
        return p.returncode, p.stdout + p.stderr + agent.log_text()[before:]

    def set_root(self, server, key, value):
        status, body = server.request("PUT", "/api/v1/settings", {
            "scope": "root", "key": key, "value": value, "apply": "all"}, token=self.token)
        self.assertEqual(status, 200, body)


class FamiliesTest(NetTest):
    def test_agents_of_every_family_enroll_by_the_servers_name(self):
        lab = self.lab
        v6, v4 = lab.network("v6"), lab.network("v4")
        srv = lab.host("srv", {v6: ["2001:db8:6::1/64"], v4: ["10.64.0.1/24"]})
        hosts = {"ipv6": lab.host("a6", {v6: ["2001:db8:6::10/64"]}),
                 "ipv4": lab.host("a4", {v4: ["10.64.0.10/24"]}),
                 "dual": lab.host("ad", {v6: ["2001:db8:6::20/64"], v4: ["10.64.0.20/24"]})}
        lab.name_everywhere("wardd.test", "2001:db8:6::1", "10.64.0.1")
        server = self.start_server(srv, "wardd.test")
        with open(os.path.join(server.data, "enroll.bundle")) as f:
            self.assertEqual(json.load(f)["server"], f"https://wardd.test:{server.port}")
        # Grouping by an IPv6 address, an IPv6 prefix and an IPv4 range.
        status, body = server.request("PUT", "/api/v1/grouping", {"rules": [
            {"match": "ip", "value": "2001:db8:6::20", "domain": "/Dual"},
            {"match": "ip", "value": "2001:db8:6::/64", "domain": "/Six"},
            {"match": "ip", "value": "10.64.0.0/24", "domain": "/Four"}]}, token=self.token)
        self.assertEqual(status, 200, body)
        agents = {family: self.agent(server, h, family) for family, h in hosts.items()}

        def reported():
            c = self.clients(server)
            return all(a.uuid in c and c[a.uuid]["state"] == "online" and
                       (c[a.uuid].get("status") or {}).get("networks") == family
                       for family, a in agents.items())
        wait_for(reported, timeout=60, what="every agent online, reporting its networks")
        clients = self.clients(server)
        status, tree = server.request("GET", "/api/v1/tree", token=self.token)
        domains = {d["id"]: "/" + d["name"] for d in tree["domains"]}
        for family, domain in (("ipv6", "/Six"), ("ipv4", "/Four"), ("dual", "/Dual")):
            c = clients[agents[family].uuid]
            self.assertEqual(domains[c["domain"]], domain, c)
        self.assertEqual(clients[agents["ipv6"].uuid]["status"]["ipv4"], [])
        self.assertEqual(clients[agents["ipv6"].uuid]["status"]["ipv6"], ["2001:db8:6::10"])
        self.assertEqual(clients[agents["ipv4"].uuid]["status"]["ipv4"], ["10.64.0.10"])
        self.assertEqual(clients[agents["ipv4"].uuid]["status"]["ipv6"], [])
        # Each takes its component (conventional scan: the Virus Pattern)...
        wait_for(lambda: all(self.installed(a, "virus-pattern") for a in agents.values()),
                 timeout=90, what="the Virus Pattern on every agent")
        for a in agents.values():
            code, out = self.scan(a, self.bad)
            self.assertEqual(code, 1, out)
            self.assertIn(f"{BAD_NAME} FOUND", out)
        # ... and a settings change, with the pattern it calls for.
        self.set_root(server, "scan_method", "smart")
        wait_for(lambda: all(self.settings(a).get("scan_method") == "smart" and
                             self.installed(a, "smart-agent-pattern")
                             for a in agents.values()),
                 timeout=90, what="smart scan and its pattern on every agent")
        # Smart scan: the integrated smart protection server, at wardd.test,
        # over each agent's own family, names the file.
        before = server.request("GET", "/sps/v1/status")[1]["requests"]
        for family, a in agents.items():
            code, out = self.scan(a, self.bad)
            self.assertEqual(code, 1, f"{family}: {out}")
            self.assertIn(f"{BAD_NAME} FOUND", out)
            self.assertIn("Scan method: smart", out)
            code, out = self.scan(a, self.good)
            self.assertEqual(code, 0, f"{family}: {out}")
        self.assertGreaterEqual(server.request("GET", "/sps/v1/status")[1]["requests"],
                                before + 3)
        for a in agents.values():
            self.assertNotIn("not tried", a.log_text())


class ProxyTest(NetTest):
    def test_ipv6_only_agent_reaches_an_ipv4_only_source_through_a_proxy(self):
        lab = self.lab
        v6, v4 = lab.network("v6"), lab.network("v4")
        srv = lab.host("srv", {v6: ["2001:db8:6::1/64"], v4: ["10.64.0.1/24"]})
        sps_host = lab.host("sps", {v4: ["10.64.0.5/24"]})
        proxy_host = lab.host("px", {v6: ["2001:db8:6::3/64"], v4: ["10.64.0.3/24"]})
        a6 = lab.host("a6", {v6: ["2001:db8:6::10/64"]})
        lab.name_everywhere("wardd.test", "2001:db8:6::1", "10.64.0.1")
        lab.name_everywhere("sps.test", "10.64.0.5")
        lab.name_everywhere("proxy.test", "2001:db8:6::3", "10.64.0.3")
        server = self.start_server(srv, "wardd.test")
        # ward-sps on its IPv4-only host, enrolled with wardd by name.
        sps = WardSps(self.root, os.path.join(server.data, "sps-ca.crt"))
        sps.wrap = sps_host.wrap
        done = sps.run("enroll", "--bundle", sps_bundle(server, self.token, self.root),
                       "--name", "sps.test")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        sps.start()
        self.addCleanup(sps.stop)

        def sps_serving():
            servers = server.request("GET", "/api/v1/sps-servers", token=self.token)[1]
            return any((s.get("status") or {}).get("version") == 1
                       for s in servers["servers"])
        wait_for(sps_serving, timeout=90, what="ward-sps with the Smart Scan Pattern")
        agent = self.agent(server, a6, "a6")
        self.set_root(server, "scan_method", "smart")
        wait_for(lambda: self.installed(agent, "smart-agent-pattern") and
                 self.settings(agent).get("scan_method") == "smart", timeout=90,
                 what="the agent on smart scan")
        source = f"https://sps.test:{sps.port}"
        # Named alone, the source is out of the agent's reach: the file is
        # left unverified, never reported clean.
        status, body = server.request("PUT", "/api/v1/sps-lists", {"lists": [
            {"range": "*", "sources": [source]}]}, token=self.token)
        self.assertEqual(status, 200, body)
        code, out = self.scan(agent, self.bad)
        self.assertEqual(code, 2, out)
        self.assertIn(f"{self.bad}: Unverified", out)
        # Through the dual-stack proxy it is reached, by name, over IPv4.
        port = free_port()
        log_path = os.path.join(self.root, "proxy.log")
        with open(log_path, "wb") as log:
            proxy = proxy_host.popen([sys.executable, PROXY, str(port)], stdout=log,
                                     stderr=subprocess.STDOUT)

        def proxy_log():
            with open(log_path, errors="replace") as f:
                return f.read()
        wait_for(lambda: "listening" in proxy_log() or proxy.poll() is not None,
                 what="the proxy")
        self.assertIsNone(proxy.poll(), proxy_log())
        status, body = server.request("PUT", "/api/v1/sps-lists", {"lists": [
            {"range": "*", "sources": [source], "proxy": f"http://proxy.test:{port}"}]},
            token=self.token)
        self.assertEqual(status, 200, body)
        code, out = self.scan(agent, self.bad)
        self.assertEqual(code, 1, out)
        self.assertIn(f"{self.bad}: {BAD_NAME} FOUND", out)
        self.assertIn(f"tunnel sps.test:{sps.port} -> 10.64.0.5", proxy_log())
        self.assertIn("1 source from list 1", out)
        code, out = self.scan(agent, self.good)
        self.assertEqual(code, 0, out)


class AddressTest(NetTest):
    def test_server_named_by_a_bare_ipv6_address(self):
        v6 = self.lab.network("v6")
        # A pure-IPv6 server: nothing but IPv6 on its link.
        srv = self.lab.host("srv", {v6: ["2001:db8:6::1/64"]})
        a6 = self.lab.host("a6", {v6: ["2001:db8:6::10/64"]})
        # Listening on that address alone (and loopback, for the test's
        # requests), not on the dual-stack socket.
        server = self.start_server(srv, "2001:db8:6::1",
                                   listen="[2001:db8:6::1]:{port},127.0.0.1:{port}")
        warning = "server.hostname is the bare address 2001:db8:6::1"
        self.assertIn(warning, server.log_text())
        self.assertIn(f"started: https://[2001:db8:6::1]:{server.port} ", server.log_text())
        status, overview = server.request("GET", "/api/v1/overview", token=self.token)
        self.assertEqual(status, 200, overview)
        self.assertTrue(any(warning in w for w in overview["server"]["warnings"]), overview)
        # Agents still reach it at that address: a URL with brackets, a
        # certificate naming the address.
        with open(os.path.join(server.data, "enroll.bundle")) as f:
            self.assertEqual(json.load(f)["server"], f"https://[2001:db8:6::1]:{server.port}")
        agent = self.agent(server, a6, "a6")
        wait_for(lambda: self.clients(server).get(agent.uuid, {}).get("state") == "online",
                 what="the agent online")
        ctx = ssl.create_default_context(cafile=os.path.join(server.data, "ca.crt"))
        conn = a6.https("2001:db8:6::1", server.port, ctx)
        conn.request("GET", "/api/v1/health")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_server_named_by_a_host_name_has_no_warning(self):
        v6 = self.lab.network("v6")
        srv = self.lab.host("srv", {v6: ["2001:db8:6::1/64"]})
        self.lab.name_everywhere("wardd.test", "2001:db8:6::1")
        server = self.start_server(srv, "wardd.test")
        self.assertNotIn("bare address", server.log_text())
        self.assertEqual(server.request("GET", "/api/v1/overview",
                                        token=self.token)[1]["server"]["warnings"], [])

    def two_prefixes(self, extra):
        """wardd on a link with two IPv6 /64s and an IPv4 network, and a
        host with several addresses in each: (wardd, that host)."""
        v6, v4 = self.lab.network("v6"), self.lab.network("v4")
        srv = self.lab.host("srv", {v6: ["2001:db8:6::1/64", "2001:db8:7::1/64"],
                                    v4: ["10.64.0.1/24"]})
        many = self.lab.host("many", {v6: ["2001:db8:6::10/64", "2001:db8:6::11/64",
                                           "2001:db8:6::12/64", "2001:db8:7::10/64"],
                                      v4: ["10.64.0.10/24", "10.64.0.11/24"]})
        return self.start_server(srv, "wardd.test", extra), many

    def test_connections_are_counted_per_ipv6_64_and_per_ipv4_address(self):
        server, many = self.two_prefixes("max_per_address = 2\n")  # in [http]
        held = []

        def refused(source, to):
            """Whether wardd closes a new connection from source at once."""
            sock = many.connect(to, server.port, source=source)
            sock.settimeout(2)
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                held.append(sock)
                return False
            sock.close()
            return closed
        try:
            self.assertFalse(refused("2001:db8:6::10", "2001:db8:6::1"))
            self.assertFalse(refused("2001:db8:6::11", "2001:db8:6::1"))
            # A third address of the same /64: the /64 holds two already.
            self.assertTrue(refused("2001:db8:6::12", "2001:db8:6::1"))
            self.assertFalse(refused("2001:db8:7::10", "2001:db8:7::1"))
            self.assertFalse(refused("10.64.0.10", "10.64.0.1"))
            self.assertFalse(refused("10.64.0.11", "10.64.0.1"))
            self.assertFalse(refused("10.64.0.11", "10.64.0.1"))
            self.assertTrue(refused("10.64.0.11", "10.64.0.1"))
        finally:
            for sock in held:
                sock.close()
        wait_for(lambda: "http: 2001:db8:6::/64: holds http.max_per_address" in
                 server.log_text(), what="the refusal logged")

    def test_enrollments_are_counted_per_ipv6_64_and_per_ipv4_address(self):
        server, many = self.two_prefixes("[enroll]\nper_address = 2\n")
        with open(os.path.join(server.data, "enroll-token")) as f:
            token = f.read().strip()
        ctx = ssl.create_default_context(cafile=os.path.join(server.data, "ca.crt"))
        ctx.check_hostname = False  # reached by its addresses, which it is not named by

        def enroll(source, to):
            conn = many.https(to, server.port, ctx, source=source)
            try:
                conn.request("POST", "/api/v1/agent/enroll", json.dumps(
                    {"uuid": str(uuid.uuid4()), "hostname": "many.test"}),
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                return resp.status
            finally:
                conn.close()
        # Two addresses of one /64 share its two enrollments a minute.
        self.assertEqual(enroll("2001:db8:6::10", "2001:db8:6::1"), 201)
        self.assertEqual(enroll("2001:db8:6::11", "2001:db8:6::1"), 201)
        self.assertEqual(enroll("2001:db8:6::11", "2001:db8:6::1"), 429)
        self.assertEqual(enroll("2001:db8:6::10", "2001:db8:6::1"), 429)
        # Another /64 has its own.
        self.assertEqual(enroll("2001:db8:7::10", "2001:db8:7::1"), 201)
        # IPv4 addresses count one by one.
        for source in ("10.64.0.10", "10.64.0.10", "10.64.0.11", "10.64.0.11"):
            self.assertEqual(enroll(source, "10.64.0.1"), 201, source)
        self.assertEqual(enroll("10.64.0.10", "10.64.0.1"), 429)
        self.assertIn("address 2001:db8:6::/64 is over enroll.per_address",
                      server.log_text())


if __name__ == "__main__":
    # ctest reports 77 as skipped, not passed (SKIP_RETURN_CODE).
    why = netns.available()
    if why:
        print(f"skipped: {why}", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
