#!/usr/bin/env python3
"""`ward scan` of files and directories it may not read, as clamscan does:
both run as nobody (setpriv) over a tree root made, so the test needs root
(ctest label "root"; without root it exits 77, which ctest reports as
skipped).

    sudo WARD_BIN=build/bin/ward python3 tests/cli/test_unreadable.py
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import fixtures  # noqa: E402
from wardtest import WARD, require_root  # noqa: E402

CLAMSCAN = shutil.which("clamscan")


class Unreadable(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ward-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_unreadable_file_and_directory(self):
        os.chmod(self.dir, 0o755)
        fixtures.build(self.dir)
        # Everything readable by the unprivileged user but what the test
        # locks away below.
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
        perm = os.path.join(self.dir, "perm")
        os.makedirs(os.path.join(perm, "locked"))
        with open(os.path.join(perm, "secret.txt"), "w") as f:
            f.write("secret\n")
        shutil.copy(os.path.join(self.dir, "files", "md5-hit.bin"), perm)
        with open(os.path.join(perm, "ok.txt"), "w") as f:
            f.write("ok\n")
        os.chmod(perm, 0o755)
        os.chmod(os.path.join(perm, "md5-hit.bin"), 0o644)
        os.chmod(os.path.join(perm, "ok.txt"), 0o644)
        os.chmod(os.path.join(perm, "secret.txt"), 0)
        os.chmod(os.path.join(perm, "locked"), 0)
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        p = subprocess.run(nobody + [WARD, "scan", "--no-cache", "-r", "-d", "sigdir", "perm"],
                           cwd=self.dir, capture_output=True, timeout=60)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertIn("perm/locked: Can't open directory.", out)
        self.assertIn("perm/secret.txt: Access denied", out)
        self.assertIn("perm/ok.txt: OK", out)
        self.assertIn("perm/md5-hit.bin: Ward.Test.MD5.UNOFFICIAL FOUND", out)
        self.assertIn("Total errors: 2", out)
        self.assertIn("ERROR: perm/secret.txt: Permission denied", err)
        self.assertIn("ERROR: perm/locked: can't read directory: Permission denied", err)
        self.assertEqual(p.returncode, 1)  # a detection beats the errors
        c = subprocess.run(nobody + [CLAMSCAN, "-r", "-d", "sigdir", "perm"], cwd=self.dir,
                           capture_output=True, timeout=60)
        cout = c.stdout.decode()
        self.assertEqual(c.returncode, p.returncode)
        for line in ("perm/locked: Can't open directory.", "perm/secret.txt: Access denied",
                     "Total errors: 2"):
            self.assertIn(line, cout)
        os.remove(os.path.join(perm, "md5-hit.bin"))
        p = subprocess.run(nobody + [WARD, "scan", "--no-cache", "-r", "-d", "sigdir", "perm"],
                           cwd=self.dir, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    require_root("runs the scan as nobody over files root locked away")
    unittest.main()
