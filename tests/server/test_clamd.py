#!/usr/bin/env python3
"""The agent's clamd service answers as clamd does: a real clamd (Debian's
clamav-daemon) and a running ward-agent load the same signed database
(ClamAV's test-5.cvd: the server imports it, clamd loads it), and the
same bytes sent to each get the same answer bytes; clamdscan in its modes
prints the same through both; what is found through the socket reaches
the server as a detection whose source is clamd, with the client program."""
import array
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (Agent, Wardd, clamav_cvd, free_port, scan_workers_of,  # noqa: E402
                      stop_process, temp_dir, testfile, wait_for)

CLAMD = "/usr/sbin/clamd"
# The clients Debian 12 packages (scripts/deps.sh installs them).
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-pyclamd is for Debian's Python
CHECK_CLAMD = "/usr/lib/nagios/plugins/check_clamd"
C_ICAP = "/usr/bin/c-icap"
C_ICAP_CLIENT = "/usr/bin/c-icap-client"
C_ICAP_MODULES = "/usr/lib/x86_64-linux-gnu/c_icap"
EXIM = "/usr/sbin/exim4"
# Two body signatures that both match one file: ALLMATCHSCAN tells both.
MULTI_SIGS = ("Ward.Test.MultiOne:0:*:" + b"ward multi one".hex() + "\n" +
              "Ward.Test.MultiTwo:0:*:" + b"ward multi two".hex() + "\n")
MULTI = b"a file with ward multi one and ward multi two in it\n"
# Files found by their hashes: smart scan asks the smart protection
# server about them (the agent pattern holds their hashes' prefixes).
HASHED = [b"ward clamd: found by its hash, %d\n" % i for i in range(2)]
HASH_SIGS = "".join(f"{hashlib.md5(h).hexdigest()}:{len(h)}:Ward.Test.Hashed{i}\n"
                    for i, h in enumerate(HASHED))
CLAMDSCAN = "/usr/bin/clamdscan"
STREAM_MAX = 1 << 20


def exchange(where, data, fd=None, timeout=30):
    """Sends data to the UNIX socket at where (with descriptor fd attached
    to its last byte), or to the TCP port where on loopback, and returns
    every byte answered until the daemon closes."""
    if isinstance(where, int):
        s = socket.create_connection(("127.0.0.1", where), timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(where)
    with s:
        try:
            if fd is None:
                s.sendall(data)
            else:
                s.sendall(data[:-1])
                s.sendmsg([data[-1:]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         array.array("i", [fd]))])
        except (BrokenPipeError, ConnectionResetError):
            pass  # it stopped reading: what did it say?
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def stream(data, chunk=4096):
    """INSTREAM's chunks of data, and the end."""
    out = b""
    for i in range(0, len(data), chunk):
        part = data[i:i + chunk]
        out += struct.pack(">I", len(part)) + part
    return out + struct.pack(">I", 0)


