#!/usr/bin/env python3
"""Agent upgrades from the server: a real ward-agent installed in versioned
directories (ROOT/versions/VERSION/ward-agent, ROOT/current) runs under
`ward-agent supervise`; wardd serves Debian packages of the agent for this
host's platform (Ward-Platform) and rolls a version out with `ward
agent-upgrade start`. A good version is installed and stays; one that
crashes when it runs, and one that starts but never reaches the server,
are rolled back by the agent's supervisor within the window, and the
agent reports why; an agent whose agent.upgrade is "prevent" is held back,
one on a platform no package serves is never offered one, and both are
listed. An update postponed to a restart waits for it (a host's, by a new
boot id), outliving tasks.expire, and the logged-in user is told on their
terminal and by a desktop notification (root: a terminal and a session
bus of nobody's)."""
import json
import os
import pwd
import select
import shutil
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AGENT, Agent, AgentWire, demo_wardd, make_deb,  # noqa: E402
                      temp_dir, wait_for)

OLD = "0.1.0-1"


def platform():
    """This host as the agent names it: (os-release ID-VERSION_ID, dpkg's
    architecture)."""
    fields = {}
    with open("/etc/os-release") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                fields[k] = v.strip('"')
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return f"{fields['ID']}-{fields.get('VERSION_ID', '')}", arch


def program_deb(out, version, program, os_name, arch, restart="service"):
    """A package of the agent whose usr/sbin/ward-agent is program (bytes),
    whose applying needs restart (service or host)."""
    return make_deb(out, version, arch=arch, fields={"Ward-Platform": os_name,
                                                     "Ward-Restart": restart},
                    files={"usr/sbin/ward-agent": (program, 0o755)})


def script(run_does):
    """A program that answers everything as the real agent does, but does
    run_does (shell) when asked to run: a broken build that passes the
    agent's check of the configuration."""
    return (f"#!/bin/sh\ncase \" $* \" in *\" run \"*) {run_does};; esac\n"
            f"exec {AGENT} \"$@\"\n").encode()


