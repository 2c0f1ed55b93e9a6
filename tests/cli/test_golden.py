#!/usr/bin/env python3
"""Golden tests of `ward scan`: stdout, stderr and exit status of each case
against tests/cli/golden/CASE.txt, and (for the cases clamscan can run too)
parity with clamscan on the same databases and inputs: the same exit status,
the same result lines (clamscan lists directories in readdir order, ward by
name, so lines are compared as sorted lists) and the same summary but for
its timings.

    WARD_BIN=build/bin/ward python3 tests/cli/test_golden.py [--update]

--update rewrites the golden files from the current output (review the diff).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
WARD = os.environ.get("WARD_BIN", os.path.join(HERE, "..", "..", "build", "bin", "ward"))
CLAMSCAN = shutil.which("clamscan")
UPDATE = "--update" in sys.argv

# name, arguments after `ward scan` (paths relative to the fixture root),
# whether clamscan must agree, extra environment.
CASES = [
    ("hash-md5", ["-d", "sigs/md5.hdb", "files/md5-hit.bin", "files/md5-wrongsize.bin",
                  "files/clean.txt"], True, {}),
    ("hash-sha256", ["-d", "sigs/sha.hsb", "files/sha256-hit.bin", "files/sha256-star.bin",
                     "files/clean.txt"], True, {}),
    ("body", ["-d", "sigs/body.ndb", "files/body-wild.bin", "files/body-wild-miss.bin",
              "files/body-offset.bin", "files/body-offset-miss.bin", "files/body-eof.bin",
              "files/body-eof-miss.bin"], True, {}),
    ("logical", ["-d", "sigs/logical.ldb", "files/logical-hit.bin", "files/logical-half.bin"],
     True, {}),
    ("allow-list", ["-d", "sigs/allow.hdb", "files/allowed.bin"], True, {}),
    ("allow-list-fp", ["-d", "sigs/allow.hdb", "-d", "sigs/allow.fp", "files/allowed.bin"],
     True, {}),
    ("first-match", ["-d", "sigdir", "files/multi.bin"], True, {}),
    ("allmatch", ["-z", "-d", "sigdir", "files/multi.bin"], True, {}),
    ("zip-member-hash", ["-d", "sigs/md5.hdb", "files/hit.zip"], True, {}),
    ("empty-file", ["-d", "sigdir", "files/empty.txt", "files/clean.txt"], True, {}),
    ("recursive", ["-r", "-d", "sigdir", "tree"], True, {}),
    ("recursive-infected-only", ["-r", "-i", "-d", "sigdir", "tree/"], True, {}),
    ("recursive-no-summary", ["-r", "--no-summary", "-d", "sigdir", "tree"], True, {}),
    ("directory-without-r", ["-d", "sigdir", "tree"], True, {}),
    ("follow-all-links", ["-r", "--follow-dir-symlinks=2", "--follow-file-symlinks=2",
                          "-d", "sigdir", "tree"], True, {}),
    ("exclude", ["-r", "--exclude=\\.bin$", "--exclude-dir=/deeper$", "-d", "sigdir", "tree"],
     True, {}),
    ("missing-path", ["-d", "sigdir", "files/clean.txt", "nonexistent"], True, {}),
    ("missing-path-and-infected", ["-d", "sigdir", "nonexistent", "files/md5-hit.bin"],
     True, {}),
    ("fifo-argument", ["-d", "sigdir", "tree/pipe", "files/clean.txt"], True, {}),
    ("db-malformed", ["-d", "bad/malformed.hdb", "files/clean.txt"], True, {}),
    ("db-bad-line-2", ["-d", "bad/badline2.hdb", "files/clean.txt"], True, {}),
    ("db-empty", ["-d", "bad/empty.hdb", "files/clean.txt"], True, {}),
    ("db-bad-hex", ["-d", "bad/badhex.ndb", "files/clean.txt"], True, {}),
    ("db-missing", ["-d", "bad/nonexistent.cvd", "files/clean.txt"], True, {}),
    ("db-dir-without-databases", ["-d", "bad/nodbs", "files/clean.txt"], True, {}),
    ("json", ["--json", "-r", "-d", "sigdir", "tree", "files/multi.bin"], False, {}),
    ("json-infected-only", ["--json", "-i", "-d", "sigdir", "files/md5-hit.bin",
                            "files/clean.txt"], False, {}),
    ("builtin-eicar", ["files/eicar.com", "files/clean.txt"], False,
     {"WARD_DATABASE_DIR": "nodb"}),
    ("bad-regex", ["--exclude=(", "-d", "sigdir", "files/clean.txt"], False, {}),
    ("bad-option-value", ["--max-filesize=12Q", "-d", "sigdir", "files/clean.txt"], False, {}),
]

SUMMARY_TIMING = re.compile(r"^(Time|Start Date|End Date|Engine version):.*$", re.M)
JSON_TIMING = re.compile(r'"(seconds|load_seconds|engine_version)":[^,}]+')


def normalise(text, root):
    text = text.replace(root, "{R}")
    text = SUMMARY_TIMING.sub(lambda m: m.group(1) + ": *", text)
    return JSON_TIMING.sub(lambda m: '"%s":*' % m.group(1), text)


def run(argv, root, env_extra):
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = os.path.join(root, ".cache")
    for k, v in env_extra.items():
        env[k] = os.path.join(root, v) if k == "WARD_DATABASE_DIR" else v
    p = subprocess.run(argv, cwd=root, env=env, capture_output=True, timeout=120)
    return p.stdout.decode(), p.stderr.decode(), p.returncode


def split_summary(stdout):
    """Result lines and summary lines (minus timings) of clamscan-style output."""
    head, sep, tail = stdout.partition("\n----------- SCAN SUMMARY -----------\n")
    results = [line for line in head.split("\n") if line]
    summary = [line for line in tail.split("\n")
               if line and not SUMMARY_TIMING.match(line)] if sep else []
    return sorted(results), summary


class Golden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="ward-golden-")
        fixtures.build(cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def check_case(self, name, args, parity, env):
        out, err, rc = run([WARD, "scan", "--no-cache", "-j", "2"] + args, self.root, env)
        got = "$ ward scan %s\n-- stdout\n%s-- stderr\n%s-- status %d\n" % (
            " ".join(args), normalise(out, self.root), normalise(err, self.root), rc)
        path = os.path.join(GOLDEN, name + ".txt")
        if UPDATE:
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(f.read(), got, "golden output of " + name)
        if parity:
            self.assertTrue(CLAMSCAN, "clamscan is needed for the parity checks")
            cout, _, crc = run([CLAMSCAN] + args, self.root, env)
            self.assertEqual(rc, crc, "exit status differs from clamscan's")
            self.assertEqual(split_summary(normalise(out, self.root)),
                             split_summary(normalise(cout, self.root)),
                             "results or summary differ from clamscan's")


def _make_test(case):
    name, args, parity, env = case
    return lambda self: self.check_case(name, args, parity, env)


for _case in CASES:
    setattr(Golden, "test_" + _case[0].replace("-", "_"), _make_test(_case))


if __name__ == "__main__":
    unittest.main(argv=[a for a in sys.argv if a != "--update"])
