#!/usr/bin/env python3
"""The web console in a real browser against a real wardd and agent.

Starts wardd (with a signature source, so components are built) and one
enrolled ward-agent, then runs console.mjs: playwright-core driving
Debian's chromium headless through sign-in, a refused wrong password,
creating a domain, moving the agent into it, switching its scan method
until the agent reports the change, and every main page, saving a
screenshot of each under WARD_SHOTS (default: build/console-screenshots).
What the browser did is then checked through the API.

The protection pages (issue 16) are driven against the real agent: Scan
Now on a tree of the test's own (EICAR files among others, quarantined),
its live progress and its result, a second scan cancelled from the
console, a third refused by the agent while it runs a scan asked for on
its host (it runs one at a time here), and a quarantined file restored
from the console, compared with the original byte for byte and in its
metadata, and another deleted. Real-time scanning is on
in the settings but unavailable: the agent runs without CAP_SYS_ADMIN
(dropped with setpriv when the test runs as root), so it says why and
marks nothing. console.mjs asks this test for what only it can do (put a
file in the way, compare the restored file): it prints "ask: WHAT" and
reads "ok" or "error: WHY" on its standard input.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AGENT, EICAR, WARD, Agent, demo_signatures, issue_license,  # noqa: E402
                      license_issuer, make_deb, wait_for, wait_for_components, Wardd)

HERE = os.path.dirname(os.path.abspath(__file__))

SHOTS = os.environ.get("WARD_SHOTS", os.path.join(HERE, "../../build/console-screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

CAP_SYS_ADMIN = 21
# Files that take the scan a while whatever the machine: sparse (no disk
# used), each read and scanned whole by libclamav, a text line of their
# own first so that no two are alike. Many small ones rather than big ones:
# a scan stops between files, and libclamav's time grows faster than the
# size (here 20 MiB took 0.07 s, 64 MiB 1.9 s, 256 MiB 7 s).
SPARSE = 20 << 20
SLOW_FILES = 80     # the completed scan: seconds
MANY_FILES = 2000   # the cancelled one: minutes (one CI run finished 400)
# A file name as hostile as they come: not UTF-8, an escape sequence.
EVIL_NAME = b"inv\xffoice\x1b[31m.pdf.exe"


class NoSysAdminAgent(Agent):
    """An agent without CAP_SYS_ADMIN: real-time scanning is unavailable
    and says why. As root, setpriv takes the capability out of the bounding
    set, so the agent marks none of the machine's filesystems."""

    @staticmethod
    def wrap(argv):
        if os.geteuid() != 0:
            return argv
        return ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", *argv]


def metadata(path):
    """What a restore gives back: the stat fields a restore sets (taken
    before the contents are read), the extended attributes, the bytes."""
    st = os.stat(path, follow_symlinks=False)
    meta = {k: getattr(st, k) for k in ("st_mode", "st_uid", "st_gid", "st_size",
                                         "st_atime_ns", "st_mtime_ns")}
    meta["xattrs"] = {a: os.getxattr(path, a, follow_symlinks=False)
                      for a in os.listxattr(path, follow_symlinks=False)}
    with open(path, "rb") as f:
        meta["data"] = f.read()
    return meta


def sparse_files(d, n):
    os.makedirs(d)
    for i in range(n):
        with open(os.path.join(d, f"{i:04}.log"), "wb") as f:
            f.write(f"log file {i}\n".encode())
            f.truncate(SPARSE)