class Fixture(unittest.TestCase):
    """A wardd, Debian's clamd and an agent with its clamd service, on the
    same database, and the files they scan."""

    # What a subclass adds to clamd's configuration and the agent's [clamd].
    clamd_extra = ""
    agent_extra = ""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CLAMD):
            raise unittest.SkipTest("clamd is missing (scripts/deps.sh installs clamav-daemon)")
        tmp = temp_dir("ward-clamd-", cls.addClassCleanup)
        cls.tmp = tmp.name
        # One database twice: wardd's update source, clamd's directory.
        src, db = os.path.join(cls.tmp, "source"), os.path.join(cls.tmp, "clamd-db")
        for where in (src, db):
            os.makedirs(where)
            shutil.copy(clamav_cvd(5), os.path.join(where, "main.cvd"))
            for name, text in (("multi.ndb", MULTI_SIGS), ("hashed.hdb", HASH_SIGS)):
                with open(os.path.join(where, name), "w") as f:
                    f.write(text)
        cls.server = Wardd(cls.tmp, extra=f"[updates]\nsource_dir = {src}\n"
                           "[agents]\nheartbeat_interval = 5s\n")
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.token = cls.server.login()
        cls.server.wait_component(cls.token)
        # The real clamd, on the same database.
        cls.clamd_sock = os.path.join(cls.tmp, "clamd.ctl")
        conf = os.path.join(cls.tmp, "clamd.conf")
        with open(conf, "w") as f:
            f.write(f"LocalSocket {cls.clamd_sock}\nDatabaseDirectory {db}\nForeground yes\n"
                    f"User root\nTemporaryDirectory {cls.tmp}\nStreamMaxLength {STREAM_MAX}\n"
                    f"LogFile {cls.tmp}/clamd.log\nPidFile {cls.tmp}/clamd.pid\n"
                    + cls.clamd_extra)
        cls.clamd_conf = conf
        cls.clamd = subprocess.Popen([CLAMD, "--config-file", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(lambda: (cls.clamd.kill(), cls.clamd.wait()))
        # The agent, its clamd service on.
        cls.agent = Agent(cls.tmp, "agent")
        cls.addClassCleanup(cls.agent.stop)
        cls.ward_sock = os.path.join(cls.tmp, "ward.ctl")
        with open(cls.agent.conf, "a") as f:
            f.write(f"[clamd]\nenabled = yes\nsocket = {cls.ward_sock}\n"
                    f"stream_max_length = {STREAM_MAX}\nstream_command = yes\n"
                    + cls.agent_extra)
        cls.client = cls.agent.enroll_with(cls.server)
        cls.agent.start()
        cls.agent.wait_status("in use: virus-pattern version 1", what="the component in use")
        wait_for(lambda: exchange(cls.clamd_sock, b"zPING\0") == b"PONG\0", timeout=60,
                 what="clamd loaded")
        # The files scanned: clean, infected, an archive, empty, a tree.
        cls.files = os.path.join(cls.tmp, "files")
        os.makedirs(os.path.join(cls.files, "tree", "sub"))
        cls.clean = os.path.join(cls.files, "clean.txt")
        with open(cls.clean, "w") as f:
            f.write("nothing to see here\n")
        cls.empty = os.path.join(cls.files, "empty")
        open(cls.empty, "w").close()
        cls.exe = os.path.join(cls.files, "clam.exe")
        shutil.copy(testfile("clam.exe"), cls.exe)
        cls.zip = os.path.join(cls.files, "clam.zip")
        shutil.copy(testfile("clam.zip"), cls.zip)
        cls.tree = os.path.join(cls.files, "tree")
        shutil.copy(testfile("clam.exe"), os.path.join(cls.tree, "sub", "a.exe"))
        shutil.copy(testfile("clam.zip"), os.path.join(cls.tree, "b.zip"))
        with open(os.path.join(cls.tree, "c.txt"), "w") as f:
            f.write("clean\n")
        cls.clean_tree = os.path.join(cls.files, "clean-tree")
        os.makedirs(cls.clean_tree)
        for i in range(3):
            with open(os.path.join(cls.clean_tree, f"f{i}"), "w") as f:
                f.write(f"clean {i}\n")
        cls.multi = os.path.join(cls.files, "multi.txt")
        with open(cls.multi, "wb") as f:
            f.write(MULTI)
        cls.mail = os.path.join(cls.files, "clam.exe.mbox.base64")
        shutil.copy(testfile("clam.exe.mbox.base64"), cls.mail)
        cls.clean_mail = os.path.join(cls.files, "clean.eml")
        with open(cls.clean_mail, "w") as f:
            f.write("From: a@example.net\nTo: b@example.net\nSubject: hello\n\nNothing.\n")
        cls.fifo = os.path.join(cls.files, "fifo")
        os.mkfifo(cls.fifo)
        cls.empty_dir = os.path.join(cls.files, "empty-dir")
        os.makedirs(cls.empty_dir)
        cls.link = os.path.join(cls.files, "link.exe")
        os.symlink(cls.exe, cls.link)



class ProtocolTest(Fixture):
    """The protocol itself: the same bytes, the same answer bytes."""

    def both(self, data, fd_path=None):
        """(clamd's answer, Ward's answer) to data."""
        answers = []
        for sock in (self.clamd_sock, self.ward_sock):
            fd = os.open(fd_path, os.O_RDONLY) if fd_path else None
            try:
                answers.append(exchange(sock, data, fd))
            finally:
                if fd is not None:
                    os.close(fd)
        return answers

    def same(self, data, fd_path=None, normalize=None):
        clamd, ward = self.both(data, fd_path)
        if normalize:
            clamd, ward = normalize(clamd), normalize(ward)
        self.assertEqual(ward, clamd, f"for {data[:80]!r}")
        return ward

    def test_1_simple_commands(self):
        for data in (b"zPING\0", b"nPING\n", b"PING\n", b"PING", b"PING\r\n",
                     b"zPONG\0", b"nHELLO\n", b"zPINGX\0", b"zSCAN\0", b"zEND\0",
                     b"VERSIONCOMMANDS\n", b"IDSESSION\n", b"INSTREAM\n", b"STATS\n",
                     b"zDETSTATS\0", b"\n", b"zALLMATCHSCAN\0", b"zRELOAD\0", b"RELOAD\n"):
            self.same(data)
        # SELFCHECK (newer clamd's, not 1.4's): the component in use is
        # the one installed.
        self.assertEqual(exchange(self.ward_sock, b"zSELFCHECK\0"), b"DBUPTODATE\0")
        # Not so: RELOADING (the update it would ask for waits for the
        # minute since RELOAD's above).
        current = os.path.join(self.agent.dir, "state", "components", "virus-pattern",
                               "current")
        installed = os.readlink(current)
        os.symlink("2", current + ".new")
        os.replace(current + ".new", current)
        try:
            self.assertEqual(exchange(self.ward_sock, b"zSELFCHECK\0"), b"RELOADING\0")
        finally:
            os.symlink(installed, current + ".new")
            os.replace(current + ".new", current)
        # A CR before the newline: clamd goes on from the newline, a stray
        # byte after the command (see test_2_paths for what it does there).
        self.same(b"nPING\r\n")
        self.same(b"nVERSION\r\n", normalize=lambda b: re.sub(rb"/[^\n]*", b"", b))
        # Off unless clamd.enable_shutdown, in newer clamd's words.
        self.assertEqual(exchange(self.ward_sock, b"zSHUTDOWN\0"), b"COMMAND UNAVAILABLE\0")
        self.assertEqual(exchange(self.ward_sock, b"QUIT\n"), b"COMMAND UNAVAILABLE\n")
        self.same(b"zSTATS\0", normalize=self.stats_shape)
        self.same(b"nSTATS\n", normalize=self.stats_shape)
        # VERSION: libclamav's version, then the component's and when it
        # was installed (clamd: its daily database's).
        version = exchange(self.ward_sock, b"zVERSION\0").decode()
        self.assertRegex(version, r"^ClamAV [0-9.]+/1/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} "
                         r"[0-9:]{8} [0-9]{4}\0$")
        commands = exchange(self.ward_sock, b"zVERSIONCOMMANDS\0").decode()
        self.assertEqual(commands, version[:-1] + "| COMMANDS: SCAN QUIT RELOAD PING CONTSCAN "
                         "VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN FILDES STATS "
                         "IDSESSION INSTREAM DETSTATSCLEAR DETSTATS ALLMATCHSCAN\0")

    def test_2_paths(self):
        def tree_lines(b):
            # A walk's order of entries is the directory's: compare as sets.
            return sorted(b.split(b"\0"))
        for cmd in (b"SCAN", b"CONTSCAN", b"MULTISCAN", b"ALLMATCHSCAN"):
            for path in (self.clean, self.exe, self.zip, self.empty, self.clean_tree,
                         os.path.join(self.files, "missing"), self.fifo, self.empty_dir,
                         self.link, self.clean_tree + "//", ""):
                self.same(b"z" + cmd + b" " + path.encode() + b"\0")
            self.same(b"z" + cmd + b" " + self.tree.encode() + b"\0",
                      normalize=tree_lines if cmd != b"SCAN" else
                      lambda b: b.count(b"FOUND"))
        self.same(b"SCAN " + self.exe.encode() + b"\n")
        # /proc is passed over without a word (clamd skips its device).
        for path in (b"/proc/self/status", b"/proc/kcore", b"/proc/self/"):
            self.same(b"zCONTSCAN " + path + b"\0")
        self.same(b"nCONTSCAN " + self.tree.encode() + b"\n",
                  normalize=lambda b: sorted(b.split(b"\n")))
        # Bytes after a command clamd hands to its threads: it says so
        # before the answer (clamd only while the connection is still open:
        # a scan that ends first races it); after another command, nothing.
        for command, rest in ((b"zSCAN " + self.exe.encode() + b"\0", b"zPING\0"),
                              (b"zCONTSCAN " + self.clean.encode() + b"\0", b"garbage"),
                              (b"nSCAN " + self.clean.encode() + b"\r", b"\n"),
                              (b"SCAN " + self.clean.encode() + b"\n", b"PING\n")):
            clamd, ward = self.both(command + rest)
            alone = exchange(self.ward_sock, command.replace(b"\r", b"\n"))
            told = b"Error processing command. ERROR" + alone[-1:] + alone
            self.assertEqual(ward, told, command)
            self.assertIn(clamd, (told, alone), command)
        self.same(b"zPING\0zPING\0")

    def test_2b_allmatch(self):
        """ALLMATCHSCAN tells every signature that matches, SCAN the first.
        (clamd names what it loaded from loose files ".UNOFFICIAL"; Ward's
        component is signed, and keeps the names as they are.)"""
        unofficial = lambda b: b.replace(b".UNOFFICIAL", b"")  # noqa: E731
        ward = self.same(b"zALLMATCHSCAN " + self.multi.encode() + b"\0",
                         normalize=unofficial)
        # Each signature matches the text and its normalised form.
        self.assertEqual(set(re.findall(rb"(Ward[.A-Za-z]+) FOUND", ward)),
                         {b"Ward.Test.MultiOne", b"Ward.Test.MultiTwo"}, ward)
        ward = self.same(b"zSCAN " + self.multi.encode() + b"\0", normalize=unofficial)
        self.assertEqual(ward.count(b" FOUND\0"), 1, ward)
        self.same(b"zALLMATCHSCAN " + self.files.encode() + b"\0",
                  normalize=lambda b: unofficial(b).count(b"FOUND"))

    def test_3_streams(self):
        with open(self.exe, "rb") as f:
            exe = f.read()
        with open(self.zip, "rb") as f:
            zipped = f.read()
        for data in (b"", b"clean bytes\n", exe, zipped, b"x" * 100000):
            self.same(b"zINSTREAM\0" + stream(data))
            self.same(b"nINSTREAM\n" + stream(data, 7))
        # Past StreamMaxLength, in one chunk and in many.
        self.same(b"zINSTREAM\0" + stream(b"y" * (STREAM_MAX + 1), STREAM_MAX + 1))
        self.same(b"zINSTREAM\0" + stream(b"y" * (STREAM_MAX + 10), 65536))

    def test_4_descriptors(self):
        fd_name = lambda b: b.replace(b"fd[", b"").split(b"]", 1)[-1]  # noqa: E731
        for path in (self.clean, self.exe, self.zip):
            self.same(b"zFILDES\0\0", fd_path=path, normalize=fd_name)
            self.same(b"nFILDES\n\0", fd_path=path, normalize=fd_name)
        # A descriptor without FILDES, FILDES without a descriptor.
        self.same(b"zPING\0", fd_path=self.clean)
        self.same(b"zFILDES\0\0")

        # More descriptors with FILDES's byte than fit: nothing is answered
        # (and the kernel closes them).
        def several(sock):
            fds = [os.open(self.exe, os.O_RDONLY) for _ in range(4)]
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(30)
                    s.connect(sock)
                    s.sendall(b"zFILDES\0")
                    s.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          array.array("i", fds))])
                    out = b""
                    while chunk := s.recv(65536):
                        out += chunk
            finally:
                for fd in fds:
                    os.close(fd)
            return fd_name(out)
        self.assertEqual(several(self.clamd_sock), b"")
        self.assertEqual(several(self.ward_sock), b"")

    def test_5_sessions(self):
        with open(self.exe, "rb") as f:
            exe = f.read()
        # Answers may come in any order: compared as sets of lines.
        lines = lambda b: sorted(b.split(b"\0"))  # noqa: E731
        session = (b"zIDSESSION\0zPING\0zINSTREAM\0" + stream(exe) + b"zINSTREAM\0" +
                   stream(b"clean\n") + b"zSCAN " + self.exe.encode() + b"\0zPING\0zEND\0")
        ward = self.same(session, normalize=lines)
        self.assertIn(b"1: PONG", ward)
        # What a session does not take ends it.
        self.same(b"zIDSESSION\0zPING\0zCONTSCAN " + self.tree.encode() + b"\0", normalize=lines)
        self.same(b"zIDSESSION\0zHELLO\0")
        self.same(b"zIDSESSION\0zSTATS\0zEND\0", normalize=self.stats_shape)
        # clamd waits for ever on an unprefixed command after IDSESSION in
        # the same read (it takes one only at the start of a read); Ward
        # says what is wrong, as clamd does when it comes in a read of its
        # own.
        self.assertEqual(exchange(self.ward_sock, b"zIDSESSION\0zPING\0PING\n"),
                         b"1: PONG\0"
                         b"2: Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION. "
                         b"ERROR\0" b"2: Error processing command. ERROR\0")

    @staticmethod
    def stats_shape(b):
        """STATS without its numbers (threads, times, memory)."""
        # The task lines (clamd lists its STATS only once a thread took it,
        # and its idle threads in a session).
        b = re.sub(rb"\t[A-Z]+ [0-9.]+ [^\n]*\n", b"", b)
        return re.sub(rb"N/A|[0-9]+(\.[0-9]+)?M?", b"#", b)

    def test_5b_descriptors_in_a_session(self):
        """FILDES inside IDSESSION answers with its own id (clamdscan
        --multiscan --fdpass matches answers to files by it)."""
        def session(sock):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, \
                    open(self.exe, "rb") as f:
                s.settimeout(30)
                s.connect(sock)
                s.sendall(b"zIDSESSION\0zFILDES\0")
                s.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      array.array("i", [f.fileno()]))])
                s.sendall(b"zPING\0zEND\0")
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            return sorted(re.sub(rb"fd\[[0-9]+\]", b"fd[N]", out).split(b"\0"))
        ward = session(self.ward_sock)
        self.assertEqual(ward, session(self.clamd_sock))
        self.assertIn(b"1: fd[N]: Clamav.Test.File-6 FOUND", ward)
        self.assertIn(b"2: PONG", ward)

    def test_6_clamdscan(self):
        """clamdscan, in its modes, prints the same through both."""
        conf = os.path.join(self.tmp, "clamdscan-ward.conf")
        with open(conf, "w") as f:
            f.write(f"LocalSocket {self.ward_sock}\n")

        def run(config, *args):
            done = subprocess.run([CLAMDSCAN, "--config-file", config, "--no-summary",
                                   *args], capture_output=True, text=True, timeout=60)
            # The database's version and date (VERSION) aside, and the
            # names clamd marks for loading them from loose files.
            out = re.sub(r"^(ClamAV [0-9.]+)/.*$", r"\1", done.stdout, flags=re.M)
            out = out.replace(".UNOFFICIAL", "")
            return done.returncode, sorted(out.splitlines()), done.stderr
        for args in ([self.exe], [self.clean], ["--stream", self.exe], ["--stream", self.clean],
                     ["--fdpass", self.exe], ["--fdpass", self.zip], ["--multiscan", self.tree],
                     ["--multiscan", "--fdpass", self.tree], ["--multiscan", "--stream", self.tree],
                     ["--allmatch", self.exe], ["--allmatch", self.multi], [self.tree],
                     ["--ping", "1"], ["--version"], ["--reload"]):
            self.assertEqual(run(conf, *args), run(self.clamd_conf, *args), args)

    def test_6b_cache(self):
        """A tree MULTISCAN scans again is answered from the verdicts kept
        (none of its files read), with the same answers and detections; a
        file written since is read again."""
        tree = os.path.join(self.files, "cached-tree")
        shutil.copytree(self.tree, tree)

        def counters():
            line = [l for l in self.agent.status_text().splitlines() if l.startswith("clamd:")]
            return json.loads(line[0].split("counters: ", 1)[1])
        lines = lambda b: sorted(b.split(b"\0"))  # noqa: E731
        first = exchange(self.ward_sock, b"zMULTISCAN " + tree.encode() + b"\0")
        before = counters()["cached"]
        again = exchange(self.ward_sock, b"zMULTISCAN " + tree.encode() + b"\0")
        self.assertEqual(lines(again), lines(first))
        self.assertEqual(counters()["cached"] - before, 3)  # every file of the tree
        self.assertEqual(first.count(b"FOUND"), 2)
        # Written: read again, and found.
        shutil.copy(self.exe, os.path.join(tree, "c.txt"))
        third = exchange(self.ward_sock, b"zMULTISCAN " + tree.encode() + b"\0")
        self.assertEqual(third.count(b"FOUND"), 3, third)
        self.assertEqual(counters()["cached"] - before, 5)

    def test_7_detections_reach_the_server(self):
        """What the socket finds is reported, with the client program."""
        with open(self.exe, "rb") as f:
            exe = f.read()
        exchange(self.ward_sock, b"zINSTREAM\0" + stream(exe))
        exchange(self.ward_sock, b"zSCAN " + self.zip.encode() + b"\0")

        def found():
            return [d for d in self.server.detections(self.token, client=self.client)
                    if d.get("source") == "clamd"]
        wait_for(lambda: len(found()) >= 2, timeout=60, what="the detections reported")
        paths = {d["path"] for d in found()}
        self.assertIn(self.zip, paths)
        self.assertIn("instream(local)", paths)
        # The clients: this test, clamdscan (test 6).
        for d in found():
            self.assertEqual(d["process"]["uid"], os.getuid())
            self.assertIn(d["process"]["exe"], (os.path.realpath(sys.executable), CLAMDSCAN))
            self.assertGreater(d["process"]["pid"], 0)
        self.assertIn(os.path.realpath(sys.executable), {d["process"]["exe"] for d in found()})
        # The service's counters go with the agent's status.
        def counters():
            status, body = self.server.request("GET", f"/api/v1/client?id={self.client}",
                                               token=self.token)
            self.assertEqual(status, 200, body)
            return (body.get("status") or {}).get("clamd") or {}
        wait_for(lambda: counters().get("found", 0) >= 2, timeout=60,
                 what="the clamd counters in the agent's status")
        self.assertEqual(counters()["state"], "on")
        self.assertGreater(counters()["requests"], counters()["found"])


