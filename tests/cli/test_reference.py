#!/usr/bin/env python3
"""The operation table (src/common/ops.def) as people see it: the generated
parts of docs/api.md and man/ward.1 equal what `ward --print-reference`
makes from the table, every administration command answers --help and -h,
and `ward --help` shows each command's usage whole.

    WARD_BIN=build/bin/ward python3 tests/cli/test_reference.py

When the table changes, regenerate the two files' marked blocks:
    python3 tests/cli/test_reference.py --update
"""
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
WARD = os.environ.get("WARD_BIN", os.path.join(ROOT, "build", "bin", "ward"))
UPDATE = "--update" in sys.argv

# file, what --print-reference makes, the block's markers.
FILES = [
    ("docs/api.md", "api", re.compile(
        r"(<!-- BEGIN GENERATED [^\n]*-->\n)(.*?)(<!-- END GENERATED -->\n)", re.S)),
    ("man/ward.1", "man", re.compile(
        r"(\.\\\" BEGIN GENERATED [^\n]*\n)(.*?)(\.\\\" END GENERATED\n)", re.S)),
]


def ward(*args):
    return subprocess.run([WARD, *args], capture_output=True, text=True, timeout=30)


def commands():
    """The administration commands: the `ward` column of the API reference."""
    out = ward("--print-reference", "api")
    assert out.returncode == 0, out.stderr
    return re.findall(r"^\| `[A-Z]+ [^`]+` \| [^|]+ \| `([^`]+)` \|", out.stdout, re.M)


class Reference(unittest.TestCase):
    def test_generated_blocks_are_current(self):
        for path, what, marks in FILES:
            with self.subTest(path=path):
                full = os.path.join(ROOT, path)
                with open(full, encoding="utf-8") as f:
                    text = f.read()
                out = ward("--print-reference", what)
                self.assertEqual(out.returncode, 0, out.stderr)
                m = marks.search(text)
                self.assertIsNotNone(m, f"{path}: no generated block")
                if UPDATE:
                    text = text[:m.start(2)] + out.stdout + text[m.end(2):]
                    with open(full, "w", encoding="utf-8") as f:
                        f.write(text)
                    continue
                self.assertEqual(m.group(2), out.stdout,
                                 f"{path} is out of date with src/common/ops.def: run "
                                 "python3 tests/cli/test_reference.py --update")

    def test_reference_is_complete(self):
        out = ward("--print-reference", "api").stdout
        routes = set(re.findall(r"^\| `[A-Z]+ (/[^`]+)` \|", out, re.M))
        # Every route the table has (the count of the issue that asked for it:
        # issue 16 added Scan Now, tasks and the quarantine, agents' routes too;
        # issue 18 the backups, holding deliveries, the metrics, deployments and alerts;
        # issue 19 the licenses and agent upgrades).
        self.assertEqual(len(routes), 86)
        man = ward("--print-reference", "man").stdout
        for words in ["client move-server", "export", "import", "logs", "sps revoke",
                      "scan-now", "task cancel", "quarantine restore", "deploy script"]:
            self.assertIn("\n.B " + words.replace("-", "\\-"), man)
        self.assertEqual(ward("--print-reference", "nothing").returncode, 2)

    def test_every_command_answers_help(self):
        cmds = commands()
        self.assertGreater(len(cmds), 40)
        for words in cmds:
            for flag in ("--help", "-h"):
                with self.subTest(command=words, flag=flag):
                    out = ward(*words.split(), flag)
                    self.assertEqual(out.returncode, 0, out.stderr)
                    self.assertTrue(out.stdout.startswith("usage: ward " + words),
                                    out.stdout)
                    self.assertIn("request: ", out.stdout)
        # Help after some arguments, and for a group of commands.
        out = ward("settings", "set", "--scope", "root", "--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn('(string; body "scope")', out.stdout)
        self.assertIn('(string, optional; body "apply")', out.stdout)
        out = ward("client", "--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn("client move-server IDS --server SERVER --token TOKEN --ca CA",
                      out.stdout)
        out = ward("login", "--help")
        self.assertEqual(out.returncode, 0)
        self.assertTrue(out.stdout.startswith("usage: ward login"))

    def test_usage_lines_are_whole(self):
        listing = " ".join(ward("--help").stdout.split())
        for words in commands():
            with self.subTest(command=words):
                usage = ward(words.split()[0], *words.split()[1:], "--help").stdout
                usage = " ".join(usage.split("\n\n")[0].split())[len("usage: ward "):]
                self.assertIn(" " + usage + " ", listing)


if __name__ == "__main__":
    sys.argv = [a for a in sys.argv if a != "--update"]
    unittest.main()
