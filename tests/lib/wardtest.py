"""Shared pieces of Ward's Python test suites: the programs under test,
daemons run as real processes on loopback (Wardd, Agent, WardSps), the
helpers that wait for them, and where the test data is.

Every suite puts tests/lib on sys.path and imports from here. One place
says where tests/data is, and a missing fixture fails with a message
naming the file. The programs are WARDD_BIN, WARD_AGENT_BIN, WARD_BIN and
WARD_SPS_BIN (tests/CMakeLists.txt sets them), else build/bin of the clone.
"""
import glob
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import pg

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
# The schema version this wardd brings databases to (src/server/db/sqlite.c,
# postgres.c: the last step of each).
SCHEMA = 14
# Debian's clamav-testfiles (scripts/deps.sh installs it).
TESTFILES = "/usr/share/clamav-testfiles"


def _program(env, name):
    return os.environ.get(env, os.path.join(ROOT, "build", "bin", name))


WARDD = _program("WARDD_BIN", "wardd")
AGENT = _program("WARD_AGENT_BIN", "ward-agent")
WARD = _program("WARD_BIN", "ward")
WARD_SPS = _program("WARD_SPS_BIN", "ward-sps")
LOADGEN = _program("WARD_LOADGEN_BIN", "ward-loadgen")
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def backend():
    """The store's backend the suites run on: sqlite, or postgresql
    (WARD_TEST_BACKEND)."""
    return os.environ.get("WARD_TEST_BACKEND", "sqlite")


def fixture(path, origin):
    """path, or FileNotFoundError naming it and where it comes from."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"missing test fixture: {path} ({origin})")
    return path


def data_file(*parts):
    """A file under tests/data, which the clone itself holds."""
    return fixture(os.path.join(DATA, *parts), "tests/data is part of the repository; "
                   "see tests/data/clamav/README.md")


def clamav_cvd(n):
    """ClamAV's signed test-N.cvd (N from 1 to 6)."""
    return data_file("clamav", "cvd", f"test-{n}.cvd")


def testfile(name):
    """A file of Debian's clamav-testfiles package (clam.exe and others)."""
    return fixture(os.path.join(TESTFILES, name),
                   "Debian package clamav-testfiles; scripts/deps.sh installs it")


# A test's exit status that ctest reports as skipped (SKIP_RETURN_CODE).
SKIPPED = 77


def untar(path, dest):
    """Unpacks the tar archive at path (test data of the repository) into
    dest: regular files and folders only, each named inside dest. Debian
    12's Python has no extraction filters; this is the check they make."""
    with tarfile.open(path) as t:
        members = t.getmembers()
        for m in members:
            parts = m.name.split("/")
            if (os.path.isabs(m.name) or ".." in parts or not (m.isfile() or m.isdir())):
                raise ValueError(f"{path}: {m.name} is no file of the archive's own")
        t.extractall(dest, members=members)


def make_deb(out_dir, version, arch="amd64", package="ward-agent", fields=None, files=None):
    """A real Debian package of that name, version and architecture, with
    more control fields ({name: value}) and files ({path in the package:
    (bytes, mode)})."""
    tmp = tempfile.TemporaryDirectory(prefix="ward-deb-")
    os.makedirs(out_dir, exist_ok=True)
    root = os.path.join(tmp.name, "pkg")
    os.makedirs(os.path.join(root, "DEBIAN"))
    os.makedirs(os.path.join(root, "usr/share/doc", package))
    with open(os.path.join(root, "DEBIAN/control"), "w") as f:
        f.write(f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\n"
                "Maintainer: Ward tests <tests@example.org>\nDescription: a test package\n")
        for name, value in (fields or {}).items():
            f.write(f"{name}: {value}\n")
    with open(os.path.join(root, "usr/share/doc", package, "README"), "w") as f:
        f.write(f"{package} {version} {arch}\n")
    for path, (data, mode) in (files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(root, path), mode)
    path = os.path.join(out_dir, f"{package}_{version}_{arch}.deb".replace(":", "%3a"))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", root, path], check=True,
                   capture_output=True, timeout=60)
    tmp.cleanup()
    return path


def require_root(why):
    """Exits SKIPPED, saying why root is needed, unless running as root: the
    test is labelled "root" in tests/CMakeLists.txt."""
    if os.geteuid() != 0:
        print(f"skipped: needs root ({why}); run as root: ctest -L root", file=sys.stderr)
        sys.exit(SKIPPED)


