#!/usr/bin/env python3
"""`cmake --install` (make install) puts every file where the others expect
it: the programs, the console beside them (share/ward/console), the man
pages, the units naming the installed programs and configurations, the
sysusers.d and tmpfiles.d files, and example configurations that the
installed programs accept (--check-config) and that list every option the
program has (--print-defaults), commented out.

Installs the build tree (WARD_BUILD_DIR, configured with WARD_PREFIX and
WARD_CONFDIR) under a temporary DESTDIR.
"""
import os
import re
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("WARD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
CMAKE = os.environ.get("CMAKE_COMMAND", "cmake")
DAEMONS = ("wardd", "ward-agent", "ward-sps")


# As configured: CMAKE_INSTALL_PREFIX, and the configuration's directory.
PREFIX = os.environ.get("WARD_PREFIX", "/usr/local")
CONFDIR = os.environ.get("WARD_CONFDIR", PREFIX + "/etc/ward")


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ward-install-")
        cls.dest = cls.tmp.name
        subprocess.run([CMAKE, "--install", BUILD], env=dict(os.environ, DESTDIR=cls.dest),
                       check=True, capture_output=True, timeout=120)
        cls.prefix, cls.confdir = PREFIX, CONFDIR

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def staged(self, path):
        return self.dest + path

    def test_layout(self):
        p = self.prefix
        for f in ("bin/ward", "sbin/wardd", "sbin/ward-agent", "sbin/ward-sps"):
            self.assertTrue(os.access(self.staged(f"{p}/{f}"), os.X_OK), f)
        for f in ("share/man/man1/ward.1", "share/man/man8/wardd.8",
                  "share/man/man8/ward-agent.8", "share/man/man8/ward-sps.8",
                  "lib/sysusers.d/ward.conf", "lib/sysusers.d/ward-sps.conf",
                  "lib/sysusers.d/ward-agent.conf", "lib/tmpfiles.d/wardd.conf", "lib/tmpfiles.d/ward-agent.conf",
                  "lib/tmpfiles.d/ward-sps.conf"):
            self.assertTrue(os.path.isfile(self.staged(f"{p}/{f}")), f)
        # wardd looks for the console at ../share/ward/console from its program.
        self.assertTrue(os.path.isfile(self.staged(f"{p}/sbin/../share/ward/console/index.html")))

    def test_units_name_installed_paths(self):
        for d in DAEMONS:
            with open(self.staged(f"{self.prefix}/lib/systemd/system/{d}.service")) as f:
                text = f.read()
            start = re.search(r"^ExecStart=(\S+) --config (\S+)", text, re.M)
            self.assertIsNotNone(start, d)
            self.assertEqual(start.group(1), f"{self.prefix}/sbin/{d}")
            self.assertEqual(start.group(2), f"{self.confdir}/{d}.ini")
            self.assertTrue(os.path.isfile(self.staged(start.group(2))), start.group(2))
            self.assertNotIn("@WARD_", text, d)

    def test_users_and_directories_agree_with_units(self):
        users = {}
        for f in ("ward.conf", "ward-sps.conf"):
            with open(self.staged(f"{self.prefix}/lib/sysusers.d/{f}")) as fh:
                for line in fh:
                    if line.startswith("u "):
                        users[line.split()[1]] = line.split()[-1]
        self.assertEqual(set(users), {"ward", "ward-sps"})
        for d in DAEMONS:
            with open(self.staged(f"{self.prefix}/lib/systemd/system/{d}.service")) as f:
                unit = dict(l.strip().split("=", 1) for l in f if re.match(r"^\w+=", l))
            with open(self.staged(f"{self.prefix}/lib/tmpfiles.d/{d}.conf")) as f:
                entry = [l.split() for l in f if l.startswith("d ")]
            user = unit.get("User", "root")
            want = [["d", "/var/lib/" + unit["StateDirectory"], unit["StateDirectoryMode"],
                     user, user, "-"]]
            # The runtime directory (the agent's scan workers' scratch) and
            # what is made in it, as the unit's RuntimeDirectory= makes it.
            if "RuntimeDirectory" in unit:
                run = "/run/" + unit["RuntimeDirectory"]
                want += [["d", e[1], unit["RuntimeDirectoryMode"], user, user, "-"]
                         for e in entry if e[1] == run or e[1].startswith(run + "/")]
                self.assertEqual(entry[1][1], run, d)
            self.assertEqual(entry, want, d)
            if user != "root":
                self.assertEqual(users[user], "/var/lib/" + unit["StateDirectory"])

    def test_examples_accepted_and_complete(self):
        for d in DAEMONS:
            prog = self.staged(f"{self.prefix}/sbin/{d}")
            example = self.staged(f"{self.confdir}/{d}.ini")
            done = subprocess.run([prog, "--config", example, "--check-config"],
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("valid", done.stdout)
            defaults = subprocess.run([prog, "--print-defaults"], capture_output=True,
                                      text=True, check=True, timeout=30).stdout
            with open(example) as f:
                text = f.read()
            options = re.findall(r"^(\w+ =.*)$", defaults, re.M)
            self.assertTrue(options, d)
            for option in options:
                self.assertIn("\n#" + option + "\n", text, d)
            # Commented out: the installed file sets nothing.
            self.assertEqual(re.findall(r"^\w+ =", text, re.M), [], d)
            # And a broken one is refused, naming its line.
            with tempfile.NamedTemporaryFile("w", suffix=".ini") as bad:
                bad.write(text + "\n[nosuch]\n")
                bad.flush()
                done = subprocess.run([prog, "--config", bad.name, "--check-config"],
                                      capture_output=True, text=True, timeout=30)
                self.assertEqual(done.returncode, 2, d)
                self.assertIn("unknown section [nosuch]", done.stderr, d)


if __name__ == "__main__":
    unittest.main()
