"""A Debian machine that systemd boots, for tests of what runs under it
(units, their sandboxes, maintainer scripts that restart services): a
container (systemd-nspawn, Debian's systemd-container) booted from a
chroot that scripts/chroot.sh made, through an overlay whose writable
layer is a tmpfs: the chroot stays as it was, and the machine's changes
are gone with it. The machine has a network namespace of its own
(loopback only) and the host name localhost. Needs root.

    m = Machine(chroot, workdir)
    m.prepare("apt-get install -y systemd")   # before boot, with network
    m.boot()
    m.run("systemctl start wardd")
    m.stop()
"""
import os
import shlex
import signal
import subprocess
import time
import uuid

CHROOT_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts/chroot.sh")
ENV = ("env -i HOME=/root LANG=C.UTF-8 "
       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def user_namespaces():
    """Whether this process may make a user namespace, which units with
    PrivateUsers= need: not in a chroot (make check-fresh runs the tests
    in one), where the kernel refuses it (EPERM)."""
    return subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0


class Machine:
    def __init__(self, chroot, workdir):
        chroot, self.workdir = os.path.abspath(chroot), os.path.abspath(workdir)
        self.root = os.path.join(self.workdir, "root")
        self.layers = os.path.join(self.workdir, "layers")
        self.log_path = os.path.join(self.workdir, "console.log")
        self.proc = None
        self.leader = None
        self.remove()   # what a run killed outright left
        os.makedirs(self.workdir)
        os.makedirs(self.layers)
        os.makedirs(self.root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", self.layers],
                       check=True)
        os.makedirs(os.path.join(self.layers, "upper"))
        os.makedirs(os.path.join(self.layers, "work"))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={chroot},upperdir={self.layers}/upper,"
                        f"workdir={self.layers}/work", self.root], check=True)
        # A machine as an installed one is: its services start when their
        # packages are installed (chroot.sh's policy-rc.d holds them back),
        # and it has a name.
        if os.path.lexists(self.path("usr/sbin/policy-rc.d")):
            os.unlink(self.path("usr/sbin/policy-rc.d"))
        with open(self.path("etc/hostname"), "w") as f:
            f.write("localhost\n")

    def path(self, p):
        """The host's path of the machine's p."""
        return os.path.join(self.root, p.lstrip("/"))

    def prepare(self, script, timeout=900):
        """Runs a shell script as root in the machine before it boots (a
        chroot, with the host's network: apt reaches the archive). In a mount
        namespace of its own: chroot.sh unmounts what is mounted at the
        chroot when it ends, the overlay included."""
        return _check(["unshare", "--mount", "--propagation", "private", "sh", CHROOT_SH,
                       "run", self.root, "/bin/sh", "-ec", script], timeout)

    def boot(self, timeout=180):
        """Boots the machine and waits until systemd finished starting it."""
        # A machine id of its own (not a first boot: no wizard), and no
        # wait for a network it does not have (network-online.target,
        # which wardd's unit wants, would wait out networkd's 2 minutes).
        with open(self.path("etc/machine-id"), "w") as f:
            f.write(uuid.uuid4().hex + "\n")
        units = self.path("etc/systemd/system")
        os.makedirs(units, exist_ok=True)
        for unit in ("systemd-networkd-wait-online.service",):
            if not os.path.lexists(os.path.join(units, unit)):
                os.symlink("/dev/null", os.path.join(units, unit))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--boot", "--register=no", "--keep-unit",
             "--private-network", "--machine=ward-test", "--console=pipe"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.leader is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the machine did not boot:\n{self.console()}")
            self.leader = next((int(p) for p in _children(self.proc.pid)
                                if _comm(p) == "systemd"), None)
            time.sleep(0.1)
        # (systemctl reaches systemd once its socket is there.)
        state = ""
        while not state and time.monotonic() < deadline:
            state = self.run("systemctl is-system-running --wait 2>/dev/null || true",
                             timeout=timeout).strip()
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise AssertionError(f"the machine is {state!r} after its boot:\n{self.console()}")
        if state == "degraded":
            print("machine: units failed at boot:\n" +
                  self.run("systemctl --failed --no-legend || true"))

    def run(self, script, timeout=300, check=True):
        """Runs a shell script as root inside the running machine (its
        namespaces and root); returns what it printed (stdout). With check,
        an exit status other than 0 fails the test with its output."""
        cmd = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
               "--"] + shlex.split(ENV) + ["/bin/sh", "-ec", script]
        if not check:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return _check(cmd, timeout)

    def console(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def journal(self, unit, lines=80):
        return self.run(f"journalctl -q --no-pager -n {lines} -u {shlex.quote(unit)} || true")

    def stop(self):
        """Shuts the machine down (killed after 60 s) and removes it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                # PID 1 of its namespace: everything in the machine goes.
                if self.leader:
                    os.kill(self.leader, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.remove()

    def remove(self):
        for mount in (self.root, self.layers):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", self.workdir], check=True)


def _check(cmd, timeout):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd[-3:])} failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""
