#!/usr/bin/env python3
"""wardd's HTTPS front under attack, over real sockets on loopback.

Slow-loris connections (a header or body byte at a time, from many
127.x.y.z source addresses) cut off at http.header_timeout and
http.body_timeout; TLS handshakes their clients left halfway cost wardd
no CPU while it waits; connections per address capped; with every ordinary
slot held an administrator still signs in and reads the tree through
http.admin_reserve; the open files limit raised at start (or a clear
refusal); and output hygiene: a %0a in a path is escaped in the log, %00
and a doubled Content-Length are refused with 400, a signature source on
/proc is refused, and the CLI escapes control characters in what it
prints.  Python standard library only.
"""
import json
import os
import re
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import WARD, WARDD, Wardd  # noqa: E402


def tls_connect(port, source="127.0.0.1", timeout=5):
    """A TLS connection to wardd from source (any 127.x.y.z), handshake done."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                   source_address=(source, 0))
    return ctx.wrap_socket(raw, server_hostname="localhost")


def closed_by_server(sock, wait):
    """Waits up to wait seconds for the server to close sock; True if it did."""
    sock.settimeout(wait)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except (OSError, ssl.SSLError):
        return True


def trickle(sock, data, every, limit):
    """Sends data a byte every `every` seconds until the server closes the
    connection; returns the seconds it took, or None if still open after
    limit seconds (or all was sent)."""
    start = time.monotonic()
    for b in data:
        try:
            sock.sendall(bytes([b]))
        except (OSError, ssl.SSLError):
            return time.monotonic() - start
        if closed_by_server(sock, every):
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            return None
    return None


def read_answer(sock, timeout=10, body=False):
    """Reads one answer (headers and a Content-Length body); returns its
    status code (and with body, the body too), or None when the connection
    closed first."""
    sock.settimeout(timeout)
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            length = int(m.group(1)) if m else 0
            if len(rest) >= length:
                m = re.match(rb"HTTP/1\.1 (\d+)", head)
                status = int(m.group(1)) if m else None
                return (status, rest[:length].decode()) if body else status
        chunk = sock.recv(4096)
        if not chunk:
            return (None, "") if body else None
        data += chunk


def raw_request(port, text):
    """Sends text over one TLS connection; returns the answer's status."""
    with tls_connect(port) as s:
        s.sendall(text.encode())
        return read_answer(s)


def clean_exit(w):
    """Fails when a sanitizer build of wardd reported anything (a leak of
    the connection tracking, say) in its log."""
    text = w.log_text()
    if "Sanitizer" in text or "runtime error:" in text:
        raise AssertionError("wardd's sanitizer report:\n" + text[-4000:])


def cpu_seconds(pid):
    """User and system CPU time process pid has had."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop_wakeups(pid):
    """Times the main thread of process pid went to sleep and woke."""
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc")


def stalled_handshake(port, source, stage):
    """A TLS connection whose client stops: stage "hello" after 3 bytes of
    its ClientHello, "finished" with the server's answer to it unanswered.
    Returns the socket (an SSLSocket whose handshake can go on for
    "finished")."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    if stage == "hello":
        raw.sendall(b"\x16\x03\x01")
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw.setblocking(False)
    s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return s


SLOW_HEADERS = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200


