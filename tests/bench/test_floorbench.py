#!/usr/bin/env python3
"""ward-floorbench, the floor of `make bench-realtime`, is a real blocking
scanner, or the bound it measures means nothing: on a tmpfs this test
mounts (in a private mount namespace of its own), a file written with a
signature's bytes is denied at its open, a clean one is read, and read
again without a question to the scanner (the kernel's ignore mark); a
clean file rewritten infected is denied (the cached verdict goes with the
write); SIGTERM ends it with its counters, no event lost. It refuses
what is not a filesystem mounted for it (a folder inside one, /,
/dev/shm): it must never mark the machine's own. Needs root (label
"root"). WARD_FLOORBENCH_BIN names the program."""
import errno
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import mount_tmpfs, private_mount_namespace, require_root, temp_dir  # noqa: E402

FLOOR = os.environ.get("WARD_FLOORBENCH_BIN", "ward-floorbench")
MARK = b"WARD-FLOORBENCH-TEST-MARKER"


def opens(path):
    """True when path can be opened and read; False when the scanner denies it."""
    try:
        with open(path, "rb") as f:
            f.read()
        return True
    except PermissionError as e:
        if e.errno != errno.EPERM:
            raise
        return False


class FloorbenchTest(unittest.TestCase):
    def setUp(self):
        root = temp_dir("ward-floorbench-", self.addCleanup).name
        self.db = os.path.join(root, "db")
        os.mkdir(self.db)
        with open(os.path.join(self.db, "floor.ndb"), "w") as f:
            f.write(f"Ward.Test.Floor:0:*:{MARK.hex()}\n")
        self.mnt = os.path.join(root, "mnt")
        mount_tmpfs(self.mnt, "16m", "ward-floor-test", self.addCleanup)

    def start(self):
        proc = subprocess.Popen([FLOOR, self.db, self.mnt], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.stop, proc)
        if proc.stdout.readline() != "ready\n":
            proc.wait(timeout=30)
            self.fail(f"ward-floorbench did not start: {proc.stderr.read()}")
        return proc

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    def write(self, name, data):
        path = os.path.join(self.mnt, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_blocks_what_is_written(self):
        proc = self.start()
        clean = self.write("clean.txt", b"nothing to see\n" * 100)
        bad = self.write("bad.txt", b"prefix " + MARK + b" suffix\n")
        self.assertTrue(opens(clean))
        self.assertFalse(opens(bad))
        for _ in range(50):
            self.assertTrue(opens(clean))
        # Rewritten infected: the write drops the cached verdict.
        self.write("clean.txt", MARK)
        self.assertFalse(opens(clean))
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0)
        counts = json.loads(out)
        self.assertEqual(counts["lost"], 0, counts)
        self.assertEqual(counts["errors"], 0, counts)
        self.assertGreaterEqual(counts["detections"], 2, counts)
        # Two writes, three opens that waited, the rewrite: not the 50 reopens.
        self.assertLess(counts["events"], 25, counts)
        self.assertTrue(opens(bad))  # nothing marked once it is gone

    def refused(self, path):
        done = subprocess.run([FLOOR, self.db, path], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("it marks only a filesystem mounted for it", done.stderr)
        return done.stderr

    def test_refuses_what_was_not_mounted_for_it(self):
        inner = os.path.join(self.mnt, "inner")
        os.mkdir(inner)
        self.assertIn("is not the root of a filesystem", self.refused(inner))
        self.refused("/")
        if os.path.ismount("/dev/shm"):
            self.assertIn("the machine's own", self.refused("/dev/shm"))


if __name__ == "__main__":
    require_root("fanotify and a tmpfs mounted for the test")
    private_mount_namespace()
    unittest.main()
