"""A PostgreSQL server of the tests' own: Debian's postgresql, initialised
in a directory of the build (WARD_PG_DIR) and reached only through a Unix
socket in that directory (no TCP port, no other user's socket), as the
unprivileged user `postgres` when the tests run as root (PostgreSQL
refuses root).

ctest starts it once (the fixture test pg.start, `pg.py start`) and stops
it at the end (pg.stop); each test makes databases of its own in it
(new_database()). Run by hand:

    python3 tests/lib/pg.py start     # or stop, or status
    python3 tests/lib/pg.py run -- COMMAND...   # with WARD_TEST_DATABASE set

The cluster is the tests' and thrown away: fsync is off.
"""
import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_counter = itertools.count(1)


def directory():
    return os.path.abspath(os.environ.get("WARD_PG_DIR", os.path.join(ROOT, "build", "pg")))


def socket_dir():
    return os.path.join(directory(), "sock")


def _bin(name):
    """A program of the newest PostgreSQL server installed."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]))
    if not dirs or not os.path.exists(os.path.join(dirs[-1], name)):
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed: scripts/deps.sh "
                                "installs the postgresql package")
    return os.path.join(dirs[-1], name)


def _as_owner(argv):
    """argv run as the cluster's owner: postgres when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


def _run(argv, **kw):
    return subprocess.run(_as_owner(argv), check=True, capture_output=True, text=True, **kw)


def running():
    data = os.path.join(directory(), "data")
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        return False
    return subprocess.run(_as_owner([_bin("pg_ctl"), "-D", data, "status"]),
                          capture_output=True).returncode == 0


def start(durable=False):
    """Initialises the cluster when there is none, and starts it unless it
    runs already: with fsync off (the tests' throwaway data), or durable
    as a production server is (the benchmarks)."""
    top, data = directory(), os.path.join(directory(), "data")
    if running():
        return
    os.makedirs(top, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(top, owner.pw_uid, owner.pw_gid)
    os.chmod(top, 0o700)
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        shutil.rmtree(data, ignore_errors=True)
        _run([_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C.UTF-8"])
    os.makedirs(socket_dir(), exist_ok=True)
    if os.geteuid() == 0:
        os.chown(socket_dir(), owner.pw_uid, owner.pw_gid)
    # (pg_stat_statements: the work each statement did, for the tests that
    # count it.)
    opts = (f"-c listen_addresses='' -c unix_socket_directories='{socket_dir()}' "
            "-c max_connections=200 -c shared_preload_libraries=pg_stat_statements " +
            ("-c shared_buffers=512MB" if durable else "-c fsync=off -c full_page_writes=off"))
    _run([_bin("pg_ctl"), "-D", data, "-l", os.path.join(top, "server.log"), "-w",
          "-t", "60", "-o", opts, "start"])


def stop(mode="fast"):
    data = os.path.join(directory(), "data")
    if running():
        _run([_bin("pg_ctl"), "-D", data, "-w", "-m", mode, "stop"])


def restart(mode="fast"):
    """Stops the server (fast: sessions cut; immediate: as a crash) and
    starts it again."""
    stop(mode)
    start()


def psql(sql, database="postgres"):
    """Runs sql as the superuser; its output, unaligned."""
    return subprocess.run([_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-h", socket_dir(), "-U", "postgres", "-d", database, "-c", sql],
                          check=True, capture_output=True, text=True).stdout


NULL = "\x02"


def query(target, sql):
    """Runs sql (one statement, committed at once) on the database of
    target; its rows as tuples, integers as int, NULL as None."""
    out = subprocess.run([_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-F", "\x1f", "-R", "\x1e", "-P", f"null={NULL}", "-d", target,
                          "-c", sql], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.rstrip("\n").split("\x1e"):
        if line:
            rows.append(tuple(None if v == NULL else int(v) if v.lstrip("-").isdigit()
                              else v for v in line.split("\x1f")))
    return rows


def literal(v):
    """v as an SQL literal (the tests' own values, not hostile input)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return f"'\\x{v.hex()}'::bytea"
    return "'" + str(v).replace("'", "''") + "'"


class Connection:
    """What the suites use of a sqlite3 connection, on PostgreSQL through
    psql: execute(sql, params) with `?` parameters, each statement
    committed at once."""

    class Rows:
        def __init__(self, rows):
            self.rows = rows

        def fetchone(self):
            return self.rows[0] if self.rows else None

        def fetchall(self):
            return self.rows

        def __iter__(self):
            return iter(self.rows)

    def __init__(self, target):
        self.target = target

    def execute(self, sql, params=()):
        parts = sql.split("?")
        if len(parts) != len(params) + 1:
            raise ValueError(f"{len(params)} parameters for {len(parts) - 1} places: {sql}")
        text = parts[0] + "".join(literal(p) + rest for p, rest in zip(params, parts[1:]))
        return self.Rows(query(self.target, text))

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def uri(name):
    return f"postgresql:///{name}?host={socket_dir()}&user=postgres"


def new_database(prefix="ward"):
    """A new, empty database; its connection URI. It is dropped when this
    process ends (or at the next start of the cluster, after a crash)."""
    name = f"{prefix}_{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    if not _made:
        start()  # a suite run by hand, without ctest's fixture
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}"')
    if not _made:
        atexit.register(_drop_made)
    _made.append(uri(name))
    return uri(name)


_made = []


def _drop_made():
    for target in _made:
        try:
            drop_database(target)
        except (subprocess.CalledProcessError, OSError):
            pass  # the server was stopped: its next start drops them


def drop_leftovers():
    """Drops every test database of an earlier run."""
    names = psql("SELECT datname FROM pg_database WHERE datname LIKE 'ward\\_%' OR "
                 "datname LIKE 'unit\\_%'").split()
    for name in names:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_database(target):
    name = target.split("?")[0].rsplit("/", 1)[1]
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Relay:
    """A way to the tests' server over TCP on loopback that a test can cut
    as a network partition would: cut, nothing more passes either way and
    new connections are taken but never answered, while every connection
    stays open (no reset, no end: the client is told nothing); mended,
    what waited passes again. uri(target) is target's database reached
    through it."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.stopped = False
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self, target):
        name = target.split("?")[0].rsplit("/", 1)[1]
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}?sslmode=disable"

    def cut(self):
        self.open.clear()

    def mend(self):
        self.open.set()

    def close(self):
        self.stopped = True
        self.open.set()
        for s in [self.listener] + self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client):
        self.open.wait()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sockets.append(server)
        try:
            server.connect(os.path.join(socket_dir(), ".s.PGSQL.5432"))
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        while not self.stopped:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            self.open.wait()
            try:
                dst.sendall(data)
            except OSError:
                return


def main(argv):
    if argv[:1] == ["start"]:
        start()
        drop_leftovers()
    elif argv[:1] == ["stop"]:
        stop()
    elif argv[:1] == ["status"]:
        print("running" if running() else "stopped")
    elif argv[:1] == ["run"] and argv[1:2] == ["--"] and len(argv) > 2:
        start()
        target = new_database("unit")
        try:
            return subprocess.run(argv[2:], env=dict(os.environ, WARD_TEST_DATABASE=target)
                                  ).returncode
        finally:
            drop_database(target)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