class DeadlineTest(unittest.TestCase):
    """Short deadlines, a small per-address cap."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ward-hardening-")
        cls.w = Wardd(cls.tmp.name, extra="[http]\nheader_timeout = 3s\nbody_timeout = 3s\n"
                      "max_per_address = 4\n")
        cls.w.start()

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()
        clean_exit(cls.w)
        cls.tmp.cleanup()

    def test_slow_headers_cut_off(self):
        # Three slow clients from one address, a byte a second: the old
        # idle timeout (long_poll + 30 s) never fired on them.
        socks = [tls_connect(self.w.port, "127.0.3.1") for _ in range(3)]
        try:
            took = [trickle(s, SLOW_HEADERS, 1.0, 15) for s in socks]
        finally:
            for s in socks:
                s.close()
        for t in took:
            self.assertIsNotNone(t, "a header byte a second kept the connection open")
            self.assertLess(t, 3 + 1 + 3)
        # Reported once for the address, not once per connection.
        time.sleep(0.5)
        lines = [l for l in self.w.log_text().splitlines()
                 if "127.0.3.1" in l and "http.header_timeout" in l]
        self.assertEqual(len(lines), 1, self.w.log_text())

    def test_silent_connection_cut_off(self):
        with tls_connect(self.w.port, "127.0.3.2") as s:
            start = time.monotonic()
            self.assertTrue(closed_by_server(s, 10))
            self.assertLess(time.monotonic() - start, 3 + 1 + 2)

    def test_slow_body_cut_off(self):
        with tls_connect(self.w.port, "127.0.3.3") as s:
            s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
            took = trickle(s, b"{" + b" " * 98 + b"}", 1.0, 15)
        self.assertIsNotNone(took, "a body byte a second kept the connection open")
        self.assertLess(took, 3 + 1 + 3)

    def test_keep_alive_requests_go_on(self):
        # Deadlines count per request: a client that asks promptly is served
        # for longer than header_timeout on one connection.
        with tls_connect(self.w.port, "127.0.3.4") as s:
            for _ in range(5):
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                self.assertEqual(read_answer(s), 200)
                time.sleep(1)

    def test_tls_server_preferences(self):
        # The server's choice, the cheapest of the strong suites (a client
        # listing AES-256-GCM first, as OpenSSL's does, gets AES-128-GCM),
        # over TLS 1.3 and 1.2; a client that offers only AES-256 is served.
        with tls_connect(self.w.port, "127.0.3.5") as s:
            self.assertEqual(s.cipher()[:2], ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.w.port), timeout=5),
                             server_hostname="localhost") as s:
            self.assertEqual(s.cipher()[:2], ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2"))
        ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.w.port), timeout=5),
                             server_hostname="localhost") as s:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_answer(s), 200)

    def test_stalled_handshakes_cost_no_cpu(self):
        # libmicrohttpd runs a handshake again at each pass while it waits
        # for the client, and asks for the next pass at once: one client
        # that sent 3 bytes had wardd spinning on a core until
        # header_timeout. Clients stopped in either flight of the
        # handshake cost wardd next to nothing, and it serves the rest.
        socks = [stalled_handshake(self.w.port, f"127.0.4.{i}", stage)
                 for i, stage in enumerate(["hello", "finished"] * 3, 1)]
        try:
            time.sleep(0.3)
            before = cpu_seconds(self.w.proc.pid)
            woke = loop_wakeups(self.w.proc.pid)
            time.sleep(2)
            spent = cpu_seconds(self.w.proc.pid) - before
            woke = loop_wakeups(self.w.proc.pid) - woke
            self.assertLess(spent, 0.4, "wardd spun over handshakes waiting for their clients")
            # Each pass of the loop runs those handshakes again: it wakes
            # for its timers (a few a second), not 100 times a second to
            # look for finished password work, as it did.
            self.assertLess(woke, 60, "wardd's loop woke that often in 2 s")
            self.assertEqual(raw_request(self.w.port, "GET /api/v1/health HTTP/1.1\r\n"
                                         "Host: localhost\r\n\r\n"), 200)
            # A client stopped halfway goes on, and is served.
            s = socks[1]
            s.setblocking(True)
            s.settimeout(5)
            s.do_handshake()
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_answer(s), 200)
        finally:
            for s in socks:
                s.close()

    def test_large_record_answered_at_once(self):
        # Headers of 3 KiB in one TLS record: libmicrohttpd takes them from
        # the TLS layer's buffer a piece a pass, reading nothing from the
        # socket, so those passes look idle; waiting after each added 70 ms
        # to the answer. (TCP_NODELAY: Python's request otherwise waits for
        # the ACK of its handshake's last message, 40 ms.)
        request = (b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " +
                   b"a" * 3300 + b"\r\n\r\n")
        took = []
        with tls_connect(self.w.port, "127.0.3.7") as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(5):
                start = time.monotonic()
                s.sendall(request)
                self.assertEqual(read_answer(s), 200)
                took.append(time.monotonic() - start)
        self.assertLess(sorted(took)[2], 0.03, took)

    def test_per_address_limit(self):
        held = [tls_connect(self.w.port, "127.0.4.1") for _ in range(4)]
        try:
            refused = 0
            for _ in range(3):
                try:
                    with tls_connect(self.w.port, "127.0.4.1", timeout=3) as s:
                        refused += closed_by_server(s, 2)
                except (OSError, ssl.SSLError):
                    refused += 1
            self.assertEqual(refused, 3)
            # Another address is served meanwhile.
            self.assertEqual(raw_request(self.w.port, "GET /api/v1/health HTTP/1.1\r\n"
                                         "Host: localhost\r\n\r\n"), 200)
        finally:
            for s in held:
                s.close()
        time.sleep(0.5)
        lines = [l for l in self.w.log_text().splitlines()
                 if "127.0.4.1" in l and "http.max_per_address" in l]
        self.assertEqual(len(lines), 1, self.w.log_text())

    def test_log_line_injection_escaped(self):
        self.w.request("GET", "/api/v1/nothing%0aerror:%20forged%1b[2J")
        time.sleep(0.3)
        text = self.w.log_text()
        self.assertNotIn("\nerror: forged", text)
        self.assertNotIn("\x1b", text)
        self.assertIn("/api/v1/nothing\\nerror: forged\\x1b[2J", text)

    def test_nul_refused(self):
        self.assertEqual(self.w.request("GET", "/api/v1/agent/download?file="
                                        "smart-1.tar.zst%00.txt")[0], 400)
        self.assertEqual(self.w.request("GET", "/console/index.html%00.txt")[0], 400)
        self.assertEqual(self.w.request("GET", "/api/v1/health")[0], 200)

    def test_headers_within_the_connection_memory(self):
        """Each connection has 4 KiB of libmicrohttpd memory (its request
        line and headers; bodies stream through): 2,500 bytes of headers
        fit, far more than agents and browsers send; 16 KiB are refused,
        and the server goes on."""
        pad = "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n"
        self.assertEqual(raw_request(self.w.port, pad.format("a" * 2500)), 200)
        self.assertIn(raw_request(self.w.port, pad.format("a" * 16384)), (431, None))
        self.assertEqual(self.w.request("GET", "/api/v1/health")[0], 200)

    def test_content_length_twice_refused(self):
        self.assertEqual(raw_request(self.w.port, "GET /api/v1/health HTTP/1.1\r\n"
                                     "Host: localhost\r\nContent-Length: 0\r\n"
                                     "Content-Length: 0\r\n\r\n"), 400)
        self.assertEqual(raw_request(self.w.port, "POST /api/v1/login HTTP/1.1\r\n"
                                     "Host: localhost\r\nContent-Length: 2\r\n"
                                     "Content-Length: 40\r\n\r\n{}"), 400)
        self.assertEqual(raw_request(self.w.port, "GET /api/v1/health HTTP/1.1\r\n"
                                     "Host: localhost\r\nContent-Length: 0\r\n\r\n"), 200)

    def test_pseudo_fs_source_refused(self):
        token = self.w.login()
        status, body = self.w.request("PUT", "/api/v1/update/settings",
                                      {"source_dir": "/proc/self"}, token=token)
        self.assertEqual(status, 400, body)
        self.assertIn("proc", body["error"])
        status, body = self.w.request("GET", "/api/v1/update/settings", token=token)
        self.assertNotEqual(body["source_dir"], "/proc/self")

    def test_cli_escapes_control_characters(self):
        # A string the CLI prints that a request can set: the signature
        # source's directory name, in `ward update settings` and in the
        # event log's table (`ward logs`).
        token = self.w.login()
        odd = os.path.join(self.tmp.name, "sig\x1b[31mred\nforged")
        os.makedirs(odd)
        status, body = self.w.request("PUT", "/api/v1/update/settings", {"source_dir": odd},
                                      token=token)
        self.assertEqual(status, 200, body)
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp.name, "cfg"))
        with open(os.path.join(self.w.data, "initial-admin-password")) as f:
            env["WARD_PASSWORD"] = f.read().strip()
        done = subprocess.run([WARD, "login", "--server", f"https://localhost:{self.w.port}",
                               "--ca", os.path.join(self.w.data, "ca.crt")], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        for cmd in (["update", "settings"], ["logs"]):
            done = subprocess.run([WARD, *cmd], env=env, capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("sig\\x1b[31mred\\nforged", done.stdout)
            self.assertNotIn("\x1b", done.stdout)
            self.assertNotIn("\nforged", done.stdout)
        self.w.request("PUT", "/api/v1/update/settings", {"source_dir": None}, token=token)


class SlotsTest(unittest.TestCase):
    """Every ordinary slot held: by slow clients from many addresses, or by
    agents' parked event channels."""

    SLOTS = 16

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-hardening-")
        self.w = Wardd(self.tmp.name, extra=f"[http]\nmax_connections = {self.SLOTS}\n"
                       "admin_reserve = 4\nmax_per_address = 4\nheader_timeout = 120s\n"
                       "long_poll = 120s\n")
        self.w.start()
        self.held = []

    def tearDown(self):
        for s in self.held:
            s.close()
        self.w.stop()
        clean_exit(self.w)
        self.tmp.cleanup()

    def slow(self, n, base):
        """n slow clients, four an address from 127.0.BASE.1 on, each with
        a request line sent and the rest of its headers pending."""
        socks = []
        for i in range(n):
            s = tls_connect(self.w.port, f"127.0.{base + i // 4}.{1 + i % 4}")
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
            socks.append(s)
            time.sleep(0.02)  # in order of age
        self.held += socks
        return socks

    def parked_agent(self, i, token):
        """An agent enrolled from its own address, its event channel parked."""
        src = f"127.0.40.{i + 1}"
        body = json.dumps({"uuid": str(uuid.uuid4()), "hostname": f"agent-{i}"})
        with tls_connect(self.w.port, src) as s:
            s.sendall(f"POST /api/v1/agent/enroll HTTP/1.1\r\nHost: localhost\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            status, answer = read_answer(s, body=True)
        self.assertEqual(status, 201, answer)
        cred = f"{json.loads(body)['uuid']}:{json.loads(answer)['secret']}"
        s = tls_connect(self.w.port, src)
        self.held.append(s)
        version = 0
        for _ in range(2):
            poll = json.dumps({"version": version})
            s.sendall(f"POST /api/v1/agent/events HTTP/1.1\r\nHost: localhost\r\n"
                      f"Authorization: Bearer {cred}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(poll)}\r\n\r\n{poll}".encode())
            if version:
                return s  # parked: no answer before long_poll
            status, answer = read_answer(s, body=True)
            self.assertEqual(status, 200, answer)
            version = json.loads(answer)["version"]

    def admin_gets_in(self):
        start = time.monotonic()
        fresh = self.w.login()
        status, tree = self.w.request("GET", "/api/v1/tree", token=fresh)
        self.assertEqual(status, 200, tree)
        self.assertLess(time.monotonic() - start, 10)
        return fresh

    def report_lines(self):
        return [l for l in self.w.log_text().splitlines()
                if "http.max_connections: every connection in use" in l]

    def test_slow_clients_give_way(self):
        # The finding: one host (here ten addresses) holds every slot with
        # slow headers, and no administrator gets in.
        socks = self.slow(self.SLOTS, 10)
        time.sleep(0.5)
        self.admin_gets_in()
        # Anyone else gets in too: the slow client waiting longest gives way.
        self.assertEqual(self.w.request("GET", "/api/v1/health")[0], 200)
        self.assertTrue(closed_by_server(socks[0], 2))
        self.assertFalse(closed_by_server(socks[-1], 0.2))
        self.assertEqual(len(self.report_lines()), 1, self.w.log_text())

    def test_reserve_for_administrators(self):
        # Every ordinary slot is an agent's parked event channel, which
        # never gives way; slow clients take the reserve.
        with open(os.path.join(self.w.data, "enroll-token")) as f:
            token = f.read().strip()
        agents = [self.parked_agent(i, token) for i in range(self.SLOTS)]
        # The enrollments' own connections are closed: let the server see
        # them go (else a slow client takes a slot one of them held).
        time.sleep(1.5)
        self.slow(6, 20)
        time.sleep(0.5)
        fresh = self.admin_gets_in()
        status, body = self.w.request("GET", "/api/v1/clients?summary=1", token=fresh)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["summary"]["online"], self.SLOTS, body)
        # The reserve serves administrators only.
        status, body = self.w.request("GET", "/api/v1/health")
        self.assertEqual(status, 503, body)
        for s in agents:
            self.assertFalse(closed_by_server(s, 0.05))
        self.assertEqual(len(self.report_lines()), 1, self.w.log_text())


class FdLimitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-hardening-")
        self.saved = resource.getrlimit(resource.RLIMIT_NOFILE)

    def tearDown(self):
        resource.setrlimit(resource.RLIMIT_NOFILE, self.saved)
        self.tmp.cleanup()

    def test_limit_raised(self):
        # wardd inherits a soft limit of 1024 and needs 3000 + 32 + 256.
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, self.saved[1]))
        w = Wardd(self.tmp.name, extra="[http]\nmax_connections = 3000\n")
        try:
            w.start()
            resource.setrlimit(resource.RLIMIT_NOFILE, self.saved)
            with open(f"/proc/{w.proc.pid}/limits") as f:
                line = next(l for l in f if l.startswith("Max open files"))
            self.assertGreaterEqual(int(line.split()[3]), 3000 + 32 + 256, line)
        finally:
            w.stop()

    def test_refused_when_hard_limit_too_low(self):
        with open("/proc/self/status") as f:
            caps = int(next(l for l in f if l.startswith("CapEff:")).split()[1], 16)
        if caps >> 24 & 1:
            self.skipTest("CAP_SYS_RESOURCE: wardd may raise its hard limit here")
        w = Wardd(self.tmp.name, extra="[http]\nmax_connections = 3000\n")
        with open(w.log_path, "wb") as log:
            proc = subprocess.Popen([WARDD, "--config", w.conf], stdout=log,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: resource.setrlimit(
                                        resource.RLIMIT_NOFILE, (1024, 1024)))
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
                self.fail("wardd started with 1024 files for 3000 connections")
        self.assertNotEqual(code, 0)
        self.assertIn("need 3288, but the hard limit is 1024", w.log_text())


class PseudoSourceConfigTest(unittest.TestCase):
    def test_proc_source_refused_at_start(self):
        with tempfile.TemporaryDirectory(prefix="ward-hardening-") as tmp:
            w = Wardd(tmp, extra="[updates]\nsource_dir = /proc/self\n[http]\n"
                      "max_connections = 100\n")
            with self.assertRaises(AssertionError):
                w.start()
            w.proc.wait(timeout=10)
            w.log.close()
            self.assertIn("pseudo file system", w.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