def free_port():
    """A port free on both 127.0.0.1 and ::1 right now."""
    while True:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s6.bind(("::", 0))
            return s6.getsockname()[1]


# What every wardd of one database shares, copied from one to another.
SHARED_KEYS = ("ca.key", "ca.crt", "sps-ca.key", "sps-ca.crt", "signing.key", "signing.pub")


class Wardd:
    """One wardd process with its own data directory and config file."""

    def __init__(self, root, extra=""):
        self.root = root
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.conf = os.path.join(root, "wardd.ini")
        if "source_dir" not in extra:
            # Never the machine's /var/lib/clamav: an empty source of its own.
            source = os.path.join(root, "no-signatures")
            os.makedirs(source, exist_ok=True)
            extra = f"[updates]\nsource_dir = {source}\n{extra}"
        if "package_dir" not in extra:
            # Never the machine's /var/lib/ward/deploy either.
            extra = f"[deploy]\npackage_dir = {os.path.join(root, 'agent-packages')}\n{extra}"
        # WARD_TEST_BACKEND=postgresql: a database of its own in the tests'
        # PostgreSQL server (tests/lib/pg.py) instead of SQLite's ward.db.
        self.database = None
        database = ""
        if backend() == "postgresql":
            self.database = pg.new_database()
            database = f"database = {self.database}\n"
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = *:{self.port}\nhostname = localhost\n"
                    f"data_dir = {self.data}\n{database}{extra}")
        self.log_path = os.path.join(root, "wardd.log")
        self.proc = None

    def start(self, env=None):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap([WARDD, "--config", self.conf]),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wardd exited {self.proc.returncode}: {self.log_text()}")
            try:
                if self.request("GET", "/api/v1/health")[0] == 200:
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        # Not left running behind the failure.
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        raise AssertionError("wardd did not answer within 30 s: " + self.log_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=10)
            self.log.close()
            return code
        return None

    def use_database(self, other, uri=None):
        """Points this wardd's configuration at the database of other (a
        wardd on PostgreSQL), as one more frontend of it; by uri (a way to
        the same database, a pg.Relay's) when given."""
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace(f"database = {self.database}",
                                 f"database = {uri or other.database}"))
        self.database = other.database

    def copy_shared_keys(self, other):
        """Copies into this wardd's data directory the files every wardd of
        other's database shares (SHARED_KEYS)."""
        os.makedirs(self.data, mode=0o700, exist_ok=True)
        for name in SHARED_KEYS:
            shutil.copy2(os.path.join(other.data, name), os.path.join(self.data, name))

    def db(self):
        """A connection to its database behind its back, as a hand would
        make one: sqlite3's, or its like on PostgreSQL (pg.Connection)."""
        if self.database:
            return pg.Connection(self.database)
        return sqlite3.connect(os.path.join(self.data, "ward.db"), timeout=10)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wrap(self, argv):
        """The command that runs argv where the server runs (a test in
        network namespaces replaces it)."""
        return argv

    def connection(self, host, ctx, timeout=10, source=None):
        """A connection to the server at host (an address), from address
        source (a loopback one, 127.0.0.x) when given."""
        return http.client.HTTPSConnection(host, self.port, context=ctx, timeout=timeout,
                                           source_address=(source, 0) if source else None)

    def request(self, method, path, body=None, token=None, host="127.0.0.1", raw=None,
                timeout=10, source=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.data, "ca.crt"))
        # (A test may replace connection() with one that takes no source.)
        conn = (self.connection(host, ctx, timeout, source=source) if source else
                self.connection(host, ctx, timeout))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            return resp.status, (json.loads(text) if text else None)
        finally:
            conn.close()

    def password(self):
        """The first administrator's password, as the server made it."""
        with open(os.path.join(self.data, "initial-admin-password")) as f:
            return f.read().strip()

    def login(self):
        status, body = self.request("POST", "/api/v1/login",
                                    {"user": "admin", "password": self.password()})
        assert status == 200, body
        return body["token"]

    def cli_env(self, **extra):
        """The environment `ward` runs in as this server's administrator: a
        configuration directory of the test's own, the password."""
        return dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.root, "cfg"),
                    WARD_PASSWORD=self.password(), **extra)

    def cli(self, *args, timeout=60):
        """Runs `ward ARGS` as this server's administrator (signed in with
        `ward login` the first time); the CompletedProcess."""
        env = self.cli_env()
        if not os.path.exists(os.path.join(self.root, "cfg", "ward", "cli.json")):
            done = subprocess.run([WARD, "login", "--server", f"https://localhost:{self.port}",
                                   "--ca", os.path.join(self.data, "ca.crt")],
                                  capture_output=True, text=True, env=env, timeout=timeout)
            assert done.returncode == 0, done.stderr
        return subprocess.run([WARD, *args], capture_output=True, text=True, env=env,
                              timeout=timeout)

    def client_setting(self, token, client, key, value):
        """Sets key on client (a client id) as the administrator of token;
        (status, answer)."""
        return self.request("PUT", "/api/v1/settings",
                            {"scope": f"client:{client}", "key": key, "value": value},
                            token=token)

    def set_client(self, token, client, settings):
        """Sets each key of settings (a dict, in its order) on client;
        AssertionError naming the key the server refused."""
        for key, value in settings.items():
            status, body = self.client_setting(token, client, key, value)
            assert status == 200, (key, body)

    def components(self, token):
        """The components the server has built: {name: version}."""
        status, body = self.request("GET", "/api/v1/update", token=token)
        assert status == 200, body
        return {c["name"]: c["version"] for c in body["components"]}

    def wait_component(self, token, version=1, name="virus-pattern", timeout=30,
                       what="the first import"):
        """Waits until the server has built version of component name."""
        wait_for(lambda: self.components(token).get(name) == version, timeout=timeout,
                 what=what)

    def detections(self, token, client=None, path=None, limit=1000):
        """The details of the detections the server logged (of client, of
        path; the newest limit)."""
        query = f"/api/v1/logs?kind=detection&limit={limit}"
        if client is not None:
            query += f"&client={client}"
        status, body = self.request("GET", query, token=token)
        assert status == 200, body
        return [e["detail"] for e in body["events"]
                if path is None or e["detail"]["path"] == path]