class SmartTest(Fixture):
    """Smart scan behind the socket: what the smart protection server
    confirms is found as clamd finds it; with no source answering, a file
    smart scan cannot verify is an error (clamd.unverified = error, the
    default: a mail server defers), or OK, logged and counted, with
    clamd.unverified = clean (a second agent)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent2 = Agent(cls.tmp, "agent2")
        cls.addClassCleanup(cls.agent2.stop)
        cls.ward2_sock = os.path.join(cls.tmp, "ward2.ctl")
        with open(cls.agent2.conf, "a") as f:
            f.write(f"[clamd]\nenabled = yes\nsocket = {cls.ward2_sock}\nunverified = clean\n")
        client2 = cls.agent2.enroll_with(cls.server)
        cls.agent2.start()
        for client, agent in ((cls.client, cls.agent), (client2, cls.agent2)):
            status, body = cls.server.client_setting(cls.token, client, "scan_method", "smart")
            assert status == 200, body
        for agent in (cls.agent, cls.agent2):
            agent.wait_status("in use: smart-agent-pattern version 1", timeout=60,
                              what="smart scan in use")

    def test_1_found_through_the_source(self):
        unofficial = lambda b: b.replace(b".UNOFFICIAL", b"")  # noqa: E731
        for sock in (self.ward_sock, self.ward2_sock):
            ward = exchange(sock, b"zINSTREAM\0" + stream(HASHED[0]))
            self.assertEqual(ward, b"stream: Ward.Test.Hashed0 FOUND\0")
            self.assertEqual(ward, unofficial(exchange(self.clamd_sock,
                                                       b"zINSTREAM\0" + stream(HASHED[0]))))
        # A file whose hash is not asked about: answered by the agent alone.
        self.assertEqual(exchange(self.ward_sock, b"zINSTREAM\0" + stream(b"clean\n")),
                         b"stream: OK\0")

    def test_2_no_source(self):
        self.server.stop()
        self.assertEqual(exchange(self.ward_sock, b"zINSTREAM\0" + stream(HASHED[1])),
                         b"stream: Can't verify: no smart protection source answered ERROR\0")
        path = os.path.join(self.files, "hashed1")
        with open(path, "wb") as f:
            f.write(HASHED[1])
        self.assertEqual(exchange(self.ward_sock, b"zSCAN " + path.encode() + b"\0"),
                         path.encode() + b": Can't verify: no smart protection source "
                         b"answered ERROR\0")
        # clamd.unverified = clean: OK, and the agent says so.
        self.assertEqual(exchange(self.ward2_sock, b"zINSTREAM\0" + stream(HASHED[1])),
                         b"stream: OK\0")
        self.assertIn("answered OK unverified", self.agent2.log_text())
        # What needs no answer is answered still.
        self.assertEqual(exchange(self.ward_sock, b"zINSTREAM\0" + stream(b"clean\n")),
                         b"stream: OK\0")


class OptionsTest(Fixture):
    """Options a host sets: clamd.actions, clamd.max_per_client."""
    agent_extra = "actions = yes\nmax_per_client = 2\n"

    def test_per_client(self):
        """A client past clamd.max_per_client connections is told and
        closed; the others are served."""
        held = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
        try:
            for s in held:
                s.connect(self.ward_sock)
            self.assertEqual(exchange(self.ward_sock, b"zPING\0"),
                             b"Too many connections from this client "
                             b"(clamd.max_per_client). ERROR\n")
            held.pop().close()
            wait_for(lambda: exchange(self.ward_sock, b"zPING\0") == b"PONG\0",
                     what="a slot freed")
        finally:
            for s in held:
                s.close()

    def test_quarantined(self):
        """clamd.actions: what SCAN and its kin find gets the policy's
        actions (quarantine by default), the answer is clamd's all the
        same, and the server hears what was done; a stream has no file to
        act on."""
        victim = os.path.join(self.files, "victim.exe")
        shutil.copy(self.exe, victim)
        self.assertEqual(exchange(self.ward_sock, b"zSCAN " + victim.encode() + b"\0"),
                         victim.encode() + b": Clamav.Test.File-6 FOUND\0")
        self.assertFalse(os.path.exists(victim))
        listing = self.agent.command("quarantine", "list").stdout
        self.assertIn(victim, listing)

        def found():
            return [d for d in self.server.detections(self.token, client=self.client)
                    if d.get("path") == victim]
        wait_for(found, timeout=60, what="the detection reported")
        det = found()[0]
        self.assertEqual((det["source"], det["action"], det["action_result"]),
                         ("clamd", "quarantine", "ok"))
        self.assertEqual(det["process"]["uid"], os.getuid())
        # A stream: found, nothing to act on.
        with open(self.exe, "rb") as f:
            self.assertEqual(exchange(self.ward_sock, b"zINSTREAM\0" + stream(f.read())),
                             b"stream: Clamav.Test.File-6 FOUND\0")
        self.assertTrue(os.path.exists(self.exe))
        # A descriptor: its file, by the descriptor's name, once answered.
        passed = os.path.join(self.files, "passed.exe")
        shutil.copy(self.exe, passed)
        fd = os.open(passed, os.O_RDONLY)
        try:
            answer = exchange(self.ward_sock, b"zFILDES\0\0", fd)
        finally:
            os.close(fd)
        self.assertRegex(answer, rb"^fd\[[0-9]+\]: Clamav.Test.File-6 FOUND\0$")
        self.assertFalse(os.path.exists(passed))
        self.assertIn(passed, self.agent.command("quarantine", "list").stdout)


class QueueTest(Fixture):
    """clamd.max_queue also bounds the path commands waiting for one of the
    clamd.max_threads walkers, as clamd's MaxQueue."""
    agent_extra = "max_threads = 2\nmax_queue = 1\ncommand_timeout = 2\nread_timeout = 2\n"

    def hold(self):
        """Stops the scan worker and fills the bound with three SCANs of
        their own connections; returns them and the worker."""
        worker = scan_workers_of(self.agent.proc.pid)[0]
        stop_process(worker)
        scans = []
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.ward_sock)
            s.sendall(b"zSCAN " + self.exe.encode() + b"\0")
            scans.append(s)
        time.sleep(0.5)
        return scans, worker

    def release(self, scans, worker):
        os.kill(worker, signal.SIGCONT)
        for s in scans:
            s.settimeout(30)
            self.assertEqual(read_all(s), self.exe.encode() + b": Clamav.Test.File-6 FOUND\0")
            s.close()

    def test_path_commands_wait(self):
        """Past the bound no further command is read, a PING included, until
        an answer goes out; a client kept waiting so is not timed out
        (command_timeout is 2 s here)."""
        ping = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        scans, worker = self.hold()
        try:
            ping.connect(self.ward_sock)
            ping.sendall(b"zPING\0")
            ping.settimeout(3.5)
            with self.assertRaises(socket.timeout):
                ping.recv(100)
        finally:
            self.release(scans, worker)
        ping.settimeout(30)
        self.assertEqual(ping.recv(100), b"PONG\0")
        ping.close()

    def test_full_buffer_waits(self):
        """A session that fills the command buffer while the bound holds is
        not taken for an oversized command: every command is answered."""
        session = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        session.settimeout(60)
        session.connect(self.ward_sock)
        # Read before the bound is reached.
        session.sendall(b"zIDSESSION\0zPING\0")
        self.assertEqual(session.recv(100), b"1: PONG\0")
        scan = b"zSCAN " + self.exe.encode() + b"\0"
        self.assertGreater(len(scan) * 100, 4104)
        scans, worker = self.hold()
        try:
            session.sendall(scan * 100 + b"zEND\0")
            time.sleep(0.5)
        finally:
            self.release(scans, worker)
        answers = read_all(session).split(b"\0")[:-1]
        session.close()
        self.assertEqual(len(answers), 100, answers[-3:])
        self.assertEqual(answers[-1], b"101: " + self.exe.encode() +
                         b": Clamav.Test.File-6 FOUND")


