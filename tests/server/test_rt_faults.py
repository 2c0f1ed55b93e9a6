#!/usr/bin/env python3
"""Real-time faults, a real wardd and `ward-agent run` in block mode (issue
16, "Bad input and faults"), on two tmpfs mounts this test makes in a
private mount namespace of its own: the agent's state directory (with its
vault, STATE/quarantine) and scratch directory lie on the first, and the
second has a vault of its own (.ward-quarantine); both are watched.

An infected file in the agent's own directories: EICAR written into each
- makes no event storm (the counters stay bounded once the writes are
  done) and no deadlock (every write and open returns within
  realtime.timeout plus a margin; no deadline passes, the watchdog never
  acts; the agent's own opens of what it quarantines are neither scanned
  nor denied);
- in the state directory (its vault included) and the scratch directory,
  is left alone by real-time (the agent's own files);
- in the other vault, is scanned (denied in block mode) and reported, but
  never acted upon: the vaults' items stay as they were;
- a scan of the whole tree (`ward-agent scan`) skips the vaults, and finds
  and quarantines the files in the state and scratch directories.
docs/architecture.md, "Real-time scanning", says what a user sees.

FIFOs and devices are never opened: a scan of a directory holding a FIFO
nobody writes, a character device and a socket finishes, and so does a
scan naming the FIFO; with the agent stopped (SIGSTOP), opening the FIFO
and the device waits for nothing, while creating a regular file waits for
the watchdog (the control that shows a decision would be waited for).

Needs root (label "root"). WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the
programs."""
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AGENT, EICAR, Agent, demo_wardd, mount_tmpfs,  # noqa: E402
                      private_mount_namespace, require_root, scan_workers_of, stop_process,
                      temp_dir, wait_for)

TIMEOUT = 1   # realtime.timeout, seconds
MARGIN = 14   # the watchdog's period, a loaded machine, the sanitizers


class RealtimeFaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each piece is undone (in reverse) even when a later one fails.
        root = temp_dir("ward-rt-faults-", cls.addClassCleanup).name
        cls.watched = os.path.join(root, "watched")
        cls.other = os.path.join(root, "other")
        for where in (cls.watched, cls.other):
            mount_tmpfs(where, "64m", "ward-rt-faults-test", cls.addClassCleanup)
        cls.server, cls.token = demo_wardd(
            root, cls.addClassCleanup,
            extra="[http]\nlong_poll = 20s\n[agents]\nheartbeat_interval = 5s\n")
        # State and scratch directories on the watched tmpfs (whose vault is
        # the state's own); the other tmpfs gets .ward-quarantine at its root.
        cls.agent = Agent(cls.watched, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.state = os.path.join(cls.agent.dir, "state")
        cls.scratch = os.path.join(cls.agent.dir, "scan")
        cls.state_vault = os.path.join(cls.state, "quarantine")
        cls.vault = os.path.join(cls.other, ".ward-quarantine")
        cls.client = cls.agent.start_realtime(cls.server, cls.token, [cls.watched, cls.other],
                                              "block", TIMEOUT)

    @classmethod
    def status(cls):
        return cls.agent.status_text(timeout=TIMEOUT + MARGIN)

    def counters(self):
        return self.agent.counters(timeout=TIMEOUT + MARGIN)

    def timed(self, fn):
        started = time.monotonic()
        result = fn()
        self.assertLess(time.monotonic() - started, TIMEOUT + MARGIN)
        return result

    def write(self, where, name, data=EICAR):
        path = os.path.join(where, name)

        def do():
            with open(path, "wb") as f:
                f.write(data)
        self.timed(do)
        return path

    def open_errno(self, path):
        def do():
            try:
                os.close(os.open(path, os.O_RDONLY))
                return 0
            except OSError as e:
                return e.errno
        return self.timed(do)

    def items(self):
        return sorted(os.path.join(v, n) for v in (self.vault, self.state_vault)
                      for n in os.listdir(v) if n.endswith((".meta", ".data")))

    def detections(self, path):
        return self.server.detections(self.token, self.client, path)

    def test_1_infected_files_in_the_agents_own_directories(self):
        # A first detection on each tmpfs: an item in each vault.
        for where in (self.watched, self.other):
            c0 = self.counters()
            first = self.write(where, "first.com")
            wait_for(lambda: not os.path.exists(first), what="the first file quarantined")
            # The agent's own opens of the file it quarantines are neither
            # scanned nor denied (nor waited for).
            c1 = self.counters()
            self.assertEqual((c1["detections"] - c0["detections"],
                              c1["denials"] - c0["denials"]), (1, 0), (c0, c1))
        items = self.items()
        self.assertEqual(len(items), 4, items)
        before = self.counters()
        # EICAR dropped into the agent's state, scratch and vault directories.
        in_state = self.write(self.state, "eicar.com")
        in_state_vault = self.write(self.state_vault, "eicar.com")
        in_scratch = self.write(self.scratch, "eicar.com")
        in_vault = self.write(self.vault, "eicar.com")
        # The state and scratch directories are the agent's own: left alone.
        for path in (in_state, in_state_vault, in_scratch):
            self.assertEqual(self.open_errno(path), 0, path)
        # The vault is scanned: denied, reported, never acted upon.
        self.assertEqual(self.open_errno(in_vault), errno.EPERM)
        wait_for(lambda: self.detections(in_vault), what="the vault's file reported")
        for d in self.detections(in_vault):
            self.assertNotIn(d.get("action"), ("quarantine", "delete", "rename"), d)
        self.assertTrue(os.path.exists(in_vault))
        # The agent at work on its own files (reports in its state, the
        # vault listed) waits on nothing; nothing goes round in circles.
        listed = self.timed(lambda: subprocess.run(
            [AGENT, "--config", self.agent.conf, "quarantine", "list"], capture_output=True,
            text=True, timeout=TIMEOUT + MARGIN))
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(len(listed.stdout.splitlines()), 2, listed.stdout)
        time.sleep(2)
        settled = self.counters()
        time.sleep(5)
        after = self.counters()
        self.assertLess(after["events"] - settled["events"], 100, (settled, after))
        self.assertLess(after["scans"] - before["scans"], 50, (before, after))
        for key in ("timeouts", "watchdog", "dropped", "overflows"):
            self.assertEqual(after[key], 0, (key, after))
        self.assertEqual(self.items(), items)
        # A scan of the whole tree leaves the vaults out, and finds what is
        # in the state and scratch directories (quarantined).
        done = subprocess.run([AGENT, "--config", self.agent.conf, "scan", self.watched,
                               self.other],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        found = {line.split(": ")[0] for line in done.stdout.splitlines()
                 if "FOUND" in line or "Demo.Eicar" in line}
        self.assertEqual(found, {in_state, in_scratch}, done.stdout)
        wait_for(lambda: not os.path.exists(in_state) and not os.path.exists(in_scratch),
                 what="the state's and scratch's files quarantined")
        self.assertTrue(os.path.exists(in_vault) and os.path.exists(in_state_vault))
        final = self.counters()
        self.assertEqual((final["timeouts"], final["watchdog"]), (0, 0), final)

    def scan(self, *paths):
        """`ward-agent scan` (the running agent's tree scan), which must end."""
        return subprocess.run([AGENT, "--config", self.agent.conf, "scan", *paths],
                              capture_output=True, text=True, timeout=60)

    def test_2_fifos_and_devices_are_never_opened(self):
        special = os.path.join(self.other, "special")
        os.makedirs(special)
        fifo = os.path.join(special, "fifo")
        os.mkfifo(fifo)
        null = os.path.join(special, "null")
        os.mknod(null, 0o600 | 0o020000, os.makedev(1, 3))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(special, "socket"))
        self.addCleanup(sock.close)
        self.write(special, "clean.txt", b"clean\n")
        # Scans of the directory and of the FIFO itself end, opening none
        # of them (the FIFO has no writer: opening it would hang).
        done = self.scan(special)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(f"{special}/clean.txt: OK", done.stdout)
        self.assertIn("Scanned files: 1\n", done.stdout)
        done = self.scan(fifo)
        self.assertIn("Scanned files: 0\n", done.stdout)
        # The agent stopped: a decision would wait for the watchdog (the
        # control: a new regular file), opening the FIFO and the device
        # wait for none.
        stop_process(self.agent.proc.pid)
        try:
            started = time.monotonic()
            self.write(special, "while-stopped.txt", b"x")
            waited = time.monotonic() - started
            self.assertGreaterEqual(waited, TIMEOUT * 0.9, "no decision was waited for")
            opened = []
            reader = threading.Thread(target=lambda: opened.append(
                os.open(fifo, os.O_RDONLY)))
            started = time.monotonic()
            reader.start()
            w = os.open(fifo, os.O_WRONLY)
            reader.join(timeout=TIMEOUT + MARGIN)
            took = time.monotonic() - started
            os.write(w, b"through the fifo\n")
            os.close(w)
            self.assertEqual(os.read(opened[0], 100), b"through the fifo\n")
            os.close(opened[0])
            self.assertLess(took, TIMEOUT / 2, "the FIFO's open waited")
            started = time.monotonic()
            with open(null, "rb") as f:
                self.assertEqual(f.read(), b"")
            self.assertLess(time.monotonic() - started, TIMEOUT / 2, "the device's open waited")
        finally:
            self.agent.proc.send_signal(signal.SIGCONT)
        # The watchdog let the new file through: on, and failing.
        self.assertIn("realtime: on (block mode); failing: ", self.status())


    def test_3_the_backlog_bound_is_an_option_of_the_agent(self):
        """[realtime] max_pending in the agent's file bounds the written files
        waiting for their scan (each an open descriptor): with the scan
        worker stopped, the files past it are dropped, counted, and
        writing never waits."""
        with open(self.agent.conf) as f:
            conf = f.read()
        self.assertEqual(self.agent.terminate(), 0)
        with open(self.agent.conf, "a") as f:
            f.write("[realtime]\nmax_pending = 64\n")
        self.addCleanup(self.restart_with, conf)
        self.agent.start()
        self.agent.wait_status("realtime: on (block mode)", timeout=60, what="on again")
        wait_for(lambda: scan_workers_of(self.agent.proc.pid), what="the scan worker")
        worker = scan_workers_of(self.agent.proc.pid)[0]
        before = self.counters()["dropped"]
        d = os.path.join(self.other, "backlog")
        os.makedirs(d)
        stop_process(worker)
        try:
            for i in range(200):
                self.write(d, f"{i:03}.txt", f"backlog {i}\n".encode())
            wait_for(lambda: self.counters()["dropped"] - before >= 200 - 64, timeout=30,
                     what="the files past max_pending dropped")
            self.assertLessEqual(self.counters()["queue_high"], 64)
        finally:
            os.kill(worker, signal.SIGCONT)
        # Protection let files through unscanned: the agent says it is
        # failing, and so does the server (which alerts on it).
        self.assertRegex(self.status(), r"realtime: on \(block mode\); failing: \d+ accesses "
                         r"let through unscanned in the last 5 to 10 minutes")

        def told():
            client = self.server.request("GET", f"/api/v1/client?id={self.client}",
                                         token=self.token)[1]
            return (client.get("realtime") or {}).get("unscanned_recent", 0) >= 200 - 64
        wait_for(told, timeout=30, what="the server told of the files let through")

    def restart_with(self, conf):
        """The agent again with the configuration file conf."""
        self.agent.stop()
        with open(self.agent.conf, "w") as f:
            f.write(conf)
        self.agent.start()
        self.agent.wait_status("realtime: on (block mode)", timeout=60, what="on again")


if __name__ == "__main__":
    require_root("fanotify and a tmpfs of the test's own")
    private_mount_namespace()
    unittest.main(verbosity=2)