class DesktopSession:
    """A desktop session of user (a pwd entry) as a desktop has one: an X
    server (Xvfb), the user's session bus at /run/user/UID/bus (which the
    agent looks for) and a notification server on it (Debian's
    notification-daemon); dbus-monitor records the Notifications calls."""

    def __init__(self, test, user, root):
        self.bus_dir = f"/run/user/{user.pw_uid}"
        if os.path.exists(self.bus_dir):
            raise AssertionError(f"{self.bus_dir} exists: a session of that user runs here")
        os.makedirs(self.bus_dir, mode=0o700)
        test.addCleanup(shutil.rmtree, self.bus_dir, True)
        os.chown(self.bus_dir, user.pw_uid, user.pw_gid)
        self.monitor_path = os.path.join(root, "dbus-monitor.txt")
        self.procs = []
        test.addCleanup(self.stop)
        r, w = os.pipe()
        self.start(["Xvfb", "-displayfd", str(w), "-nolisten", "tcp", "-ac"], pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            display = ":" + f.readline().strip()
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                   "--clear-groups", "env", "HOME=/tmp", f"DISPLAY={display}",
                   f"DBUS_SESSION_BUS_ADDRESS=unix:path={self.bus_dir}/bus"]
        self.start(as_user + ["dbus-daemon", "--session", "--nofork", "--nopidfile",
                              f"--address=unix:path={self.bus_dir}/bus"])
        wait_for(lambda: os.path.exists(f"{self.bus_dir}/bus"), what="the session bus")
        self.monitor = open(self.monitor_path, "w")
        self.start(as_user + ["dbus-monitor", "interface='org.freedesktop.Notifications'"],
                   stdout=self.monitor)
        self.start(as_user + ["/usr/lib/notification-daemon/notification-daemon"])

    def start(self, argv, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        self.procs.append(subprocess.Popen(argv, stderr=subprocess.DEVNULL, **kw))

    def calls(self):
        """What dbus-monitor recorded so far."""
        with open(self.monitor_path) as f:
            return f.read()

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait(timeout=10)
        self.procs = []
        if not self.monitor.closed:
            self.monitor.close()


class VersionedAgent(Agent):
    """A ward-agent installed as ROOT/versions/OLD/ward-agent with
    ROOT/current, run by its supervisor."""

    def __init__(self, root, name):
        super().__init__(root, name)
        self.root = os.path.join(self.dir, "install")
        os.makedirs(os.path.join(self.root, "versions", OLD))
        shutil.copy2(AGENT, os.path.join(self.root, "versions", OLD, "ward-agent"))
        os.symlink(f"versions/{OLD}", os.path.join(self.root, "current"))
        self.program = os.path.join(self.root, "current", "ward-agent")
        self.serve = "supervise"

    def stop(self):
        """Stops the supervisor as the service manager does, with SIGTERM: it
        stops its agent and waits for it. (Killed outright, the supervisor
        leaves its agent to PDEATHSIG, which may still be writing into the
        test's directory while the test removes it.)"""
        if self.proc and self.proc.poll() is None:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                raise

    def current(self):
        return os.readlink(os.path.join(self.root, "current"))

    def versions(self):
        return sorted(os.listdir(os.path.join(self.root, "versions")))


class AgentUpgradeTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir("ward-upgrade-", self.addCleanup).name
        os_name, arch = platform()
        self.platform = f"{os_name}/{arch}"
        packages = os.path.join(self.root, "agent-packages")
        with open(AGENT, "rb") as f:
            real = f.read()
        program_deb(packages, "0.1.0-2", real, os_name, arch)
        program_deb(packages, "0.1.0-3", script("kill -SEGV $$"), os_name, arch)
        program_deb(packages, "0.1.0-4", script("exec sleep 3600"), os_name, arch)
        # A package of another release, which this host is never offered.
        program_deb(packages, "0.1.0-9", real, "debian-99", arch)
        self.server, self.admin = demo_wardd(
            self.root, self.addCleanup,
            extra=f"[deploy]\npackage_dir = {packages}\n[agents]\nheartbeat_interval = 5s\n")
        self.agent = VersionedAgent(self.root, "agent")
        self.addCleanup(self.agent.stop)
        self.client = self.agent.enroll_with(self.server)
        self.agent.start()
        wait_for(lambda: self.status().get("package_version") == OLD, timeout=60,
                 what="the agent's first status")

    def api(self, method, path, body=None, want=200):
        status, answer = self.server.request(method, path, body, token=self.admin)
        self.assertEqual(status, want, answer)
        return answer

    def status(self):
        return self.api("GET", f"/api/v1/client?id={self.client}").get("status") or {}

    def upgrades(self):
        return self.api("GET", f"/api/v1/tasks?client={self.client}&kind=agent_upgrade")[
            "tasks"]

    def roll_out(self, version, **more):
        return self.api("POST", "/api/v1/agent-upgrade", {"version": version, **more}, want=201)

    def wait_task(self, state, timeout=90):
        try:
            wait_for(lambda: self.upgrades() and self.upgrades()[0]["state"] == state,
                     timeout=timeout, what=f"the upgrade task {state}")
        except AssertionError as e:
            raise AssertionError(f"{e}: {self.upgrades()}\nagent log:\n"
                                 f"{self.agent.log_text()[-3000:]}") from None
        return self.upgrades()[0]

    def test_good_version_upgrades(self):
        listed = self.api("GET", "/api/v1/agent-upgrade")
        self.assertEqual(sorted(p["version"] for p in listed["packages"]
                                if p["platform"] == self.platform),
                         ["0.1.0-2", "0.1.0-3", "0.1.0-4"])
        self.assertEqual([(a["client"], a["state"]) for a in listed["agents"]],
                         [(self.client, "behind")])
        self.roll_out("0.1.0-2")
        task = self.wait_task("completed")
        self.assertEqual(task["args"]["version"], "0.1.0-2")
        wait_for(lambda: self.status().get("package_version") == "0.1.0-2",
                 what="the new version's status")
        self.assertEqual(self.agent.current(), "versions/0.1.0-2")
        # The version it came from stays, to go back to by hand.
        wait_for(lambda: self.agent.versions() == [OLD, "0.1.0-2"], what="the versions kept")
        wait_for(lambda: self.api("GET", "/api/v1/agent-upgrade")["rollout"]["state"] == "done",
                 what="the rollout done")
        rollout = self.api("GET", "/api/v1/agent-upgrade")["rollout"]
        self.assertEqual(rollout["counts"]["upgraded"], 1, rollout)
        # Protection goes on in the new version: it scans with its pattern.
        self.agent.wait_status("in use: virus-pattern version 1", timeout=60)
        self.assertIn("upgrade: 0.1.0-2 runs and reached the server", self.agent.log_text())
        self.assertEqual(self.agent.proc.poll(), None)

    def test_crashing_version_rolls_back(self):
        self.roll_out("0.1.0-3", max_failures=1)
        task = self.wait_task("failed")
        self.assertIn("0.1.0-3 was killed by signal 11", task["error"])
        self.assertIn(f"{OLD} came back", task["error"])
        self.assertEqual(self.agent.current(), f"versions/{OLD}")
        self.assertEqual(self.agent.versions(), [OLD])
        wait_for(lambda: self.status().get("package_version") == OLD, what="the old version")
        wait_for(lambda: self.api("GET", "/api/v1/agent-upgrade")["rollout"]["state"] ==
                 "paused", what="the rollout paused")
        rollout = self.api("GET", "/api/v1/agent-upgrade")["rollout"]
        self.assertIn("1 agents failed", rollout["reason"])
        failed = [a for a in self.api("GET", "/api/v1/agent-upgrade")["agents"]
                  if a["state"] == "failed"]
        self.assertEqual(len(failed), 1)
        # Resumed, the failures that paused it do not pause it again.
        self.api("POST", "/api/v1/agent-upgrade/resume")
        wait_for(lambda: self.api("GET", "/api/v1/agent-upgrade")["rollout"]["state"] == "done",
                 what="the resumed rollout over")
        # Offered again (a new rollout), it is refused at once: it failed here.
        self.roll_out("0.1.0-3")
        # (A tick of the rollout, the agent's poll and report: seconds, more
        # under the sanitizers on a loaded machine.)
        wait_for(lambda: len(self.upgrades()) == 2 and self.upgrades()[0]["state"] == "failed",
                 timeout=90, what="the second offer refused")
        self.assertIn("0.1.0-3 failed here before", self.upgrades()[0]["error"])
        self.api("POST", "/api/v1/agent-upgrade/cancel")

    def test_version_that_never_connects_rolls_back(self):
        started = time.monotonic()
        self.roll_out("0.1.0-4", window=10)
        task = self.wait_task("failed")
        self.assertIn("0.1.0-4 started but did not reach the server within 10 s",
                      task["error"])
        # The window, and the old version's start and first report.
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(self.agent.current(), f"versions/{OLD}")
        self.assertEqual(self.agent.versions(), [OLD])
        # Not reaching the server may have been the network's doing: the
        # version is not barred here, as one that crashed is.
        self.assertFalse(os.path.exists(os.path.join(self.agent.dir, "state",
                                                     "upgrade-failed.json")))

    def test_prevented_and_unsupported_are_held_back(self):
        self.server.set_client(self.admin, self.client, {"agent.upgrade": "prevent"})
        self.agent.wait_settings(self.server, self.admin)
        other, = AgentWire.enrolled(self.server, self.root, "elsewhere")
        status = {"hostname": "elsewhere", "agent_version": "0.1.0", "components": {},
                  "platform": {"os": "plan9-4", "arch": "mips"}, "install": "dir",
                  "package_version": OLD}
        self.assertEqual(other.call("POST", "/api/v1/agent/heartbeat", status)[0], 200)
        # One installed by its Debian package but not run by systemd as its
        # service: its package manager upgrades it (one that systemd runs
        # is upgraded through dpkg: tests/packaging/test_debs.py).
        dpkg, = AgentWire.enrolled(self.server, self.root, "bydpkg")
        os_name, arch = platform()
        self.assertEqual(dpkg.call("POST", "/api/v1/agent/heartbeat", dict(
            status, hostname="bydpkg", platform={"os": os_name, "arch": arch},
            install="dpkg", supervised=False))[0], 200)
        self.roll_out("0.1.0-2")
        wait_for(lambda: self.api("GET", "/api/v1/agent-upgrade")["rollout"]["state"] == "done",
                 what="the rollout over")
        listed = self.api("GET", "/api/v1/agent-upgrade")
        states = {a["client"]: (a["state"], a.get("reason")) for a in listed["agents"]}
        self.assertEqual(states[self.client], ("prevented", None))
        self.assertEqual(states[other.id], ("unsupported", "no package for its platform"))
        self.assertEqual(states[dpkg.id], ("manual", "installed by its Debian package, but "
                                                     "not run by systemd as its service: "
                                                     "upgraded by the package manager"))
        self.assertEqual(self.api("GET", f"/api/v1/tasks?client={dpkg.id}")["tasks"], [])
        self.assertEqual(self.upgrades(), [])
        self.assertEqual(self.api("GET", f"/api/v1/tasks?client={other.id}")["tasks"], [])
        self.assertEqual(self.status()["package_version"], OLD)
        # A malformed platform is refused at the boundary.
        status["platform"] = {"os": "Debian 12;rm", "arch": "amd64"}
        code, answer = other.call("POST", "/api/v1/agent/heartbeat", status)
        self.assertEqual(code, 400, answer)
        self.assertIn("status.platform", answer["error"])

    def restart_agent(self):
        """The agent's service restarted: its supervisor stopped and started."""
        self.assertEqual(self.agent.terminate(), 0)
        self.agent.start()

    def test_postponed_until_the_agent_restarts(self):
        self.server.set_client(self.admin, self.client, {"restart.postpone_updates": True})
        self.agent.wait_settings(self.server, self.admin)
        self.roll_out("0.1.0-2")
        wait_for(lambda: (self.status().get("restart_pending") or {}).get("version") ==
                 "0.1.0-2", what="the restart pending reported")
        self.assertEqual(self.status()["restart_pending"]["needs"], "service")
        self.assertEqual(self.upgrades()[0]["state"], "running")
        self.assertEqual((self.agent.current(), self.status()["package_version"]),
                         (f"versions/{OLD}", OLD))
        wait_for(lambda: [a["state"] for a in self.api("GET", "/api/v1/agent-upgrade")[
            "agents"]] == ["restart_pending"], what="the agent listed waiting")
        # A restart may take days: the staged task outlives tasks.expire
        # (10 s here) while its agent reports the version pending.
        self.assertEqual(self.server.stop(), 0)
        with open(self.server.conf, "a") as f:
            f.write("[tasks]\nexpire = 10s\n")
        self.server.start()
        self.admin = self.server.login()
        # Past the second look for expired tasks (every 10 s from the start):
        # by then the task was last heard of (at most at the agent's return
        # to the server) more than 10 s before.
        time.sleep(23)
        self.assertEqual(self.upgrades()[0]["state"], "running", self.upgrades()[0])
        self.restart_agent()
        self.wait_task("completed")
        wait_for(lambda: self.status().get("package_version") == "0.1.0-2",
                 what="the new version after the restart")
        self.assertNotIn("restart_pending", self.status())

    @unittest.skipUnless(os.geteuid() == 0, "needs root: a terminal of another user")
    def test_host_restart_waits_for_a_new_boot_and_users_are_told(self):
        os_name, arch = platform()
        with open(AGENT, "rb") as f:
            program_deb(os.path.join(self.root, "agent-packages"), "0.1.0-5", f.read(), os_name,
                        arch, restart="host")
        boot = os.path.join(self.root, "boot_id")
        with open(boot, "w") as f:
            f.write("first-boot\n")
        # A user logged in on a terminal: a pty of nobody's, in a utmp file;
        # and in a desktop session.
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty = os.ttyname(slave)
        nobody = pwd.getpwnam("nobody")
        os.chown(tty, nobody.pw_uid, -1)
        desktop = DesktopSession(self, nobody, self.root)
        utmp = os.path.join(self.root, "utmp")
        with open(utmp, "wb") as f:
            f.write(struct.pack("hi32s4s32s256shhiii4i20s", 7, os.getpid(),
                                tty[len("/dev/"):].encode(), b"ts0", b"nobody", b"", 0, 0, 0,
                                int(time.time()), 0, 0, 0, 0, 0, b""))
        self.agent.terminate()
        with open(self.agent.conf, "a") as f:
            f.write(f"[upgrade]\nboot_id_file = {boot}\nutmp_file = {utmp}\n")
        self.agent.start()
        self.server.set_client(self.admin, self.client, {"restart.postpone_updates": True,
                                                         "restart.notify": True})
        self.agent.wait_settings(self.server, self.admin)
        self.roll_out("0.1.0-5")
        wait_for(lambda: (self.status().get("restart_pending") or {}).get("needs") == "host",
                 what="the host restart pending")
        told = b""
        deadline = time.monotonic() + 10
        while b"restart" not in told and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                told += os.read(master, 4096)
        self.assertIn(b"Ward endpoint protection: an update (agent 0.1.0-5) waits for this "
                      b"computer to restart", told)
        # The desktop notification, by notify-send on the user's bus.
        wait_for(lambda: "member=Notify" in desktop.calls(), what="the desktop notification")
        call = desktop.calls().split("member=Notify", 1)[1]
        self.assertIn('string "Ward: a restart is needed"', call)
        self.assertIn('string "an update (agent 0.1.0-5) waits for this computer to restart; '
                      'please restart it when you can."', call)
        # The agent restarted, the host not: still waiting.
        self.restart_agent()
        time.sleep(3)
        self.assertEqual(self.status()["package_version"], OLD)
        self.assertIn("0.1.0-5 waits for this host's restart", self.agent.log_text())
        # A new boot: applied.
        self.agent.terminate()
        with open(boot, "w") as f:
            f.write("second-boot\n")
        self.agent.start()
        self.wait_task("completed")
        wait_for(lambda: self.status().get("package_version") == "0.1.0-5",
                 what="the new version after the host's restart")

    def test_cli(self):
        ward = self.server.cli
        done = ward("agent-upgrade", "start", "0.1.0-7")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("no agent package of version 0.1.0-7", done.stderr)
        done = ward("agent-upgrade", "start", "0.1.0-2", "--batch", "5", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["batch"], 5)
        done = ward("agent-upgrade", "start", "0.1.0-2")
        self.assertIn("cancel it first", done.stderr)
        self.wait_task("completed")
        done = ward("agent-upgrade", "status")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("0.1.0-2", done.stdout)


if __name__ == "__main__":
    unittest.main()
