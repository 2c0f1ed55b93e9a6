#!/usr/bin/env python3
"""Deploying agents: wardd serves the agent packages of deploy.package_dir
(the newest version of each architecture; files that are no ward-agent
package are listed with the reason) and an install script for an
enrollment token's domain, which `ward deploy script` prints the command
of; each deployment is followed from the script's download to the agent
it enrolled (a real ward-agent enrolling with --deployment), or to the
step the script reports failed, its timeout or its cancellation; the
upgrade preflight refuses while one is in progress. The token in a
deployment's path is never written to the log.

The packages are real Debian packages made with dpkg-deb; the script is
run by the real sh and curl as a user other than root, so that it stops at
its first step and reports it (installing it as root is
tests/packaging/test_debs.py's, in a chroot)."""
import hashlib
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import WARD, WARDD, Agent, Wardd, make_deb, temp_dir, wait_for  # noqa: E402


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class DeployTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir("ward-deploy-", self.addCleanup).name
        self.pkgs = os.path.join(self.root, "agent-packages")
        os.makedirs(self.pkgs)

    def server(self, extra=""):
        server = Wardd(self.root, extra=extra)
        server.start()
        self.addCleanup(server.stop)
        self.token = server.login()
        return server

    def api(self, server, method, path, body=None, expect=200):
        status, answer = server.request(method, path, body, token=self.token)
        self.assertEqual(status, expect, answer)
        return answer

    def curl(self, server, url, *args):
        return subprocess.run(["curl", "-sS", "--cacert", os.path.join(server.data, "ca.crt"),
                               "-w", "\n%{http_code}", *args, url], capture_output=True,
                              timeout=60)

    def deployments(self, server, all_=False):
        return self.api(server, "GET", "/api/v1/deployments" + ("?all=1" if all_ else ""))

    def preflight(self, server):
        done = subprocess.run([WARDD, "upgrade", "--check", "--json", "--config", server.conf],
                              capture_output=True, text=True, timeout=60)
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        return done.returncode, checks["deployments"]

    def test_packages_newest_per_architecture(self):
        old = make_deb(self.pkgs, "1.9.0-1")
        new = make_deb(self.pkgs, "1.10.0~rc1-1")
        make_deb(self.pkgs, "1:0.1-1", arch="arm64")
        make_deb(self.pkgs, "2.0", package="ward-server")
        with open(os.path.join(self.pkgs, "broken.deb"), "wb") as f:
            f.write(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n")
        os.symlink(old, os.path.join(self.pkgs, "link.deb"))
        with open(os.path.join(self.pkgs, "notes.txt"), "w") as f:
            f.write("not a package: not looked at\n")
        server = self.server()
        pk = self.api(server, "GET", "/api/v1/deploy/packages")
        self.assertEqual(pk["dir"], self.pkgs)
        rows = {(p["version"], p["arch"]): p for p in pk["packages"]}
        self.assertEqual(set(rows), {("1.9.0-1", "amd64"), ("1.10.0~rc1-1", "amd64"),
                                     ("1:0.1-1", "arm64")})
        # Debian's order: 1.10.0~rc1 is after 1.9.0; one of each architecture.
        self.assertTrue(rows[("1.10.0~rc1-1", "amd64")]["served"])
        self.assertFalse(rows[("1.9.0-1", "amd64")]["served"])
        self.assertTrue(rows[("1:0.1-1", "arm64")]["served"])
        self.assertEqual(rows[("1.10.0~rc1-1", "amd64")]["sha256"], sha256(new))
        problems = {p["file"]: p["error"] for p in pk["problems"]}
        self.assertIn("ward-server_2.0_amd64.deb", problems)
        self.assertIn("the package ward-server, not ward-agent",
                      problems["ward-server_2.0_amd64.deb"])
        self.assertIn("broken.deb", problems)
        self.assertIn("link.deb", problems)  # a symbolic link is not followed
        self.assertNotIn("notes.txt", problems)
        # The command-line tool shows the same.
        env = server.cli_env()
        subprocess.run([WARD, "login", "--server", f"https://localhost:{server.port}", "--ca",
                        os.path.join(server.data, "ca.crt")], env=env, check=True,
                       capture_output=True, timeout=60)
        done = subprocess.run([WARD, "deploy", "packages"], env=env, capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("1.10.0~rc1-1", done.stdout)
        # ward deploy script prints the command to run on the hosts.
        done = subprocess.run([WARD, "deploy", "script", "--domain", "/", "--days", "1"],
                              env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"command: curl -fsS --cacert ca\.crt https://localhost:"
                         rf"{server.port}/deploy/[0-9a-f]{{64}}/install\.sh \| sudo sh\n")
        # A newer one dropped in is served from the next request on.
        make_deb(self.pkgs, "1.10.0-1")
        pk = self.api(server, "GET", "/api/v1/deploy/packages")
        served = [p["version"] for p in pk["packages"] if p["served"] and p["arch"] == "amd64"]
        self.assertEqual(served, ["1.10.0-1"])

    def test_deployment_followed_to_the_enrolled_agent(self):
        deb = make_deb(self.pkgs, "1.2.3-1")
        server = self.server()
        lab = self.api(server, "POST", "/api/v1/domains", {"path": "/Lab"}, expect=201)
        made = self.api(server, "POST", "/api/v1/deploy/script",
                        {"domain": "/Lab", "days": 1, "max_uses": 5}, expect=201)
        url = made["url"]
        token = re.fullmatch(rf"https://localhost:{server.port}/deploy/([0-9a-f]{{64}})"
                             r"/install\.sh", url).group(1)
        self.assertEqual(made["command"], f"curl -fsS --cacert ca.crt {url} | sudo sh")
        self.assertEqual((made["domain"], made["max_uses"]), ("/Lab", 5))
        self.assertEqual(made["packages"], [{"arch": "amd64", "version": "1.2.3-1"}])
        with open(os.path.join(server.data, "ca.crt")) as f:
            self.assertEqual(made["ca"], f.read())
        self.assertEqual(self.deployments(server)["in_progress"], 0)
        code, check = self.preflight(server)
        self.assertEqual(check["result"], "ok")

        # The script, as the command fetches it: the package it names, and
        # a new deployment in progress.
        got = self.curl(server, url)
        script, status = got.stdout.rsplit(b"\n", 1)
        self.assertEqual(status, b"200", got.stderr)
        script = script.decode()
        self.assertIn(f"amd64) version='1.2.3-1' sha256={sha256(deb)} ;;", script)
        self.assertIn("domain='/Lab'", script)
        self.assertTrue(script.rstrip().endswith("ward_install"))
        syntax = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(syntax.returncode, 0, syntax.stderr)
        listed = self.deployments(server)
        self.assertEqual(listed["in_progress"], 1)
        dep = listed["deployments"][0]
        self.assertIn(f"deployment={dep['id']}\n", script)
        self.assertEqual((dep["state"], dep["domain"], dep["address"]),
                         ("script", "/Lab", "127.0.0.1"))
        self.assertEqual(dep["deadline"] - dep["started"], 1800)

        # The upgrade waits for it, wardd running or stopped.
        code, check = self.preflight(server)
        self.assertEqual((code, check["result"]), (1, "fail"))
        self.assertIn("1 agent deployments are in progress: 127.0.0.1 (" + dep["id"],
                      check["detail"])
        server.stop()
        code, check = self.preflight(server)
        self.assertEqual((code, check["result"]), (1, "fail"))
        server.start()

        # The package, for that deployment.
        base = url.rsplit("/", 1)[0]
        got = self.curl(server, f"{base}/ward-agent.deb?arch=amd64&deployment={dep['id']}")
        body, status = got.stdout.rsplit(b"\n", 1)
        self.assertEqual(status, b"200")
        self.assertEqual(hashlib.sha256(body).hexdigest(), sha256(deb))
        dep = self.deployments(server)["deployments"][0]
        self.assertEqual((dep["state"], dep["arch"], dep["version"]),
                         ("package", "amd64", "1.2.3-1"))
        # No package for another architecture; none for a deployment that
        # is not one.
        got = self.curl(server, f"{base}/ward-agent.deb?arch=s390x&deployment={dep['id']}")
        self.assertTrue(got.stdout.endswith(b"\n404"), got.stdout)
        got = self.curl(server, f"{base}/ward-agent.deb?arch=amd64&deployment={'0' * 32}")
        self.assertTrue(got.stdout.endswith(b"\n410"), got.stdout)

        # The agent enrolls with the token and the deployment's id, as the
        # script runs it: the deployment ends with its client.
        agent = Agent(self.root, "host1")
        done = agent.enroll("--server", f"https://localhost:{server.port}", "--token", token,
                            "--ca", os.path.join(server.data, "ca.crt"), "--deployment",
                            dep["id"])
        self.assertEqual(done.returncode, 0, done.stderr)
        client = agent.credential()["client"]
        listed = self.deployments(server, all_=True)
        self.assertEqual(listed["in_progress"], 0)
        dep = listed["deployments"][0]
        self.assertEqual((dep["state"], dep["client"]), ("enrolled", client))
        shown = self.api(server, "GET", f"/api/v1/client?id={client}")
        self.assertEqual(shown["domain"], lab["id"])
        code, check = self.preflight(server)
        self.assertEqual(check["result"], "ok")
        # The package cannot be fetched again for an ended deployment.
        got = self.curl(server, f"{base}/ward-agent.deb?arch=amd64&deployment={dep['id']}")
        self.assertTrue(got.stdout.endswith(b"\n410"), got.stdout)
        # A malformed deployment id in an enrollment is refused.
        done = Agent(self.root, "host2").enroll(
            "--server", f"https://localhost:{server.port}", "--token", token, "--ca",
            os.path.join(server.data, "ca.crt"), "--deployment", "X" * 32)
        self.assertEqual(done.returncode, 2)
        self.assertIn("--deployment: expected 32 lowercase hex digits", done.stderr)

        text = server.log_text()
        self.assertIn(f"deployment {dep['id']}: 127.0.0.1 downloaded the install script", text)
        self.assertRegex(text, rf"deployment {dep['id']}: \S+ enrolled as client {client}\n")
        # The token in the path is never logged.
        self.assertNotIn(token, text)
        logs = self.api(server, "GET", "/api/v1/logs?kind=system")
        self.assertFalse([e for e in logs["events"] if token in e["message"]])

    def test_script_reports_its_failure(self):
        """Run by the real sh as a user other than root, the script stops at
        its first step and tells wardd, which ends the deployment."""
        make_deb(self.pkgs, "1.2.3-1")
        server = self.server()
        made = self.api(server, "POST", "/api/v1/deploy/script", {}, expect=201)
        self.assertEqual(made["domain"], "/")
        got = self.curl(server, made["url"])
        script = got.stdout.rsplit(b"\n", 1)[0]
        user = [] if os.geteuid() != 0 else ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                              "--clear-groups", "--"]
        done = subprocess.run(user + ["sh"], input=script, capture_output=True, timeout=60,
                              cwd="/")
        self.assertEqual(done.returncode, 1)
        self.assertIn(b"ward install: run it as root", done.stderr)
        dep = self.deployments(server, all_=True)["deployments"][0]
        self.assertEqual(dep["state"], "failed")
        self.assertEqual(dep["message"], "root: run it as root (... | sudo sh)")
        self.assertIn(f"deployment {dep['id']} on 127.0.0.1 failed at step root: run it "
                      "as root", server.log_text())
        self.assertEqual(self.deployments(server)["in_progress"], 0)

    def test_timeout_cancel_and_caps(self):
        make_deb(self.pkgs, "1.2.3-1")
        server = self.server("[deploy]\ntimeout = 5s\nmax_in_progress = 2\n")
        made = self.api(server, "POST", "/api/v1/deploy/script", {}, expect=201)
        self.assertEqual(made["timeout"], 5)
        for _ in range(2):
            self.assertTrue(self.curl(server, made["url"]).stdout.endswith(b"\n200"))
        # At the cap: 503 with Retry-After.
        got = self.curl(server, made["url"], "-D", "-")
        self.assertTrue(got.stdout.endswith(b"\n503"), got.stdout)
        self.assertIn(b"retry-after: 60", got.stdout.lower())
        listed = self.deployments(server)
        self.assertEqual(listed["in_progress"], 2)
        first, second = listed["deployments"]
        metrics = self.curl(server, f"https://localhost:{server.port}/metrics", "-H",
                            f"Authorization: Bearer {self.token}").stdout.decode()
        self.assertIn('\nward_deployments{state="script"} 2\n', metrics)
        self.assertIn('\nward_deployments{state="enrolled"} 0\n', metrics)
        # Cancelled: no longer in progress.
        cancelled = self.api(server, "POST", "/api/v1/deployments/cancel", {"id": first["id"]})
        self.assertEqual((cancelled["state"], cancelled["message"]),
                         ("cancelled", "cancelled by admin"))
        self.api(server, "POST", "/api/v1/deployments/cancel", {"id": first["id"]}, expect=404)
        self.api(server, "POST", "/api/v1/deployments/cancel", {"id": "x"}, expect=400)
        self.assertEqual(self.deployments(server)["in_progress"], 1)
        # The other times out: listed so at once, logged by the sweep.
        wait_for(lambda: self.deployments(server)["in_progress"] == 0, timeout=10,
                 what="the deployment past its deadline")
        code, check = self.preflight(server)
        self.assertEqual(check["result"], "ok")
        wait_for(lambda: f"deployment {second['id']} (from 127.0.0.1, into /) timed out"
                 in server.log_text(), timeout=20, what="the timeout logged")
        states = {d["id"]: d["state"] for d in self.deployments(server, all_=True)["deployments"]}
        self.assertEqual(states[second["id"]], "timed-out")
        self.assertEqual(states[first["id"]], "cancelled")

    def test_refused(self):
        server = self.server()
        made = self.api(server, "POST", "/api/v1/deploy/script", {}, expect=201)
        # No package yet: the answer says so, the script is refused (503).
        self.assertIn("no ward-agent package in " + self.pkgs, made["warning"])
        got = self.curl(server, made["url"])
        self.assertTrue(got.stdout.endswith(b"\n503"), got.stdout)
        make_deb(self.pkgs, "1.2.3-1")
        base = made["url"].rsplit("/", 1)[0]
        # Not a token, another token, a revoked one: 401.
        for url in (f"https://localhost:{server.port}/deploy/{'a' * 64}/install.sh",
                    f"https://localhost:{server.port}/deploy/short/install.sh"):
            self.assertTrue(self.curl(server, url).stdout.endswith(b"\n401"))
        # The report: a step the script does not have, a malformed id.
        got = self.curl(server, f"{base}/report?deployment={'0' * 32}&step=rm",
                        "--data-binary", "x")
        self.assertTrue(got.stdout.endswith(b"\n400"), got.stdout)
        got = self.curl(server, f"{base}/report?deployment=zz&step=install",
                        "--data-binary", "x")
        self.assertTrue(got.stdout.endswith(b"\n400"), got.stdout)
        got = self.curl(server, f"{base}/report?deployment={'0' * 32}&step=install",
                        "--data-binary", "x")
        self.assertTrue(got.stdout.endswith(b"\n404"), got.stdout)
        # Another path under the token: 404, the token not said back.
        got = self.curl(server, f"{base}/other")
        self.assertTrue(got.stdout.endswith(b"\n404"), got.stdout)
        self.assertNotIn(base.rsplit("/", 1)[1].encode(), got.stdout)
        self.api(server, "POST", "/api/v1/enroll/tokens/revoke", {"id": made["token_id"]})
        self.assertTrue(self.curl(server, made["url"]).stdout.endswith(b"\n401"))
        self.assertNotIn(base.rsplit("/", 1)[1], server.log_text())
        self.assertEqual(self.deployments(server)["in_progress"], 0)


if __name__ == "__main__":
    unittest.main()
