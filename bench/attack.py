#!/usr/bin/env python3
"""wardd under a connection and memory attack (`make bench-attack`).

A real wardd imports a synthetic hash database (so the integrated smart
protection server has a pattern to answer from) and holds --agents
simulated agents (ward-loadgen: enrollment, one event channel each, status
on a short heartbeat, so a starved agent would be marked offline within the
run). Then, for --duration seconds:

- --slow connections spread over 127.1.x.y source addresses (--per-address
  each): half silent (TCP connected, nothing sent), half slow-loris (TLS
  handshake, then one header byte every --trickle seconds); each one cut
  off is opened again at once;
- --lookups clients, each from its own 127.2.0.x address, send a smart
  protection lookup of 1,024 8-bit prefixes (about 15 KB; --lookup-bits
  0: of the narrowest prefixes wardd answers) with a tiny receive buffer, never read the answer, and ask again when cut off;

while an administrator asks for the client summary (`GET
/api/v1/clients?summary=1`, a new TLS connection each time) every
--admin-every seconds, and wardd's RSS is sampled. Reports wardd's peak
RSS, the administrator's latency p50/p99 (a request that fails counts as
--admin-timeout), whether any agent was shown offline or inactive, and
how the attack fared (connections made, cut off, refused). Prints a
markdown report, writes it to --out, and exits 1 when a target is missed
(RSS < 300 MB, admin p99 <= 1 s, no agent offline). Python standard
library only; stops by itself (and stops early, naming it, when wardd's RSS
passes --rss-abort).
"""
import argparse
import http.client
import json
import random
import resource
import select
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

sys.path.insert(0, str(BENCH))
from server import proc_stat  # noqa: E402
from updates import start_wardd  # noqa: E402


def log(msg):
    print(f"bench-attack: {msg}", file=sys.stderr, flush=True)


def write_hashes(src, n, rng):
    """n random MD5 signatures: with 8-bit prefixes every query of a lookup
    meets its cap of entries once n passes 65,536."""
    with open(src / "bench.hdb", "w") as f:
        for i in range(n):
            f.write(f"{rng.getrandbits(128):032x}:{rng.randrange(64, 10**7)}:"
                    f"Bench.Attack.Md5.{i}\n")


def unverified_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def source_address(base, i, per):
    """The i-th connection's source address: per connections an address,
    addresses counted up from 127.BASE.0.1."""
    a = i // per
    return f"127.{base}.{a // 250}.{a % 250 + 1}"


