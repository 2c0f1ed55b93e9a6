#!/usr/bin/env python3
"""Behaviour of `ward scan` that golden files cannot show: real containers,
the upstream signed CVDs, the scan cache across runs, changing files, and resource limits against an archive bomb.

    WARD_BIN=build/bin/ward python3 tests/cli/test_scan.py
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import fixtures  # noqa: E402
from wardtest import clamav_cvd, data_file, testfile, TESTFILES, WARD  # noqa: E402


HERE = os.path.dirname(os.path.abspath(__file__))
CLAMSCAN = shutil.which("clamscan")


def ward(*args, cwd=None, env=None, timeout=300):
    p = subprocess.run([WARD, "scan"] + list(args), cwd=cwd, env=env, capture_output=True,
                       timeout=timeout)
    return p.stdout.decode(), p.stderr.decode(), p.returncode


def found(stdout):
    """{path: [names]} of the FOUND lines."""
    out = {}
    for line in stdout.splitlines():
        if line.endswith(" FOUND"):
            path, _, name = line[:-6].rpartition(": ")
            out.setdefault(path, []).append(name)
    return out


def json_records(stdout):
    recs = [json.loads(line) for line in stdout.splitlines()]
    return {r["path"]: r for r in recs if "path" in r}, recs[-1].get("summary")


class TempDirCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ward-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)


class Containers(TempDirCase):
    """A hash signature of clam.exe is found inside every container of
    clamav-testfiles in which clamscan finds it."""

    def check_signature(self, dbname, line):
        db = os.path.join(self.dir, dbname)
        with open(db, "w") as f:
            f.write(line)
        out, err, rc = ward("--no-cache", "-r", "-d", db, TESTFILES)
        self.assertIn(rc, (0, 1), err)
        cout = subprocess.run([CLAMSCAN, "-r", "-d", db, TESTFILES],
                              capture_output=True).stdout.decode()
        ours, theirs = found(out), found(cout)
        # clam.exe itself and a good number of archive/packer formats.
        self.assertGreater(len(theirs), 15, "clamscan found too little to compare")
        self.assertEqual(ours, theirs)
        self.assertIn(os.path.join(TESTFILES, "clam.zip"), ours)
        self.assertIn(os.path.join(TESTFILES, "clam.7z"), ours)
        self.assertIn(os.path.join(TESTFILES, "clam.tar.gz"), ours)

    def test_md5(self):
        with open(os.path.join(TESTFILES, "clam.exe"), "rb") as f:
            digest = hashlib.md5(f.read()).hexdigest()
        self.check_signature("clam.hdb", f"{digest}:544:Ward.Test.ClamExe\n")

    def test_sha256_any_size(self):
        with open(os.path.join(TESTFILES, "clam.exe"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.check_signature("clam.hsb", f"{digest}:*:Ward.Test.ClamExe.Sha256:73\n")


class UpstreamCvds(unittest.TestCase):
    def test_every_cvd_loads(self):
        clam = testfile("clam.exe")
        for n in range(1, 7):
            cvd = clamav_cvd(n)
            out, err, rc = ward("--no-cache", "-d", cvd, clam)
            self.assertNotIn("ERROR", err, cvd)
            if n >= 3:
                # test-3 on carries the clam.exe hash signature.
                self.assertEqual(rc, 1, cvd)
                self.assertIn("clam.exe: Clamav.Test.File-6 FOUND", out)
            else:
                self.assertEqual(rc, 0, cvd)

    def test_cvd_directory_and_plain_files(self):
        db = data_file("clamav", "sigs", "clamav.hdb")
        out, err, rc = ward("--no-cache", "-d", db, "-d",
                            clamav_cvd(6), testfile("clam.exe"))
        self.assertEqual(rc, 1, err)
        self.assertIn("FOUND", out)


class Cache(TempDirCase):
    def setUp(self):
        super().setUp()
        fixtures.build(self.dir)
        self.cache = os.path.join(self.dir, "cache")
        self.db = os.path.join(self.dir, "sigdir")

    def scan(self, *paths):
        return ward("--json", "--cache", self.cache, "-r", "-d", self.db, *paths,
                    cwd=self.dir)

    def test_rescan_answers_from_cache_without_loading(self):
        first, _, rc1 = self.scan("tree", "files")
        second, _, rc2 = self.scan("tree", "files")
        recs1, sum1 = json_records(first)
        recs2, sum2 = json_records(second)
        self.assertEqual(rc1, rc2)
        self.assertTrue(sum1["signatures_loaded"])
        self.assertFalse(sum2["signatures_loaded"], "an unchanged tree needs no signatures")
        self.assertEqual(sum2["known_viruses"], sum1["known_viruses"])
        scanned = [p for p, r in recs2.items() if r["result"] in ("clean", "infected")]
        self.assertGreater(len(scanned), 10)
        for p in scanned:
            self.assertTrue(recs2[p]["cached"], p)
            self.assertEqual(recs2[p]["signatures"], recs1[p]["signatures"], p)
        # Text output of a cached run is the same as a full scan's.
        a, _, _ = ward("--no-cache", "--no-summary", "-r", "-d", self.db, "tree", cwd=self.dir)
        b, _, _ = ward("--cache", self.cache, "--no-summary", "-r", "-d", self.db, "tree",
                       cwd=self.dir)
        self.assertEqual(a, b)

    def test_modified_file_is_rescanned(self):
        self.scan("files")
        path = os.path.join(self.dir, "files", "clean.txt")
        with open(path, "ab") as f:
            f.write(b"more\n")
        recs, _ = json_records(self.scan("files")[0])
        self.assertFalse(recs["files/clean.txt"]["cached"])
        self.assertTrue(recs["files/md5-wrongsize.bin"]["cached"])

    def test_replaced_file_with_same_size_and_mtime(self):
        self.scan("files")
        victim = os.path.join(self.dir, "files", "sha256-star.bin")
        clean = os.path.join(self.dir, "files", "md5-wrongsize.bin")
        # Overwrite a clean file in place with a detected one of the same
        # size, and put its mtime back: only the ctime tells.
        st = os.stat(clean)
        with open(victim, "rb") as f:
            data = f.read()
        with open(clean, "r+b") as f:
            f.write(data[:st.st_size].ljust(st.st_size, b"\0"))
        os.utime(clean, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(clean).st_mtime_ns, st.st_mtime_ns)
        recs, _ = json_records(self.scan("files")[0])
        self.assertFalse(recs["files/md5-wrongsize.bin"]["cached"])
        # And a file swapped by rename (new inode, same size and mtime).
        tmp = os.path.join(self.dir, "files", "swap.tmp")
        shutil.copy2(os.path.join(self.dir, "files", "md5-hit.bin"), tmp)
        target = os.path.join(self.dir, "files", "md5-hit.bin")
        os.rename(tmp, target)
        recs, _ = json_records(self.scan("files")[0])
        self.assertFalse(recs["files/md5-hit.bin"]["cached"])
        self.assertEqual(recs["files/md5-hit.bin"]["result"], "infected")

    def test_changed_signature_set_means_real_scan(self):
        self.scan("files")
        clean = os.path.join(self.dir, "files", "clean.txt")
        with open(clean, "rb") as f:
            digest = hashlib.md5(f.read()).hexdigest()
        with open(os.path.join(self.db, "new.hdb"), "w") as f:
            f.write(f"{digest}:12:Ward.Test.NewSignature\n")
        recs, summary = json_records(self.scan("files")[0])
        self.assertTrue(summary["signatures_loaded"])
        self.assertEqual(recs["files/clean.txt"]["result"], "infected")
        self.assertFalse(any(r.get("cached") for r in recs.values()))

    def test_corrupt_cache_is_rebuilt(self):
        self.scan("files")
        tables = [f for f in os.listdir(self.cache) if f.startswith("sigset-")]
        self.assertEqual(len(tables), 1)
        with open(os.path.join(self.cache, tables[0]), "r+b") as f:
            f.truncate(50)
        out, err, rc = self.scan("files")
        self.assertIn("WARNING: scan cache:", err)
        self.assertIn("shorter than its header; starting a new one", err)
        recs, _ = json_records(out)
        self.assertEqual(recs["files/md5-hit.bin"]["result"], "infected")
        recs, _ = json_records(self.scan("files")[0])
        self.assertTrue(recs["files/clean.txt"]["cached"])

    def test_no_cache_writes_nothing(self):
        ward("--no-cache", "-d", self.db, "files", cwd=self.dir)
        self.assertFalse(os.path.exists(self.cache))

    def test_default_cache_location(self):
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.dir, "xdg"))
        ward("-d", self.db, "files", cwd=self.dir, env=env)
        tables = os.listdir(os.path.join(self.dir, "xdg", "ward", "scan"))
        self.assertTrue(any(t.startswith("sigset-") for t in tables))


class ChangingFiles(TempDirCase):
    """Files that change or vanish while a scan runs."""

    def scan_while_changing(self, db, big, victim):
        """Scans big then victim with one worker (victim waits in the queue
        while big is scanned); once big is open, appends to it and removes
        victim."""
        proc = subprocess.Popen([WARD, "scan", "--no-cache", "-j", "1", "-d", db, big, victim],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                fds = os.listdir(f"/proc/{proc.pid}/fd")
                if any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == big for fd in fds):
                    break
            except OSError:
                pass
            time.sleep(0.002)
        else:
            proc.kill()
            proc.communicate()
            self.fail("the scan never opened the big file")
        with open(big, "ab") as f:
            f.write(b"appended while scanned")
        os.remove(victim)
        out, err = proc.communicate(timeout=120)
        return proc, out.decode(), err.decode()

    def test_changed_and_vanished(self):
        db = os.path.join(self.dir, "e.hdb")
        with open(db, "w") as f:
            f.write("44d88612fea8a8f36de82e1278abb02f:68:Test.Eicar\n")
        big = os.path.join(self.dir, "big.bin")
        victim = os.path.join(self.dir, "victim.txt")
        with open(big, "wb") as f:
            f.write(os.urandom(90 << 20))
        # The walker runs beside the scanner: on a loaded machine it may
        # reach victim only after the test removed it, which is a missing
        # argument, not a vanished file. Such a round is run again.
        for _ in range(5):
            with open(victim, "w") as f:
                f.write("soon gone\n")
            proc, out, err = self.scan_while_changing(db, big, victim)
            if f"WARNING: {victim}: No such file or directory" not in err:
                break
        self.assertIn(f"WARNING: {big}: changed while being scanned; the result is not cached",
                      err)
        self.assertIn(f"ERROR: {victim}: vanished during the scan", err)
        self.assertIn(f"{big}: OK", out)
        self.assertIn("Total errors: 1", out)
        self.assertEqual(proc.returncode, 2)


class Limits(TempDirCase):
    def test_max_files_and_size_options(self):
        fixtures.build(self.dir)
        z = os.path.join(self.dir, "three.zip")
        with open(os.path.join(self.dir, "files", "md5-hit.bin"), "rb") as f:
            hit = f.read()
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("1.txt", b"one\n")
            zf.writestr("2.txt", b"two\n")
            zf.writestr("3.bin", hit)
        db = os.path.join(self.dir, "sigs", "md5.hdb")
        self.assertEqual(ward("--no-cache", "-d", db, z)[2], 1)
        self.assertEqual(ward("--no-cache", "--max-files=2", "-d", db, z)[2], 0)
        self.assertEqual(ward("--no-cache", "--max-filesize=1K", "-d", db, z)[2], 0)

    def test_archive_bomb_is_bounded(self):
        """10 x 10 members of 100 MiB of zeros (10 GiB unpacked) in a few
        MiB: the scan ends quickly, within bounded memory, and leaves no
        temporary files behind."""
        zero = bytes(1 << 20)
        inner = os.path.join(self.dir, "inner.zip")
        with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(10):
                with zf.open(f"part{i}.bin", "w") as member:
                    for _ in range(100):
                        member.write(zero)
        bomb = os.path.join(self.dir, "bomb.zip")
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_STORED) as zf:
            for i in range(10):
                zf.write(inner, f"layer{i}.zip")
        self.assertLess(os.path.getsize(bomb), 20 << 20)
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp)
        db = os.path.join(self.dir, "e.hdb")
        with open(db, "w") as f:
            f.write("44d88612fea8a8f36de82e1278abb02f:68:Test.Eicar\n")
        # Peak RSS of this child alone: run it through a fresh Python so
        # RUSAGE_CHILDREN counts nothing but the scan.
        probe = ("import resource,subprocess,sys;"
                 "p=subprocess.run(sys.argv[1:],capture_output=True);"
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode);"
                 "sys.stdout.write(p.stdout.decode())")
        t0 = time.time()
        p = subprocess.run([sys.executable, "-c", probe, WARD, "scan", "--no-cache", "-d", db,
                            bomb], env=dict(os.environ, TMPDIR=tmp), capture_output=True,
                           timeout=600)
        elapsed = time.time() - t0
        first, _, out = p.stdout.decode().partition("\n")
        peak_kib, rc = (int(x) for x in first.split())
        self.assertEqual(rc, 0, p.stderr.decode())
        self.assertIn("bomb.zip: OK", out)
        self.assertLess(peak_kib, 512 * 1024, "memory not bounded")
        self.assertLess(elapsed, 300)
        self.assertEqual(os.listdir(tmp), [], "temporary files left behind")


if __name__ == "__main__":
    unittest.main()
