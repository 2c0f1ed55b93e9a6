#!/usr/bin/env python3
"""Real-time scanning end to end: a real wardd delivers the realtime.*
settings to a real `ward-agent run`, which marks a tmpfs this test
mounted (in a private mount namespace of its own: the machine's
filesystems are never marked) and decides the opens and executions on
it. Detect mode logs and allows; block mode denies the open of an
infected file (EPERM) and the execution of an infected program, and the
detection reaches the server; excluded paths and processes pass; a
component update flushes the verdicts cached; a stopped agent (SIGSTOP)
hangs nobody, nor does SIGTERM with opens waiting; FIFOs and devices are
never opened; the agent's own state (on the marked tmpfs) is never
scanned; the status says on with counters, and unavailable with the
reason without CAP_SYS_ADMIN. Needs root (label "root").
WARDD_BIN, WARD_AGENT_BIN and WARD_BIN name the programs."""
import errno
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (EICAR, Agent, demo_wardd, mount_tmpfs,  # noqa: E402
                      private_mount_namespace, require_root, temp_dir, umount, wait_for)

# Markers the signatures of this test match (an .ndb body signature each).
ELF_MARK = b"WARD-REALTIME-TEST-ELF-MARKER"
LATER_MARK = b"WARD-REALTIME-TEST-LATER-MARKER"


def ndb(name, mark):
    return f"{name}:0:*:{mark.hex()}\n"


class RealtimeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each piece is undone (in reverse) even when a later one fails.
        root = temp_dir("ward-realtime-", cls.addClassCleanup).name
        cls.watched = os.path.join(root, "watched")
        mount_tmpfs(cls.watched, "64m", "ward-rt-test", cls.addClassCleanup)
        cls.server, cls.token = demo_wardd(
            root, cls.addClassCleanup,
            extra="[http]\nlong_poll = 60s\n[agents]\nheartbeat_interval = 5s\n",
            more={"elf.ndb": ndb("Ward.Test.Elf", ELF_MARK)})
        cls.source = os.path.join(root, "signatures")
        # The agent's own state lives on the marked tmpfs: it must never be
        # scanned (the agent excludes its own directories).
        cls.agent = Agent(cls.watched, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.files = os.path.join(cls.watched, "files")
        os.makedirs(cls.files)
        cls.client = cls.agent.start_realtime(cls.server, cls.token, [cls.watched], "detect", 1)

    @classmethod
    def setting(cls, key, value):
        cls.server.set_client(cls.token, cls.client, {key: value})

    @classmethod
    def status(cls):
        return cls.agent.status_text()

    def counters(self):
        return self.agent.counters()

    def mode(self, mode):
        self.setting("realtime.mode", mode)
        self.agent.wait_status(f"realtime: on ({mode} mode)", timeout=60, what=f"{mode} mode")

    def write(self, name, data, where=None):
        path = os.path.join(where or self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def plant(self, name, data, where=None):
        """Writes an infected file in detect mode (in block mode the scan
        behind its writing would quarantine it at once); block mode then."""
        self.mode("detect")
        path = self.write(name, data, where)
        wait_for(lambda: f"realtime: {path}: " in self.agent.log_text(),
                 what="the detection behind the writing")
        self.mode("block")
        return path

    def open_errno(self, path):
        """0 when path opens for reading, else the errno."""
        try:
            os.close(os.open(path, os.O_RDONLY))
            return 0
        except OSError as e:
            return e.errno

    def detection_of(self, path):
        return next(iter(self.server.detections(self.token, path=path)), None)

    def test_1_detect_mode_logs_and_allows(self):
        self.mode("detect")
        path = self.write("detect-eicar.com", EICAR)
        wait_for(lambda: f"realtime: {path}: Demo.Eicar found" in self.agent.log_text(),
                 what="the detection in the agent's log")
        self.assertEqual(self.open_errno(path), 0)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), EICAR)
        wait_for(lambda: self.detection_of(path), timeout=30, what="the detection reported")
        d = self.detection_of(path)
        self.assertEqual((d["source"], d["name"], d["process"]["pid"] > 0),
                         ("realtime", "Demo.Eicar", True))
        self.assertNotIn("action", d)

    def test_2_block_mode_denies_and_quarantines(self):
        path = self.plant("block-eicar.com", EICAR)
        self.assertEqual(self.open_errno(path), errno.EPERM)
        # Then the policy's first action (quarantine) takes it away, and the
        # detection reaches the server with what was done.
        wait_for(lambda: not os.path.exists(path), what="the file quarantined")

        def reported():
            return next((d for d in self.server.detections(self.token, path=path)
                         if "action" in d), None)
        wait_for(reported, timeout=30, what="the denial reported")
        d = reported()
        self.assertEqual((d["source"], d["action"], d["action_result"], d["process"]["pid"]),
                         ("realtime", "quarantine", "ok", os.getpid()), d)
        self.assertTrue(d["quarantine"])
        # The folder it left is flushed too (the action's directory is
        # opened O_PATH, which fsync() refuses).
        self.assertNotIn("quarantine: flushing", self.agent.log_text())
        # A written infected file is quarantined by the scan behind its
        # writing, before anyone opens it.
        path = self.write("written-eicar.com", EICAR)
        wait_for(lambda: not os.path.exists(path), what="the written file quarantined")
        # A clean file beside it opens.
        clean = self.write("clean.txt", b"nothing to see\n")
        self.assertEqual(self.open_errno(clean), 0)
        self.assertGreaterEqual(self.counters()["denials"], 1)

    def test_3_infected_program_does_not_run(self):
        self.mode("block")
        with open(shutil.which("true"), "rb") as f:
            program = f.read()
        good = self.write("good-prog", program)
        os.chmod(good, 0o755)
        self.mode("detect")
        bad = self.write("bad-prog", program + ELF_MARK)
        os.chmod(bad, 0o755)
        self.mode("block")
        self.assertEqual(subprocess.run([good]).returncode, 0)
        with self.assertRaises(PermissionError):
            subprocess.run([bad])

    def test_4_excluded_paths_and_processes_pass(self):
        excluded = os.path.join(self.watched, "excluded")
        os.makedirs(excluded, exist_ok=True)
        cat = os.path.realpath(shutil.which("cat"))
        self.mode("detect")
        inside = self.write("excl-proc-eicar.com", EICAR)
        self.setting("realtime.exclude_paths", [excluded])
        self.setting("realtime.exclude_processes", [cat])
        self.mode("block")
        path = self.write("eicar.com", EICAR, where=excluded)
        # Settings travel with the poll: wait for the agent to have them.
        wait_for(lambda: self.open_errno(path) == 0, timeout=30, what="the excluded path")
        done = subprocess.run([cat, inside], capture_output=True)
        self.assertEqual((done.returncode, done.stdout), (0, EICAR))
        # A process of another user too: its /proc/PID/exe takes the agent's
        # CAP_SYS_PTRACE. (It reaches the file through a descriptor of its
        # directory: the test's own directories are root's alone.)
        fd = os.open(os.path.dirname(inside), os.O_PATH)
        try:
            done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                   "--clear-groups", cat,
                                   f"/proc/self/fd/{fd}/{os.path.basename(inside)}"],
                                  pass_fds=(fd,), capture_output=True)
        finally:
            os.close(fd)
        self.assertEqual((done.returncode, done.stdout), (0, EICAR), done.stderr)
        self.assertEqual(self.open_errno(inside), errno.EPERM)
        self.setting("realtime.exclude_paths", [])
        self.setting("realtime.exclude_processes", [])
        wait_for(lambda: self.open_errno(path) == errno.EPERM, timeout=30,
                 what="the exclusion lifted")

    def test_4b_moved_in_files_are_scanned(self):
        """A file passed over where it is (an excluded tree, or outside
        realtime.paths on a watched filesystem) is scanned when opened
        after being moved or linked into the trees: the kernel caches such
        a decision on the folder, never on the file. A folder moved into
        the trees, or one above it, empties the kernel's cache."""
        excluded = os.path.join(self.watched, "excluded-4b")
        outside = os.path.join(self.watched, "outside-4b")
        inside = os.path.join(self.files, "in-4b")
        for d in (excluded, outside, inside):
            os.makedirs(d, exist_ok=True)
        self.setting("realtime.exclude_paths", [excluded])
        self.setting("realtime.paths", [self.files, excluded])
        self.addCleanup(self.setting, "realtime.paths", [self.watched])
        self.addCleanup(self.setting, "realtime.exclude_paths", [])
        self.mode("block")
        self.agent.wait_settings(self.server, self.token)
        wait_for(lambda: self.open_errno(self.write("probe-4b.com", EICAR, where=outside)) == 0
                 and self.counters()["folder_marks"] >= 1, timeout=30,
                 what="the new paths in effect")
        # Opened again where it is passed over, a file costs no event.
        path = self.write("again.txt", b"outside the trees\n", where=outside)
        self.assertEqual(self.open_errno(path), 0)
        before = self.counters()["events"]
        for _ in range(50):
            self.assertEqual(self.open_errno(path), 0)
        self.assertLess(self.counters()["events"] - before, 10)
        cases = []
        for where in (excluded, outside):
            for how in ("rename", "link"):
                # A folder of its own: its first open is an event, read after
                # the writing's (which must be decided before the move).
                folder = os.path.join(where, f"{how}-case")
                os.makedirs(folder)
                src = self.write(f"{how}-{os.path.basename(where)}.com", EICAR, where=folder)
                self.assertEqual(self.open_errno(src), 0, src)
                self.assertEqual(self.open_errno(src), 0, src)
                dst = os.path.join(inside, os.path.basename(src))
                (os.rename if how == "rename" else os.link)(src, dst)
                cases.append((dst, self.open_errno(dst)))
        self.assertEqual(cases, [(dst, errno.EPERM) for dst, _ in cases])
        # A process of another mount namespace (a container) reaching a
        # folder of the trees through a bind mount outside them: its path
        # is not the agent's, and the file is scanned all the same; one
        # whose path the agent finds the same passes as it does.
        alias = os.path.join(outside, "alias")
        os.makedirs(alias, exist_ok=True)
        name = "through-a-bind.com"
        self.plant(name, EICAR, where=inside)
        own = self.plant("by-its-own-path.com", EICAR, where=inside)

        def cat_in_new_namespace(target, *mount):
            script = (f"mount --bind {shlex.quote(mount[0])} {shlex.quote(mount[1])} && "
                      if mount else "") + 'exec cat "$0"'
            return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh",
                                   "-c", script, target], capture_output=True)
        done = cat_in_new_namespace(os.path.join(alias, name), inside, alias)
        self.assertEqual((done.returncode, done.stdout), (1, b""), done.stderr)
        self.assertIn(b"not permitted", done.stderr)
        # By the path of the trees, scanned too. (In a chroot, as make
        # check-fresh's, the kernel gives the agent the path of a file that
        # a process of another mount namespace opened from above the root
        # they share: the agent takes it back to its own, which is in the
        # trees here, and outside them below.)
        done = cat_in_new_namespace(own)
        self.assertEqual((done.returncode, done.stdout), (1, b""), done.stderr)
        self.assertIn(b"not permitted", done.stderr)
        # (As every process is for an agent with a mount namespace of its
        # own, as packaged: the folder is marked for it all the same.)
        marks = self.counters()["folder_marks"]
        os.makedirs(os.path.join(outside, "foreign"))
        path = self.write("foreign.txt", b"outside the trees\n",
                          where=os.path.join(outside, "foreign"))
        done = cat_in_new_namespace(path)
        self.assertEqual((done.returncode, done.stdout), (0, b"outside the trees\n"),
                         done.stderr)
        # (Marked at least once: an open that comes before the first
        # mark is in place, or after the kernel evicted it, marks again.)
        self.assertGreater(self.counters()["folder_marks"], marks)
        # A folder moved in, or a folder above it: every mark is dropped.
        for where in (excluded, outside):
            for depth in (1, 3):
                top = os.path.join(where, f"tree-{depth}")
                leaf = os.path.join(top, *(["sub"] * (depth - 1)))
                os.makedirs(leaf)
                src = self.write("in-a-folder.com", EICAR, where=leaf)
                self.assertEqual(self.open_errno(src), 0, src)
                resets = self.counters()["folder_resets"]
                dst_top = os.path.join(inside, f"{os.path.basename(where)}-tree-{depth}")
                os.rename(top, dst_top)
                dst = os.path.join(dst_top, *(["sub"] * (depth - 1)), "in-a-folder.com")
                wait_for(lambda: self.counters()["folder_resets"] > resets, timeout=10,
                         what="the kernel's cache emptied")
                self.assertEqual(self.open_errno(dst), errno.EPERM, dst)

    def test_5_component_update_flushes_the_cache(self):
        self.mode("block")
        path = self.write("later.txt", b"clean until the update: " + LATER_MARK)
        self.assertEqual(self.open_errno(path), 0)
        self.assertEqual(self.open_errno(path), 0)  # cached now
        with open(os.path.join(self.source, "later.ndb"), "w") as f:
            f.write(ndb("Ward.Test.Later", LATER_MARK))
        status, body = self.server.request("POST", "/api/v1/update/now", token=self.token)
        self.assertEqual(status, 200, body)
        self.server.wait_component(self.token, 2, timeout=60, what="the new import")
        done = self.agent.command("update", timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        wait_for(lambda: "virus-pattern version 2 in use: every file is scanned again" in
                 self.agent.log_text(), what="the caches flushed")
        self.assertEqual(self.open_errno(path), errno.EPERM)

    def test_6_fifos_and_devices_are_never_opened(self):
        # The kernel reports no special file to fanotify, and the agent
        # would answer one without reading it: neither a FIFO nobody writes
        # nor a device keeps its opener waiting.
        self.mode("block")
        fifo = os.path.join(self.files, "fifo")
        os.mkfifo(fifo)
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
        with open(fifo, "wb") as w:
            w.write(b"through the fifo\n")
        self.assertEqual(reader.communicate(timeout=10)[0], b"through the fifo\n")
        null = os.path.join(self.files, "null")
        os.mknod(null, 0o600 | 0o020000, os.makedev(1, 3))
        with open(null, "rb") as f:
            self.assertEqual(f.read(), b"")
        self.assertEqual(self.open_errno(self.write("after-fifo.txt", b"clean")), 0)

    def test_7_own_state_is_not_scanned(self):
        self.mode("block")
        path = self.write("eicar.com", EICAR, where=os.path.join(self.agent.dir, "state"))
        self.assertEqual(self.open_errno(path), 0)
        os.unlink(path)
        self.assertGreater(self.counters()["excluded"], 0)

    def test_7b_a_new_mount_under_the_paths_is_marked(self):
        self.mode("block")
        mnt = os.path.join(self.files, "mnt")
        mount_tmpfs(mnt, "8m", "ward-rt-test-2")
        try:
            # Followed through the mount table: the new filesystem is marked
            # (the file is denied, or quarantined by the scan behind its
            # writing); unmarked, it would open forever.
            path = self.write("eicar.com", EICAR, where=mnt)
            wait_for(lambda: self.open_errno(path) in (errno.EPERM, errno.ENOENT),
                     what="the new mount marked")
        finally:
            umount(mnt)

    def test_8_stopped_agent_hangs_nobody(self):
        self.mode("block")
        self.agent.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            # New files: their open and close are events nobody answers.
            for i in range(3):
                self.assertEqual(self.open_errno(self.write(f"stopped-{i}.txt", b"y")), 0)
            self.assertLess(time.monotonic() - started, 30)
        finally:
            self.agent.proc.send_signal(signal.SIGCONT)
        self.assertIn("realtime: on", self.status())
        # The watchdog answered them while the agent stood still.
        self.assertGreater(self.counters()["watchdog"], 0)

    def test_8b_settings_it_cannot_apply(self):
        """Settings the scanner cannot apply (no path of realtime.paths can be
        watched): it goes on with the settings before, says it is degraded
        and why, and so does the server; settings it can apply make it on
        again."""
        path = self.plant("kept-out.com", EICAR)
        self.setting("realtime.paths", ["/nonexistent/ward-test"])
        self.agent.wait_status("realtime: degraded (block mode): no path of realtime.paths is "
                               "on a filesystem that can be watched", timeout=60,
                               what="degraded")
        self.assertEqual(self.open_errno(path), errno.EPERM)
        wait_for(lambda: (self.server.request("GET", f"/api/v1/client?id={self.client}",
                                              token=self.token)[1].get("realtime") or
                          {}).get("state") == "degraded", timeout=60, what="the server told")
        self.setting("realtime.paths", [self.watched])
        self.agent.wait_status("realtime: on (block mode)", timeout=60, what="on again")

    def test_9_sigterm_local_exclusions_and_unavailable_without_cap(self):
        self.mode("block")
        self.agent.proc.send_signal(signal.SIGSTOP)
        results = []

        def opener(i):
            results.append(self.open_errno(self.write(f"waiting-{i}.txt", b"z")))
        threads = [threading.Thread(target=opener, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        self.agent.proc.send_signal(signal.SIGTERM)
        self.agent.proc.send_signal(signal.SIGCONT)
        self.assertEqual(self.agent.proc.wait(timeout=15), 0)
        self.agent.log.close()
        for t in threads:
            t.join(timeout=30)
            self.assertFalse(t.is_alive())
        self.assertEqual(results, [0, 0, 0, 0])
        # A file an administrator restored and excluded (the vault's local
        # exclusions, kept in the state) is left alone by real-time too.
        restored = os.path.join(self.files, "restored.com")
        with open(os.path.join(self.agent.dir, "state", "exclusions.json"), "w") as f:
            json.dump([restored], f)
        self.agent.start()
        self.agent.wait_status("realtime: on (block mode)", what="on again")
        self.write("restored.com", EICAR)
        self.assertEqual(self.open_errno(restored), 0)
        self.assertEqual(self.open_errno(self.plant("not-restored.com", EICAR)), errno.EPERM)
        self.agent.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.agent.proc.wait(timeout=15), 0)
        self.agent.log.close()
        # Without CAP_SYS_ADMIN: unavailable, saying why; nothing denied.
        argv_wrap = Agent.wrap
        self.agent.wrap = lambda argv: ["capsh", "--drop=cap_sys_admin", "--", "-c",
                                        "exec " + shlex.join(argv)]
        try:
            self.agent.start()
            self.agent.wait_status("realtime: unavailable (block mode): ", timeout=60,
                                   what="unavailable")
            self.assertEqual(self.open_errno(self.write("free.com", EICAR)), 0)
            # The server has it from the status too.
            wait_for(lambda: (self.server.request("GET", f"/api/v1/client?id={self.client}",
                                                  token=self.token)[1].get("realtime") or
                              {}).get("state") == "unavailable", timeout=60,
                     what="the server told")
        finally:
            self.agent.stop()
            self.agent.wrap = argv_wrap


class SmartUnverifiedTest(unittest.TestCase):
    """Real time in smart scan while no smart protection source answers
    (wardd, whose integrated source the agent asks, stopped): the file is
    allowed and kept as unverified; once the source answers again it is
    rescanned, and the detection reaches the server with source
    "realtime". Detect mode reports only; block mode takes the policy's
    action (quarantine). Each test has contents of its own: the agent
    remembers the answers a source gave."""
    CONTENTS = {"detect": b"ward smart real time, detect mode\n",
                "block": b"ward smart real time, block mode\n"}

    @classmethod
    def setUpClass(cls):
        root = temp_dir("ward-realtime-smart-", cls.addClassCleanup).name
        cls.watched = os.path.join(root, "watched")
        mount_tmpfs(cls.watched, "64m", "ward-rt-smart", cls.addClassCleanup)
        hashes = "".join(f"{hashlib.md5(data).hexdigest()}:{len(data)}:Ward.Test.Smart.{mode}\n"
                         for mode, data in cls.CONTENTS.items())
        cls.server, cls.token = demo_wardd(
            root, cls.addClassCleanup, extra="[http]\nlong_poll = 5s\n",
            more={"smart.hdb": hashes})
        cls.agent = Agent(root, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.client = cls.agent.start_realtime(cls.server, cls.token, [cls.watched], "detect", 3)
        cls.server.set_client(cls.token, cls.client, {"scan_method": "smart"})
        cls.agent.wait_status("in use: smart-agent-pattern", timeout=120,
                              what="the agent in smart scan")
        cls.unverified = os.path.join(cls.agent.dir, "state", "unverified.json")

    def unverified_list(self):
        try:
            with open(self.unverified) as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def left_unverified(self, mode, name):
        """The mode's contents written and opened in mode while wardd is
        stopped: allowed, and on the unverified list once; wardd started
        again. Its path."""
        self.server.set_client(self.token, self.client, {"realtime.mode": mode})
        self.agent.wait_status(f"realtime: on ({mode} mode)", timeout=60, what=mode)
        self.server.stop()
        try:
            path = os.path.join(self.watched, name)
            with open(path, "wb") as f:
                f.write(self.CONTENTS[mode])
            with open(path, "rb") as f:
                self.assertEqual(f.read(), self.CONTENTS[mode])
            entry = {"path": path, "source": "realtime"}
            if mode == "detect":
                entry["act"] = False
            wait_for(lambda: entry in self.unverified_list(), timeout=30,
                     what="the file on the unverified list")
            self.assertEqual([e for e in self.unverified_list() if e["path"] == path], [entry])
        finally:
            self.server.start()
        return path

    def reported(self, path):
        wait_for(lambda: self.server.detections(self.token, path=path), timeout=120,
                 what="the rescan's detection at the server")
        wait_for(lambda: all(e["path"] != path for e in self.unverified_list()), timeout=30,
                 what="the file off the unverified list")
        return self.server.detections(self.token, path=path)[0]

    def test_detect_mode_rescan_reports_only(self):
        path = self.left_unverified("detect", "detect-unverified.com")
        d = self.reported(path)
        self.assertEqual((d["source"], d["name"]), ("realtime", "Ward.Test.Smart.detect"), d)
        self.assertNotIn("action", d)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), self.CONTENTS["detect"])

    def test_block_mode_rescan_acts(self):
        path = self.left_unverified("block", "block-unverified.com")
        d = self.reported(path)
        self.assertEqual((d["source"], d["name"], d.get("action"), d.get("action_result")),
                         ("realtime", "Ward.Test.Smart.block", "quarantine", "ok"), d)
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    require_root("fanotify and a tmpfs of the test's own")
    private_mount_namespace()
    unittest.main(verbosity=2)
