#!/usr/bin/env python3
"""Journald stalled and restarted under load causes no deadlock (issue 16,
"Bad input and faults"; fapolicyd's deadlock: it logged synchronously to
journald while journald waited for its verdict).

The closest reproduction this machine allows: a real systemd-journald
runs stand-alone in the test's private mount namespace (a tmpfs over
/run) and keeps its journal in /run/log/journal, on the very tmpfs the
agent watches in block mode, so every journal file journald opens waits
for the agent's verdict. The agent's standard output and error (its
log, and its scan workers') are a journald stream, as systemd connects a
service's (with a smaller send buffer, see journal_stream()). Without
the agent's log queue, its loop thread blocks in write(2) there and
`ward-agent status` hangs: this test fails. A workload writes,
opens and executes files in the watched tree, one in six EICAR, so
the agent logs and acts all the time. Then:
- journald is stopped (SIGSTOP) until the agent's log stream is full
  (one of its threads sits in write(2) on standard error): every open
  and execution still completes within realtime.timeout plus a margin,
  `ward-agent status` answers, and the detections reach wardd;
- journald resumes and rotates (opening new journal files in the watched
  tree while the agent's log drains into it): the detections of the
  stall are in the journal;
- journald is killed (-9) and started again (it opens its files in the
  watched tree while the load goes on): the agent lives on (its old
  stream is gone: writes fail with EPIPE, which it ignores), keeps
  deciding, answering and reporting, and stops on SIGTERM.
Needs root and systemd-journald (package systemd); label "root".
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs."""
import errno
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AGENT, EICAR, SKIPPED, Agent, demo_wardd, mount_tmpfs,  # noqa: E402
                      private_mount_namespace, require_root, temp_dir, wait_for)

JOURNALD = "/lib/systemd/systemd-journald"
WATCHED = "/run/log"  # the agent's watched tmpfs; journald's runtime journal is in it
TIMEOUT = 1           # realtime.timeout, seconds
# What an open may take at most: the deadline, then the watchdog's own
# period, and room for a loaded machine and the sanitizers.
MARGIN = 14


def blocked_on_stderr(pid):
    """The agent's threads that sit in write(2) (syscall 1) on fd 2."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if len(fields) > 1 and fields[0] == "1" and int(fields[1], 16) == 2:
            found.append(int(tid))
    return found


class Workload:
    """Threads that write, open and execute files in the watched tree
    until stopped, each open and execution timed."""

    def __init__(self, where, program):
        self.where = where
        self.program = program
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.slowest = 0.0
        self.errors = []
        self.infected = []   # (time written, path)
        self.count = 0
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(2)]

    def timed(self, what, fn):
        started = time.monotonic()
        try:
            fn()
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOENT, errno.EACCES):
                with self.lock:
                    self.errors.append(f"{what}: {e}")
        took = time.monotonic() - started
        with self.lock:
            self.slowest = max(self.slowest, took)
            if took > TIMEOUT + MARGIN:
                self.errors.append(f"{what} took {took:.1f} s")

    def run(self, n):
        i = 0
        while not self.stopping.is_set():
            i += 1
            infected = i % 6 == 0
            path = os.path.join(self.where, f"w{n}-{i}" + (".com" if infected else ".txt"))
            data = EICAR if infected else f"clean file {n} {i}\n".encode() * 20

            def write():
                with open(path, "wb") as f:
                    f.write(data)

            def read():
                with open(path, "rb") as f:
                    f.read()

            def run_program():
                done = subprocess.run([self.program], timeout=TIMEOUT + MARGIN)
                if done.returncode != 0:
                    raise OSError(errno.EIO, f"exit {done.returncode}")
            self.timed(f"writing {path}", write)
            if infected:
                with self.lock:
                    self.infected.append((time.monotonic(), path))
            self.timed(f"opening {path}", read)
            if i % 5 == 0:
                self.timed("running the clean program", run_program)
            if not infected:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            with self.lock:
                self.count += 1
            time.sleep(0.02)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=2 * (TIMEOUT + MARGIN))
        return not any(t.is_alive() for t in self.threads)

    def infected_since(self, since):
        with self.lock:
            return [p for t, p in self.infected if t >= since]


def journal_stream(identifier):
    """A stream to journald, as systemd connects a service's standard
    output and error (the stdout protocol: identifier, unit, priority,
    level prefix, forward to syslog, kmsg, console), but with the default
    send buffer rather than systemd's 8 MiB: the test fills it in seconds,
    and its size changes nothing but the time that takes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/systemd/journal/stdout")
    s.shutdown(socket.SHUT_RD)
    s.sendall(f"{identifier}\n\n6\n0\n0\n0\n0\n".encode())
    return s