class SlowConnections(threading.Thread):
    """Holds n slow or silent connections on one selector, opening each
    again when wardd cuts it off."""

    HEADER = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 4000

    def __init__(self, port, n, per, trickle, stop):
        super().__init__(daemon=True)
        self.port, self.n, self.per, self.trickle, self.stop = port, n, per, trickle, stop
        self.ctx = unverified_context()
        self.sel = selectors.DefaultSelector()
        self.opened = self.cut = self.failed = 0
        self.held = 0

    def open(self, i):
        """Connection i: even ones silent (plain TCP), odd ones slow TLS."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            raw.bind((source_address(1, i, self.per), 0))
            raw.setblocking(False)
            raw.connect_ex(("127.0.0.1", self.port))
        except OSError:
            raw.close()
            self.failed += 1
            return
        st = {"i": i, "sock": raw, "tls": i % 2 == 1, "connected": False, "shaken": False,
              "sent": 0, "next": time.monotonic() + self.trickle}
        self.sel.register(raw, selectors.EVENT_WRITE, st)
        self.opened += 1

    def drop(self, st, cut=True):
        try:
            self.sel.unregister(st["sock"])
        except (KeyError, ValueError):
            pass
        st["sock"].close()
        self.cut += cut

    def step(self, st, mask):
        """Advances st on readiness; returns False when it is gone."""
        s = st["sock"]
        try:
            if not st["connected"]:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    return False
                st["connected"] = True
                if not st["tls"]:
                    self.sel.modify(s, selectors.EVENT_READ, st)  # stays silent
                    return True
                self.sel.unregister(s)
                st["sock"] = s = self.ctx.wrap_socket(s, server_hostname="localhost",
                                                      do_handshake_on_connect=False)
                self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
                return True
            if st["tls"] and not st["shaken"]:
                s.do_handshake()
                st["shaken"] = True
                self.sel.modify(s, selectors.EVENT_READ, st)
                return True
            if mask & selectors.EVENT_READ:
                if not s.recv(4096):
                    return False
        except ssl.SSLWantReadError:
            self.sel.modify(s, selectors.EVENT_READ, st)
            return True
        except ssl.SSLWantWriteError:
            self.sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
            return True
        except (OSError, ssl.SSLError):
            return False
        return True

    def run(self):
        reopen = []  # (when, i): a connection cut off is opened again a second later
        for i in range(self.n):
            self.open(i)
        while not self.stop.is_set():
            now = time.monotonic()
            for key, mask in self.sel.select(timeout=0.2):
                st = key.data
                if not self.step(st, mask):
                    self.drop(st)
                    reopen.append((now + 1, st["i"]))
            while reopen and reopen[0][0] <= now:
                self.open(reopen.pop(0)[1])
            for key in list(self.sel.get_map().values()):
                st = key.data
                if st["tls"] and st["shaken"] and now >= st["next"]:
                    st["next"] = now + self.trickle
                    try:
                        st["sock"].send(self.HEADER[st["sent"] % len(self.HEADER):][:1])
                        st["sent"] += 1
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                    except (OSError, ssl.SSLError):
                        self.drop(st)
                        reopen.append((now + 1, st["i"]))
            self.held = len(self.sel.get_map())
        for key in list(self.sel.get_map().values()):
            self.drop(key.data, cut=False)


def narrowest_bits(port):
    """The shortest MD5 prefix wardd answers (it names it when refusing a
    shorter one): the lookups that draw the largest answers it gives."""
    conn = http.client.HTTPSConnection("localhost", port, context=unverified_context(),
                                       timeout=10)
    conn.request("POST", "/sps/v1/lookup", body="md5:00000000/8\n",
                 headers={"Content-Type": "text/plain"})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    if resp.status == 200:
        return 8
    return int(text.split("prefixes of ")[1].split()[0])


class LookupClient(threading.Thread):
    """Sends a big lookup, never reads the answer, asks again when cut off."""

    def __init__(self, port, idx, stop, counters, bits):
        super().__init__(daemon=True)
        self.port, self.idx, self.stop, self.counters = port, idx, stop, counters
        # 1,024 different prefixes of the given width (8: the request).
        mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
        lines = "".join(f"md5:{(k * 0x9E3779B1) & mask:08x}/{bits}\n" for k in range(1024))
        self.request = (f"POST /sps/v1/lookup HTTP/1.1\r\nHost: localhost\r\n"
                        f"Content-Type: text/plain\r\nContent-Length: {len(lines)}\r\n\r\n"
                        f"{lines}").encode()

    def run(self):
        ctx = unverified_context()
        src = f"127.2.{self.idx // 250}.{self.idx % 250 + 1}"
        while not self.stop.is_set():
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                raw.bind((src, 0))
                raw.settimeout(10)
                raw.connect(("127.0.0.1", self.port))
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(self.request)
                self.counters["lookups"] += 1
            except (OSError, ssl.SSLError):
                raw.close()
                self.counters["lookup_failures"] += 1
                self.stop.wait(1)
                continue
            p = select_poll(s)
            while not self.stop.is_set():
                if any(ev & ~1 for _, ev in p.poll(1000)):  # anything but POLLIN: gone
                    break
            s.close()


def select_poll(sock):
    """A poll object that reports sock's peer closing, not its data."""
    p = select.poll()
    p.register(sock, select.POLLRDHUP | select.POLLERR | select.POLLHUP)
    return p


