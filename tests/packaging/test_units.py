#!/usr/bin/env python3
"""The systemd units made from packaging/*.service.in keep their privileges
as docs/architecture.md records them: systemd-analyze's exposure score at most the recorded one,
ward-agent with the capabilities its unit gives a reason for (reading files,
the actions and restores, fanotify, the opener's executable, starting its scan
workers; fanotify's calls; the host writable but /usr, /boot, /etc),
the host's /tmp in sight,
ward-sps under a user of its own with wardd's data out of its sight.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from unitfile import service_section  # noqa: E402

PACKAGING = os.path.join(os.path.dirname(__file__), "../../packaging")
# The units as configured for installation (the build's packaging/).
UNITS = os.environ.get("WARD_UNIT_DIR", os.path.join(os.path.dirname(__file__),
                                                     "../../build/packaging"))

# The highest exposure each unit may have (systemd-analyze security, 0-10).
LIMITS = {"ward-agent.service": 3.7, "ward-sps.service": 1.2, "wardd.service": 1.2}


def service(name):
    """The [Service] section of a unit, each key's values in order."""
    return service_section(os.path.join(UNITS, name))


class UnitsTest(unittest.TestCase):
    def test_exposure(self):
        for name, limit in LIMITS.items():
            done = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                   f"--threshold={int(limit * 10)}",
                                   os.path.join(UNITS, name)],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, f"{name} is above {limit}:\n{done.stdout}")

    def test_agent(self):
        s = service("ward-agent.service")
        # Each with its reason in the unit's comment.
        self.assertEqual(s["CapabilityBoundingSet"], ["CAP_DAC_OVERRIDE CAP_FOWNER CAP_CHOWN "
                                                      "CAP_FSETID CAP_SETFCAP CAP_SYS_ADMIN "
                                                      "CAP_SYS_PTRACE CAP_SETUID CAP_SETGID "
                                                      "CAP_SETPCAP CAP_KILL"])
        with open(os.path.join(PACKAGING, "ward-agent.service.in")) as f:
            comments = [l for l in f if l.startswith("#")]
        for cap in s["CapabilityBoundingSet"][0].split():
            self.assertTrue(any(cap in l for l in comments), f"{cap} has no reason in the unit")
        # A restore gives a setuid or setgid file its mode back.
        self.assertNotIn("RestrictSUIDSGID", s)
        self.assertIn("fanotify_init fanotify_mark", s["SystemCallFilter"])
        self.assertEqual(s["LimitNOFILE"], ["16384"])
        self.assertEqual(s["ProtectHome"], ["no"])
        with open(os.path.join(PACKAGING, "ward-agent.sysusers")) as f:
            self.assertEqual([l.split()[1] for l in f if l.startswith("u ")], ["ward-scan"])
        self.assertNotIn("PrivateTmp", s)
        self.assertNotIn("User", s)
        self.assertEqual(s["ProtectSystem"], ["full"])

    def test_sps_cannot_read_wardd(self):
        sps, wardd = service("ward-sps.service"), service("wardd.service")
        self.assertNotEqual(sps["User"], wardd["User"])
        self.assertIn("-/var/lib/ward/server", sps["InaccessiblePaths"])
        users = []
        for name in ("ward.sysusers", "ward-sps.sysusers"):
            with open(os.path.join(PACKAGING, name)) as f:
                users += [l.split()[1] for l in f if l.startswith("u ")]
        self.assertEqual(sorted(users), sorted([sps["User"][0], wardd["User"][0]]))
        for s in (sps, wardd):
            self.assertEqual(s["StateDirectoryMode"], ["0700"])
            self.assertEqual(s["CapabilityBoundingSet"], [""])


if __name__ == "__main__":
    unittest.main()
