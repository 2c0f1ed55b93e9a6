#!/usr/bin/env python3
"""Makes one schema fixture with the programs of one old commit of Ward.

    python3 make.py --worktree WT [--out DIR] [--keep] [--commit C]

WT is a checkout of the commit, built (WT/build/bin/wardd, ward-agent,
ward-sps). The schema version N is the number of schema_vN strings the
commit defines: in WT/src/server/db/sqlite.c where that exists (from
202e1a1, schema 10, on), in WT/src/server/store.c before. The script
starts that commit's wardd on a fresh data directory through that commit's
own test library (tests/lib/wardtest.py from schema 7 on,
tests/server/test_wardd.py and test_agents.py before), populates it as far
as that version can (domains, settings at every level, real ward-agent
processes enrolled and acknowledging, the signature import, events, tokens,
admins, a smart protection server, removed clients, tasks, agent
deployments), records what that server reports, stops everything with
SIGTERM and writes:

    DIR/data.tar.gz     the data directory (as "data/..."), wardd stopped
    DIR/outside.tar.gz  what lived beside the data directory: the agents' and
                        ward-sps's own folders (credentials), the signature
                        source folder wardd imported from, the agent
                        packages it served (deploy.package_dir, v11+)
    DIR/wardd.ini       the configuration it ran with (paths of this run)
    DIR/expected.json   what the old server reported, and the database read
                        back with sqlite3 after the stop

WT may be a plain export of the commit (git archive, no .git): then
--commit names it, resolved to its full id in this script's repository.

    python3 make.py --worktree WT --archive [--out DIR]

makes DIR/backup.wbk instead, for commits whose wardd makes backups (schema
10 on): that commit's `wardd backup` of DIR/data.tar.gz's data directory
(wardd stopped), encrypted with ARCHIVE_PASSPHRASE. It is the archive of an
earlier version that tests/server/test_migrations.py restores.

Every process it starts is stopped by its own pid; agents run in a UTS
namespace of their own (unshare -u) only so that each has its own host
name. Loopback only.
"""
import argparse
import importlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
# ClamAV's own test data, as in this repository.
CLAMAV_DIR = os.path.join(HERE, "..", "clamav")


# The passphrase of every DIR/backup.wbk (test data, no secret).
ARCHIVE_PASSPHRASE = "the schema fixtures' archives"


def make_archive(wt, out):
    """DIR/backup.wbk: the commit's wardd backs up the fixture's data
    directory."""
    root = tempfile.mkdtemp(prefix="ward-fixture-archive-")
    try:
        with tarfile.open(os.path.join(out, "data.tar.gz")) as tar:
            tar.extractall(root)
        conf = os.path.join(root, "wardd.ini")
        with open(conf, "w") as f:
            f.write(f"[server]\ndata_dir = {root}/data\nhostname = localhost\n")
        target = os.path.join(out, "backup.wbk")
        if os.path.exists(target):
            os.unlink(target)
        env = dict(os.environ, WARD_BACKUP_PASSPHRASE=ARCHIVE_PASSPHRASE)
        done = subprocess.run([os.path.join(wt, "build/bin/wardd"), "backup", "--config", conf,
                               "--out", target], env=env, capture_output=True, text=True,
                              timeout=300)
        print(done.stdout + done.stderr)
        return done.returncode
    finally:
        shutil.rmtree(root, ignore_errors=True)


def schema_version(wt):
    """The number of schema_vN steps the commit's store defines: since
    202e1a1 they live in its SQLite backend, before in store.c."""
    path = os.path.join(wt, "src/server/db/sqlite.c")
    if not os.path.exists(path):
        path = os.path.join(wt, "src/server/store.c")
    with open(path) as f:
        return len(set(re.findall(r"static const char schema_v(\d+)\[\]", f.read())))


