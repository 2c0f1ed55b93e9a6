#!/usr/bin/env python3
"""Ward's Debian packages on a fresh Debian 12 (needs root; ctest label root).

Builds the packages (scripts/deb.sh, as `make deb` does; incremental), makes
one fresh Debian 12 chroot (scripts/chroot.sh), installs the four packages
into it, checks what they installed (programs, units naming the installed
paths, example configurations, users and directories with their owners and
modes, units enabled), runs each daemon as its unit would -- the unit's
ExecStart as the unit's User with its UMask (systemd does not run in a
chroot) -- deploys the agent as an administrator would: the agent's package
in wardd's deploy.package_dir, `ward deploy script` printing the command,
that command (curl | sh) installing the package, enrolling the agent and
recording the deployment -- enrolls the installed smart protection server
with the installed wardd through the installed `ward`, sees both online,
then purges the packages and compares the chroot's files with those before.

Then, on a machine systemd-nspawn boots from that chroot (tests/lib/machine.py;
the chroot's files stay as they were), the packages run as systemd runs them,
and the agent is upgraded from wardd through dpkg, and rolled back.

The daemons run in network and UTS namespaces of their own (loopback only,
host name "localhost"): their installed configurations listen on every
address, which outside such a namespace would be the host's.

Environment: WARD_DEB_DIR (where the packages are built; default
build-deb, as make deb), WARD_CHROOT_DIR (the chroot; default
beside WARD_DEB_DIR; destroyed at the end), WARD_CHROOT_CACHE (downloaded
.deb files kept between runs: chroot.sh's, and apt's downloads go there too;
and the fresh machine as debootstrap made it, as a tar file, used for a week).
Exits 77 (skipped) without root or debootstrap.
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from machine import Machine, user_namespaces  # noqa: E402
from unitfile import service_section  # noqa: E402

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "../.."))
CHROOT_SH = os.path.join(TOP, "scripts/chroot.sh")
DEB_DIR = os.environ.get("WARD_DEB_DIR", os.path.join(TOP, "build-deb"))
CHROOT = os.environ.get("WARD_CHROOT_DIR", DEB_DIR + "-chroot")
CACHE = os.environ.get("WARD_CHROOT_CACHE", "")
PACKAGES = ["ward-server", "ward-agent", "ward-sps", "ward-cli"]
UNITS = {"wardd": "ward-server", "ward-agent": "ward-agent", "ward-sps": "ward-sps"}
# How long a fresh machine kept in the cache (as debootstrap made it) is used.
BASE_AGE = 7 * 86400

# What differs after purge that is not the packages' to remove: dpkg's and
# apt's own records and logs of the install and purge, and the backups of
# the account files systemd-sysusers makes (the users themselves stay, as
# Debian's system users do; the test checks that the passwd file names no
# file left behind).
BOOKKEEPING = ("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/apt/", "/var/cache/debconf/",
               "/var/log/apt/", "/var/log/dpkg.log", "/var/log/alternatives.log")
ACCOUNT_BACKUPS = {"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"}


def run(*cmd, timeout=900, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def in_chroot(script, timeout=900):
    """Runs a shell script as root in the chroot (with network)."""
    return run("sh", CHROOT_SH, "run", CHROOT, "/bin/sh", "-c",
               "export DEBIAN_FRONTEND=noninteractive\n" + script, timeout=timeout)


def files(root):
    """Every path under root, as it is inside it; mounts of chroot.sh run aside."""
    out = set()
    for d, dirs, names in os.walk(root):
        rel = d[len(root):] or "/"
        if rel in ("/proc", "/sys", "/dev", "/run", "/tmp"):
            dirs[:] = []
            continue
        for n in dirs + names:
            out.add(os.path.join(rel, n))
    return out


def unit(path):
    """The [Service] keys of a unit file, each with its last value."""
    return {k: v[-1] for k, v in service_section(path).items()}


def as_unit(u):
    """The shell command that runs a unit's ExecStart as systemd would run
    it: as its User and Group (root without), under its UMask."""
    cmd = u["ExecStart"]
    if "User" in u:
        cmd = (f"setpriv --reuid={u['User']} --regid={u.get('Group', u['User'])} "
               f"--init-groups -- {cmd}")
    return f"(umask {u.get('UMask', '0022')}; exec {cmd})"


def agent_variant(deb, version, out_dir, program=None):
    """The agent's package deb made version (dpkg-query, which the agent
    reports, says so), with program (bytes) as its /usr/sbin/ward-agent."""
    with tempfile.TemporaryDirectory(prefix="ward-agent-variant-") as t:
        pkg = os.path.join(t, "pkg")
        run("dpkg-deb", "-R", deb, pkg)
        control = os.path.join(pkg, "DEBIAN/control")
        with open(control) as f:
            text = f.read()
        with open(control, "w") as f:
            f.write(re.sub(r"(?m)^Version: .*$", f"Version: {version}", text))
        if program is not None:
            with open(os.path.join(pkg, "usr/sbin/ward-agent"), "wb") as f:
                f.write(program)
        path = os.path.join(out_dir, f"ward-agent_{version}_amd64.deb")
        run("dpkg-deb", "--root-owner-group", "-b", pkg, path)
    return path


class DebsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        run("sh", os.path.join(TOP, "scripts/deb.sh"), DEB_DIR, timeout=1800)
        cls.debs = [os.path.join(DEB_DIR, f"{p}_0.1.0_amd64.deb") for p in PACKAGES]
        for d in cls.debs:
            assert os.path.exists(d), d
        t1 = time.monotonic()
        run("sh", CHROOT_SH, "destroy", CHROOT)
        # debootstrap takes minutes; with a cache, the fresh machine it made
        # last (within a week) is unpacked from a tar file instead.
        base = os.path.join(CACHE, "ward-test-debs-bookworm.tar") if CACHE else ""
        if base and os.path.exists(base) and time.time() - os.path.getmtime(base) < BASE_AGE:
            os.makedirs(CHROOT)
            run("tar", "-xpf", base, "--numeric-owner", "--xattrs", "-C", CHROOT)
        else:
            run("sh", CHROOT_SH, "create", CHROOT, timeout=1800)
            if base:
                run("tar", "-cpf", base + ".new", "--numeric-owner", "--xattrs", "-C", CHROOT,
                    ".")
                os.replace(base + ".new", base)
        t2 = time.monotonic()
        # The chroot's machine: localhost in its hosts file (debootstrap
        # writes none), the package lists of its sources, and the packages'
        # dependencies installed from the archive before the first look at
        # its files, so that what purge must remove is the packages' alone.
        with open(os.path.join(CHROOT, "etc/hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
        depends = ", ".join(run("dpkg-deb", "-f", d, "Depends").strip() for d in cls.debs)
        # And curl, which the hosts agents are deployed to run the command with.
        depends += ", curl"
        archives = os.path.join(CHROOT, "var/cache/apt/archives")
        for deb in glob.glob(os.path.join(CACHE, "*.deb")) if CACHE else []:
            shutil.copy(deb, archives)
        in_chroot(f"apt-get update -qq && apt-get satisfy -y -qq --no-install-recommends "
                  f"{shlex.quote(depends)} >/dev/null")
        if CACHE:
            for deb in glob.glob(os.path.join(archives, "*.deb")):
                if not os.path.exists(os.path.join(CACHE, os.path.basename(deb))):
                    shutil.copy(deb, CACHE)
        in_chroot("apt-get clean")
        cls.before = files(CHROOT)
        t3 = time.monotonic()
        print(f"\ntimes: make deb {t1 - t0:.0f} s, chroot {t2 - t1:.0f} s, "
              f"dependencies {t3 - t2:.0f} s", file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("WARD_KEEP_CHROOT"):
            run("sh", CHROOT_SH, "destroy", CHROOT)

    def path(self, p):
        return os.path.join(CHROOT, p.lstrip("/"))

    def account(self, name):
        with open(self.path("/etc/passwd")) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return int(fields[2]), int(fields[3]), fields[5]
        return None

    def check_installed(self):
        for prog in ("/usr/sbin/wardd", "/usr/sbin/ward-agent", "/usr/sbin/ward-sps",
                     "/usr/bin/ward"):
            self.assertTrue(os.access(self.path(prog), os.X_OK), prog)
        for page in ("man1/ward.1.gz", "man8/wardd.8.gz", "man8/ward-agent.8.gz",
                     "man8/ward-sps.8.gz"):
            self.assertTrue(os.path.exists(self.path("/usr/share/man/" + page)), page)
        self.assertTrue(os.path.exists(self.path("/usr/share/ward/console/index.html")))
        # The load balancer's configuration docs/architecture.md describes.
        self.assertTrue(os.path.exists(self.path(
            "/usr/share/doc/ward-server/examples/ward-haproxy.cfg")))
        # The users, and the directories with their owners and modes (the
        # units' StateDirectory=, made by tmpfiles.d before a first start).
        ward, sps = self.account("ward"), self.account("ward-sps")
        self.assertIsNotNone(ward, "no user ward")
        self.assertIsNotNone(sps, "no user ward-sps")
        for d, (uid, gid), mode in (("/var/lib/ward/server", ward[:2], 0o700),
                                    ("/var/lib/ward/sps", sps[:2], 0o700),
                                    ("/var/lib/ward/agent", (0, 0), 0o700)):
            st = os.stat(self.path(d))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (uid, gid, mode), d)
        self.assertEqual(ward[2], "/var/lib/ward/server")
        # Each unit names the installed program and configuration, runs as
        # the user it names (which exists) and is enabled.
        units = {}
        for name in UNITS:
            u = unit(self.path(f"/lib/systemd/system/{name}.service"))
            argv = u["ExecStart"].split()
            self.assertEqual(argv[0], "/usr/sbin/" + name)
            self.assertEqual(argv[1:3], ["--config", f"/etc/ward/{name}.ini"])
            self.assertTrue(os.path.exists(self.path(argv[2])), argv[2])
            if "User" in u:
                self.assertIsNotNone(self.account(u["User"]), u["User"])
            self.assertTrue(os.path.islink(self.path(
                f"/etc/systemd/system/multi-user.target.wants/{name}.service")), name)
            units[name] = u
        return units

    def test_agent_upgrades_through_dpkg_under_systemd(self):
        """On a machine systemd runs (a container booted from the chroot,
        whose own files stay as they were): wardd installed from its
        package, the agent deployed as an administrator deploys it, each
        started by systemd as its unit, sandbox and all. Rolled out from
        wardd, a new version of the agent's package is installed through
        dpkg and stays; one that crashes (its helper killed on the way), and
        one that never reaches the server, are rolled back through dpkg to
        the version before, which reports why; one postponed to a restart
        waits for the service's next start."""
        if not user_namespaces():
            self.skipTest("no user namespace can be made here (in a chroot, make "
                          "check-fresh's, the kernel refuses them): wardd's unit "
                          "(PrivateUsers=) could not start in the machine")
        t0 = time.monotonic()
        m = Machine(CHROOT, CHROOT + "-machine")
        self.addCleanup(m.stop)
        m.prepare("export DEBIAN_FRONTEND=noninteractive\n"
                  "apt-get install -y -qq --no-install-recommends systemd >/dev/null")
        agent_deb = next(d for d in self.debs if "/ward-agent_" in d)
        debs = m.path("/root/ward-debs")
        os.makedirs(debs)
        for d in self.debs:
            shutil.copy(d, debs)
        # 0.1.1 is the agent as built; 0.1.2 crashes when it runs (its check
        # of the configuration passes); 0.1.3 runs but never reaches wardd.
        agent_variant(agent_deb, "0.1.1", debs)
        agent_variant(agent_deb, "0.1.2", debs, b"#!/bin/sh\ncase \" $* \" in\n"
                      b"*\" run \"*) echo crashing >&2; exit 3;;\nesac\nexit 0\n")
        agent_variant(agent_deb, "0.1.3", debs, b"#!/bin/sh\ncase \" $* \" in\n"
                      b"*\" run \"*) exec sleep 3600;;\nesac\nexit 0\n")
        # 0.1.4 is good, for an upgrade postponed to the service's restart.
        agent_variant(agent_deb, "0.1.4", debs)
        m.boot()
        t1 = time.monotonic()
        try:
            self.upgrade_through_dpkg(m)
        except AssertionError as e:
            raise AssertionError(f"{e}\nward-agent's journal:\n{m.journal('ward-agent')}\n"
                                 f"the helper's journal:\n"
                                 f"{m.journal('ward-agent-upgrade')}") from None
        print(f"\ntimes: machine {t1 - t0:.0f} s, upgrades {time.monotonic() - t1:.0f} s",
              file=sys.stderr)

    def upgrade_through_dpkg(self, m):
        # wardd from its package: systemd starts it (postinst).
        m.run("""export DEBIAN_FRONTEND=noninteractive
cd /root/ward-debs
apt-get install -y -qq --no-install-recommends ./ward-server_0.1.0_amd64.deb \\
	./ward-cli_0.1.0_amd64.deb >/dev/null
data=/var/lib/ward/server
i=0
until [ -s $data/initial-admin-password ] &&
	WARD_PASSWORD=$(cat $data/initial-admin-password) \\
	ward login --server https://localhost:8443 --ca $data/ca.crt >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 300 ] || { systemctl status wardd; exit 1; }
	sleep 0.2
done
install -d /var/lib/ward/deploy
cp ward-agent_0.1.0_amd64.deb /var/lib/ward/deploy/
cmd=$(ward deploy script --domain / --days 1 | sed -n 's/^command: //p')
mkdir /tmp/host && cp $data/ca.crt /tmp/host/ca.crt
(cd /tmp/host && sh -c "${cmd%| sudo sh}| sh") >/tmp/deploy.log 2>&1 ||
	{ cat /tmp/deploy.log; exit 1; }
grep -q 'ward install: done: the agent runs' /tmp/deploy.log || { cat /tmp/deploy.log; exit 1; }
""")
        self.assertEqual(m.run("systemctl is-active ward-agent").strip(), "active")

        def status():
            return json.loads(m.run("ward agent-upgrade status --json"))

        def agent():
            agents = status()["agents"]
            return agents[0] if agents else None

        def wait(what, cond, timeout=120):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = cond()
                if got:
                    return got
                time.sleep(1)
            raise AssertionError(f"timed out waiting for {what}: {status()}")

        def installed():
            # (An agent dpkg's postinst started reports before dpkg is done.)
            return m.run("dpkg-query -W -f '${Version} ${db:Status-Status}' ward-agent")

        def kept():
            return sorted(os.listdir(m.path("/var/lib/ward/agent/packages")))

        # Behind once a newer package is there: systemd runs it, and dpkg's
        # helper would bring its version back (otherwise: "manual").
        m.run("cp /root/ward-debs/ward-agent_0.1.1_amd64.deb /var/lib/ward/deploy/")
        wait("the agent behind", lambda: agent() and agent()["state"] == "behind")

        m.run("ward agent-upgrade start 0.1.1 --window 60")
        wait("the rollout of 0.1.1 done", lambda: status()["rollout"]["state"] == "done")
        self.assertEqual(status()["rollout"]["counts"].get("upgraded"), 1, status())
        wait("dpkg done with 0.1.1", lambda: installed() == "0.1.1 installed")
        wait("0.1.1 reporting", lambda: agent() is None or agent()["version"] == "0.1.1")
        # Its package is kept to go back to (the helper committed); 0.1.0's,
        # downloaded from wardd with the offer in case 0.1.1 failed, is gone.
        wait("the helper done", lambda: not os.path.exists(
            m.path("/var/lib/ward/agent/upgrade.json")))
        self.assertEqual(kept(), ["ward-agent_0.1.1.deb"])
        self.assertEqual(m.run("systemctl is-active ward-agent").strip(), "active")

        dropin = m.path("/etc/systemd/system/ward-agent.service.d/ward-agent-upgrade.conf")
        for version, window, why in (
                ("0.1.2", 60, "0.1.2 crashed: its service exited with status 3, and was "
                              "restarted 2 times; 0.1.1 came back"),
                ("0.1.3", 15, "0.1.3 started but did not reach the server within 15 s; "
                              "0.1.1 came back")):
            m.run(f"cp /root/ward-debs/ward-agent_{version}_amd64.deb /var/lib/ward/deploy/")
            started = time.monotonic()
            m.run(f"ward agent-upgrade start {version} --window {window} --max_failures 0")
            if version == "0.1.2":
                # The helper killed while the version that crashes is on
                # trial: systemd starts it again (and so does each start
                # of the service, by the drop-in it wrote), and it goes on.
                wait("0.1.2 on trial", lambda: "0.1.2 on trial" in m.journal(
                    "ward-agent-upgrade"), timeout=60)
                self.assertTrue(os.path.exists(dropin))
                m.run("systemctl kill --signal=KILL ward-agent-upgrade.service")
            failed = wait(f"{version} rolled back",
                          lambda: agent() and agent()["state"] == "failed" and agent())
            self.assertEqual(failed.get("reason"), why)
            if version == "0.1.2":
                self.assertGreaterEqual(m.journal("ward-agent-upgrade").count(
                    "upgrade-dpkg: 0.1.2 on trial"), 2, "the helper did not go on")
            # Within the window, dpkg's runs and the old version's first report.
            self.assertLess(time.monotonic() - started, window + 60)
            wait("dpkg done with 0.1.1", lambda: installed() == "0.1.1 installed")
            wait(f"0.1.1 back after {version}", lambda: self.online(m, "0.1.1"))
            self.assertEqual(kept(), ["ward-agent_0.1.1.deb"])
            self.assertFalse(os.path.exists(dropin))
            wait(f"the rollout of {version} over",
                 lambda: status()["rollout"]["state"] == "done")
        # The version that crashed is not tried here again; the one that did
        # not reach the server may be (the network may have been down).
        self.assertEqual(list(json.loads(open(m.path(
            "/var/lib/ward/agent/upgrade-failed.json")).read())), ["0.1.2"])

        # With restart.postpone_updates, the package waits for the service's
        # next start, and is installed through dpkg then.
        m.run("ward settings set --scope root restart.postpone_updates true")
        m.run("cp /root/ward-debs/ward-agent_0.1.4_amd64.deb /var/lib/ward/deploy/")
        m.run("ward agent-upgrade start 0.1.4 --window 60")
        wait("0.1.4 staged", lambda: agent() and agent()["state"] == "restart_pending")
        self.assertEqual(installed(), "0.1.1 installed")
        m.run("systemctl restart ward-agent")
        wait("the rollout of 0.1.4 done", lambda: status()["rollout"]["state"] == "done")
        wait("dpkg done with 0.1.4", lambda: installed() == "0.1.4 installed")
        wait("the helper done", lambda: not os.path.exists(
            m.path("/var/lib/ward/agent/upgrade.json")))
        self.assertEqual(kept(), ["ward-agent_0.1.4.deb"])
        wait("0.1.4 reporting", lambda: self.online(m, "0.1.4"))

    def online(self, m, version):
        """Whether the one client is online, its agent running version."""
        c, = json.loads(m.run("ward client list --json"))["clients"]
        return (c["state"] == "online" and c["status"].get("package_version") == version and
                c["status"].get("install") == "dpkg")

    def test_install_run_purge(self):
        t0 = time.monotonic()
        # The agent comes by deployment, below; the rest from apt.
        debs = self.path("/root/ward-debs")
        os.makedirs(debs)
        for d in self.debs:
            shutil.copy(d, debs)
        in_chroot("apt-get install -y -qq --no-install-recommends " +
                  " ".join(f"/root/ward-debs/{os.path.basename(d)}" for d in self.debs
                           if not os.path.basename(d).startswith("ward-agent_")) +
                  " >/dev/null")
        units = {}
        for name in UNITS:
            if name != "ward-agent":
                units[name] = unit(self.path(f"/lib/systemd/system/{name}.service"))
        # The agent's package names the release it was built for: agents of
        # that release are offered it as an upgrade (rollout.h).
        agent_deb = next(d for d in self.debs if "/ward-agent_" in d)
        with open("/etc/os-release") as f:
            release = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.assertEqual(run("dpkg-deb", "-f", agent_deb, "Ward-Platform").strip(),
                         f"{release['ID']}-{release['VERSION_ID'].strip(chr(34))}")
        # The agent's unit as its package holds it, to run it once deployed.
        with tempfile.TemporaryDirectory(prefix="ward-agent-deb-") as t:
            run("dpkg-deb", "-x", next(d for d in self.debs if "/ward-agent_" in d), t)
            agent_unit = unit(os.path.join(t, "lib/systemd/system/ward-agent.service"))
        t1 = time.monotonic()

        # The daemons from their units, the CLI's session in a home on the
        # chroot's /tmp (a tmpfs gone with the run). wardd's answer to the
        # first login waits for it to listen.
        script = f"""set -eu
export HOME=/tmp/home
mkdir -p $HOME
data=/var/lib/ward/server
pids=""
stop() {{ kill $pids 2>/dev/null || true; wait; }}
trap stop EXIT
{as_unit(units['wardd'])} >/tmp/wardd.log 2>&1 &
pids="$pids $!"
i=0
until [ -s $data/initial-admin-password ] &&
	WARD_PASSWORD=$(cat $data/initial-admin-password) \\
	ward login --server https://localhost:8443 --ca $data/ca.crt >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 150 ] || {{ echo "wardd did not come up:"; cat /tmp/wardd.log; exit 1; }}
	sleep 0.2
done
# The agent, deployed: its package where wardd serves it, the command
# `ward deploy script` prints, run as root (as `| sudo sh` would) in a
# directory holding the server's CA certificate as ca.crt.
install -d /var/lib/ward/deploy
cp /root/ward-debs/ward-agent_*.deb /var/lib/ward/deploy/
ward deploy packages
cmd=$(ward deploy script --domain / --days 1 | sed -n 's/^command: //p')
case "$cmd" in
"curl -fsS --cacert ca.crt https://localhost:8443/deploy/"*"/install.sh | sudo sh") ;;
*) echo "unexpected command: $cmd"; exit 1 ;;
esac
mkdir /tmp/host && cp $data/ca.crt /tmp/host/ca.crt
(cd /tmp/host && sh -c "${{cmd%| sudo sh}}| sh") >/tmp/deploy.log 2>&1 ||
	{{ cat /tmp/deploy.log; ward deploy list --all 1; exit 1; }}
cat /tmp/deploy.log
ward deploy list --all 1 --json | grep -q '"state": "enrolled"' ||
	{{ ward deploy list --all 1; exit 1; }}
echo DEPLOYED
rm -rf /var/lib/ward/deploy /tmp/host
{as_unit(agent_unit)} >/tmp/agent.log 2>&1 &
pids="$pids $!"
ward sps token --days 1 --json >/tmp/sps.bundle
chown {units['ward-sps']['User']} /tmp/sps.bundle
setpriv --reuid={units['ward-sps']['User']} --regid={units['ward-sps']['Group']} \\
	--init-groups -- ward-sps --config /etc/ward/ward-sps.ini enroll \\
	--bundle /tmp/sps.bundle --name sps.ward.test
{as_unit(units['ward-sps'])} >/tmp/sps.log 2>&1 &
pids="$pids $!"
i=0
until ward client list --json | grep -q '"state": "online"' &&
	ward sps servers --json | grep -q '"state": "online"'; do
	i=$((i + 1))
	[ $i -lt 150 ] || {{ ward client list; ward sps servers; cat /tmp/*.log; exit 1; }}
	sleep 0.2
done
echo ONLINE
ward client list
ward sps servers
for p in $pids; do echo "PROC $(stat -c %U /proc/$p) $(readlink /proc/$p/exe)"; done
"""
        with open(self.path("/root/ward-test.sh"), "w") as f:
            f.write(script)
        out = run("unshare", "--net", "--uts", "--", "sh", "-c",
                  'ip link set lo up && hostname localhost && exec sh "$0" run "$1" '
                  "/bin/sh /root/ward-test.sh", CHROOT_SH, CHROOT, timeout=300)
        os.unlink(self.path("/root/ward-test.sh"))
        shutil.rmtree(debs)
        self.assertIn("DEPLOYED", out)
        self.assertIn("ward install: done: the agent is enrolled", out)
        self.assertIn("ONLINE", out)
        # The deployment installed the agent's package as apt would have.
        self.assertEqual(self.check_installed()["ward-agent"], agent_unit)
        procs = {l.split()[2]: l.split()[1] for l in out.splitlines()
                 if l.startswith("PROC ")}
        self.assertEqual(procs, {"/usr/sbin/wardd": "ward", "/usr/sbin/ward-agent": "root",
                                 "/usr/sbin/ward-sps": "ward-sps"}, out)
        t2 = time.monotonic()

        in_chroot("apt-get purge -y -qq " + " ".join(PACKAGES) + " >/dev/null")
        after = files(CHROOT)
        left = {p for p in after - self.before
                if not p.startswith(BOOKKEEPING) and p not in ACCOUNT_BACKUPS}
        gone = {p for p in self.before - after if not p.startswith(BOOKKEEPING)}
        self.assertEqual(left, set(), "purge left these behind")
        self.assertEqual(gone, set(), "install and purge removed these")
        print(f"\ntimes: install {t1 - t0:.0f} s, run {t2 - t1:.0f} s, "
              f"purge {time.monotonic() - t2:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("unshare"):
        print("skipped: needs root, debootstrap and unshare", file=sys.stderr)
        sys.exit(77)
    unittest.main()
