#!/usr/bin/env python3
"""The agent's side of the server's tasks and of the quarantine, a real
wardd and a real ward-agent: Scan Now scans, reports its progress and end,
and the client's last_scan shows it; a running scan is cancelled; a
scheduled scan runs; EICAR found by Scan Now is quarantined, its detection
(action, quarantine id, task) reaches the server, the inventory lists it,
a restore gives the file back byte- and metadata-identical, a delete
removes it; the second action runs when the first fails.

Needs root (actions, the quarantine): the test re-executes itself in a
private mount namespace and scans only a tmpfs it mounts there.
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs.
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (AGENT, EICAR, WARD, Agent, demo_wardd, mount_tmpfs,  # noqa: E402
                      private_mount_namespace, require_root, temp_dir, wait_for)

# What Demo.Head (setUpClass) finds at the start of a file.
BIG_HEAD = b"WARD-TEST-BIG-INFECTED-FILE\n"


def metadata(path):
    """What a restore must give back: contents, owner, mode, times, xattrs."""
    st = os.stat(path, follow_symlinks=False)
    attrs = {a: os.getxattr(path, a, follow_symlinks=False)
             for a in os.listxattr(path, follow_symlinks=False)}
    with open(path, "rb") as f:
        data = f.read()
    return dict(data=data, uid=st.st_uid, gid=st.st_gid, mode=st.st_mode, size=st.st_size,
                mtime=st.st_mtime_ns, atime=st.st_atime_ns, xattrs=attrs)


def sparse_files(d, n):
    """n files of 20 MiB each, sparse: a scan reads them (slowly: about 10 a
    second) while they take no room."""
    os.makedirs(d)
    for i in range(n):
        with open(os.path.join(d, f"{i:04}.log"), "wb") as f:
            f.write(f"log file {i}\n".encode())
            f.truncate(20 << 20)


class Fixture:
    """A real wardd (its long poll LONG_POLL) and an enrolled ward-agent
    running, scanning a tmpfs."""
    LONG_POLL = "20s"

    @classmethod
    def setUpClass(cls):
        # Each piece is undone (in reverse) even when a later one fails.
        root = temp_dir("ward-agent-tasks-", cls.addClassCleanup).name
        cls.tree = os.path.join(root, "tree")
        # Room for a big quarantined file (tmpfs takes memory only for what
        # is written).
        mount_tmpfs(cls.tree, "2g", cleanup=cls.addClassCleanup)
        # A body signature at offset 0, for files too big for a hash one.
        cls.server, cls.admin = demo_wardd(
            root, cls.addClassCleanup, extra=f"[http]\nlong_poll = {cls.LONG_POLL}\n",
            more={"demo.ndb": f"Demo.Head:0:0:{BIG_HEAD.hex()}\n"})
        cls.agent = Agent(root, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.client = cls.agent.enroll_with(cls.server)
        cls.env = cls.server.cli_env()
        done = cls.ward("login", "--server", f"https://localhost:{cls.server.port}", "--ca",
                        os.path.join(cls.server.data, "ca.crt"))
        assert done.returncode == 0, done.stderr
        cls.agent.start()
        cls.agent.wait_status("in use: virus-pattern version 1", timeout=60,
                              what="the component in use")

    @classmethod
    def ward(cls, *args):
        return subprocess.run([WARD, *args], capture_output=True, text=True, env=cls.env,
                              timeout=60)

    def call(self, method, path, body=None):
        return self.server.request(method, path, body, token=self.admin)

    def setting(self, key, value):
        self.server.set_client(self.admin, self.client, {key: value})
        self.agent.wait_settings(self.server, self.admin, what=f"{key} applied")

    def task(self, tid):
        status, body = self.call("GET", f"/api/v1/task?id={tid}")
        self.assertEqual(status, 200, body)
        return body

    def wait_task(self, tid, states=("completed",), timeout=60):
        wait_for(lambda: self.task(tid)["state"] in ("completed", "cancelled", "failed"),
                 timeout=timeout, what=f"task {tid} to end")
        t = self.task(tid)
        self.assertIn(t["state"], states, t)
        return t

    def scan_now(self, *paths):
        done = self.ward("scan-now", f"client:{self.client}", "--paths", json.dumps(paths),
                         "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        tasks = json.loads(done.stdout)["tasks"]
        self.assertEqual(len(tasks), 1, done.stdout)
        return tasks[0]["task"]

    def detections(self, path):
        return self.server.detections(self.admin, self.client, path)

    def inventory(self):
        _, body = self.call("GET", f"/api/v1/quarantine?client={self.client}")
        return {i["id"]: i for i in body["items"]}

    def fresh_dir(self, name):
        d = os.path.join(self.tree, name)
        os.makedirs(d)
        return d

    def eicar_in(self, name):
        """A fresh directory name holding eicar.com: (the directory, the file)."""
        d = self.fresh_dir(name)
        path = os.path.join(d, "eicar.com")
        with open(path, "wb") as f:
            f.write(EICAR)
        return d, path

    def client_last_scan(self):
        _, c = self.call("GET", f"/api/v1/client?id={self.client}")
        return c.get("last_scan") or {}


class AgentTasksTest(Fixture, unittest.TestCase):
    def test_scan_now_quarantine_restore_delete(self):
        d, eicar = self.eicar_in("now")
        os.chmod(eicar, 0o640)
        os.chown(eicar, 1234, 4321)
        os.setxattr(eicar, "user.origin", b"downloaded\x00\xff")
        os.utime(eicar, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
        before = metadata(eicar)
        with open(os.path.join(d, "clean.txt"), "w") as f:
            f.write("clean\n")
        tid = self.scan_now(d)
        t = self.wait_task(tid)
        self.assertEqual(t["progress"]["files"], 2, t)
        self.assertEqual(t["progress"]["detections"], 1, t)
        self.assertEqual(t["progress"]["bytes"], len(EICAR) + 6, t)
        self.assertFalse(os.path.exists(eicar))
        # The detection, with what was done and where the file went.
        wait_for(lambda: self.detections(eicar), what="the detection at the server")
        det = self.detections(eicar)[0]
        self.assertEqual((det["name"], det["source"], det["task"], det["action"],
                          det["action_result"]),
                         ("Demo.Eicar", "scan_now", tid, "quarantine", "ok"), det)
        item = det["quarantine"]
        # The client's last scan is this one.
        _, c = self.call("GET", f"/api/v1/client?id={self.client}")
        self.assertEqual((c["last_scan"]["task"], c["last_scan"]["state"]), (tid, "completed"))
        # The inventory, at the server and from the agent itself.
        wait_for(lambda: item in self.inventory(), what="the inventory")
        rec = self.inventory()[item]
        self.assertEqual((rec["path"], rec["size"], rec["names"], rec["state"], rec["source"]),
                         (eicar, len(EICAR), ["Demo.Eicar"], "stored", "scan_now"), rec)
        listed = self.agent.command("quarantine", "list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(f"{item}  {eicar}  68 bytes  Demo.Eicar  scan_now", listed.stdout)
        # Restored from the console: the very file, metadata and all, and
        # (exclude) left alone by the next scan.
        done = self.ward("quarantine", "restore", str(self.client), item, "--exclude", "true")
        self.assertEqual(done.returncode, 0, done.stderr)
        wait_for(lambda: os.path.exists(eicar), what="the restore")
        after = metadata(eicar)
        # Reading the file to compare it set its access time: compared as
        # it was right after the restore.
        self.assertEqual({k: v for k, v in after.items() if k != "atime"},
                         {k: v for k, v in before.items() if k != "atime"})
        wait_for(lambda: self.inventory()[item]["state"] == "restored",
                 what="the restore in the inventory")
        again = self.wait_task(self.scan_now(d))
        self.assertEqual(again["progress"]["detections"], 0, again)
        self.assertTrue(os.path.exists(eicar))
        # Quarantined again from another directory, then deleted for good.
        d2, victim = self.eicar_in("delete")
        self.wait_task(self.scan_now(d2))
        wait_for(lambda: self.detections(victim), what="the second detection")
        item2 = self.detections(victim)[0]["quarantine"]
        wait_for(lambda: item2 in self.inventory(), what="the second item")
        done = self.ward("quarantine", "delete", str(self.client), item2)
        self.assertEqual(done.returncode, 0, done.stderr)
        wait_for(lambda: self.inventory()[item2]["state"] == "deleted",
                 what="the delete in the inventory")
        listed = self.agent.command("quarantine", "list")
        self.assertNotIn(item2, listed.stdout)
        self.assertFalse(os.path.exists(victim))

    def test_second_action_when_the_first_fails(self):
        d, victim = self.eicar_in("second")
        # The rename's target is taken: the rename fails, the delete runs.
        os.makedirs(victim + ".ward-infected")
        self.setting("action.malware.first", "rename")
        try:
            self.wait_task(self.scan_now(d))
        finally:
            self.setting("action.malware.first", "quarantine")
        wait_for(lambda: self.detections(victim), what="the detection")
        det = self.detections(victim)[0]
        self.assertEqual((det["action"], det["action_result"], det["second_action"],
                          det["second_result"]), ("rename", "failed", "delete", "ok"), det)
        self.assertIn("action_error", det)
        self.assertFalse(os.path.exists(victim))

    def posture(self):
        """The client's posture checks that fail: {check: message}."""
        uuid = self.agent.credential()["uuid"]
        _, p = self.call("GET", f"/api/v1/posture/host?uuid={uuid}")
        return {r["check"]: r["message"] for r in p["reasons"]}

    def test_posture_reports(self):
        """What the agent tells the posture report: the full scan (of
        scan.paths) it completed, and a threat a pass left in place until
        its file is gone."""
        d, victim = self.eicar_in("posture")
        # One more, at a path past what a status string may carry, with a
        # newline in its name: the status still goes (shortened, escaped).
        deep = os.path.join(d, "a" * 200, "b" * 200)
        os.makedirs(deep)
        odd = os.path.join(deep, "evil\nname.com")
        with open(odd, "wb") as f:
            f.write(EICAR)
        self.setting("scan.paths", [d])
        self.setting("action.malware.first", "pass")
        try:
            done = self.ward("scan-now", f"client:{self.client}", "--json")
            self.assertEqual(done.returncode, 0, done.stderr)
            tid = json.loads(done.stdout)["tasks"][0]["task"]
            self.wait_task(tid)
        finally:
            self.setting("action.malware.first", "quarantine")
        wait_for(lambda: "threats" in self.posture(), what="the threat left in the posture")
        self.assertRegex(self.posture()["threats"], r"^2 detections left unresolved \(the "
                         r"newest: Demo\.Eicar\S* in /")
        # Real time is off here; the rest holds: the full scan just done.
        self.assertEqual(sorted(self.posture()), ["realtime", "threats"])
        _, c = self.call("GET", f"/api/v1/client?id={self.client}")
        full = c["status"]["last_full_scan"]
        self.assertEqual((full["source"], full["task"]), ("scan_now", tid))
        self.assertLessEqual(abs(full["finished"] - time.time()), 60)
        # A full scan of other trees leaves the threats it did not cover.
        self.setting("scan.paths", [self.fresh_dir("posture-elsewhere")])
        done = self.ward("scan-now", f"client:{self.client}", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        other = json.loads(done.stdout)["tasks"][0]["task"]
        self.wait_task(other)

        def full_scan_task():
            _, c = self.call("GET", f"/api/v1/client?id={self.client}")
            return c["status"]["last_full_scan"]["task"]
        wait_for(lambda: full_scan_task() == other, what="the second full scan reported")
        self.assertIn("2 detections", self.posture()["threats"])
        # The files gone, the next status has no threat.
        os.unlink(victim)
        os.unlink(odd)
        self.wait_task(self.scan_now(self.fresh_dir("posture-other")))
        wait_for(lambda: sorted(self.posture()) == ["realtime"],
                 what="the threat forgotten with its file")

    def test_central_copy(self):
        d, victim = self.eicar_in("central")
        self.setting("quarantine.central", True)
        try:
            self.wait_task(self.scan_now(d))
            wait_for(lambda: self.detections(victim), what="the detection")
            item = self.detections(victim)[0]["quarantine"]
            wait_for(lambda: self.inventory().get(item, {}).get("central", 0) > 0,
                     what="the central copy")
        finally:
            self.setting("quarantine.central", False)
        # The copy is the item's two files, the meta file's length first.
        vault = os.path.join(self.tree, ".ward-quarantine")
        with open(os.path.join(vault, item + ".meta"), "rb") as f:
            meta = f.read()
        with open(os.path.join(vault, item + ".data"), "rb") as f:
            data = f.read()
        with open(os.path.join(self.server.data, "quarantine", str(self.client), item),
                  "rb") as f:
            copy = f.read()
        self.assertEqual(copy, len(meta).to_bytes(8, "big") + meta + data)
        self.assertEqual(self.inventory()[item]["central"], len(copy))
        # Restored on the host itself: a file in its place is kept unless
        # told to overwrite it; the server hears of the restore.
        with open(victim, "wb") as f:
            f.write(b"newer\n")
        agent = self.agent.command
        done = agent("quarantine", "restore", item)
        self.assertEqual(done.returncode, 1)
        self.assertIn("quarantine: ", done.stderr)
        done = agent("quarantine", "restore", item, "--overwrite")
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), EICAR)
        wait_for(lambda: self.inventory()[item]["state"] == "restored",
                 what="the restore in the inventory")
        self.assertEqual(agent("quarantine", "delete", item).returncode, 1)
        os.unlink(victim)

    def restoring(self, name):
        """A big file (BIG_HEAD, then 512 MiB of zeros) quarantined by Scan Now,
        then `ward-agent quarantine restore` of it started and seen in
        progress: (its path, its size, the restore's process)."""
        d = self.fresh_dir(name)
        victim = os.path.join(d, "big.bin")
        size = 512 << 20
        with open(victim, "wb") as f:
            f.write(BIG_HEAD)
            f.truncate(size)
        self.wait_task(self.scan_now(d), timeout=300)
        wait_for(lambda: self.detections(victim), what="the detection")
        item = self.detections(victim)[0]["quarantine"]
        self.assertFalse(os.path.exists(victim))
        restore = subprocess.Popen([AGENT, "--config", self.agent.conf, "quarantine",
                                    "restore", item], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.addCleanup(restore.wait, 300)
        # In progress: the agent holds the file it writes in the directory
        # (an O_TMPFILE, linked at the end).
        fds = f"/proc/{self.agent.proc.pid}/fd"

        def writing():
            for fd in os.listdir(fds):
                try:
                    if os.readlink(os.path.join(fds, fd)).startswith(d + "/"):
                        return True
                except OSError:
                    pass
            return False
        deadline = time.monotonic() + 120
        while not writing():
            self.assertIsNone(restore.poll(), "the restore ended before it was seen running")
            self.assertLess(time.monotonic(), deadline, "the restore never started")
            time.sleep(0.005)
        return victim, size, restore

    def assert_restored(self, victim, size):
        self.assertEqual(os.path.getsize(victim), size)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(len(BIG_HEAD)), BIG_HEAD)
        os.unlink(victim)

    def test_status_answers_during_a_restore(self):
        """A restore runs off the agent's loop: while it decrypts and
        writes a big file (seconds), the control socket answers."""
        victim, size, restore = self.restoring("big")
        status = self.agent.command("status", timeout=120)
        self.assertIn("running: yes", status.stdout, status.stderr)
        self.assertFalse(os.path.exists(victim), "the status waited for the restore")
        _, err = restore.communicate(timeout=300)
        self.assertEqual(restore.returncode, 0, err)
        self.assert_restored(victim, size)

    def test_stop_during_a_restore(self):
        """SIGTERM during a restore: the agent finishes it, then stops (the
        control socket closed first: its client hears no answer)."""
        victim, size, restore = self.restoring("stopped-restore")
        self.assertEqual(self.agent.terminate(timeout=300), 0)
        restore.communicate(timeout=60)
        self.agent.start()
        self.assert_restored(victim, size)

    def many_files(self, name):
        """A directory of 50,000 files: a scan (one thread, scan.cpu=low)
        runs well past its first progress report, 3 s in."""
        d = self.fresh_dir(name)
        self.addCleanup(subprocess.run, ["rm", "-rf", d], check=True)
        for i in range(250):
            sub = os.path.join(d, str(i))
            os.makedirs(sub)
            for j in range(200):
                with open(os.path.join(sub, str(j)), "wb") as f:
                    f.write(b"x" * 1024)
        return d

    def wait_progress(self, tid):
        wait_for(lambda: self.task(tid)["state"] == "running" and
                 (self.task(tid)["progress"] or {}).get("files", 0) > 0,
                 what="the scan's progress")

    def test_stop_during_a_scan(self):
        d = self.many_files("stopped")
        tid = self.scan_now(d)
        self.wait_progress(tid)
        # SIGTERM cancels the scan; the restarted agent tells the server,
        # which does not deliver a running task again.
        self.assertEqual(self.agent.terminate(), 0)
        self.agent.start()
        t = self.wait_task(tid, states=("cancelled",))
        self.assertGreater(t["finished"], 0, t)

    def test_cancel_a_running_scan(self):
        d = self.many_files("many")
        tid = self.scan_now(d)
        self.wait_progress(tid)
        done = self.ward("task", "cancel", str(tid))
        self.assertEqual(done.returncode, 0, done.stderr)
        t = self.wait_task(tid, states=("cancelled",))
        self.assertLess(t["progress"]["files"], 50000, t)
        wait_for(lambda: self.call("GET", f"/api/v1/client?id={self.client}")[1]["last_scan"]
                 ["state"] == "cancelled", what="the cancelled scan as last_scan")

    def test_scheduled_scan(self):
        d = self.fresh_dir("scheduled")
        with open(os.path.join(d, "a.txt"), "w") as f:
            f.write("a\n")
        self.setting("scan.paths", [d])
        self.setting("scan.schedule", "every 10s")
        self.setting("scan.scheduled", True)
        try:
            def scheduled():
                _, c = self.call("GET", f"/api/v1/client?id={self.client}")
                last = c.get("last_scan") or {}
                return last.get("source") == "scheduled" and last.get("state") == "completed"
            wait_for(scheduled, timeout=60, what="a scheduled scan in last_scan")
            _, c = self.call("GET", f"/api/v1/client?id={self.client}")
            self.assertEqual((c["last_scan"]["files"], c["last_scan"]["task"]), (1, None))
        finally:
            self.setting("scan.scheduled", False)