class JournalAgent(Agent):
    """The agent (and its scan workers) with standard output and error on
    a journald stream."""

    def start(self):
        stream = journal_stream("ward-agent")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([AGENT, "--config", self.conf, "run"],
                                     stdout=stream.fileno(), stderr=stream.fileno())
        stream.close()
        wait_for(lambda: self.proc.poll() is not None or self.answers(),
                 what="the agent's control socket")


class JournaldTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each piece is undone (in reverse) even when a later one fails.
        cls.tmp = temp_dir("ward-journald-", cls.addClassCleanup)
        root = cls.tmp.name
        # This namespace's own /run and journal directories: journald
        # never sees the machine's.
        mount_tmpfs("/run", "16m", "ward-journald-run", cls.addClassCleanup)
        if os.path.isdir("/var/log/journal"):
            mount_tmpfs("/var/log/journal", "16m", "ward-journald-var", cls.addClassCleanup)
        mount_tmpfs(WATCHED, "256m", "ward-journald-test", cls.addClassCleanup)
        cls.work = os.path.join(WATCHED, "work")
        os.makedirs(cls.work)
        cls.program = os.path.join(cls.work, "true")
        shutil.copy(shutil.which("true"), cls.program)
        os.chmod(cls.program, 0o755)
        cls.journald_log = open(os.path.join(root, "journald.log"), "ab")
        cls.addClassCleanup(cls.journald_log.close)
        cls.journald = None
        cls.addClassCleanup(cls.stop_journald)
        cls.start_journald()
        cls.server, cls.token = demo_wardd(
            root, cls.addClassCleanup, extra="[http]\nlong_poll = 20s\n"
            "[agents]\nheartbeat_interval = 5s\n[logs]\ndetections_per_hour = 1000000\n"
            "detections_per_day = 1000000\n")
        cls.agent = JournalAgent(root, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.client = cls.agent.start_realtime(cls.server, cls.token, [WATCHED], "block",
                                              TIMEOUT)

    @classmethod
    def stop_journald(cls):
        if cls.journald and cls.journald.poll() is None:
            cls.journald.send_signal(signal.SIGCONT)
            cls.journald.kill()
            cls.journald.wait()

    @classmethod
    def start_journald(cls):
        sock = "/run/systemd/journal/stdout"
        if os.path.exists(sock):
            os.unlink(sock)
        cls.journald = subprocess.Popen([JOURNALD], stdout=cls.journald_log,
                                        stderr=subprocess.STDOUT)

        def serving():
            if cls.journald.poll() is not None:
                return True
            try:
                journal_stream("ward-test-ready").close()
                return True
            except OSError:
                return False
        wait_for(serving, what="journald's stdout socket")
        if cls.journald.poll() is not None:
            # Where journald cannot run (a chroot: no user namespaces,
            # no cgroups), there is nothing to test against.
            with open(os.path.join(cls.tmp.name, "journald.log"), errors="replace") as f:
                tail = f.read()[-2000:]
            print(f"skipped: systemd-journald exited ({cls.journald.returncode}) here:\n"
                  f"{tail}", file=sys.stderr)
            sys.stderr.flush()
            cls.doClassCleanups()
            os._exit(SKIPPED)

    def journal(self, *args):
        """The agent's lines in the journal (journalctl opens the journal
        files in the watched tree: those opens wait on the agent too)."""
        done = subprocess.run(["journalctl", "-D", os.path.join(WATCHED, "journal"),
                               "--no-pager", "-o", "cat", *args],
                              capture_output=True, text=True, timeout=TIMEOUT + MARGIN)
        return done.stdout

    def answers(self):
        """`ward-agent status` over the control socket, within a deadline."""
        started = time.monotonic()
        out = subprocess.run([AGENT, "--config", self.agent.conf, "status"],
                             capture_output=True, text=True, timeout=TIMEOUT + MARGIN).stdout
        self.assertIn("realtime: on (block mode)", out)
        self.assertLess(time.monotonic() - started, TIMEOUT + MARGIN)

    def reported(self):
        return {d["path"] for d in self.server.detections(self.token, self.client,
                                                          limit=100000)}

    def wait_reported(self, paths, what):
        missing = set(paths)

        def all_there():
            missing.difference_update(self.reported())
            return not missing
        try:
            wait_for(all_there, timeout=60, what=what + " at the server")
        except AssertionError as e:
            raise AssertionError(f"{e}: {len(missing)} missing, {sorted(missing)[:3]}...")

    def test_journald_stalled_and_restarted_under_load(self):
        load = Workload(self.work, self.program)
        load.start()
        try:
            # The load runs and is decided.
            wait_for(lambda: len(load.infected_since(0)) >= 10, what="a first load")
            self.answers()
            # Journald stalls, as if it waited for a verdict: the agent's
            # log stream fills up; the agent still decides, answers and reports.
            stalled = time.monotonic()
            self.journald.send_signal(signal.SIGSTOP)
            wait_for(lambda: blocked_on_stderr(self.agent.proc.pid), timeout=120,
                     what="the agent's log stream full")
            full = time.monotonic()
            while time.monotonic() < full + 5:
                self.answers()
                time.sleep(0.5)
            during = load.infected_since(full)
            self.assertGreater(len(during), 5, "the load stood still with the log full")
            self.wait_reported(during, "the detections made while the log was full")
            self.answers()
            self.assertTrue(blocked_on_stderr(self.agent.proc.pid),
                            "the log stream drained while journald stood still")
            # Journald resumes and rotates: it opens new journal files in the
            # watched tree while the agent's log drains into it.
            self.journald.send_signal(signal.SIGCONT)
            self.journald.send_signal(signal.SIGUSR2)
            resumed = time.monotonic()
            stall = set(load.infected_since(stalled)) - set(load.infected_since(resumed))
            wait_for(lambda: not blocked_on_stderr(self.agent.proc.pid), timeout=60,
                     what="the agent's log drained")

            def logged():
                text = self.journal("-t", "ward-agent")
                return all(f"realtime: {p}: Demo.Eicar found" in text for p in stall)
            wait_for(logged, timeout=60, what="the stall's detections in the journal")
            wait_for(lambda: len(glob.glob(os.path.join(WATCHED, "journal", "*",
                                                        "system@*.journal"))) > 0,
                     timeout=TIMEOUT + MARGIN, what="journald's rotation")
            # Journald killed and started again under the load: it opens its
            # journal files in the watched tree while the agent decides.
            self.journald.kill()
            self.journald.wait()
            self.start_journald()
            restarted = time.monotonic()
            marker = f"ward journald test marker {restarted}"
            with journal_stream("ward-test") as s:
                s.sendall(marker.encode() + b"\n")
            wait_for(lambda: marker in self.journal("-t", "ward-test"),
                     timeout=TIMEOUT + MARGIN, what="the new journald writing its journal")
            wait_for(lambda: len(load.infected_since(restarted)) >= 10,
                     what="the load after the restart")
            self.answers()
            self.wait_reported(load.infected_since(restarted)[:10],
                               "the detections after journald's restart")
            self.assertIsNone(self.agent.proc.poll(), "the agent died")
        finally:
            self.assertTrue(load.stop(), "the workload hung")
            self.journald.send_signal(signal.SIGCONT)
        self.assertEqual(load.errors, [])
        print(f"{load.count} files, slowest open or execution {load.slowest:.2f} s",
              file=sys.stderr)
        self.assertEqual(self.agent.terminate(timeout=TIMEOUT + MARGIN), 0)


if __name__ == "__main__":
    require_root("fanotify, journald and tmpfs mounts of the test's own")
    if not os.access(JOURNALD, os.X_OK) or not shutil.which("journalctl"):
        print(f"skipped: needs {JOURNALD} and journalctl (package systemd)",
              file=sys.stderr)
        sys.exit(77)
    # /run, the journal and the watched tmpfs are this test's alone.
    private_mount_namespace()
    unittest.main(verbosity=2)