class Agent:
    """One ward-agent with its own state directory and config file."""

    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "agent.ini")
        # The scan workers run as nobody: the tests create no user (the
        # default, ward-scan, is made by the package). [agent] comes last,
        # for the tests that append to it.
        with open(self.conf, "w") as f:
            f.write(f"[scan]\nworker_user = nobody\nscratch_dir = {self.dir}/scan\n"
                    f"[agent]\nstate_dir = {self.dir}/state\n")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None
        # What start() runs: the program and its command (a versioned
        # install runs ROOT/current/ward-agent supervise).
        self.program, self.serve = AGENT, "run"

    @staticmethod
    def wrap(argv):
        """The command that runs argv on the agent's host (a test in
        network namespaces replaces it)."""
        return argv

    def enroll(self, *args):
        return subprocess.run(self.wrap([self.program, "--config", self.conf, "enroll", *args]),
                              capture_output=True, text=True, timeout=60)

    def enroll_with(self, server):
        """Enrolls with server's enrollment bundle (AssertionError when it
        fails); the client id the server gave."""
        done = self.enroll("--bundle", os.path.join(server.data, "enroll.bundle"))
        assert done.returncode == 0, done.stderr
        return self.credential()["client"]

    def credential(self):
        """The credential the enrollment wrote (client, uuid, secret, ...)."""
        with open(os.path.join(self.dir, "state", "credential.json")) as f:
            return json.load(f)

    def command(self, *args, timeout=60):
        """Runs `ward-agent ARGS` with this agent's configuration (a client of
        the running agent: status, scan, update, quarantine ...)."""
        return subprocess.run([AGENT, "--config", self.conf, *args], capture_output=True,
                              text=True, timeout=timeout)

    def status_text(self, timeout=30):
        """What `ward-agent status` prints."""
        return self.command("status", timeout=timeout).stdout

    def wait_status(self, text, timeout=30, what=None):
        """Waits until `ward-agent status` prints text."""
        wait_for(lambda: text in self.status_text(), timeout=timeout, what=what or repr(text))

    def counters(self, timeout=30):
        """The real-time counters `ward-agent status` prints (a dict);
        AssertionError, with the status, when it prints none."""
        text = self.status_text(timeout)
        for line in text.splitlines():
            if line.startswith("realtime counters: "):
                return json.loads(line[len("realtime counters: "):])
        raise AssertionError("no counters in the status:\n" + text)

    def start(self):
        """Starts `ward-agent run` and waits for its control socket, through
        which `ward-agent scan`, `update` and `status` reach it (unless it
        exits first: not enrolled, say)."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap([self.program, "--config", self.conf,
                                                self.serve]),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while (time.monotonic() < deadline and self.proc.poll() is None and
               not self.answers()):
            time.sleep(0.02)

    def answers(self):
        """Whether an agent answers on the control socket (a socket file
        left by one killed outright does not)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(os.path.join(self.dir, "state", "control.sock"))
                return True
            except OSError:
                return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()

    def terminate(self, timeout=10):
        """Stops the agent with SIGTERM; its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def log_text(self):
        """The agent's log so far. Its lines go through a writer thread
        (log_queue_start()): what was logged a moment ago may still be on
        its way, so the log is read until it stops growing (or 1 s)."""
        text, deadline = None, time.monotonic() + 1
        while True:
            with open(self.log_path, errors="replace") as f:
                now = f.read()
            if now == text or time.monotonic() > deadline:
                return now
            text = now
            time.sleep(0.05)

    def version(self):
        m = re.search(r"settings version: (\d+)", self.status_text())
        return int(m.group(1)) if m else -1

    def wait_settings(self, server, token, what="the settings applied"):
        """Waits until the running agent applied the settings version the
        server has for its client now."""
        client = self.credential()["client"]
        status, c = server.request("GET", f"/api/v1/client?id={client}", token=token)
        assert status == 200, c
        wait_for(lambda: self.version() >= c["version"], what=what)

    def start_realtime(self, server, token, paths, mode, timeout):
        """Enrolls with server, gives the client real-time scanning of paths
        in mode with realtime.timeout timeout, starts the agent and waits
        until real-time scanning is on; the client id. (The caller stops
        the agent, started or not.)"""
        client = self.enroll_with(server)
        server.set_client(token, client, {"realtime.paths": paths, "realtime.timeout": timeout,
                                          "realtime.mode": mode, "realtime.enabled": True})
        self.start()
        self.wait_status(f"realtime: on ({mode} mode)", timeout=60,
                         what="real-time scanning on")
        return client

    def applied(self):
        """Settings versions this agent applied, in order, one per change line group."""
        seen = []
        for m in re.finditer(r"settings (\d+): ", self.log_text()):
            v = int(m.group(1))
            if not seen or seen[-1] != v:
                seen.append(v)
        return seen


class Loadgen:
    """One ward-loadgen process and the agents it simulates, enrolled with
    server (token: an enrollment token; its own by default), each
    acknowledging every delivery; waits until all have their channel
    open."""

    def __init__(self, test, server, tmp, n, token=None, long_poll=600, spread=50):
        k = len(os.listdir(tmp))
        self.acks_path = os.path.join(tmp, f"acks-{k}.txt")
        self.events_path = os.path.join(tmp, f"events-{k}.txt")
        err = open(os.path.join(tmp, f"loadgen-{k}.err"), "w")
        test.addCleanup(err.close)
        if token is None:
            with open(os.path.join(server.data, "enroll-token")) as f:
                token = f.read().strip()
        self.proc = subprocess.Popen(
            [LOADGEN, "--server", f"https://localhost:{server.port}", "--ca",
             os.path.join(server.data, "ca.crt"), "--token", token, "--agents", str(n),
             "--acks", self.acks_path, "--events", self.events_path, "--heartbeat", "3600",
             "--long-poll",
             str(long_poll), "--spread", str(spread)],
            stdout=subprocess.PIPE, stderr=err, text=True)
        test.addCleanup(self.stop)
        ready = self.proc.stdout.readline().split()
        test.assertEqual(ready[:2], ["READY", str(n)], "the load generator failed")
        self.clients = sorted({c for c, _ in self.acks()})
        test.assertEqual(len(self.clients), n)

    def acks(self):
        """Every (client, version) wardd answered an acknowledgement of, as
        often as it did."""
        with open(self.acks_path) as f:
            return [tuple(map(int, line.split())) for line in f if line.endswith("\n")]

    def acked(self):
        """The (client, version) pairs acknowledged."""
        return set(self.acks())

    def deliveries(self):
        """Every (client, version) the agents received, as often as they did
        (an acknowledgement may be lost: the agent's next poll reports the
        version instead)."""
        with open(self.events_path) as f:
            return [tuple(map(int, line.split()[:2])) for line in f if line.endswith("\n")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.communicate(timeout=30)


class AgentWire:
    """One enrolled agent's credential, used by hand over HTTPS."""

    def __init__(self, server, agent):
        cred = agent.credential()
        self.server = server
        self.id = cred["client"]
        self.token = f"{cred['uuid']}:{cred['secret']}"

    @classmethod
    def enrolled(cls, server, root, *names):
        """A real ward-agent per name (in root/NAME) enrolled with server and
        never run: their credentials, for a test that speaks for them."""
        wires = []
        for name in names:
            agent = Agent(root, name)
            agent.enroll_with(server)
            wires.append(cls(server, agent))
        return wires

    def call(self, method, path, body=None, timeout=10):
        return self.server.request(method, path, body, token=self.token, timeout=timeout)

    def version(self, admin):
        return self.server.request("GET", f"/api/v1/client?id={self.id}", token=admin)[1][
            "version"]

    def poll(self, admin, wait=1, status=None, tasks_seen=None):
        body = {"version": self.version(admin), "wait": wait}
        if status is not None:
            body["status"] = status
        if tasks_seen is not None:
            body["tasks_seen"] = tasks_seen
        return self.call("POST", "/api/v1/agent/events", body, timeout=wait + 10)

    def report(self, **report):
        return self.call("POST", "/api/v1/agent/tasks", report)

    def upload(self, item, data):
        """PUT of a quarantined file's copy (bytes): (status, answer)."""
        return quarantine_upload(self.server, self.token, item, data)


