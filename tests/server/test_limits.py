#!/usr/bin/env python3
"""Bounded work and memory against hostile clients (issue 14, findings 2, 6
and 7), with real daemons on loopback:

- smart protection lookups: the amplification request (8-bit prefixes,
  1,024 queries) is refused naming the width; answers past the entry cap
  are refused 413 and `ward scan --sps` asks again in halves; clients that
  send lookups and never read keep neither wardd's nor ward-sps's memory
  growing, and past sps.max_held_answers lookups get 503 with Retry-After;
- downloads: one agent credential opening 50 downloads it never reads gets
  updates.max_downloads_per_client of them, 429 for the rest, and another
  agent still downloads; an unread download is cut off after
  updates.download_idle, freeing its slot;
- detection reports: one agent flooding 20,000 detections is capped at
  logs.detections_per_hour (429 with Retry-After), the event log holds no
  more, an administrator's request is answered promptly meanwhile, and
  another agent's report still lands; a real ward-agent keeps what the
  limit refuses.
WARDD_BIN, WARD_BIN and WARD_SPS_BIN name the programs.
"""
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (  # noqa: E402
    Agent, payload, query, sps_bundle, temp_dir, wait_for, WARD, Wardd, WardSps, zip_of)


# Enough MD5 entries that every 8-bit prefix has more than 256 of them:
# the request then drew 1,024 x 256 entries (about 15 MB).
BIG = 100000


def big_digest(i):
    return hashlib.md5(f"limits-{i}".encode()).hexdigest()


def write_big_source(src):
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "big.hdb"), "w") as f:
        for i in range(BIG):
            f.write(f"{big_digest(i)}:{1000 + i}:Limits.Big.{i}\n")


def write_download_source(src):
    """Signatures whose package (compressed) is larger than the socket
    buffers of a connection take: names of random letters."""
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "dl.hdb"), "w") as f:
        for i in range(150000):
            name = base64.b64encode(hashlib.sha256(str(i).encode()).digest(), b"._").decode()
            f.write(f"{big_digest(i)}:{1000 + i}:Limits.Dl.{name.rstrip('=')}\n")