DEBIAN_SOCKET = "/run/clamav/clamd.ctl"


class DebianSocketTest(Fixture):
    """clamd.debian_socket: the agent answers on Debian's clamd path too,
    for programs configured for it, and never takes it from a program
    answering there."""
    agent_extra = "debian_socket = yes\n"

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (/run/clamav)")
        if os.path.exists(DEBIAN_SOCKET):
            raise unittest.SkipTest(f"{DEBIAN_SOCKET} is this machine's: not touched")
        made = not os.path.exists(os.path.dirname(DEBIAN_SOCKET))
        # Last, once the agent has stopped (cleanups run in reverse).
        cls.addClassCleanup(lambda: made and shutil.rmtree(os.path.dirname(DEBIAN_SOCKET),
                                                           ignore_errors=True))
        super().setUpClass()

    def test_answers_there(self):
        self.assertEqual(exchange(DEBIAN_SOCKET, b"zPING\0"), b"PONG\0")
        self.assertEqual(exchange(DEBIAN_SOCKET, b"zSCAN " + self.exe.encode() + b"\0"),
                         exchange(self.clamd_sock, b"zSCAN " + self.exe.encode() + b"\0")
                         .replace(b".UNOFFICIAL", b""))
        # Another agent does not take it from this one: it says why and
        # does not start.
        other = Agent(self.tmp, "other")
        with open(other.conf, "a") as f:
            f.write(f"[clamd]\nenabled = yes\nsocket = {self.tmp}/other.ctl\n"
                    "debian_socket = yes\n")
        other.enroll_with(self.server)
        done = other.command("run")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn(f"clamd: {DEBIAN_SOCKET}: another program answers on it", done.stderr)
        self.assertEqual(exchange(DEBIAN_SOCKET, b"zPING\0"), b"PONG\0")


