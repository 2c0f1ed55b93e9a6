#!/usr/bin/env python3
"""The agent's clamd service answers as clamd does: a real clamd (Debian's
clamav-daemon) and a running ward-agent load the same signed database
(ClamAV's test-5.cvd: the server imports it, clamd loads it), and the
same bytes sent to each get the same answer bytes; clamdscan in its modes
prints the same through both; what is found through the socket reaches
the server as a detection whose source is clamd, with the client program."""
import array
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import (Agent, Wardd, clamav_cvd, temp_dir, testfile,  # noqa: E402
                      wait_for)

CLAMD = "/usr/sbin/clamd"
CLAMDSCAN = "/usr/bin/clamdscan"
STREAM_MAX = 1 << 20


def exchange(path, data, fd=None, timeout=30):
    """Sends data to the UNIX socket at path (with descriptor fd attached to
    its last byte), half-closes, and returns every byte answered until the
    daemon closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        if fd is None:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # it stopped reading: what did it say?
        else:
            s.sendall(data[:-1])
            s.sendmsg([data[-1:]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [fd]))])
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


class ClamdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CLAMD):
            raise unittest.SkipTest("clamd is missing (scripts/deps.sh installs clamav-daemon)")
        tmp = temp_dir("ward-clamd-", cls.addClassCleanup)
        cls.tmp = tmp.name
        src = os.path.join(cls.tmp, "source")
        os.makedirs(src)
        shutil.copy(clamav_cvd(5), os.path.join(src, "main.cvd"))
        cls.server = Wardd(cls.tmp, extra=f"[updates]\nsource_dir = {src}\n")
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.token = cls.server.login()
        cls.server.wait_component(cls.token)
        # The real clamd, on the same database.
        db = os.path.join(cls.tmp, "clamd-db")
        os.makedirs(db)
        shutil.copy(clamav_cvd(5), os.path.join(db, "main.cvd"))
        cls.clamd_sock = os.path.join(cls.tmp, "clamd.ctl")
        conf = os.path.join(cls.tmp, "clamd.conf")
        with open(conf, "w") as f:
            f.write(f"LocalSocket {cls.clamd_sock}\nDatabaseDirectory {db}\nForeground yes\n"
                    f"User root\nTemporaryDirectory {cls.tmp}\nStreamMaxLength {STREAM_MAX}\n"
                    f"LogFile {cls.tmp}/clamd.log\nPidFile {cls.tmp}/clamd.pid\n")
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
                    f"stream_max_length = {STREAM_MAX}\n")
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
        cls.fifo = os.path.join(cls.files, "fifo")
        os.mkfifo(cls.fifo)

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
                     b"zDETSTATS\0", b"\n", b"zALLMATCHSCAN\0"):
            self.same(data)
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
                         os.path.join(self.files, "missing"), self.fifo):
                self.same(b"z" + cmd + b" " + path.encode() + b"\0")
            self.same(b"z" + cmd + b" " + self.tree.encode() + b"\0",
                      normalize=tree_lines if cmd != b"SCAN" else
                      lambda b: b.count(b"FOUND"))
        self.same(b"SCAN " + self.exe.encode() + b"\n")
        self.same(b"nCONTSCAN " + self.tree.encode() + b"\n",
                  normalize=lambda b: sorted(b.split(b"\n")))

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
        # the same read; Ward says what is wrong.
        self.assertEqual(exchange(self.ward_sock, b"zIDSESSION\0PING\n"),
                         b"1: Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION. "
                         b"ERROR\0")

    @staticmethod
    def stats_shape(b):
        """STATS without its numbers (threads, times, memory)."""
        b = re.sub(rb"\tIDLE [0-9.]+ \n", b"", b)  # clamd's idle threads in a session
        return re.sub(rb"N/A|[0-9]+(\.[0-9]+)?M?", b"#", b)

    def test_6_clamdscan(self):
        """clamdscan, in its modes, prints the same through both."""
        conf = os.path.join(self.tmp, "clamdscan-ward.conf")
        with open(conf, "w") as f:
            f.write(f"LocalSocket {self.ward_sock}\n")

        def run(config, *args):
            done = subprocess.run([CLAMDSCAN, "--config-file", config, "--no-summary",
                                   *args], capture_output=True, text=True, timeout=60)
            return done.returncode, sorted(done.stdout.splitlines())
        for args in ([self.exe], [self.clean], ["--stream", self.exe], ["--stream", self.clean],
                     ["--fdpass", self.exe], ["--fdpass", self.zip], ["--multiscan", self.tree],
                     ["--allmatch", self.exe], [self.tree], ["--ping", "1"]):
            self.assertEqual(run(conf, *args), run(self.clamd_conf, *args), args)

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


if __name__ == "__main__":
    unittest.main()