def amplification():
    """The request of the issue: 1,024 queries of 8-bit prefixes."""
    return "".join(f"md5:{i % 256:02x}000000/8\n" for i in range(1024))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def silent(port, ctx, request, host="localhost"):
    """Sends request (bytes) over TLS and never reads: the answer waits in
    the server. The receive buffer is kept small so that the kernel takes
    little of it either. Returns the socket (the caller closes it)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname=host)
    s.sendall(request)
    return s


def lookup_request(body):
    data = body.encode()
    return (b"POST /sps/v1/lookup HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: text/plain\r\nContent-Length: " + str(len(data)).encode() +
            b"\r\n\r\n" + data)


def post(port, ctx, path, body, token=None, timeout=30):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    headers = {"Content-Type": "text/plain"}
    if token:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Retry-After"), resp.read().decode()
    finally:
        conn.close()


def enroll_clients(server, n):
    """n clients enrolled over the API: their bearer credentials."""
    with open(os.path.join(server.data, "enroll-token")) as f:
        token = f.read().strip()
    creds = []
    for i in range(n):
        uuid = f"00000000-0000-4000-8000-{i:012d}"
        status, body = server.request("POST", "/api/v1/agent/enroll",
                                      {"uuid": uuid, "hostname": f"limits{i}"}, token=token)
        assert status == 201, body
        creds.append(f"{uuid}:{body['secret']}")
    return creds


class LookupLimitsTest(unittest.TestCase):
    """wardd's integrated smart protection server and a ward-sps, both
    serving a pattern of 100,000 MD5 entries."""

    @classmethod
    def setUpClass(cls):
        # Undone even when what follows fails (tearDownClass, which checks
        # the exit statuses, is not called then).
        cls.tmp = temp_dir("ward-limits-", cls.addClassCleanup)
        cls.src = os.path.join(cls.tmp.name, "source")
        write_big_source(cls.src)
        cls.server = Wardd(cls.tmp.name, extra=(
            f"[updates]\nsource_dir = {cls.src}\nwatch_interval = 1s\n"))
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        wait_for(lambda: cls.server.request("GET", "/sps/v1/health")[0] == 200, timeout=120,
                 what="the first pattern")
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.server.data, "ca.crt"))
        sps_ca = os.path.join(cls.server.data, "sps-ca.crt")
        cls.sps = WardSps(cls.tmp.name, sps_ca)
        cls.addClassCleanup(cls.sps.stop)
        done = cls.sps.run("enroll", "--bundle", sps_bundle(cls.server, cls.server.login(),
                                                            cls.tmp.name),
                           "--name", "127.0.0.1")
        assert done.returncode == 0, done.stderr
        cls.sps.start()

        def sps_serving():
            try:
                return cls.sps.request("GET", "/sps/v1/health")[0] == 200
            except OSError:
                return False
        wait_for(sps_serving, timeout=120, what="ward-sps serving")
        # Its certificate names 127.0.0.1 (localhost is wardd's); these tests
        # speak to it as to wardd, so the name is not checked here.
        cls.sps_ctx = ssl.create_default_context(cafile=sps_ca)
        cls.sps_ctx.check_hostname = False

    @classmethod
    def tearDownClass(cls):
        cls.sps.stop()
        code = cls.server.stop()
        # Clean stops (under the sanitizers: no leak, no error).
        assert (code, cls.sps.proc.returncode) == (0, 0), (code, cls.sps.proc.returncode)

    def targets(self):
        return (("wardd", self.server.port, self.ctx, self.server.proc.pid),
                ("ward-sps", self.sps.port, self.sps_ctx, self.sps.proc.pid))

    def test_amplification_refused_naming_the_width(self):
        for name, port, ctx, _ in self.targets():
            status, _, text = post(port, ctx, "/sps/v1/lookup", amplification())
            self.assertEqual(status, 400, (name, text[:200]))
            self.assertIn("line 1: a prefix of 8 bits", text, name)
            self.assertIn("md5 prefixes of", text, name)
            # Prefixes as wide as the agent pattern's are answered, small.
            lines = [query("md5", big_digest(i)) for i in range(1024)]
            status, _, text = post(port, ctx, "/sps/v1/lookup",
                                   "".join(f"{l}\n" for l in lines))
            self.assertEqual(status, 200, (name, text[:200]))
            self.assertIn(f"md5:{big_digest(5)}:1005:block:Limits.Big.5\n", text)
            self.assertLess(len(text), 1 << 20)

    def test_silent_lookup_clients_keep_memory_bounded(self):
        """100 clients per daemon send the amplification request and never
        read: the old code held about 15 MB for each."""
        for name, port, ctx, pid in self.targets():
            before = rss_kb(pid)
            socks = []
            try:
                for _ in range(100):
                    socks.append(silent(port, ctx, lookup_request(amplification())))
                time.sleep(3)
                grown = (rss_kb(pid) - before) // 1024
                self.assertLess(grown, 150, f"{name} grew by {grown} MB")
                # Still serving.
                status, _, _ = post(port, ctx, "/sps/v1/lookup",
                                    query("md5", big_digest(1)) + "\n")
                self.assertEqual(status, 200, name)
            finally:
                for s in socks:
                    s.close()


class HeldAnswersTest(unittest.TestCase):
    """Past sps.max_held_answers bytes of answers waiting for readers,
    lookups get 503 with Retry-After; once the readers go, 200 again. An
    answer past sps.max_answer_bytes is 413, and smart scan asks again in
    halves."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = temp_dir("ward-held-", cls.addClassCleanup)
        cls.src = os.path.join(cls.tmp.name, "source")
        os.makedirs(cls.src)
        # Long names make big answers from few entries.
        cls.files = [payload(f"held-{i}") for i in range(600)]
        with open(os.path.join(cls.src, "held.hdb"), "w") as f:
            for i, data in enumerate(cls.files):
                f.write(f"{hashlib.md5(data).hexdigest()}:{len(data)}:Held.{i}.{'x' * 200}\n")
        cls.server = Wardd(cls.tmp.name, extra=(
            f"[updates]\nsource_dir = {cls.src}\nwatch_interval = 1s\n"
            "[sps]\nmax_held_answers = 1048576\nmax_answer_bytes = 131072\n"))
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)  # a no-op after tearDownClass's
        wait_for(lambda: cls.server.request("GET", "/sps/v1/health")[0] == 200, timeout=60,
                 what="the first pattern")
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.server.data, "ca.crt"))

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        assert code == 0, code

    def queries(self, n):
        return "".join(query("md5", hashlib.md5(d).hexdigest()) + "\n"
                       for d in self.files[:n])

    def test_answers_held_for_silent_readers_are_budgeted(self):
        port = self.server.port
        body = self.queries(400)  # about 110 KB of answer each
        socks = []
        try:
            refused = None
            for _ in range(30):
                # Lookups one after another on a connection never read:
                # once the kernel's buffers are full, each answer waits in
                # wardd.
                socks.append(silent(port, self.ctx, lookup_request(body) * 60))
                time.sleep(0.1)
                status, after, text = post(port, self.ctx, "/sps/v1/lookup", body)
                if status != 200:
                    refused = (status, after, text)
                    break
            self.assertIsNotNone(refused, "never refused")
            self.assertEqual(refused[0], 503, refused)
            self.assertIsNotNone(refused[1])
            self.assertIn("wait for their readers", refused[2])
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: post(port, self.ctx, "/sps/v1/lookup", body)[0] == 200,
                 what="lookups answered again")
        self.assertIn("sps.max_held_answers", self.server.log_text())

    def test_answer_past_entry_cap_is_413_and_smart_scan_splits(self):
        status, _, text = post(self.server.port, self.ctx, "/sps/v1/lookup", self.queries(600))
        self.assertEqual(status, 413, text[:200])
        self.assertIn("more than 8192 entries or 131072 bytes", text)
        self.assertEqual(post(self.server.port, self.ctx, "/sps/v1/lookup",
                              self.queries(300))[0], 200)
        # Smart scan of a zip of the 600 files asks for all its members'
        # prefixes at once, is refused, and asks again in halves.
        corpus = os.path.join(self.tmp.name, "corpus")
        os.makedirs(corpus, exist_ok=True)
        with open(os.path.join(corpus, "many.zip"), "wb") as f:
            f.write(zip_of([(f"{i:03d}.bin", d) for i, d in enumerate(self.files)]))
        sap = os.path.join(self.server.data, "packages", "smart-agent-pattern-1.tar.zst")
        refused = self.sps_status()["refused"]
        p = subprocess.run([WARD, "scan", "-r", "--no-cache", "--json", "--agent-pattern", sap,
                            f"--sps=https://127.0.0.1:{self.server.port}", "--sps-ca",
                            os.path.join(self.server.data, "ca.crt"), corpus],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 1, p.stdout[-2000:] + p.stderr[-2000:])
        results = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([r["result"] for r in results if "path" in r], ["infected"])
        self.assertGreater(self.sps_status()["refused"], refused)

    def sps_status(self):
        return self.server.request("GET", "/sps/v1/status")[1]


class DownloadLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = temp_dir("ward-downloads-", cls.addClassCleanup)
        cls.src = os.path.join(cls.tmp.name, "source")
        write_download_source(cls.src)
        cls.server = Wardd(cls.tmp.name, extra=(
            f"[updates]\nsource_dir = {cls.src}\nwatch_interval = 1s\nmax_downloads = 10\n"
            # Long enough that no held download is cut off while
            # test_one_credential_cannot_hold_every_slot opens its 50 on a
            # slow, busy machine (a cut-off would free a slot).
            "download_idle = 15s\n"))
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)  # a no-op after tearDownClass's
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.server.data, "ca.crt"))
        cls.token = cls.server.login()
        wait_for(lambda: any(c["version"] for c in cls.update()["components"]), timeout=120,
                 what="the first import")
        cls.creds = enroll_clients(cls.server, 2)
        status, plan = cls.server.request("POST", "/api/v1/agent/update",
                                          {"component": "virus-pattern", "have": 0},
                                          token=cls.creds[0])
        assert status == 200, plan
        cls.file = plan["steps"][0]["file"]
        with open(os.path.join(cls.server.data, "packages", cls.file), "rb") as f:
            data = f.read()
        cls.want = hashlib.sha256(data).hexdigest()
        assert len(data) > 6 << 20, len(data)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        assert code == 0, code

    @classmethod
    def update(cls):
        return cls.server.request("GET", "/api/v1/update", token=cls.token)[1]

    def open_download(self, cred):
        """A download whose headers are read and whose body is not."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", self.server.port))
        s = self.ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(f"GET /api/v1/agent/download?file={self.file} HTTP/1.1\r\n"
                  f"Host: localhost\r\nAuthorization: Bearer {cred}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            if not chunk:
                break
            head += chunk
        status = int(head.split(b" ", 2)[1])
        return s, status, head.decode(errors="replace")

    def download(self, cred):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx,
                                           timeout=60)
        try:
            conn.request("GET", f"/api/v1/agent/download?file={self.file}",
                         headers={"Authorization": f"Bearer {cred}"})
            resp = conn.getresponse()
            return resp.status, hashlib.sha256(resp.read()).hexdigest()
        finally:
            conn.close()

    def test_one_credential_cannot_hold_every_slot(self):
        held = []
        try:
            statuses = []
            for _ in range(50):
                s, status, head = self.open_download(self.creds[0])
                held.append(s)
                statuses.append(status)
                if status != 200:
                    self.assertEqual(status, 429, head)
                    self.assertIn("Retry-After", head)
            self.assertEqual(statuses.count(200), 2, statuses)
            self.assertEqual(self.update()["downloads"], 2)
            # Another agent downloads the whole package meanwhile.
            self.assertEqual(self.download(self.creds[1]), (200, self.want))
        finally:
            for s in held:
                s.close()
        self.assertIn("updates.max_downloads_per_client", self.server.log_text())

    def test_unread_download_is_cut_off(self):
        wait_for(lambda: self.update()["downloads"] == 0, what="no download")
        s, status, _ = self.open_download(self.creds[1])
        try:
            self.assertEqual(status, 200)
            self.assertEqual(self.update()["downloads"], 1)
            # download_idle is 15 s; the connection's own idle timeout 85 s.
            wait_for(lambda: self.update()["downloads"] == 0, timeout=45,
                     what="the unread download cut off")
        finally:
            s.close()


class DetectionLimitsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = temp_dir("ward-detections-", self.addCleanup)
        self.server = Wardd(self.tmp.name, extra="[http]\nlong_poll = 1s\n")
        self.server.start()
        self.addCleanup(self.server.stop)  # a no-op after tearDown's
        self.agents = []
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        self.token = self.server.login()
        self.creds = enroll_clients(self.server, 2)

    def tearDown(self):
        for a in self.agents:
            a.stop()
        code = self.server.stop()
        self.assertEqual(code, 0)

    def report(self, conn, cred, n, tag):
        body = json.dumps({"detections": [
            {"time": int(time.time()), "path": f"/home/{tag}/file{i}", "name": "Eicar-Test",
             "method": "conventional"} for i in range(n)]})
        conn.request("POST", "/api/v1/agent/detections", body=body,
                     headers={"Authorization": f"Bearer {cred}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("Retry-After")

    def detections(self, hostname):
        db = self.server.db()
        try:
            return db.execute("SELECT count(*) FROM events WHERE kind = 'detection' AND "
                              "hostname = ?", (hostname,)).fetchone()[0]
        finally:
            db.close()

    def test_flood_is_capped_and_the_loop_stays_responsive(self):
        stop = threading.Event()
        slowest = [0.0]

        def admin():
            while not stop.is_set():
                start = time.monotonic()
                status, _ = self.server.request("GET", "/api/v1/clients", token=self.token)
                slowest[0] = max(slowest[0], time.monotonic() - start)
                assert status == 200
                time.sleep(0.05)

        watcher = threading.Thread(target=admin)
        watcher.start()
        statuses = {}
        after = None
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx,
                                               timeout=30)
            # 20,000 detections in reports of 100, as fast as they go.
            for _ in range(200):
                status, retry = self.report(conn, self.creds[0], 100, "flood")
                statuses[status] = statuses.get(status, 0) + 1
                if status == 429:
                    after = retry
            conn.close()
        finally:
            stop.set()
            watcher.join()
        self.assertEqual(statuses.get(200), 10, statuses)
        self.assertEqual(statuses.get(429), 190, statuses)
        self.assertIsNotNone(after)
        self.assertTrue(0 < int(after) <= 3600, after)
        self.assertEqual(self.detections("limits0"), 1000)
        self.assertLess(slowest[0], 1.0)
        # Logged once, not per refused report.
        db = self.server.db()
        refused = db.execute("SELECT count(*) FROM events WHERE message LIKE "
                             "'detection reports refused%'").fetchone()[0]
        db.close()
        self.assertEqual(refused, 1)
        # Another agent's report lands.
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx,
                                           timeout=30)
        self.assertEqual(self.report(conn, self.creds[1], 3, "other")[0], 200)
        conn.close()
        self.assertEqual(self.detections("limits1"), 3)

    def test_agent_keeps_what_the_limit_refuses(self):
        """A real ward-agent with 1,100 detections to report sends them 100
        a report: 1,000 are taken, the rest refused 429 and kept."""
        agent = Agent(self.tmp.name, "agent")
        done = agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.agents.append(agent)
        spool = os.path.join(agent.dir, "state", "detections.json")
        now = int(time.time())
        with open(spool, "w") as f:
            json.dump([{"time": now, "path": f"/srv/f{i}", "name": "Eicar-Test",
                        "method": "conventional"} for i in range(1100)], f)
        agent.start()
        wait_for(lambda: "the server's limit for this agent is reached" in agent.log_text(),
                 timeout=120, what="the agent refused for its limit")
        db = self.server.db()
        logged = db.execute("SELECT count(*) FROM events WHERE kind = 'detection'").fetchone()[0]
        db.close()
        self.assertEqual(logged, 1000)
        with open(spool) as f:
            kept = json.load(f)
        self.assertEqual([d["path"] for d in kept], [f"/srv/f{i}" for i in range(1000, 1100)])


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