def git_head(wt, commit=None):
    """The commit WT is a checkout of; for an export without .git (git
    archive), commit resolved in this script's own repository."""
    done = subprocess.run(["git", "-C", wt, "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if done.returncode == 0 and not commit:
        return done.stdout.strip()
    if not commit:
        raise SystemExit(f"{wt} is no git checkout: name its commit with --commit")
    full = subprocess.run(["git", "-C", HERE, "rev-parse", "--verify", commit + "^{commit}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if done.returncode == 0 and done.stdout.strip() != full:
        raise SystemExit(f"{wt} is a checkout of {done.stdout.strip()}, not of {full}")
    return full


def load_lib(wt):
    """The commit's own Wardd, Agent and wait_for (and its module)."""
    lib = os.path.join(wt, "tests/lib")
    if os.path.exists(os.path.join(lib, "wardtest.py")):
        sys.path.insert(0, lib)
        m = importlib.import_module("wardtest")
        return m.Wardd, m.Agent, m.wait_for, m.AGENT, m
    sys.path.insert(0, os.path.join(wt, "tests/server"))
    w = importlib.import_module("test_wardd")
    a = importlib.import_module("test_agents")
    return w.Wardd, a.Agent, a.wait_for, a.AGENT, a


class Fixture:
    def __init__(self, wt, out, keep, commit=None):
        self.wt = os.path.abspath(wt)
        self.out = os.path.abspath(out)
        self.keep = keep
        self.n = schema_version(self.wt)
        self.commit = git_head(self.wt, commit)
        self.Wardd, self.AgentCls, self.wait_for, self.agent_bin, self.lib = load_lib(self.wt)
        self.root = tempfile.mkdtemp(prefix=f"ward-fixture-v{self.n}-")
        self.server = None
        self.agents = {}      # hostname -> version's Agent object
        self.procs = []       # every process started, for the clean-up
        self.sps = None
        self.notes = []
        self.exp = {"schema_version_source": self.n, "commit": self.commit,
                    "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "notes": self.notes}

    # ---- helpers -----------------------------------------------------
    def api(self, method, path, body=None, expect=(200, 201), token=None):
        status, answer = self.server.request(method, path, body, token=token or self.token)
        if expect and status not in expect:
            raise AssertionError(f"{method} {path} {body!r}: {status} {answer!r}")
        return answer

    def note(self, text):
        print("note:", text, flush=True)
        self.notes.append(text)

    def hostwrap(self, host, argv):
        """argv run with its own host name (UTS namespace), as the same pid."""
        return ["unshare", "-u", "--", "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv]

    def new_agent(self, host):
        a = self.AgentCls(self.root, host)
        a.hostname = host
        self.agents[host] = a
        return a

    def enroll(self, a, *args):
        done = subprocess.run(self.hostwrap(a.hostname, [self.agent_bin, "--config", a.conf,
                                                         "enroll", *args]),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"enroll {a.hostname}: {done.stdout} {done.stderr}")
        return done

    def start_agent(self, a):
        a.log = open(a.log_path, "ab")
        a.proc = subprocess.Popen(self.hostwrap(a.hostname, [self.agent_bin, "--config", a.conf,
                                                             "run"]),
                                  stdout=a.log, stderr=subprocess.STDOUT)
        self.procs.append(a.proc)

    def stop_agent(self, a):
        if getattr(a, "proc", None) and a.proc.poll() is None:
            a.proc.send_signal(signal.SIGTERM)
            try:
                a.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.note(f"agent {a.hostname} ignored SIGTERM for 20 s: killed")
                a.proc.kill()
                a.proc.wait()
            a.log.close()

    def clients(self):
        return self.api("GET", "/api/v1/clients")["clients"]

    def client_id(self, host):
        ids = [c["id"] for c in self.clients() if c["hostname"] == host]
        assert len(ids) == 1, (host, ids)
        return ids[0]

    def all_acked(self):
        cs = self.clients()
        return cs and all(c.get("acked_version") == c.get("version") and c.get("version", 0) > 0
                          for c in cs)

    def set(self, scope, key, value, **kw):
        body = {"scope": scope, "key": key, "value": value}
        body.update(kw)
        return self.api("PUT", "/api/v1/settings", body)

    # ---- the run -----------------------------------------------------
    def run(self):
        n = self.n
        print(f"schema {n}, commit {self.commit}, run folder {self.root}", flush=True)
        extra = ""
        if n >= 2:
            src = os.path.join(self.root, "signatures")
            os.makedirs(src)
            cdir = CLAMAV_DIR
            shutil.copy(os.path.join(cdir, "cvd", "test-5.cvd"), os.path.join(src, "main.cvd"))
            shutil.copy(os.path.join(cdir, "sigs", "Clamav-Unit-Test-Signature.ndb"),
                        os.path.join(src, "local.ndb"))
            # The EICAR file by its MD5 (as test_console's demo_signatures).
            with open(os.path.join(src, "demo.hdb"), "w") as f:
                f.write("44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar\n")
            extra += f"[updates]\nsource_dir = {src}\nwatch_interval = 1s\n"
        extra += "[http]\nlong_poll = 5s\n[notify]\nretry_interval = 2s\n"
        if n >= 11:
            # The agent package the deployments install: a real Debian
            # package in deploy.package_dir (the library's Wardd sets it to
            # ROOT/agent-packages).
            self.deb = self.lib.make_deb(os.path.join(self.root, "agent-packages"), "1.2.3-1")
        self.server = self.Wardd(self.root, extra=extra)
        shutil.copy(self.server.conf, os.path.join(self.root, "wardd.ini.used"))
        self.server.start()
        self.procs.append(self.server.proc)
        self.token = self.server.login()
        health = self.api("GET", "/api/v1/health", token=None)
        self.exp["health"] = health

        # Domains: /Sales, /Sales/EU (nested), /Lab, /Spare (empty).
        for path in ("/Sales/EU", "/Lab", "/Spare"):
            self.api("POST", "/api/v1/domains", {"path": path})
        # Settings before the clients.
        self.set("root", "update.schedule", "daily 02:30")
        if n <= 7:
            self.set("root", "restart.notify", False)   # root-only; retired after v7
        self.set("domain:/Sales", "scan_method", "smart")
        self.set("domain:/Sales/EU", "update.schedule", "weekly fri 22:00")
        self.set("domain:/Lab", "update.scheduled", False)
        if n >= 2:
            self.set("domain:/Lab", "update.window", 45)
        if n >= 9:
            self.set("domain:/Lab", "scan.cpu", "normal")
            self.set("domain:/Sales", "action.malware.first", "delete")
            self.set("root", "quarantine.retention_days", 60)

        # Clients. Before schema 4 every agent enrolls with the bootstrap
        # bundle into the root and is moved; from 4 on two enroll with a
        # token of /Sales/EU and land there.
        bundle = os.path.join(self.server.data, "enroll.bundle")
        hosts = ["ws-sales-1", "ws-sales-2", "ws-eu-1", "ws-eu-2", "ws-lab-1"]
        if n >= 6:
            hosts.append("ws-gone")
        hosts.append("ws-mover")   # stays at the root; moved to another wardd
        eu_bundle = None
        if n >= 4:
            made = self.api("POST", "/api/v1/enroll/tokens", {"domain": "/Sales/EU", "days": 365})
            eu_bundle = os.path.join(self.root, "eu.bundle")
            with open(eu_bundle, "w") as f:
                json.dump(made, f)
            self.exp["enroll_token_made"] = {k: v for k, v in made.items() if k != "token"}
        for h in hosts:
            a = self.new_agent(h)
            if h.startswith("ws-eu") and eu_bundle:
                self.enroll(a, "--bundle", eu_bundle)
            else:
                self.enroll(a, "--bundle", bundle)
            self.start_agent(a)
        self.wait_for(lambda: len(self.clients()) == len(hosts), timeout=60, what="all enrolled")
        ids = {h: self.client_id(h) for h in hosts}
        self.exp["client_ids"] = ids
        moves = {"ws-sales-1": "/Sales", "ws-sales-2": "/Sales", "ws-lab-1": "/Sales",
                 "ws-gone": "/Lab"}
        if n < 4:
            moves.update({"ws-eu-1": "/Sales/EU", "ws-eu-2": "/Sales/EU"})
        for h, to in moves.items():
            if h in ids:
                self.api("POST", "/api/v1/clients/move", {"ids": [ids[h]], "to": to})
        self.wait_for(self.all_acked, timeout=90, what="settings acknowledged after moves")
        # One client moved between domains: /Sales -> /Lab.
        self.api("POST", "/api/v1/clients/move", {"ids": [ids["ws-lab-1"]], "to": "/Lab"})
        # Client-level settings: an override of the domain's scan method,
        # and the roaming privilege on another.
        self.set(f"client:{ids['ws-sales-2']}", "scan_method", "conventional")
        self.set(f"client:{ids['ws-eu-2']}", "roaming", True)
        self.set(f"client:{ids['ws-lab-1']}", "update.allow_update_now", False)
        if n >= 2:
            self.set(f"client:{ids['ws-eu-1']}", "update.window", 90)
        if n >= 9:
            self.set(f"client:{ids['ws-eu-1']}", "scan.paths", ["/srv", "/home"])
        # A change at the root after the clients: deliveries to those that
        # inherit it.
        self.set("root", "update.schedule", "daily 03:15")
        self.wait_for(self.all_acked, timeout=120, what="settings acknowledged")

        if n >= 2:
            self.wait_for(lambda: all(c["version"] for c in self.api("GET", "/api/v1/update")
                                      ["components"]), timeout=90, what="the first import")
        if n >= 4:
            self.detection(self.agents["ws-lab-1"])
        try:
            self.move_server(ids["ws-mover"])
        except Exception as e:  # optional
            self.note(f"move to another server: {e!r}")
        if n >= 3:
            try:
                self.enroll_sps()
            except Exception as e:  # optional
                self.note(f"smart protection server not enrolled: {e!r}")
        if n >= 6:
            gone = self.agents["ws-gone"]
            self.stop_agent(gone)
            self.api("POST", "/api/v1/clients/remove", {"ids": [ids["ws-gone"]]})
        if n >= 7:
            self.api("POST", "/api/v1/admins", {"name": "ops", "role": "admin",
                                                "new_password": "ops-password-0123456789"})
            self.api("POST", "/api/v1/admins", {"name": "auditor", "role": "read-only",
                                                "new_password": "auditor-password-0123456789"})
        if n >= 9:
            try:
                self.scan_task(ids["ws-eu-1"])
            except Exception as e:
                self.note(f"scan task: {e!r}")
        if n >= 11:
            self.deployments(ids)
        self.wait_for(self.all_acked, timeout=120, what="settings acknowledged (final)")
        self.report(ids)

    def detection(self, a):
        """A detection event: the agent (conventional scan) scans an EICAR file
        once its virus pattern is installed (as test_console does)."""
        self.wait_for(lambda: "virus-pattern" in a.log_text(), timeout=90,
                      what=f"{a.hostname} installing the virus pattern")
        files = os.path.join(self.root, "infected")
        os.makedirs(files, exist_ok=True)
        with open(os.path.join(files, "eicar.com"), "wb") as f:
            f.write(EICAR)
        scan = subprocess.run([self.agent_bin, "--config", a.conf, "scan", files],
                              capture_output=True, text=True, timeout=120)
        if "FOUND" not in scan.stdout:
            self.note(f"scan found nothing: {scan.stdout} {scan.stderr}")
            return
        self.wait_for(lambda: self.api("GET", "/api/v1/logs?kind=detection")["events"],
                      timeout=60, what="the detection in the server's log")

    def move_server(self, cid):
        """Moves a client to a second wardd of the same commit (as
        test_move does); the first keeps it as moved. The second server's
        data is not kept."""
        b_root = os.path.join(self.root, "second")
        os.makedirs(b_root)
        extra = "[http]\nlong_poll = 5s\n"
        if self.n >= 2:
            os.makedirs(os.path.join(b_root, "no-signatures"))
            extra = f"[updates]\nsource_dir = {b_root}/no-signatures\n" + extra
        b = self.Wardd(b_root, extra=extra)
        b.start()
        self.procs.append(b.proc)
        try:
            with open(os.path.join(b.data, "enroll-token")) as f:
                token = f.read().strip()
            with open(os.path.join(b.data, "ca.crt")) as f:
                ca = f.read()
            self.exp["move_server"] = self.api("POST", "/api/v1/clients/move-server", {
                "ids": [cid], "server": f"https://localhost:{b.port}", "token": token,
                "ca": ca})
            self.wait_for(lambda: {c["id"]: c["state"] for c in self.clients()}[cid] == "moved",
                          timeout=90, what="the first server marking the client moved")
        finally:
            self.stop_agent(self.agents["ws-mover"])
            b.stop()

    def enroll_sps(self):
        sps_bin = os.path.join(self.wt, "build/bin/ward-sps")
        d = os.path.join(self.root, "sps")
        os.makedirs(d)
        conf = os.path.join(d, "sps.ini")
        port = self.lib.free_port() if hasattr(self.lib, "free_port") else \
            importlib.import_module("test_wardd").free_port()
        with open(conf, "w") as f:
            f.write(f"[sps]\nstate_dir = {d}/state\nlisten = 127.0.0.1:{port}\n"
                    "update_interval = 10s\nttl = 300\n")
        if self.n >= 5:
            made = self.api("POST", "/api/v1/sps/tokens", {})
            b = os.path.join(self.root, "sps.bundle")
            with open(b, "w") as f:
                json.dump(made, f)
        else:
            b = os.path.join(self.server.data, "enroll.bundle")
        # The names its tests give (from 5 on, none of wardd's own).
        names = ["--name", "localhost", "--name", "127.0.0.1"] if self.n < 5 else \
            ["--name", "127.0.0.1", "--name", "::1"]
        done = subprocess.run([sps_bin, "--config", conf, "enroll", "--bundle", b, *names],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(done.stdout + done.stderr)
        log = open(os.path.join(d, "sps.log"), "ab")
        p = subprocess.Popen([sps_bin, "--config", conf, "run"], stdout=log,
                             stderr=subprocess.STDOUT)
        self.procs.append(p)
        try:
            self.wait_for(lambda: any(s.get("status") for s in
                                      self.api("GET", "/api/v1/sps-servers")["servers"]),
                          timeout=40, what="the smart protection server's report")
        except Exception as e:
            self.note(f"ward-sps enrolled but no report seen: {e!r}")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        log.close()

    def scan_task(self, cid):
        files = os.path.join(self.root, "scanme")
        os.makedirs(files, exist_ok=True)
        with open(os.path.join(files, "clean.txt"), "w") as f:
            f.write("nothing here\n")
        made = self.api("POST", "/api/v1/scans", {"scope": f"client:{cid}", "paths": [files]})
        self.exp["scan_now"] = made
        self.wait_for(lambda: all(t["state"] in ("completed", "failed", "cancelled")
                                  for t in self.api("GET", "/api/v1/tasks")["tasks"]),
                      timeout=90, what="the scan task ending")

    def curl(self, url, *args):
        """url fetched as a host would (curl trusting the server's CA):
        (body, HTTP status)."""
        done = subprocess.run(["curl", "-sS", "--cacert", os.path.join(self.server.data,
                                                                       "ca.crt"),
                               "-w", "\n%{http_code}", *args, url], capture_output=True,
                              timeout=60)
        body, _, status = done.stdout.rpartition(b"\n")
        return body, int(status or 0)

    def deployments(self, ids):
        """Agent deployments (schema 11): an install script for /Lab, fetched
        twice, so two deployments; the first downloads the package and its
        agent (a new one, ws-deployed) enrolls with --deployment and runs,
        the second reports its install step failed."""
        made = self.api("POST", "/api/v1/deploy/script", {"domain": "/Lab", "days": 365})
        self.exp["deploy_script_made"] = {k: v for k, v in made.items()
                                          if k not in ("url", "command")}
        url = made["url"]
        m = re.fullmatch(r"(https://[^/]+/deploy/([0-9a-f]{64}))/install\.sh", url)
        assert m, url
        base, token = m.group(1), m.group(2)
        started = []
        for _ in range(2):
            before = {d["id"] for d in self.api("GET", "/api/v1/deployments?all=1")
                      ["deployments"]}
            script, status = self.curl(url)
            assert status == 200, (status, script[-300:])
            new = [d for d in self.api("GET", "/api/v1/deployments?all=1")["deployments"]
                   if d["id"] not in before]
            assert len(new) == 1, new
            assert f"deployment={new[0]['id']}\n".encode() in script, new[0]["id"]
            started.append(new[0]["id"])
        first, second = started
        # The first: its package, then a new agent enrolled for it.
        body, status = self.curl(f"{base}/ward-agent.deb?arch=amd64&deployment={first}")
        assert status == 200, (status, body[-300:])
        with open(self.deb, "rb") as f:
            assert body == f.read(), "the package served is not the one in package_dir"
        a = self.new_agent("ws-deployed")
        self.enroll(a, "--server", base.split("/deploy/")[0], "--token", token, "--ca",
                    os.path.join(self.server.data, "ca.crt"), "--deployment", first)
        self.start_agent(a)
        ids["ws-deployed"] = self.client_id("ws-deployed")
        self.exp["client_ids"] = ids
        # The second: its install step failed, reported as the script's
        # fail() does.
        body, status = self.curl(f"{base}/report?deployment={second}&step=install",
                                 "-H", "Content-Type: text/plain", "--data-binary",
                                 "installing the package failed: dpkg: error: dpkg frontend "
                                 "lock was locked by another process with pid 812\n")
        assert status == 200, (status, body[-300:])
        states = {d["id"]: d for d in self.api("GET", "/api/v1/deployments?all=1")
                  ["deployments"]}
        assert (states[first]["state"], states[first]["client"]) == ("enrolled",
                                                                      ids["ws-deployed"]), \
            states[first]
        assert states[second]["state"] == "failed", states[second]
        self.exp["deployment_ids"] = {"enrolled": first, "failed": second}

    def report(self, ids):
        n, e = self.n, self.exp
        e["tree"] = self.api("GET", "/api/v1/tree")
        # Each node's own settings and those in effect (the API computes
        # the effective ones from the tree).
        nodes = {"root": "root"}

        def walk(t, path):
            for d in t.get("domains", []):
                p = path + "/" + d["name"]
                nodes[p] = f"domain:{p}"
                walk(d, p)
        walk(e["tree"], "")
        for h, cid in ids.items():
            if n < 6 or h != "ws-gone":
                nodes[f"client:{h}"] = f"client:{cid}"
        e["settings"] = {name: self.api("GET", f"/api/v1/settings?scope={scope}")
                         for name, scope in nodes.items()}
        e["clients_list"] = self.api("GET", "/api/v1/clients")
        e["clients"] = {}
        for c in e["clients_list"]["clients"]:
            e["clients"][c["hostname"]] = self.api("GET", f"/api/v1/client?id={c['id']}")
        e["export"] = self.api("GET", "/api/v1/export")
        if n >= 2:
            e["update"] = self.api("GET", "/api/v1/update")
        if n >= 3:
            e["sps_servers"] = self.api("GET", "/api/v1/sps-servers")
        if n >= 4:
            e["events"] = self.api("GET", "/api/v1/logs?limit=100000")
            e["enroll_tokens"] = self.api("GET", "/api/v1/enroll/tokens")
            e["settings_keys"] = self.api("GET", "/api/v1/settings/keys")
        if n >= 6:
            e["removed_clients"] = self.api("GET", "/api/v1/clients/removed")
        if n >= 7:
            e["admins"] = self.api("GET", "/api/v1/admins")
        if n >= 9:
            e["tasks"] = self.api("GET", "/api/v1/tasks?limit=10000")
            e["quarantine"] = self.api("GET", "/api/v1/quarantine")
        if n >= 11:
            e["deployments"] = self.api("GET", "/api/v1/deployments?all=1")

    def stop_all(self):
        for a in self.agents.values():
            self.stop_agent(a)
        if self.server and self.server.proc and self.server.proc.poll() is None:
            code = self.server.stop()
            self.exp["wardd_exit"] = code
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def save_data(self):
        """The data directory as wardd left it, before anything else opens
        its database; the database is then read from a copy."""
        os.makedirs(self.out, exist_ok=True)
        data = self.server.data
        e = self.exp
        e["data_files"] = {os.path.relpath(os.path.join(dp, f), data):
                           os.path.getsize(os.path.join(dp, f))
                           for dp, _, fs in os.walk(data) for f in fs}
        e["data_bytes"] = sum(e["data_files"].values())
        with tarfile.open(os.path.join(self.out, "data.tar.gz"), "w:gz") as tar:
            tar.add(data, arcname="data")
        self.copy = os.path.join(self.root, "data-copy")
        shutil.copytree(data, self.copy)

    def read_db(self):
        db = os.path.join(self.copy, "ward.db")
        e = self.exp
        e["user_version"] = int(subprocess.run(["sqlite3", db, "PRAGMA user_version"],
                                               capture_output=True, text=True,
                                               check=True).stdout.strip())
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        e["tables"] = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                       for t in tables}
        e["schema_sql"] = [r[0] for r in con.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")]

        def val(v):
            if isinstance(v, bytes):
                return {"hex": v.hex()}
            return v
        dump = {}
        for t in tables:
            cur = con.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            dump[t] = [dict(zip(cols, map(val, row))) for row in cur]
        e["db"] = dump
        # What a test most wants, said plainly: each client's effective
        # settings as stored (clients.eff_json, canonical JSON).
        e["eff_json"] = {r["hostname"]: json.loads(r["eff_json"]) if r["eff_json"] else None
                         for r in dump["clients"]}
        con.close()

    def save(self):
        e = self.exp
        with tarfile.open(os.path.join(self.out, "outside.tar.gz"), "w:gz") as tar:
            for h, a in self.agents.items():
                tar.add(a.dir, arcname=f"agents/{h}")
            for d in ("sps", "signatures", "agent-packages"):
                if os.path.isdir(os.path.join(self.root, d)):
                    tar.add(os.path.join(self.root, d), arcname=d)
        shutil.copy(os.path.join(self.root, "wardd.ini.used"), os.path.join(self.out,
                                                                           "wardd.ini"))
        e["run_root"] = self.root
        e["port"] = self.server.port
        with open(os.path.join(self.out, "expected.json"), "w") as f:
            json.dump(e, f, indent=1, sort_keys=True)
            f.write("\n")
        with open(os.path.join(self.out, "wardd.log"), "w") as f:
            f.write(self.server.log_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worktree", required=True)
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true", help="keep the run folder")
    ap.add_argument("--commit", help="the commit WT holds, when WT is no git checkout "
                    "(an export made by git archive)")
    ap.add_argument("--archive", action="store_true", help="make DIR/backup.wbk from "
                    "DIR/data.tar.gz with the commit's wardd, nothing else")
    args = ap.parse_args()
    n = schema_version(args.worktree)
    if args.archive:
        return make_archive(args.worktree, args.out or os.path.join(HERE, f"v{n}"))
    fx = Fixture(args.worktree, args.out or os.path.join(HERE, f"v{n}"), args.keep,
                 args.commit)
    ok = False
    try:
        fx.run()
        ok = True
    except Exception:
        traceback.print_exc()
        try:
            print(fx.server.log_text()[-4000:])
        except Exception:
            pass
    finally:
        fx.stop_all()
    if ok:
        fx.save_data()
        fx.read_db()
        fx.save()
        print(f"v{n}: user_version {fx.exp['user_version']}, tables {fx.exp['tables']}")
    if not fx.keep and ok:
        shutil.rmtree(fx.root, ignore_errors=True)
    else:
        print("run folder kept:", fx.root)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
