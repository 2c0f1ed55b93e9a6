#!/usr/bin/env python3
"""Backups on a full disk (a small tmpfs the test mounts in a mount
namespace of its own: root). A backup that runs out of room fails saying
so and leaves nothing at its name nor beside it; the server it was taken
from serves on; a restore that runs out of room leaves the data directory
it was to replace as it was, and no half-unpacked copy."""
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (WARDD, Wardd, clamav_cvd, mount_tmpfs, private_mount_namespace,  # noqa: E402
                      require_root, temp_dir)

PASSPHRASE = "a passphrase for tests"


def run(*args):
    return subprocess.run([WARDD, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, WARD_BACKUP_PASSPHRASE=PASSPHRASE))


class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.tmp = temp_dir("ward-backup-disk-", self.addCleanup).name
        src = os.path.join(self.tmp, "source")
        os.makedirs(src)
        shutil.copy(clamav_cvd(5), os.path.join(src, "main.cvd"))
        self.server = Wardd(self.tmp, extra=f"[updates]\nsource_dir = {src}\n")
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        self.server.wait_component(self.token)

    def test_backup_out_of_room(self):
        # The database as a copy holds it (its pages, the journal's too).
        db = sqlite3.connect(os.path.join(self.server.data, "ward.db"))
        size = db.execute("PRAGMA page_count").fetchone()[0] * \
            db.execute("PRAGMA page_size").fetchone()[0]
        db.close()
        # No room for the database's copy; room for it, not for the archive.
        for n, room in enumerate((size // 2, size * 3 // 2)):
            full = os.path.join(self.tmp, f"full{n}")
            mount_tmpfs(full, str(room), cleanup=self.addCleanup)
            done = run("backup", "--config", self.server.conf, "--out",
                       os.path.join(full, "server.wbk"))
            self.assertEqual(done.returncode, 1, done.stdout)
            self.assertRegex(done.stderr, "No space left on device|database or disk is full")
            self.assertEqual(os.listdir(full), [])
            self.assertIn("database copy" if n == 0 else "server.wbk.partial: No space",
                          done.stderr)
        status, _ = self.server.request("GET", "/api/v1/health")
        self.assertEqual(status, 200)
        # With room, the same backup completes and checks.
        roomy = os.path.join(self.tmp, "roomy")
        mount_tmpfs(roomy, "64m", cleanup=self.addCleanup)
        archive = os.path.join(roomy, "server.wbk")
        done = run("backup", "--config", self.server.conf, "--out", archive)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(run("backup", "verify", "--config", self.server.conf,
                             archive).returncode, 0)
        # A restore whose unpacking runs out of room: the data directory it
        # was to replace is left as it was.
        self.server.stop()
        target = os.path.join(self.tmp, "target")
        mount_tmpfs(target, str(size // 2), cleanup=self.addCleanup)
        data = os.path.join(target, "data")
        os.makedirs(data)
        with open(os.path.join(data, "marker"), "w") as f:
            f.write("the server that was here")
        other = Wardd(os.path.join(self.tmp, "other"))
        with open(other.conf, "w") as f:
            f.write(f"[server]\ndata_dir = {data}\n")
        done = run("restore", "--config", other.conf, "--force", archive)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn("No space left on device", done.stderr)
        self.assertEqual(sorted(os.listdir(target)), ["data"])
        self.assertEqual(sorted(os.listdir(data)), ["marker", "wardd.lock"])


if __name__ == "__main__":
    require_root("mounts a small tmpfs")
    private_mount_namespace()
    unittest.main()