def admin_request(port, ca, token, timeout):
    """One GET /api/v1/clients?summary=1 on a new connection; returns
    (seconds, summary or None)."""
    t = time.monotonic()
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", "/api/v1/clients?summary=1",
                     headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return timeout, None
        return time.monotonic() - t, json.loads(body)["summary"]
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
        return timeout, None
    finally:
        conn.close()


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "bin")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-attack")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-attack.md")
    ap.add_argument("--hashes", type=int, default=100000, help="MD5 signatures imported")
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--slow", type=int, default=2000, help="slow or silent connections")
    ap.add_argument("--per-address", type=int, default=20,
                    help="slow connections per 127.1.x.y source address")
    ap.add_argument("--trickle", type=float, default=5, help="seconds between slow bytes")
    ap.add_argument("--lookups", type=int, default=100, help="non-reading lookup clients")
    ap.add_argument("--lookup-bits", type=int, default=8,
                    help="prefix width of their queries (8: the issue's amplification "
                         "request; 0: the narrowest the server answers, for the largest "
                         "answers it gives)")
    ap.add_argument("--duration", type=float, default=90, help="seconds of attack")
    ap.add_argument("--admin-every", type=float, default=0.25)
    ap.add_argument("--admin-timeout", type=float, default=10)
    ap.add_argument("--rss-abort", type=int, default=4096,
                    help="MiB of wardd RSS at which the attack stops early")
    ap.add_argument("--config", default="", help="extra wardd.ini lines (\\n for newlines)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.slow + args.lookups + 256
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"bench-attack: {need} open files needed, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    shutil.rmtree(args.work, ignore_errors=True)
    src = args.work / "source"
    src.mkdir(parents=True)
    write_hashes(src, args.hashes, random.Random(1))
    # Short heartbeats: an agent starved for half a minute shows offline
    # within the run.
    extra = ("watch_interval = 1s\n[agents]\nheartbeat_interval = 10s\noffline_after = 30s\n"
             "verify_interval = 10s\n[http]\nlong_poll = 20s\n" +
             args.config.replace("\\n", "\n"))
    wardd, api, port, data = start_wardd(args.bin, args.work, src, extra)
    procs = [wardd]
    stop = threading.Event()
    threads = []
    try:
        t0 = time.monotonic()
        ctx = ssl.create_default_context(cafile=str(data / "ca.crt"))
        while time.monotonic() - t0 < 600:
            conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
            try:
                conn.request("GET", "/sps/v1/health")
                if conn.getresponse().status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.5)
        else:
            sys.exit("bench-attack: no Smart Scan Pattern after 600 s")
        log(f"{args.hashes} hashes imported in {time.monotonic() - t0:.1f} s")
        lg_err = open(args.work / "loadgen.err", "w")
        loadgen = subprocess.Popen(
            [args.bin / "ward-loadgen", "--server", f"https://localhost:{port}", "--ca",
             data / "ca.crt", "--token", (data / "enroll-token").read_text().strip(),
             "--agents", str(args.agents), "--heartbeat", "10", "--long-poll", "20"],
            stdout=subprocess.PIPE, stderr=lg_err, text=True)
        procs.append(loadgen)
        ready = loadgen.stdout.readline().split()
        if not ready or ready[0] != "READY":
            sys.exit("bench-attack: the load generator failed; see loadgen.err")
        log(f"{args.agents} agents connected")
        token = api.token
        base = [admin_request(port, data / "ca.crt", token, args.admin_timeout)[0]
                for _ in range(20)]
        _, rss0, _ = proc_stat(wardd.pid)
        log(f"before the attack: RSS {rss0 // 1024} MiB, admin p50 "
            f"{percentile(base, 0.5) * 1000:.0f} ms")

        counters = {"lookups": 0, "lookup_failures": 0}
        slow = SlowConnections(port, args.slow, args.per_address, args.trickle, stop)
        threads.append(slow)
        bits = args.lookup_bits or narrowest_bits(port)
        log(f"lookup clients ask with {bits}-bit prefixes")
        threads += [LookupClient(port, i, stop, counters, bits) for i in range(args.lookups)]
        for t in threads:
            t.start()
        lat, offline, failed, peak, aborted = [], 0, 0, rss0, None
        start = time.monotonic()
        next_admin = start
        while time.monotonic() - start < args.duration:
            _, rss, _ = proc_stat(wardd.pid)
            peak = max(peak, rss)
            if rss > args.rss_abort * 1024:
                aborted = f"RSS passed {args.rss_abort} MiB after " \
                          f"{time.monotonic() - start:.0f} s"
                break
            if time.monotonic() >= next_admin:
                took, summary = admin_request(port, data / "ca.crt", token,
                                              args.admin_timeout)
                lat.append(took)
                if summary is None:
                    failed += 1
                else:
                    offline = max(offline, summary["offline"] + summary["inactive"])
                next_admin = time.monotonic() + args.admin_every
            time.sleep(0.05)
        held = slow.held
        stop.set()
        for t in threads:
            t.join(timeout=15)
        # One more look once the verification after the attack has run.
        time.sleep(12)
        took, summary = admin_request(port, data / "ca.crt", token, 30)
        after = (summary["offline"] + summary["inactive"]) if summary else None
        _, _, hwm = proc_stat(wardd.pid)
        peak = max(peak, hwm)
        loadgen.terminate()
        lg_summary = loadgen.communicate(timeout=60)[0].strip().splitlines()
        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
        ok = (peak < 300 * 1024 and p99 <= 1.0 and offline == 0 and after == 0
              and not aborted)
        lines = [
            "# wardd under attack",
            "",
            f"- {args.agents} simulated agents (heartbeat 10 s, offline after 30 s); "
            f"{args.hashes} MD5 signatures in the pattern",
            f"- {args.slow} slow or silent connections from 127.1.x.y ({args.per_address} per "
            f"address, a byte every {args.trickle:g} s), {args.lookups} non-reading lookup "
            f"clients (1,024 {bits}-bit prefixes each), for {args.duration:g} s"
            + (f" — stopped early: {aborted}" if aborted else ""),
            f"- wardd.ini extras: {args.config or 'none'}",
            f"- Load generator: {lg_summary[-1] if lg_summary else 'no summary'}",
            "",
            "| measure | result | target |",
            "|---|---:|---:|",
            f"| wardd RSS before / peak | {rss0 / 1024:.0f} MiB / {peak / 1024:.0f} MiB | "
            "< 300 MiB |",
            f"| administrator request p50 / p99 ({len(lat)} requests, {failed} failed) | "
            f"{p50 * 1000:.0f} ms / {p99 * 1000:.0f} ms | p99 <= 1 s |",
            f"| agents shown offline or inactive (during / after) | {offline} / {after} | 0 |",
            f"| slow connections opened / cut off / held at the end | {slow.opened} / "
            f"{slow.cut} / {held} | |",
            f"| lookups sent / connections refused or failed | {counters['lookups']} / "
            f"{counters['lookup_failures']} | |",
            "",
        ]
        report = "\n".join(lines)
        print(report)
        args.out.write_text(report)
        sys.exit(0 if ok else 1)
    finally:
        stop.set()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
