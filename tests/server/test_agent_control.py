#!/usr/bin/env python3
"""The running agent as a service: `ward-agent status`, `scan` and `update`
through its control socket (and what they say when no agent runs), and
SIGTERM stopping it cleanly and quickly, during a long poll and during a
scan of a large tree."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import AGENT, EICAR, Agent, demo_wardd, wait_for  # noqa: E402

# Seconds SIGTERM may take to stop the agent: a poll in flight is aborted
# within a second, a scan after the file in hand.
STOP_WITHIN = 5


class AgentControlTest(unittest.TestCase):
    def setUp(self):
        # Each piece is undone (in reverse) even when a later one fails.
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-agent-control-")
        self.addCleanup(self.tmp.cleanup)
        # A long poll much longer than the test waits: a stop that waited
        # for it would show.
        self.server, _ = demo_wardd(self.tmp.name, self.addCleanup,
                                    extra="[http]\nlong_poll = 60s\n")
        self.agent = Agent(self.tmp.name, "agent")
        self.addCleanup(self.agent.stop)
        done = self.agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.sock = os.path.join(self.agent.dir, "state", "control.sock")

    def start_agent(self):
        self.agent.start()
        self.agent.wait_status("in use: virus-pattern version 1", what="the component in use")

    def test_commands_without_a_running_agent(self):
        status = self.agent.command("status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("settings version: 0", status.stdout)
        self.assertIn("running: no; start it with", status.stdout)
        self.assertIn("last scan: (none)\n", status.stdout)
        # A damaged last scan prints what it holds, the rest as unknown.
        with open(os.path.join(self.agent.dir, "state", "last_scan.json"), "w") as f:
            f.write('{"files": 3}')
        status = self.agent.command("status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("last scan: (unknown), (unknown): 3 files, 0 bytes, 0 detections\n",
                      status.stdout)
        os.unlink(os.path.join(self.agent.dir, "state", "last_scan.json"))
        for cmd in (["scan", self.tmp.name], ["update"]):
            done = self.agent.command(*cmd)
            self.assertNotEqual(done.returncode, 0, cmd)
            self.assertIn("the agent is not running; start it with", done.stderr)
        # A socket left by an agent killed outright answers nobody: the
        # commands say so, and the next agent takes its place.
        self.agent.start()
        wait_for(lambda: os.path.exists(self.sock), what="the control socket")
        self.agent.stop()
        self.assertTrue(os.path.exists(self.sock))
        self.assertIn("the agent is not running", self.agent.command("update").stderr)
        self.start_agent()

    def test_scan_status_and_update_through_the_agent(self):
        self.start_agent()
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
        files = os.path.join(self.tmp.name, "files")
        os.makedirs(files)
        with open(os.path.join(files, "eicar.com"), "wb") as f:
            f.write(EICAR)
        with open(os.path.join(files, "clean.txt"), "w") as f:
            f.write("clean\n")
        # A relative path is the client's, not the agent's.
        done = subprocess.run([AGENT, "--config", self.agent.conf, "scan", "files",
                               "missing"], cwd=self.tmp.name, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn(f"{files}/eicar.com: Demo.Eicar FOUND", done.stdout)
        self.assertIn(f"{files}/clean.txt: OK", done.stdout)
        self.assertIn("Scanned files: 2\nInfected files: 1\nTotal errors: 1", done.stdout)
        self.assertIn(f"{self.tmp.name}/missing: No such file or directory", done.stderr)
        done = self.agent.command("update")
        self.assertEqual((done.returncode, done.stdout), (0, "virus-pattern version 1\n"),
                         done.stderr)
        status = self.agent.command("status").stdout
        self.assertIn(f"running: yes (pid {self.agent.proc.pid})", status)
        self.assertIn("scans running: 0", status)
        # A second agent on the same state is refused; the first goes on.
        second = self.agent.command("run", timeout=30)
        self.assertEqual(second.returncode, 1)
        self.assertIn("another agent runs on this state directory", second.stderr)
        self.assertIn("running: yes", self.agent.command("status").stdout)

    def request(self, data, sock=None):
        """Sends data on a control connection; the answer, parsed (None when
        the agent closed without one)."""
        with sock or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            if not sock:
                c.connect(self.sock)
            try:
                c.sendall(data)
                answer = c.makefile("rb").readline()
            except (BrokenPipeError, ConnectionResetError):
                return None
        return json.loads(answer) if answer else None

    def test_bad_requests(self):
        self.start_agent()
        for data, why in ((b"not json\n", "a JSON object with \"cmd\""),
                          (b"[1, 2]\n", "a JSON object with \"cmd\""),
                          (b'{"cmd": "format"}\n', "unknown command"),
                          (b'{"cmd": "scan"}\n', "a non-empty array of paths"),
                          (b'{"cmd": "scan", "paths": ["relative"]}\n', "every path is "
                           "absolute"),
                          (b"x" * 70000, "request line too long")):
            self.assertIn(why, self.request(data)["error"], data[:40])
        # Connections that send nothing hold a slot only so long; beyond
        # the cap (16) one more is closed at once.
        idle = []
        try:
            for _ in range(16):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(self.sock)
                idle.append(c)
            time.sleep(0.5)
            self.assertIsNone(self.request(b'{"cmd": "status"}\n'))
            wait_for(lambda: "16 connections wait already" in self.agent.log_text(),
                     what="the refused connection logged")
            # The idle ones are closed after 10 s with a message.
            self.assertIn("no complete request in time",
                          json.loads(idle[0].makefile("rb").readline())["error"])
        finally:
            for c in idle:
                c.close()
        self.assertTrue(self.request(b'{"cmd": "status"}\n')["running"])

    def test_other_users_are_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (another user to connect as)")
        self.start_agent()
        # Even with the socket and the folders above it opened to all, the
        # agent serves only root and its own user.
        os.chmod(self.sock, 0o666)
        for d in (self.tmp.name, self.agent.dir, os.path.dirname(self.sock)):
            os.chmod(d, 0o711)
        nobody = subprocess.run(
            ["/usr/bin/python3", "-c", "import socket, sys; c = socket.socket(socket.AF_UNIX); "
             "c.connect(sys.argv[1]); c.sendall(b'{\"cmd\": \"status\"}\\n'); "
             "print(repr(c.recv(100)))", self.sock],
            user=65534, group=65534, capture_output=True, text=True, timeout=30)
        # Closed unanswered (an empty read, or reset).
        self.assertNotIn("running", nobody.stdout + nobody.stderr)
        self.assertIn("control: refused a client of uid 65534", self.agent.log_text())

    def test_sigterm_during_a_long_poll(self):
        self.start_agent()
        # Its poll is parked at the server now (60 s).
        time.sleep(1)
        start = time.monotonic()
        self.assertEqual(self.agent.terminate(), 0, self.agent.log_text())
        self.assertLess(time.monotonic() - start, STOP_WITHIN)
        self.assertFalse(os.path.exists(self.sock))
        self.assertIn("signal 15: stopping", self.agent.log_text())

    def test_sigterm_during_a_scan(self):
        self.start_agent()
        tree = os.path.join(self.tmp.name, "tree")
        for d in range(30):
            os.makedirs(os.path.join(tree, str(d)))
            for n in range(1000):
                with open(os.path.join(tree, str(d), str(n)), "w") as f:
                    f.write(f"file {d}/{n}\n")
        # A client that reads nothing: its scan fills the pipe and the
        # socket, and waits, in flight, for the stop.
        client = subprocess.Popen([AGENT, "--config", self.agent.conf, "scan", tree],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: "scans running: 1" in self.agent.command("status").stdout,
                     what="the scan in flight")
            start = time.monotonic()
            self.assertEqual(self.agent.terminate(), 0, self.agent.log_text())
            self.assertLess(time.monotonic() - start, STOP_WITHIN)
            out, err = client.communicate(timeout=30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        # The client hears it ended unfinished.
        self.assertEqual(client.returncode, 2, err)
        self.assertRegex(err, b"scan: (the scan was cancelled|the agent ended the scan "
                         b"unfinished)")
        self.assertNotIn(b"SCAN SUMMARY", out)
        self.assertFalse(os.path.exists(self.sock))


if __name__ == "__main__":
    unittest.main()