class ConsoleBrowserTest(unittest.TestCase):
    def setUp(self):
        for need in (shutil.which("node"), os.path.exists(CHROMIUM),
                     os.path.isdir(os.path.join(HERE, "node_modules/playwright-core"))):
            self.assertTrue(need, "node, chromium and playwright-core are needed: "
                            "scripts/deps.sh installs them")
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-browser-")
        source = demo_signatures(self.tmp.name)
        passphrase = os.path.join(self.tmp.name, "backup-passphrase")
        with open(passphrase, "w") as f:
            f.write("a passphrase for the console's backups\n")
        # An agent package for the deployment page's deployment.
        make_deb(os.path.join(self.tmp.name, "agent-packages"), "1.2.3-1")
        # One for agent upgrades: of this host's release (the agent here,
        # installed from source, is listed as upgraded by hand).
        make_deb(os.path.join(self.tmp.name, "agent-packages"), "1.2.2-1",
                 fields={"Ward-Platform": "debian-12"})
        # A license the console activates, from an issuer the server trusts.
        key, issuer = license_issuer(self.tmp.name, "issuer")
        self.license = issue_license(key, "browser-site", "+365d", seats=50,
                                     customer="Browser Test Ltd")
        self.server = Wardd(self.tmp.name, extra=(
            f"[license]\nissuers = {issuer}\n"
            f"[agents]\nheartbeat_interval = 5s\noffline_after = 20s\n"
            f"[updates]\nsource_dir = {source}\n[http]\nlong_poll = 5s\n"
            f"[backup]\ndir = {self.tmp.name}/backups\npassphrase_file = {passphrase}\n"))
        self.server.start()
        self.token = self.server.login()
        wait_for_components(self.server, self.token)
        self.make_tree()
        self.manual = None   # `ward-agent scan` started when console.mjs asks
        self.agent = NoSysAdminAgent(self.tmp.name, "agent")
        # One scan at a time: a Scan Now delivered while one runs fails.
        with open(self.agent.conf, "a") as f:
            f.write("max_scans = 1\n")
        done = self.agent.enroll("--bundle", os.path.join(self.server.data, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.agent.start()
        with open(f"/proc/{self.agent.proc.pid}/status") as f:
            caps = dict(line.split(":\t", 1) for line in f if line.startswith("Cap"))
        self.assertFalse(int(caps["CapEff"], 16) >> CAP_SYS_ADMIN & 1, caps)
        # Real time on, for the tree alone, in detect mode: unavailable.
        # Scans at normal priority: at nice 19 (scan.cpu low) a loaded
        # machine could hold them back past the test's waits.
        for key, value in (("realtime.paths", [self.tree]), ("realtime.mode", "detect"),
                           ("realtime.enabled", True), ("scan.cpu", "normal")):
            status, body = self.server.request("PUT", "/api/v1/settings", {
                "scope": "root", "key": key, "value": value}, token=self.token)
            self.assertEqual(status, 200, body)
        wait_for(lambda: (self.client().get("status") or {}).get("components", {})
                 .get("virus-pattern"), timeout=60, what="the agent's first pattern")
        # A client moved to another server: a move recorded for it, which
        # its agent acknowledges (test_move.py moves a real agent).
        with open(os.path.join(self.server.data, "enroll-token")) as f:
            enroll = f.read().strip()
        uuid = "00000000-0000-4000-8000-00000000c0de"
        status, body = self.server.request("POST", "/api/v1/agent/enroll", {
            "uuid": uuid, "hostname": "moved-away"}, token=enroll)
        self.assertEqual(status, 201, body)
        db = sqlite3.connect(os.path.join(self.server.data, "ward.db"), timeout=10)
        db.execute("UPDATE clients SET move = '{}' WHERE node = ?", (body["client"],))
        db.commit()
        (version,) = db.execute("SELECT eff_version FROM clients WHERE node = ?",
                                (body["client"],)).fetchone()
        db.close()
        status, _ = self.server.request("POST", "/api/v1/agent/ack", {"version": version},
                                        token=f"{uuid}:{body['secret']}")
        self.assertEqual(status, 200)

    def make_tree(self):
        """What the console's scans scan: found/ (EICAR twice, one under a
        name that is not UTF-8 and holds an escape sequence, and a clean
        file), slow/ and many/ (sparse files)."""
        self.tree = os.path.join(self.tmp.name, "tree")
        found = os.path.join(self.tree, "found")
        os.makedirs(found)
        self.eicar = os.path.join(found, "eicar.com")
        with open(self.eicar, "wb") as f:
            f.write(EICAR)
        os.chmod(self.eicar, 0o640)
        if os.geteuid() == 0:
            os.chown(self.eicar, 1234, 4321)
        try:
            os.setxattr(self.eicar, "user.origin", b"downloaded\x00\xff")
        except OSError:
            pass  # a filesystem without user.* attributes: none to compare
        # An access time after the change time (which this sets to now):
        # reading the file (this test, the scan) leaves it (relatime), so
        # the vault keeps what is set here, and the restore gives it back.
        os.utime(self.eicar, ns=(time.time_ns() + 86400 * 10**9 + 123,
                                 1_500_000_000_987_654_321))
        self.before = metadata(self.eicar)
        with open(os.path.join(os.fsencode(found), EVIL_NAME), "wb") as f:
            f.write(EICAR)
        with open(os.path.join(found, "clean.txt"), "wb") as f:
            f.write(b"clean\n")
        sparse_files(os.path.join(self.tree, "slow"), SLOW_FILES)
        sparse_files(os.path.join(self.tree, "many"), MANY_FILES)

    def tearDown(self):
        if self.manual and self.manual.poll() is None:
            self.manual.kill()
            self.manual.wait()
        self.agent.stop()
        self.server.stop()
        self.tmp.cleanup()

    def client(self):
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(status, 200, body)
        return body["clients"][0] if body["clients"] else {}

    def agent_scans(self):
        """How many scans the agent runs, as `ward-agent status` says."""
        out = subprocess.run([AGENT, "--config", self.agent.conf, "status"],
                             capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^scans running: (\d+)$", out, re.M)
        return int(m.group(1)) if m else None

    def answer(self, what):
        """Does what console.mjs asks for; returns the line it reads."""
        if what == "occupy":
            # A file where the quarantined one was: a restore not told to
            # overwrite it is refused.
            with open(self.eicar, "wb") as f:
                f.write(b"a newer file\n")
        elif what == "busy":
            # A scan asked for on the host, which the agent runs (it runs
            # one at a time here) until its client goes away.
            self.manual = subprocess.Popen(
                [AGENT, "--config", self.agent.conf, "scan", os.path.join(self.tree, "many")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: self.agent_scans() == 1, what="the scan asked for on the host")
        elif what == "idle":
            self.manual.kill()
            self.manual.wait()
            wait_for(lambda: self.agent_scans() == 0, what="the agent to stop that scan")
        elif what == "restored":
            after = metadata(self.eicar)
            if after != self.before:
                diff = {k: (self.before[k], after.get(k)) for k in self.before
                        if self.before[k] != after.get(k)}
                raise AssertionError(f"the restored file differs (before, after): {diff}")
        else:
            raise AssertionError(f"console.mjs asked for {what!r}")
        return "ok"

    def run_console(self, env):
        """Runs console.mjs, answering what it asks; its output and exit code."""
        node = subprocess.Popen(["node", os.path.join(HERE, "console.mjs")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(600, node.kill)
        timer.start()
        out = []
        try:
            for line in node.stdout:
                out.append(line)
                if line.startswith("ask: "):
                    try:
                        reply = self.answer(line[5:].strip())
                    except Exception as e:  # noqa: BLE001 -- told to console.mjs, which fails
                        reply = f"error: {e}"
                        out.append(f"test_browser.py: {reply}\n")
                    node.stdin.write(reply.replace("\n", " ") + "\n")
                    node.stdin.flush()
            node.wait()
        finally:
            timer.cancel()
            if node.poll() is None:
                node.kill()
                node.wait()
            node.stdin.close()
            node.stdout.close()
        return node.returncode, "".join(out)

    def test_console(self):
        with open(os.path.join(self.server.data, "initial-admin-password")) as f:
            password = f.read().strip()
        found, slow, many = (os.path.join(self.tree, d) for d in ("found", "slow", "many"))
        scans = {"found": found, "slow": slow, "many": many, "eicar": self.eicar,
                 # As the console shows the path the agent reports (\xNN
                 # for a byte that is not UTF-8, control characters too).
                 "evil": f"{found}/inv\\xffoice\\x1b[31m.pdf.exe",
                 "files": 3 + SLOW_FILES,
                 "bytes": 2 * len(EICAR) + len(b"clean\n") + SLOW_FILES * SPARSE}
        env = dict(os.environ, WARD_URL=f"https://localhost:{self.server.port}",
                   WARD_PASSWORD=password, WARD_AGENT=self.client()["hostname"],
                   WARD_SHOTS=SHOTS, CHROMIUM=CHROMIUM, WARD_SCANS=json.dumps(scans),
                   WARD_LICENSE=self.license)
        code, output = self.run_console(env)
        print(output, file=sys.stderr)  # its steps, timed: in ctest's log whatever the result
        self.assertEqual(code, 0, output + "\nwardd log:\n" + self.server.log_text()[-4000:] +
                         "\nagent log:\n" + self.agent.log_text()[-4000:])
        for name in ("signin", "dashboard", "agents", "settings", "updates",
                     "smart-protection", "logs", "administrators", "read-only",
                     "agent-protection", "scan-now", "quarantine", "dashboard-detections",
                     "licenses", "agent-upgrades", "posture"):
            self.assertTrue(os.path.getsize(os.path.join(SHOTS, f"{name}.png")) > 10000, name)
        # The console changed admin's password: the initial one's file is
        # gone, and so are the sessions it opened.
        self.assertFalse(os.path.exists(os.path.join(self.server.data,
                                                     "initial-admin-password")))
        self.assertEqual(self.server.request("GET", "/api/v1/tree", token=self.token)[0], 401)
        status, body = self.server.request("POST", "/api/v1/login", {
            "user": "admin", "password": "a new password for admin"})
        self.assertEqual(status, 200, body)
        self.token = body["token"]
        # What the browser did, as the API sees it.
        c = self.client()
        status, tree = self.server.request("GET", "/api/v1/tree", token=self.token)
        berlin = [d for d in tree["domains"] if d["name"] == "Berlin"]
        self.assertEqual(len(berlin), 1)
        self.assertEqual(c["domain"], berlin[0]["id"])
        self.assertEqual(c["status"]["scan_method"], "smart")
        status, s = self.server.request(
            "GET", f"/api/v1/settings?scope=client:{c['id']}", token=self.token)
        self.assertEqual(s["own"], {"scan_method": "smart"})
        status, s = self.server.request("GET", "/api/v1/settings?scope=root", token=self.token)
        self.assertIs(s["own"]["update.allow_update_now"], False)
        status, u = self.server.request("GET", "/api/v1/update/settings", token=self.token)
        self.assertEqual((u["max_downloads"], u["set"]), (20, {"max_downloads": 20}))
        status, logs = self.server.request("GET", "/api/v1/logs?kind=system&limit=1000",
                                           token=self.token)
        text = json.dumps(logs)
        self.assertIn("sign-in refused for user 'admin'", text)
        self.assertIn("admin signed out", text)
        # What the console asked of the agent, and how the agent answered:
        # Scan Now's paths and cpu, a cancel, a scan refused while the agent
        # ran one, a restore refused then done with its options, the delete.
        cid = c["id"]
        status, body = self.server.request("GET", f"/api/v1/tasks?client={cid}",
                                           token=self.token)
        self.assertEqual(status, 200, body)
        tasks = body["tasks"]
        self.assertEqual([(t["kind"], t["state"]) for t in tasks], [
            ("quarantine_delete", "completed"), ("quarantine_restore", "completed"),
            ("quarantine_restore", "failed"), ("scan", "failed"), ("cancel", "completed"),
            ("scan", "cancelled"), ("scan", "completed")])
        self.assertEqual(tasks[-1]["args"], {"paths": [slow, found], "cpu": "normal"})
        self.assertEqual(tasks[-1]["progress"], {"files": 3 + SLOW_FILES, "bytes": scans["bytes"],
                                                 "detections": 2})
        self.assertEqual(tasks[-2]["args"], {"paths": [many]})
        self.assertLess(tasks[-2]["progress"]["files"], MANY_FILES, tasks[-2])
        self.assertEqual(tasks[3]["error"], "1 scans run already (the most at once)")
        self.assertEqual(tasks[4]["args"], {"task": tasks[-2]["id"]})
        self.assertEqual(tasks[1]["args"], dict(tasks[2]["args"], overwrite=True, exclude=True))
        # The cancelled scan as the ward command shows it.
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp.name, "cfg"),
                   WARD_PASSWORD="a new password for admin")
        ward = lambda *args: subprocess.run([WARD, *args], capture_output=True, text=True,
                                            env=env, timeout=60)
        done = ward("login", "--server", f"https://localhost:{self.server.port}", "--ca",
                    os.path.join(self.server.data, "ca.crt"))
        self.assertEqual(done.returncode, 0, done.stderr)
        done = ward("task", "show", str(tasks[-2]["id"]))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"state:\s+cancelled")
        # Restored with "exclude": the agent's next scan leaves it alone.
        done = subprocess.run([AGENT, "--config", self.agent.conf, "scan", found],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(metadata(self.eicar)["data"], EICAR)
        # The bundle the console downloaded enrolls an agent into /Berlin.
        second = Agent(self.tmp.name, "second")
        done = second.enroll("--bundle", os.path.join(SHOTS, "enroll.bundle"))
        self.assertEqual(done.returncode, 0, done.stderr)
        uuid = done.stdout.split()[-1]
        status, body = self.server.request("GET", "/api/v1/clients", token=self.token)
        self.assertEqual(next(c["domain"] for c in body["clients"] if c["uuid"] == uuid),
                         berlin[0]["id"])


if __name__ == "__main__":
    unittest.main()
