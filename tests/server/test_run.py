#!/usr/bin/env python3
"""`make run` as a new user meets it (scripts/run.sh): the demo scan, then
wardd with one agent; the commands it prints work as printed, from another
folder, and Ctrl-C stops everything."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import WARDD, free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(os.path.abspath(WARDD))


class MakeRunTest(unittest.TestCase):
    def test_run(self):
        tmp = tempfile.mkdtemp(prefix="ward-run-")
        port = free_port()
        env = dict(os.environ, WARD_PORT=str(port), HOME=tmp)
        # A relative build folder, as the Makefile gives it.
        rel_bin = os.path.relpath(BIN, ROOT)
        proc = subprocess.Popen(["sh", "scripts/run.sh", rel_bin, os.path.join(tmp, "run")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        out = []
        try:
            deadline = time.time() + 120
            for line in proc.stdout:
                out.append(line)
                if line.startswith("Ctrl-C stops both.") or time.time() > deadline:
                    break
            text = "".join(out)
            self.assertIn("Ctrl-C stops both.", text, text)
            self.assertIn("== wardd is serving https://localhost:%d" % port, text)
            self.assertRegex(text, r"/downloads/eicar.com: \S+ FOUND")
            # Every path printed is absolute: the commands work from anywhere.
            for p in re.findall(r"(?<![\w/.])((?:\.\.?/|build)[\w./-]*)", text):
                self.fail("relative path %r printed" % p)
            if not any(f.endswith((".cvd", ".cld")) for f in os.listdir("/var/lib/clamav")
                       if os.path.isdir("/var/lib/clamav")):
                self.assertIn("a DEMO source of two signatures", text)
                self.assertIn("apt-get install clamav-freshclam", text)
            # The commands of "Try, in another terminal", run as printed.
            tries = text.split("Try, in another terminal:")[1].split("Ctrl-C")[0]
            cmds = [ln.strip() for ln in tries.splitlines() if ln.strip()]
            cmds = [re.sub(r"\s{2,}\(.*$", "", c) for c in cmds if not c.startswith("and ")]
            script = "".join('%s\necho "== rc $?"\n' % c for c in cmds)
            r = subprocess.run(["sh", "-c", script], cwd=tmp, env=env, capture_output=True,
                               text=True, timeout=120)
            codes = [int(c) for c in re.findall(r"^== rc (\d+)$", r.stdout, re.M)]
            # Each succeeds; the scan of the demo tree finds (1) what it should.
            want = [1 if " scan " in c else 0 for c in cmds]
            self.assertEqual(codes, want, "%s\n%s%s" % (script, r.stdout, r.stderr))
            self.assertIn(os.uname().nodename, r.stdout)  # ward tree shows the agent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
            rest, _ = proc.communicate(timeout=30)
        # Ctrl-C stops wardd and the agent, once.
        self.assertEqual(rest.count("== stopped"), 1, rest)
        left = subprocess.run(["pgrep", "-f", os.path.join(tmp, "run")], capture_output=True,
                              text=True).stdout
        self.assertEqual(left, "", "processes left running")
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    unittest.main()