CLAMD_TCP, WARD_TCP = free_port(), free_port()


class LimitsTest(Fixture):
    """Timeouts, sizes, connections, TCP and the commands an option
    switches, against clamd where it has them."""
    clamd_extra = (f"CommandReadTimeout 2\nReadTimeout 2\nTCPSocket {CLAMD_TCP}\n"
                   f"TCPAddr 127.0.0.1\n")
    agent_extra = (f"command_timeout = 2\nread_timeout = 2\nmax_connections = 3\n"
                   f"tcp = 127.0.0.1:{WARD_TCP}\nenable_shutdown = yes\n")

    def same(self, data, tcp=False):
        clamd = exchange(CLAMD_TCP if tcp else self.clamd_sock, data)
        ward = exchange(WARD_TCP if tcp else self.ward_sock, data)
        self.assertEqual(ward, clamd, f"for {data[:80]!r}")
        return ward

    def test_timeouts(self):
        """A command not sent in time, a session or stream left idle."""
        self.assertEqual(self.same(b""), b"COMMAND READ TIMED OUT\n")
        self.assertEqual(self.same(b"zPIN"), b"COMMAND READ TIMED OUT\n")
        self.assertEqual(self.same(b"zIDSESSION\0zPING\0"),
                         b"1: PONG\0COMMAND READ TIMED OUT\n")
        self.same(b"zINSTREAM\0" + struct.pack(">I", 10) + b"12345")

    def test_oversized_command(self):
        """A command longer than clamd's buffer: the connection closes."""
        self.assertEqual(self.same(b"zSCAN /" + b"a" * 5000), b"")
        self.same(b"zSCAN /" + b"a" * 4000 + b"\0")

    def test_tcp(self):
        """The same over loopback TCP; FILDES has no descriptor there."""
        self.assertEqual(self.same(b"zPING\0", tcp=True), b"PONG\0")
        with open(self.exe, "rb") as f:
            self.same(b"zINSTREAM\0" + stream(f.read()), tcp=True)
        self.same(b"zFILDES\0\0", tcp=True)
        self.same(b"zSCAN " + self.exe.encode() + b"\0", tcp=True)

    def test_max_connections(self):
        """Past clamd.max_connections a client waits in the backlog, and is
        served once another leaves."""
        idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
        for s in idle:
            s.connect(self.ward_sock)
        try:
            waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiting.connect(self.ward_sock)
            waiting.sendall(b"zPING\0")
            waiting.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                waiting.recv(100)
            idle.pop().close()
            waiting.settimeout(10)
            self.assertEqual(waiting.recv(100), b"PONG\0")
            waiting.close()
        finally:
            for s in idle:
                s.close()

    def test_client_gone(self):
        """A client that asks for a long walk and goes away: the walk stops
        and the agent does not spin on the closed connection."""
        tree = os.path.join(self.files, "big-tree")
        for d in range(40):
            os.makedirs(os.path.join(tree, f"d{d}"))
            for n in range(300):
                with open(os.path.join(tree, f"d{d}", f"f{n}"), "w") as f:
                    f.write(f"file {d} {n}\n")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.ward_sock)
        s.sendall(b"zCONTSCAN " + tree.encode() + b"\0")
        time.sleep(0.3)
        s.close()
        time.sleep(0.5)
        with open(f"/proc/{self.agent.proc.pid}/stat") as f:
            before = sum(int(x) for x in f.read().rpartition(")")[2].split()[11:13])
        time.sleep(2)
        with open(f"/proc/{self.agent.proc.pid}/stat") as f:
            after = sum(int(x) for x in f.read().rpartition(")")[2].split()[11:13])
        # Clock ticks of the agent's own threads (its workers are other
        # processes) in 2 s: a loop spinning would take about 200.
        self.assertLess(after - before, 60)
        self.assertEqual(exchange(self.ward_sock, b"zPING\0"), b"PONG\0")

    def test_not_reading(self):
        """A client that takes none of its answers is cut off after
        read_timeout, as clamd does after SendBufTimeout."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(self.ward_sock)
        s.settimeout(10)
        try:
            s.sendall(b"zIDSESSION\0" + b"zSTATS\0" * 3000 + b"zEND\0")
        except OSError:
            pass
        wait_for(lambda: "took none of its answers" in self.agent.log_text(), timeout=20,
                 what="the client cut off")
        s.close()
        self.assertEqual(exchange(self.ward_sock, b"zPING\0"), b"PONG\0")

    def test_stream_port(self):
        """Legacy STREAM's data port takes the data of the client that asked
        only: a connection from another address (TCP), or from another
        user's socket (the UNIX socket), is closed, and the client's own
        still comes through."""
        with open(self.exe, "rb") as f:
            exe = f.read()

        def legacy(connect, intruder):
            with connect() as s:
                s.settimeout(30)
                s.sendall(b"STREAM\n")
                line = b""
                while not line.endswith(b"\n"):
                    line += s.recv(1)
                port = int(re.fullmatch(rb"PORT ([0-9]+)\n", line).group(1))
                self.assertEqual(intruder(port), b"")
                with socket.create_connection(("127.0.0.1", port), timeout=30) as data:
                    data.sendall(exe)
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            return out

        def from_other_address(port):
            with socket.create_connection(("127.0.0.1", port), timeout=30,
                                          source_address=("127.0.0.2", 0)) as c:
                return c.recv(100)
        self.assertEqual(legacy(lambda: socket.create_connection(("127.0.0.1", WARD_TCP)),
                                from_other_address),
                         b"stream: Clamav.Test.File-6 FOUND\n")
        if os.geteuid() != 0:
            return  # connecting as another user needs root

        def as_nobody(port):
            return subprocess.run(
                [DEBIAN_PYTHON, "-c", "import socket, sys\n"
                 "c = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=30)\n"
                 "sys.stdout.buffer.write(c.recv(100))", str(port)],
                user=65534, capture_output=True, timeout=60, check=True).stdout

        def unix():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.ward_sock)
            return s
        self.assertEqual(legacy(unix, as_nobody), b"stream: Clamav.Test.File-6 FOUND\n")
        self.assertIn("a connection to the data port from another client was refused",
                      self.agent.log_text())

    def test_z_shutdown(self):
        """SHUTDOWN (clamd.enable_shutdown) stops the clamd service, not the
        agent; without the option it is unavailable (ProtocolTest)."""
        self.assertEqual(exchange(self.ward_sock, b"zSHUTDOWN\0"), b"")
        wait_for(lambda: not os.path.exists(self.ward_sock), what="the socket removed")
        self.assertIn("in use: virus-pattern version 1", self.agent.status_text())


class ClientsTest(Fixture):
    """The clamd clients Debian 12 packages, each through the agent and
    through clamd: the same answers."""

    def socks(self):
        return (("clamd", self.clamd_sock), ("ward", self.ward_sock))

    def test_pyclamd(self):
        """python3-pyclamd: every call it makes, in its n dialect."""
        script = (
            "import sys, pyclamd\n"
            "c = pyclamd.ClamdUnixSocket(sys.argv[1])\n"
            "def show(what, f):\n"
            "    try:\n"
            "        r = f()\n"
            "        print(what, repr(sorted(r.items()) if isinstance(r, dict) else r))\n"
            "    except Exception as e:\n"
            "        print(what, type(e).__name__)\n"
            f"show('ping', c.ping)\n"
            f"show('version', lambda: c.version().split('/')[0])\n"
            f"show('scan', lambda: c.scan_file({self.exe!r}))\n"
            f"show('clean', lambda: c.scan_file({self.clean!r}))\n"
            f"show('contscan', lambda: c.contscan_file({self.tree!r}))\n"
            f"show('multiscan', lambda: c.multiscan_file({self.tree!r}))\n"
            f"show('allmatch', lambda: c.allmatchscan({self.exe!r}))\n"
            f"show('stream', lambda: c.scan_stream(open({self.exe!r}, 'rb').read()))\n"
            f"show('stream_clean', lambda: c.scan_stream(b'clean'))\n"
            f"show('stream_big', lambda: c.scan_stream(b'x' * {STREAM_MAX + 1}))\n"
            f"show('stats', lambda: c.stats().split(chr(10))[0])\n")
        out = {}
        for name, sock in self.socks():
            done = subprocess.run([DEBIAN_PYTHON, "-c", script, sock], capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
            out[name] = done.stdout
        self.assertEqual(out["ward"], out["clamd"])
        self.assertIn("scan [('" + self.exe + "', ('FOUND', 'Clamav.Test.File-6'))]",
                      out["ward"])

    def test_check_clamd(self):
        """monitoring-plugins' check_clamd: PING, PONG."""
        for name, sock in self.socks():
            done = subprocess.run([CHECK_CLAMD, "-H", sock], capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(done.returncode, 0, (name, done.stdout))
            self.assertIn("CLAMD OK", done.stdout)
            self.assertIn("[PONG]", done.stdout)

    def test_c_icap(self):
        """c-icap's virus_scan service with its clamd module: a file sent
        with c-icap-client is answered alike (the engine's name aside)."""
        answers = {}
        for name, sock in self.socks():
            port = free_port()
            conf = os.path.join(self.tmp, f"c-icap-{name}.conf")
            with open(conf, "w") as f:
                f.write(f"PidFile {self.tmp}/c-icap-{name}.pid\n"
                        f"CommandsSocket {self.tmp}/c-icap-{name}.ctl\n"
                        f"Timeout 30\nStartServers 1\nMaxServers 1\nThreadsPerChild 4\n"
                        f"MinSpareThreads 1\nMaxSpareThreads 4\nPort 127.0.0.1:{port}\n"
                        f"TmpDir {self.tmp}\nModulesDir {C_ICAP_MODULES}\n"
                        f"ServicesDir {C_ICAP_MODULES}\n"
                        f"TemplateDir /usr/share/c_icap/templates/\n"
                        f"LoadMagicFile /etc/c-icap/c-icap.magic\n"
                        f"ServerLog {self.tmp}/c-icap-{name}.log\n"
                        f"AccessLog {self.tmp}/c-icap-{name}-access.log\n"
                        f"Module common clamd_mod.so\nclamd_mod.ClamdSocket {sock}\n"
                        f"Service antivirus_module virus_scan.so\n"
                        f"virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE\n"
                        f"virus_scan.DefaultEngine clamd\n")
            server = subprocess.Popen([C_ICAP, "-N", "-f", conf], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            # Stopped, not killed: it removes its shared memory from /dev/shm.
            self.addCleanup(stop, server)
            wait_for(lambda: connects(port), what="c-icap listening")
            for path in (self.exe, self.zip, self.clean):
                done = subprocess.run([C_ICAP_CLIENT, "-i", "127.0.0.1", "-p", str(port),
                                       "-s", "virus_scan", "-f", path, "-v"],
                                      capture_output=True, text=True, timeout=60)
                # The engine ("clamd-<version>/<database version>") and the
                # service tag made from it, the server's port, the date aside.
                text = re.sub(r"clamd-[0-9]+/[0-9]+", "clamd-V", done.stdout + done.stderr)
                text = re.sub(r"port:[0-9]+", "port:P", text)
                text = re.sub(r"ISTag: [^\n]*", "ISTag: T", text)
                answers[name, path] = re.sub(r"Date: [^\n]*", "Date: D", text)
        self.maxDiff = None
        for path in (self.exe, self.zip, self.clean):
            self.assertEqual(answers["ward", path], answers["clamd", path], path)
        self.assertIn("Clamav.Test.File-6", answers["ward", self.exe])
        self.assertNotIn("VIRUS FOUND", answers["ward", self.clean])

    def test_exim(self):
        """exim's malware ACL condition (-bmalware) with av_scanner = clamd
        on the UNIX socket: a local path scan of its spool file."""
        if os.geteuid() != 0:
            self.skipTest("exim -C with a configuration of the test's own needs root")
        out = {}
        for name, sock in self.socks():
            spool = os.path.join(self.tmp, f"exim-{name}")
            os.makedirs(spool, exist_ok=True)
            conf = os.path.join(self.tmp, f"exim-{name}.conf")
            with open(conf, "w") as f:
                f.write(f"spool_directory = {spool}\nav_scanner = clamd:{sock}\n"
                        f"exim_user = root\nexim_group = root\nnever_users =\n")
            for path in (self.mail, self.clean_mail):
                done = subprocess.run([EXIM, "-C", conf, "-bmalware", path],
                                      capture_output=True, text=True, timeout=60)
                out[name, path] = (done.returncode, done.stdout)
        for path in (self.mail, self.clean_mail):
            self.assertEqual(out["ward", path], out["clamd", path], path)
        self.assertEqual(out["ward", self.mail][1].strip(), "Malware found: Clamav.Test.File-6")

    def test_clamav_client_perl(self):
        """Perl's ClamAV::Client, unprefixed commands and its STREAM path,
        which clamd removed in 0.104 and the agent serves
        (clamd.stream_command)."""
        script = os.path.join(self.tmp, "client.pl")
        with open(script, "w") as f:
            f.write("use strict; use warnings; use ClamAV::Client;\n"
                    "$SIG{PIPE} = 'IGNORE'; $| = 1;\n"
                    "my $c = ClamAV::Client->new(socket_name => $ARGV[0]);\n"
                    "print 'ping ', ($c->ping ? 'ok' : 'no'), \"\\n\";\n"
                    "my %r = $c->scan_path($ARGV[1]); print 'scan ', join(' ', %r), \"\\n\";\n"
                    "open(my $fh, '<', $ARGV[1]) or die; binmode $fh;\n"
                    "$c = ClamAV::Client->new(socket_name => $ARGV[0]);\n"
                    "my $v = eval { $c->scan_stream($fh) };\n"
                    "print 'stream ', ($@ ? 'error' : ($v // 'clean')), \"\\n\";\n"
                    "my $data = 'clean data';\n"
                    "$c = ClamAV::Client->new(socket_name => $ARGV[0]);\n"
                    "$v = eval { $c->scan_scalar(\\$data) };\n"
                    "print 'scalar ', ($@ ? 'error' : ($v // 'clean')), \"\\n\";\n")
        out = {}
        for name, sock in self.socks():
            done = subprocess.run(["perl", script, sock, self.exe], capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
            out[name] = done.stdout.splitlines()
        self.assertEqual(out["ward"][:2], out["clamd"][:2])
        self.assertEqual(out["ward"][1], f"scan {self.exe} Clamav.Test.File-6")
        self.assertEqual(out["clamd"][2:], ["stream error", "scalar error"])
        self.assertEqual(out["ward"][2:], ["stream Clamav.Test.File-6", "scalar clean"])


def stop(proc):
    """Ends proc as its service manager would: SIGTERM, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_all(s):
    """What s receives until the other end closes."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
