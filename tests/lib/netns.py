"""Real networks for tests, made of Linux network namespaces (root only).

A Lab is a set of hosts (one namespace each) on networks (one bridge each,
in a switch namespace of the lab's own). A host is joined to a network by
a veth pair and given addresses of either family or both, so a test can
make a pure-IPv6 host, a pure-IPv4 one (IPv6 off on its link, not even a
link-local address) and dual-stack ones, as a site has them. Each host
has a hosts file of its own, bind-mounted over /etc/hosts in a mount
namespace of each process started there: the machine's /etc/hosts and
/etc/netns are never written.

Names carry the test's process id, so parallel runs do not meet, and a
lab left behind by a killed run (its process gone) is removed by the next
one. cleanup() kills every process in the lab's namespaces and deletes
them, which deletes their veths and bridges; use the Lab as a context
manager so that it runs whatever the test does. Python standard library
only.
"""
import ctypes
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading

CLONE_NEWNET = 0x40000000
PREFIX = "wardlab"
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def available():
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _kill_namespace(ns):
    """Kills what runs in ns (every process there was started by the lab)."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", ns, check=False)


def sweep_stale():
    """Deletes labs whose test process is gone (a run killed mid-test)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        m = re.match(rf"({PREFIX}-(\d+)-\S+)", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            _kill_namespace(m.group(1))


def in_namespace(ns, fn):
    """Runs fn() on a thread that has entered network namespace ns and
    returns what it returns: sockets it makes stay in ns."""
    out = {}

    def run():
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


_terminated = False


def _on_sigterm(*_):
    global _terminated
    _terminated = True
    sys.exit(128 + signal.SIGTERM)


class Host:
    """One namespace: a host with links on some of the lab's networks."""

    def __init__(self, lab, name):
        self.lab = lab
        self.name = name
        self.ns = f"{lab.tag}-{name}"
        self.hosts_file = os.path.join(lab.dir, f"{name}.hosts")
        with open(self.hosts_file, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")

    def wrap(self, argv):
        """argv run in this host's network namespace with its hosts file."""
        return ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation",
                "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
                self.hosts_file, *argv]

    def run(self, argv, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        return subprocess.run(self.wrap(argv), **kw)

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.wrap(argv), **kw)
        self.lab.procs.append(p)
        return p

    def connect(self, host, port, timeout=10, source=None):
        """A TCP connection made from this host (host: an address), from
        its address source when given."""
        return in_namespace(self.ns, lambda: socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None))

    def https(self, host, port, context, timeout=10, source=None):
        """An http.client connection from this host to an address."""
        me = self

        class Connection(http.client.HTTPSConnection):
            def connect(self):
                sock = me.connect(self.host, self.port, timeout, source)
                self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        return Connection(host, port, context=context, timeout=timeout)


class Lab:
    """Hosts and networks; a context manager that always cleans up."""

    def __init__(self):
        # A test stopped by SIGTERM (ctest's timeout) unwinds, so that
        # cleanup() runs, and no lab is made after; SIGKILL leaves the lab
        # to the next run's sweep.
        if _terminated:
            sys.exit(128 + signal.SIGTERM)
        if (threading.current_thread() is threading.main_thread() and
                signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            signal.signal(signal.SIGTERM, _on_sigterm)
        sweep_stale()
        self.tag = f"{PREFIX}-{os.getpid()}-{os.urandom(2).hex()}"
        self.tmp = tempfile.TemporaryDirectory(prefix="ward-netns-")
        self.dir = self.tmp.name
        self.switch = f"{self.tag}-switch"
        self.namespaces = []
        self.networks = []
        self.hosts = {}
        self.procs = []
        self._add_namespace(self.switch)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def _add_namespace(self, ns):
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def network(self, name):
        """A network (a bridge in the switch namespace); name: a few letters."""
        br = f"br-{name}"
        _ip("-n", self.switch, "link", "add", br, "type", "bridge", "forward_delay", "0",
            "mcast_snooping", "0")
        _ip("-n", self.switch, "link", "set", br, "up")
        self.networks.append(name)
        return name

    def host(self, name, links):
        """A host joined to networks: links maps a network to its addresses
        with prefix lengths ("2001:db8:6::10/64", "10.64.0.10/24"). A link
        without an IPv6 address has IPv6 off."""
        h = Host(self, name)
        self._add_namespace(h.ns)
        for i, (network, addrs) in enumerate(links.items()):
            outside, inside = f"{name}-{network}"[:15], f"eth{i}"
            _ip("-n", self.switch, "link", "add", outside, "type", "veth", "peer", "name",
                inside, "netns", h.ns)
            _ip("-n", self.switch, "link", "set", outside, "master", f"br-{network}", "up")
            if not any(":" in a for a in addrs):
                _ip("netns", "exec", h.ns, "sysctl", "-q", "-w",
                    f"net.ipv6.conf.{inside}.disable_ipv6=1")
            for a in addrs:
                # nodad: usable at once, not after duplicate address detection.
                _ip("-n", h.ns, "addr", "add", a, "dev", inside,
                    *(["nodad"] if ":" in a else []))
            _ip("-n", h.ns, "link", "set", inside, "up")
        self.hosts[name] = h
        return h

    def name_everywhere(self, hostname, *addresses):
        """Adds hostname -> addresses to every host's hosts file, as a DNS
        server with A and AAAA records would answer."""
        for h in self.hosts.values():
            with open(h.hosts_file, "a") as f:
                for a in addresses:
                    f.write(f"{a} {hostname}\n")

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in reversed(self.namespaces):
            _kill_namespace(ns)
        self.namespaces = []
        self.tmp.cleanup()

    def leftovers(self):
        """Namespaces of this lab still present (for tests of cleanup)."""
        listed = _ip("netns", "list", check=False).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(self.tag)]
