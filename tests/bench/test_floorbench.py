#!/usr/bin/env python3
"""ward-floorbench, the floor of `make bench-realtime`, is a real blocking
scanner, or the bound it measures means nothing: on a tmpfs this test
mounts (in a private mount namespace of its own), a file written with a
signature's bytes is denied at its open, a clean one is read, a clean
file rewritten infected is denied (the kernel's cached verdict goes with
the write); it refuses a folder that is not the root of a filesystem
(it must never mark the machine's own); SIGTERM ends it. Needs root
(label "root"). WARD_FLOORBENCH_BIN names the program."""
import errno
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
        self.assertTrue(opens(clean))  # again: the kernel's mark answers
        # Rewritten infected: the write drops the cached verdict.
        self.write("clean.txt", MARK)
        self.assertFalse(opens(clean))
        proc.terminate()
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertTrue(opens(bad))  # nothing marked once it is gone

    def test_refuses_a_folder_inside_a_filesystem(self):
        inner = os.path.join(self.mnt, "inner")
        os.mkdir(inner)
        done = subprocess.run([FLOOR, self.db, inner], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("is not the root of a filesystem", done.stderr)


if __name__ == "__main__":
    require_root("fanotify and a tmpfs mounted for the test")
    private_mount_namespace()
    unittest.main()
