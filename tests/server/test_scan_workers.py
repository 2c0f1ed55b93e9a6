#!/usr/bin/env python3
"""Scans of the running agent go through its scan workers: the workers,
children of the agent, are confined (no capabilities, no_new_privs, a
seccomp filter, and as root another user) while a scan runs; and a
component update during a long scan leaves that scan on the generation
it started with, while the next scan uses the new one."""
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import AGENT, Agent, children, demo_wardd, wait_for  # noqa: E402

# A file no signature of the first version matches; the second version
# adds a hash signature for it.
MARKER = b"ward scan workers: found only by the second version\n"
MARKER_SIG = (f"{hashlib.md5(MARKER).hexdigest()}:{len(MARKER)}:Ward.Test.Marker\n")


def status_fields(pid):
    """The fields of /proc/PID/status as a dict (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None


class ScanWorkersTest(unittest.TestCase):
    def setUp(self):
        # Each piece is undone (in reverse) even when a later one fails.
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-scan-workers-")
        self.addCleanup(self.tmp.cleanup)
        self.server, self.token = demo_wardd(self.tmp.name, self.addCleanup,
                                             extra="watch_interval = 1s\n[http]\nlong_poll = 5s\n")
        self.src = os.path.join(self.tmp.name, "signatures")
        self.agent = Agent(self.tmp.name, "agent")
        self.addCleanup(self.agent.stop)
        # One scan thread per worker: a long scan is long.
        self.edit_conf("[scan]\n", "[scan]\nworker_threads = 1\n")
        done = self.agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.agent.start()
        self.agent.wait_status("in use: virus-pattern version 1", what="the component in use")
        # A tree of small files, every 100th a copy of the marker.
        self.tree = os.path.join(self.tmp.name, "tree")
        for d in range(40):
            sub = os.path.join(self.tree, f"d{d:02}")
            os.makedirs(sub)
            for n in range(250):
                with open(os.path.join(sub, f"f{n:03}"), "wb") as f:
                    f.write(MARKER if n % 100 == 7 else f"file {d}/{n}\n".encode())
        self.markers = 40 * 3

    def edit_conf(self, old, new):
        with open(self.agent.conf) as f:
            conf = f.read()
        self.assertIn(old, conf)
        with open(self.agent.conf, "w") as f:
            f.write(conf.replace(old, new))

    def start_scan(self):
        return subprocess.Popen([AGENT, "--config", self.agent.conf, "scan", self.tree],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_workers_are_confined_children_of_the_agent(self):
        scan = self.start_scan()
        try:
            workers = []
            wait_for(lambda: workers.extend(children(self.agent.proc.pid)) or workers,
                     what="a scan worker")
            seen = 0
            for pid in workers:
                st = status_fields(pid)
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                if st is None or argv[:2] != [b"ward-agent", b"worker"]:
                    continue
                seen += 1
                self.assertEqual(int(st["CapEff"], 16), 0, st)
                self.assertEqual(int(st["CapPrm"], 16), 0, st)
                self.assertEqual(st["NoNewPrivs"], "1", st)
                self.assertEqual(st["Seccomp"], "2", st)
                if os.geteuid() == 0:
                    uid = int(st["Uid"].split()[0])
                    self.assertNotEqual(uid, 0, st)
                    self.assertEqual(uid, 65534, st)  # nobody, from the fixture
                    self.assertEqual(int(st["CapBnd"], 16), 0, st)
            self.assertEqual(seen, 1, workers)
            self.assertIsNone(scan.poll(), "the scan ended before the workers were read")
        finally:
            out, err = scan.communicate(timeout=300)
        self.assertEqual(scan.returncode, 0, err)
        self.assertIn(f"Scanned files: {40 * 250}\n", out)

    def test_update_during_a_long_scan(self):
        # Version 2 is built on the server; the agent takes it only when told.
        with open(os.path.join(self.src, "marker.hdb"), "w") as f:
            f.write(MARKER_SIG)
        self.server.wait_component(self.token, 2, what="the second import")
        self.assertIn("in use: virus-pattern version 1", self.agent.command("status").stdout)
        first = self.start_scan()
        try:
            wait_for(lambda: children(self.agent.proc.pid), what="the scan's worker")
            old = children(self.agent.proc.pid)
            done = self.agent.command("update")
            self.assertEqual(done.stdout, "virus-pattern version 2\n", done.stderr)
            self.assertIsNone(first.poll(), "the first scan ended before the update")
            # Both generations run now: the old one holds the first scan.
            now = children(self.agent.proc.pid)
            self.assertTrue(set(old) & set(now), (old, now))
            self.assertTrue(set(now) - set(old), (old, now))
        finally:
            out, err = first.communicate(timeout=300)
        # The first scan finished on version 1: no marker found.
        self.assertEqual(first.returncode, 0, err)
        self.assertIn(f"Scanned files: {40 * 250}\nInfected files: 0\n", out)
        self.assertNotIn("Ward.Test.Marker", out)
        # Its worker exits once the scan let go of it.
        wait_for(lambda: not set(old) & set(children(self.agent.proc.pid)),
                 what="the old generation's worker to exit")
        second = self.agent.command("scan", self.tree, timeout=300)
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertEqual(second.stdout.count("Ward.Test.Marker FOUND"), self.markers)
        self.assertIn(f"Infected files: {self.markers}\n", second.stdout)

    def test_a_file_over_libclamavs_default_limit_is_scanned(self):
        # 110 MiB: over libclamav's default maximum (100 MiB), which would
        # pass it over as clean; under realtime.max_size's default (128 MiB).
        big = os.path.join(self.tmp.name, "big", "big.bin")
        os.makedirs(os.path.dirname(big))
        size = 110 << 20
        md5 = hashlib.md5()
        with open(big, "wb") as f:
            f.write(MARKER)
            f.truncate(size)
        with open(big, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                md5.update(chunk)
        with open(os.path.join(self.src, "big.hdb"), "w") as f:
            f.write(f"{md5.hexdigest()}:{size}:Ward.Test.Big\n")
        self.server.wait_component(self.token, 2, what="the second import")
        done = self.agent.command("update")
        self.assertEqual(done.stdout, "virus-pattern version 2\n", done.stderr)
        done = self.agent.command("scan", os.path.dirname(big), timeout=300)
        self.assertIn("Ward.Test.Big FOUND", done.stdout, done.stderr)
        self.assertEqual(done.returncode, 1, done.stderr)

    def test_a_missing_worker_user_stops_scans_by_name(self):
        if os.geteuid() != 0:
            self.skipTest("only root switches to the worker user")
        self.agent.stop()
        self.edit_conf("worker_user = nobody", "worker_user = ward-no-such-user")
        self.agent.start()
        done = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = self.agent.command("scan", self.tree)
            if "scan.worker_user" in done.stdout + done.stderr:
                break
            time.sleep(0.2)
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn("scan.worker_user: scan worker user 'ward-no-such-user'",
                      done.stderr)
        self.assertEqual(children(self.agent.proc.pid), [])
        self.assertIn("scan.worker_user", self.agent.log_text())


if __name__ == "__main__":
    unittest.main()