class ScanProgressTest(Fixture, unittest.TestCase):
    """A poll lasts longer than the scan: the status with the scan's
    progress cannot wait for the poll's end."""
    LONG_POLL = "600s"

    def test_scheduled_scan_progress(self):
        files = 400
        d = os.path.join(self.tree, "slow")
        sparse_files(d, files)
        self.setting("scan.paths", [d])
        self.setting("scan.schedule", "every 10s")
        self.setting("scan.scheduled", True)
        try:
            # The running scan's progress, on the host and at the server.
            shown = re.compile(r"^last scan: scheduled, running, started [^:]*:[^:]*:[^:]*: "
                               r"([0-9]+) files, ([0-9]+) bytes, 0 detections$", re.M)

            def on_host():
                m = shown.search(self.agent.status_text())
                return m and int(m.group(1)) > 0 and int(m.group(2)) > 0
            wait_for(on_host, timeout=60, what="ward-agent status with the scan's progress")

            def at_server():
                last = self.client_last_scan()
                return (last.get("source"), last.get("state"), last.get("task")) == \
                    ("scheduled", "running", None) and 0 < last.get("files", 0) < files
            wait_for(at_server, timeout=60, what="the server with the scan's progress")
            first = self.client_last_scan()["files"]
            wait_for(lambda: self.client_last_scan()["files"] > first, timeout=60,
                     what="more progress at the server")
        finally:
            self.setting("scan.scheduled", False)
        wait_for(lambda: self.client_last_scan()["state"] == "completed", timeout=300,
                 what="the end of the scan at the server")
        last = self.client_last_scan()
        self.assertEqual((last["files"], last["bytes"]), (files, files * (20 << 20)), last)
        self.assertRegex(self.agent.status_text(),
                         f"last scan: scheduled, completed, started .*, finished .*: {files} "
                         f"files, {files * (20 << 20)} bytes, 0 detections\n")


if __name__ == "__main__":
    require_root("actions and the quarantine act on files of a tmpfs the test mounts")
    private_mount_namespace()
    unittest.main()