def quarantine_upload(server, token, item, data):
    """An agent's PUT of the copy of its quarantine item (bytes) to
    server's central quarantine, with the agent's token: (status, answer)."""
    ctx = ssl.create_default_context(cafile=os.path.join(server.data, "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("PUT", f"/api/v1/agent/quarantine/{item}", body=data,
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, json.loads(text) if text else None
    finally:
        conn.close()


def mount_tmpfs(path, size, source="tmpfs", cleanup=None):
    """Makes path and mounts a tmpfs of size ("64m") on it (root; the caller
    is in a mount namespace of its own, or unmounts it with umount()).
    cleanup (a test's addCleanup or addClassCleanup), when given, is given
    at once what unmounts it."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", source, path], check=True)
    if cleanup:
        cleanup(umount, path)


def private_mount_namespace():
    """Runs the test (its script, its arguments) again in a private mount
    namespace of its own (unshare --mount --propagation private), unless it
    is in one already: what it mounts is seen by it and the processes it
    starts only, and goes with them; the machine's filesystems are never
    marked. Returns in the new namespace; call it before anything starts."""
    if os.environ.get("WARD_TEST_MOUNT_NS") != "1":
        os.environ["WARD_TEST_MOUNT_NS"] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private",
                              sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


def umount(path):
    """Unmounts path even while something still uses it (lazily)."""
    subprocess.run(["umount", "-l", path])


def children(pid):
    """The process ids whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The name may hold spaces and parentheses: fields follow the last ')'.
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def scan_workers_of(pid):
    """The scan workers of the agent pid (its children run as `worker`)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if f.read().split(b"\0")[1:2] == [b"worker"]:
                    found.append(child)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def stop_process(pid):
    """SIGSTOP pid and waits until every thread of it is stopped: a stop
    takes effect when a thread next runs, so a thread may still answer
    something meanwhile."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                        return False
        except FileNotFoundError:
            return False
        return True
    wait_for(stopped, timeout=10, what=f"process {pid} to stop")


def license_issuer(root, name):
    """An issuer's key pair made by `ward license-issuer keygen`: (secret
    key file, public key hex)."""
    path = os.path.join(root, f"{name}.key")
    done = subprocess.run([WARD, "license-issuer", "keygen", "--out", path],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600
    return path, done.stdout.strip()


def issue_license(key, lid, expires, services=("antivirus", "smart-scan", "realtime"),
                  seats=100, grace=0, start=None, customer="Example Ltd"):
    """A license file's text signed with key; times as `ward license-issuer
    issue` takes them (+Nd, Unix seconds)."""
    argv = [WARD, "license-issuer", "issue", "--key", key, "--id", lid, "--customer", customer,
            "--services", ",".join(services), "--seats", str(seats), "--expires", str(expires),
            "--grace-days", str(grace)]
    if start is not None:
        argv += ["--start", str(start)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def clock_ahead(days):
    """An environment whose wall clock is days ahead (libfaketime, Debian's
    faketime package), the monotonic clock untouched: a clock step."""
    lib = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not lib:
        raise AssertionError("libfaketime is missing: scripts/deps.sh installs faketime")
    return dict(os.environ, LD_PRELOAD=lib[0], FAKETIME=f"+{days}d",
                FAKETIME_DONT_FAKE_MONOTONIC="1")


def wait_for(cond, timeout=30, what="condition"):
    """Polls cond() every 0.1 s; AssertionError naming what after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class WardSps:
    """One ward-sps with its own state directory."""

    def __init__(self, root, ca, listen_host="*"):
        self.ca = ca  # the smart protection CA its certificate chains to
        self.dir = os.path.join(root, "sps")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "sps.ini")
        with open(self.conf, "w") as f:
            f.write(f"[sps]\nstate_dir = {self.dir}/state\nlisten = {listen_host}:{self.port}\n"
                    "update_interval = 10s\nttl = 300\n")
        self.log_path = os.path.join(self.dir, "sps.log")
        self.proc = None

    @staticmethod
    def wrap(argv):
        """The command that runs argv on the server's host (a test in
        network namespaces replaces it)."""
        return argv

    def run(self, *args):
        return subprocess.run(self.wrap([WARD_SPS, "--config", self.conf, *args]),
                              capture_output=True, text=True, timeout=60)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap([WARD_SPS, "--config", self.conf, "run"]),
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
            self.log.close()

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, host="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection(host, self.port, context=ctx, timeout=30)
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        return resp.status, text


def sps_bundle(server, token, root):
    """An administrator's token for one smart protection server, as a bundle."""
    status, made = server.request("POST", "/api/v1/sps/tokens", {}, token=token)
    assert status == 201, made
    path = os.path.join(root, f"sps-{made['id']}.bundle")
    with open(path, "w") as f:
        json.dump(made, f)
    return path


def digest(alg, b):
    return hashlib.new(alg, b).hexdigest()


def payload(name):
    """Random-looking but fixed content for a corpus file."""
    return hashlib.sha256(name.encode()).digest() * 40 + name.encode() + b"\n"


def zip_of(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tgz_of(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def query(type_, digest, bits=32):
    """The query line for digest's first bits bits."""
    head = int(digest[:8], 16)
    head &= (0xffffffff << (32 - bits)) & 0xffffffff
    return f"{type_}:{head:08x}/{bits}"


def demo_signatures(root, more=None):
    """A signature source of one hash signature (the EICAR file), and the
    files of more ({name: text}); its path."""
    source = os.path.join(root, "signatures")
    os.makedirs(source)
    files = {"demo.hdb": "44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar\n", **(more or {})}
    for name, text in files.items():
        with open(os.path.join(source, name), "w") as f:
            f.write(text)
    return source


def temp_dir(prefix, cleanup):
    """A new TemporaryDirectory named with prefix; cleanup (a test's
    addCleanup or addClassCleanup) is given, at once, what removes it, even
    when what follows fails."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    cleanup(tmp.cleanup)
    return tmp


def temp_wardd(prefix, cleanup, extra="", kind=Wardd):
    """A wardd (of class kind) in temp_dir(prefix, cleanup), started; cleanup
    is given, at once, what stops it. (the TemporaryDirectory, the server)"""
    tmp = temp_dir(prefix, cleanup)
    server = kind(tmp.name, extra=extra)
    server.start()
    cleanup(server.stop)
    return tmp, server


def demo_wardd(root, cleanup, extra="", more=None):
    """A wardd in root whose update source is demo_signatures(root, more)
    (extra, its configuration's end, starts in [updates]), started, with
    cleanup(stop) called at once (a test's addCleanup or addClassCleanup:
    it stops even when what follows fails), once it has built
    virus-pattern version 1; (server, an administrator's token)."""
    src = demo_signatures(root, more)
    server = Wardd(root, extra=f"[updates]\nsource_dir = {src}\n{extra}")
    server.start()
    cleanup(server.stop)
    token = server.login()
    server.wait_component(token)
    return server, token


def wait_for_components(server, token):
    """Waits until the server has built every component from its source."""
    wait_for(lambda: all(c["version"] for c in server.request(
        "GET", "/api/v1/update", token=token)[1]["components"]), timeout=60,
        what="the first components")
