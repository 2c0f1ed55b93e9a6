#!/usr/bin/env python3
"""Alerts: rules that raise them (detections, outbreaks, outdated
components, smart protection unreachable, real-time protection
unavailable, not on the settings asked or letting accesses through
unscanned, failed imports, failed backups) and the channels that carry
them, each against a real peer on loopback: email to a real SMTP server
(Debian's aiosmtpd, run by Debian's /usr/bin/python3, delivering into a
Maildir), syslog over UDP and TCP (the receiver checks RFC 5424's grammar,
and is itself checked against util-linux's `logger --rfc5424`), and a
webhook (an HTTPS server with wardd's own certificate, which checks the
body's HMAC-SHA256). Each rule is rate-limited (what it raises meanwhile
goes out in one message), each message logged; a held alert survives a
SIGKILL; bad channels, rules and a refused STARTTLS are answered with
the reason."""
import hashlib
import hmac
import http.server
import json
import mailbox
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from syslogrecv import RFC5424, SyslogReceiver  # noqa: E402
from wardtest import (WARD, AgentWire, Wardd, WardSps, demo_signatures,  # noqa: E402
                      free_port, sps_bundle, temp_dir, wait_for, wait_for_components)

# Debian's Python, which Debian's aiosmtpd is installed for.
DEBIAN_PYTHON = "/usr/bin/python3"
SECRET = "a webhook secret"

class WebhookReceiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        WebhookReceiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class AlertsTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir("ward-alerts-", self.addCleanup).name
        self.maildir = os.path.join(self.root, "maildir")
        self.smtp_port = free_port()
        self.smtp = subprocess.Popen(
            [DEBIAN_PYTHON, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}",
             "-c", "aiosmtpd.handlers.Mailbox", self.maildir],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.smtp.wait)
        self.addCleanup(self.smtp.terminate)
        wait_for(self.smtp_listening, timeout=20, what="the SMTP server")
        self.syslog = SyslogReceiver()
        # Signatures to build components from; backups into a file, which
        # fail.
        self.source = demo_signatures(self.root)
        passphrase = os.path.join(self.root, "passphrase")
        with open(passphrase, "w") as f:
            f.write("a passphrase\n")
        with open(os.path.join(self.root, "not-a-directory"), "w") as f:
            f.write("x\n")
        self.server = Wardd(self.root, extra=(
            f"[alerts]\ncheck_interval = 1s\n[updates]\nsource_dir = {self.source}\n"
            "[agents]\nheartbeat_interval = 5s\n"
            f"[backup]\ndir = {self.root}/not-a-directory\npassphrase_file = {passphrase}\n"))
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        wait_for_components(self.server, self.token)

    def smtp_listening(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.smtp_port)) == 0

    def api(self, method, path, body=None, expect=200):
        status, answer = self.server.request(method, path, body, token=self.token, timeout=60)
        self.assertEqual(status, expect, answer)
        return answer

    def mails(self):
        if not os.path.isdir(self.maildir):
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        return sorted((m for m in box), key=lambda m: m["Date"] or "")

    def email_channel(self, name="mail", **extra):
        config = {"url": f"smtp://127.0.0.1:{self.smtp_port}", "from": "ward@example.org",
                  "to": ["soc@example.org", "admin@example.org"], "starttls": "no", **extra}
        return self.api("PUT", "/api/v1/alerts/channels",
                        {"name": name, "kind": "email", "config": config})

    def rule(self, name, kind, channels, expect=200, **extra):
        return self.api("PUT", "/api/v1/alerts/rules",
                        {"name": name, "kind": kind, "channels": channels, **extra},
                        expect=expect)

    def detect(self, wire, path, name="Eicar-Test-Signature"):
        status, _ = wire.call("POST", "/api/v1/agent/detections",
                              {"detections": [{"time": int(time.time()), "path": path,
                                               "name": name, "method": "conventional"}]})
        self.assertEqual(status, 200)

    def test_detections_by_email_rate_limited(self):
        self.email_channel()
        self.rule("each-detection", "detection", ["mail"], every=4)
        wire, = AgentWire.enrolled(self.server, self.root, "host1")
        self.detect(wire, "/home/a/eicar.com")
        wait_for(lambda: len(self.mails()) == 1, timeout=15, what="the first mail")
        mail = self.mails()[0]
        self.assertEqual(mail["From"], "ward@example.org")
        self.assertEqual(mail["To"], "soc@example.org, admin@example.org")
        self.assertRegex(mail["Subject"], r"^\[Ward\] each-detection: \S+: Eicar-Test-Signature "
                         r"in /home/a/eicar\.com \(conventional scan\)$")
        self.assertEqual(mail["X-Ward-Rule"], "each-detection")
        self.assertIn("Eicar-Test-Signature in /home/a/eicar.com", mail.get_payload())
        # Within the rate limit: held, then sent together.
        for i in range(3):
            self.detect(wire, f"/srv/{i}/x.exe", "Win.Test.Other")
        rules = self.api("GET", "/api/v1/alerts/rules")["rules"]
        self.assertEqual(rules[0]["held"], 3)
        time.sleep(1.5)
        self.assertEqual(len(self.mails()), 1, "sent before the rule's every passed")
        wait_for(lambda: len(self.mails()) == 2, timeout=15, what="the digest")
        digest = self.mails()[1]
        self.assertEqual(digest["Subject"], "[Ward] each-detection: 3 alerts")
        for i in range(3):
            self.assertIn(f"/srv/{i}/x.exe", digest.get_payload())
        wait_for(lambda: [m["state"] for m in self.api(
            "GET", "/api/v1/alerts/log?rule=each-detection")["messages"]] == ["sent", "sent"],
            timeout=10, what="both messages logged as sent")
        log = self.api("GET", "/api/v1/alerts/log?rule=each-detection")["messages"]
        self.assertEqual(log[0]["body"]["items"][2]["detail"]["detection"]["path"],
                         "/srv/2/x.exe")
        self.assertIn("alert ", self.server.log_text())
        self.assertIn("of rule each-detection sent by channel mail", self.server.log_text())
        # A file an agent names to forge headers starts none.
        self.detect(wire, "/tmp/x\r\nBcc: evil@example.org\r\nX-Evil: 1")
        wait_for(lambda: len(self.mails()) == 3, timeout=15, what="the third mail")
        forged = self.mails()[2]
        self.assertIsNone(forged["Bcc"])
        self.assertIsNone(forged["X-Evil"])
        self.assertIn("/tmp/x??Bcc: evil@example.org??X-Evil: 1", forged["Subject"])
        def metrics():
            return subprocess.run(["curl", "-sS", "--cacert", os.path.join(
                self.server.data, "ca.crt"), "-H", f"Authorization: Bearer {self.token}",
                f"https://localhost:{self.server.port}/metrics"], capture_output=True,
                text=True, timeout=30).stdout
        wait_for(lambda: '\nward_alert_messages{state="sent"} 3\n' in metrics(), timeout=10,
                 what="three messages sent, in the metrics")

    def test_outbreak_in_a_scope(self):
        self.email_channel()
        self.api("POST", "/api/v1/domains", {"path": "/Lab"}, expect=201)
        lab1, lab2, other = AgentWire.enrolled(self.server, self.root, "lab1", "lab2", "other")
        for w in (lab1, lab2):
            self.api("POST", "/api/v1/clients/move", {"ids": [w.id], "to": "/Lab"})
        self.rule("lab-outbreak", "outbreak", ["mail"], scope="/Lab", every=0,
                  params={"detections": 4, "minutes": 10, "clients": 2})
        # Outside the scope, and from one agent alone: no outbreak.
        for i in range(5):
            self.detect(other, f"/o/{i}")
        for i in range(3):
            self.detect(lab1, f"/l/{i}")
        time.sleep(3)
        self.assertEqual(self.mails(), [])
        self.detect(lab2, "/l2/x")
        wait_for(lambda: len(self.mails()) == 1, timeout=15, what="the outbreak")
        self.assertEqual(self.mails()[0]["Subject"], "[Ward] lab-outbreak: outbreak in /Lab: "
                         "4 detections on 2 agents within 10 minutes")
        # Told once while it lasts.
        self.detect(lab2, "/l2/y")
        time.sleep(3)
        self.assertEqual(len(self.mails()), 1)

    def test_conditions(self):
        """Real-time protection unavailable, smart protection sources not
        answering, a component out of date: told once each, by syslog."""
        self.api("PUT", "/api/v1/alerts/channels", {"name": "log", "kind": "syslog", "config": {
            "address": f"udp://127.0.0.1:{self.syslog.udp.getsockname()[1]}",
            "facility": "local3"}})
        for kind in ("realtime", "sps", "outdated"):
            self.rule(kind, kind, ["log"], every=0,
                      **({"params": {"hours": 0}} if kind == "outdated" else {}))
        wire, = AgentWire.enrolled(self.server, self.root, "host1")
        host = self.api("GET", f"/api/v1/client?id={wire.id}")["hostname"]
        status = {"hostname": host, "agent_version": "0.1.0", "scan_method": "smart",
                  "components": {}, "realtime": {"state": "unavailable", "mode": "block",
                                                 "reason": "no CAP_SYS_ADMIN"},
                  "smart": {"answering": False, "requests": 3, "failures": 3}}
        self.assertEqual(wire.call("POST", "/api/v1/agent/heartbeat", status)[0], 200)
        wait_for(lambda: len(self.syslog.messages) >= 3, timeout=15, what="three alerts")
        time.sleep(3)
        texts = [m.decode() for m in self.syslog.messages]
        self.assertEqual(len(texts), 3, texts)
        self.assertTrue(any(f"\ufeffrealtime: real-time protection unavailable on {host} "
                            f"(client {wire.id}): no CAP_SYS_ADMIN {{" in t for t in texts),
                        texts)
        self.assertTrue(any(f"\ufeffsps: no smart protection source answers {host}" in t
                            for t in texts))
        # It has no Smart Scan Agent Pattern, and the server has had one
        # for longer than the rule's limit (0 hours).
        self.assertTrue(any(f"{host} (client {wire.id}) has smart-agent-pattern version 0, "
                            "out of date for 0 hours" in t for t in texts), texts)
        for m in self.syslog.messages:
            fields = RFC5424.match(m)
            self.assertIsNotNone(fields, m)
            self.assertEqual(int(fields["pri"]) // 8, 19)      # local3
            self.assertEqual(int(fields["pri"]) % 8, 3)        # error
            self.assertEqual((fields["app"], fields["msgid"], fields["sd"]),
                             (b"wardd", b"alert", b"-"))
            self.assertTrue(fields["msg"].startswith(b"\xef\xbb\xbf"))
        # Fixed, then broken again: told again.
        status["realtime"] = {"state": "on", "mode": "block"}
        wire.call("POST", "/api/v1/agent/heartbeat", status)
        time.sleep(2.5)
        status["realtime"] = {"state": "unavailable", "mode": "block", "reason": "again"}
        wire.call("POST", "/api/v1/agent/heartbeat", status)
        wait_for(lambda: any(b"again" in m for m in self.syslog.messages), timeout=15,
                 what="the condition told again")
        # Running on the settings before the last (which it could not
        # apply), and letting accesses through unscanned: told as well; a
        # rule asking for more than were let through says nothing.
        told = len(self.syslog.messages)
        wires = AgentWire.enrolled(self.server, self.root, "host2", "host3", "host4")
        states = [{"state": "degraded", "mode": "block",
                   "reason": "no path of realtime.paths is on a filesystem it can watch"},
                  {"state": "on", "mode": "block", "unscanned_recent": 7,
                   "counters": {"timeouts": 5, "dropped": 2}},
                  {"state": "on", "mode": "block", "unscanned_recent": 0,
                   "counters": {"timeouts": 0}}]
        hosts = []
        for w, rt in zip(wires, states):
            hosts.append(self.api("GET", f"/api/v1/client?id={w.id}")["hostname"])
            self.assertEqual(w.call("POST", "/api/v1/agent/heartbeat",
                                    {"hostname": hosts[-1], "agent_version": "0.1.0",
                                     "realtime": rt})[0], 200)
        # (Raised by one rule at once, both may go out in one message.)
        degraded = (f"real-time protection not on the settings asked on {hosts[0]} (client "
                    f"{wires[0].id}): no path of realtime.paths")
        failing = (f"real-time protection failing on {hosts[1]} (client {wires[1].id}): 7 "
                   "accesses let through unscanned")
        told_since = lambda: b"".join(self.syslog.messages[told:]).decode()  # noqa: E731
        wait_for(lambda: degraded in told_since() and failing in told_since(), timeout=15,
                 what="the two alerts")
        time.sleep(2.5)
        self.assertNotIn(f"(client {wires[2].id})", told_since())
        # A rule that asks for at least 8: 7 says nothing, 8 does.
        self.rule("realtime", "realtime", ["log"], every=0, params={"unscanned": 8})
        for n in (7, 8):
            told = len(self.syslog.messages)
            wires[2].call("POST", "/api/v1/agent/heartbeat", {
                "hostname": hosts[2], "agent_version": "0.1.0",
                "realtime": dict(states[1], unscanned_recent=n)})
            time.sleep(2.5)
            if n == 7:
                self.assertNotIn(f"(client {wires[2].id})", told_since())
        wait_for(lambda: any(f"failing on {hosts[2]} (client {wires[2].id})".encode() in m
                             for m in self.syslog.messages), timeout=15,
                 what="the third host's alert")
        self.assertEqual(self.api("GET", f"/api/v1/client?id={wires[1].id}")["realtime"]
                         ["unscanned_recent"], 7)

    def ward(self, *args):
        """`ward ARGS` as this server's administrator, signed in."""
        env = self.server.cli_env()
        if not os.path.exists(os.path.join(self.server.root, "cfg")):
            done = subprocess.run([WARD, "login", "--server",
                                   f"https://localhost:{self.server.port}", "--ca",
                                   os.path.join(self.server.data, "ca.crt")],
                                  capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
        done = subprocess.run([WARD, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_smart_protection_server_silent(self):
        """A ward-sps that stops reporting (three heartbeats missed) is told,
        and not while it reports; configured with `ward alert`."""
        udp = self.syslog.udp.getsockname()[1]
        self.ward("alert", "set-channel", "log", "--kind", "syslog", "--config",
                  json.dumps({"address": f"udp://127.0.0.1:{udp}"}))
        self.ward("alert", "set-rule", "silent", "--kind", "sps", "--channels", '["log"]',
                  "--every", "0")
        self.assertIn("silent", self.ward("alert", "rules"))
        sps = WardSps(self.root, os.path.join(self.server.data, "sps-ca.crt"))
        self.addCleanup(sps.stop)
        done = sps.run("enroll", "--bundle", sps_bundle(self.server, self.token, self.root),
                       "--name", "127.0.0.1")
        self.assertEqual(done.returncode, 0, done.stderr)
        sps.start()
        seen = lambda: [s["last_seen"] for s in self.api(  # noqa: E731
            "GET", "/api/v1/sps-servers")["servers"]]
        first = seen()
        wait_for(lambda: seen() != first, timeout=30, what="ward-sps reporting")
        time.sleep(12)   # two heartbeats or more
        self.assertEqual([m for m in self.syslog.messages if b"smart protection server" in m],
                         [])
        sps.stop()
        wait_for(lambda: any(b"has not reported for" in m for m in self.syslog.messages),
                 timeout=40, what="the silent server told")
        self.assertIn("silent", self.ward("alert", "log"))

    def test_channels_against_their_peers(self):
        # Syslog over TCP, octet counted; the receiver's grammar agrees
        # with util-linux's logger.
        tcp = self.syslog.tcp.getsockname()[1]
        subprocess.run(["logger", "--rfc5424", "--tcp", "--octet-count", "--server",
                        "127.0.0.1", "--port", str(tcp), "-t", "peer", "hello"], check=True,
                       timeout=30)
        wait_for(lambda: self.syslog.messages, timeout=10, what="logger's message")
        self.assertIsNotNone(RFC5424.match(self.syslog.messages[0]), self.syslog.messages[0])
        self.api("PUT", "/api/v1/alerts/channels", {"name": "tcp", "kind": "syslog", "config": {
            "address": f"tcp://127.0.0.1:{tcp}"}})
        answer = self.api("POST", "/api/v1/alerts/channels/test", {"name": "tcp"})
        self.assertEqual(answer["state"], "sent")
        wait_for(lambda: len(self.syslog.messages) == 2, timeout=10, what="the test message")
        fields = RFC5424.match(self.syslog.messages[1])
        self.assertIsNotNone(fields, self.syslog.messages[1])
        self.assertEqual(int(fields["pri"]), 3 * 8 + 6)       # daemon, informational
        self.assertIn(b"test of channel tcp by admin", fields["msg"])
        # The webhook: HTTPS with wardd's own certificate, trusted by the
        # channel's CA file; the body signed with the secret.
        WebhookReceiver.received = []
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookReceiver)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.server.data, "server.crt"),
                            os.path.join(self.server.data, "server.key"))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        url = f"https://localhost:{httpd.server_address[1]}/hooks/ward"
        ca = os.path.join(self.server.data, "ca.crt")
        made = self.api("PUT", "/api/v1/alerts/channels", {"name": "hook", "kind": "webhook",
                        "config": {"url": url, "secret": SECRET, "ca_file": ca}})
        self.assertEqual(made["config"]["secret"], "(set)")
        listed = self.api("GET", "/api/v1/alerts/channels")["channels"]
        self.assertNotIn(SECRET, json.dumps(listed))
        self.assertEqual(self.api("POST", "/api/v1/alerts/channels/test",
                                  {"name": "hook"})["state"], "sent")
        headers, body = WebhookReceiver.received[0]
        self.assertEqual(headers["Content-Type"], "application/json")
        want = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-Ward-Signature"], "sha256=" + want)
        alert = json.loads(body)
        self.assertEqual((alert["rule"], alert["kind"]), ("(test)", "test"))
        # Without the CA, the receiver's certificate is refused.
        self.api("PUT", "/api/v1/alerts/channels", {"name": "hook", "kind": "webhook",
                 "config": {"url": url}})
        status, answer = self.server.request("POST", "/api/v1/alerts/channels/test",
                                             {"name": "hook"}, token=self.token, timeout=60)
        self.assertEqual(status, 502, answer)
        self.assertIn("certificate", answer["error"].lower())
        # STARTTLS required, and the SMTP server offers none: not sent.
        self.email_channel("strict", starttls="required")
        status, answer = self.server.request("POST", "/api/v1/alerts/channels/test",
                                             {"name": "strict"}, token=self.token, timeout=60)
        self.assertEqual(status, 502, answer)
        self.assertEqual(self.mails(), [])
        # An SMTP server that takes mail only after STARTTLS (its certificate
        # wardd's own, trusted through the channel's CA file): sent over
        # TLS; a channel without STARTTLS is turned away by it.
        tls_port = free_port()
        tls_dir = os.path.join(self.root, "tls-maildir")
        tls_smtp = subprocess.Popen(
            [DEBIAN_PYTHON, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{tls_port}",
             "--tlscert", os.path.join(self.server.data, "server.crt"),
             "--tlskey", os.path.join(self.server.data, "server.key"),
             "-c", "aiosmtpd.handlers.Mailbox", tls_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(tls_smtp.wait)
        self.addCleanup(tls_smtp.terminate)

        def listening():
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", tls_port)) == 0
        wait_for(listening, timeout=20, what="the TLS SMTP server")
        ca = os.path.join(self.server.data, "ca.crt")
        self.email_channel("tls", url=f"smtp://localhost:{tls_port}", starttls="required",
                           ca_file=ca)
        self.assertEqual(self.api("POST", "/api/v1/alerts/channels/test",
                                  {"name": "tls"})["state"], "sent")
        wait_for(lambda: os.path.isdir(tls_dir) and len(mailbox.Maildir(tls_dir)) == 1,
                 timeout=10, what="the mail sent over TLS")
        self.email_channel("plain", url=f"smtp://localhost:{tls_port}", starttls="no")
        status, answer = self.server.request("POST", "/api/v1/alerts/channels/test",
                                             {"name": "plain"}, token=self.token, timeout=60)
        self.assertEqual(status, 502, answer)
        self.assertEqual(len(mailbox.Maildir(tls_dir)), 1)
        # Email by a test.
        self.email_channel()
        self.assertEqual(self.api("POST", "/api/v1/alerts/channels/test",
                                  {"name": "mail"})["state"], "sent")
        wait_for(lambda: self.mails(), timeout=10, what="the test mail")
        self.assertEqual(self.mails()[0]["Subject"], "[Ward] test of channel mail by admin")

    def test_failed_import_and_backup(self):
        self.email_channel()
        self.rule("imports", "import", ["mail"], every=0)
        self.rule("backups", "backup", ["mail"], every=0)
        # A server rule watches the server: its scope is the root.
        self.api("POST", "/api/v1/domains", {"path": "/Lab"}, expect=201)
        answer = self.rule("x", "backup", ["mail"], expect=400, scope="/Lab")
        self.assertIn("its scope is /", answer["error"])
        # A signature source with a damaged file: the import fails.
        with open(os.path.join(self.source, "main.cvd"), "wb") as f:
            f.write(b"ClamAV-VDB:not a real header" + b"\0" * 600)
        self.server.request("POST", "/api/v1/update/now", token=self.token, timeout=120)
        wait_for(lambda: any("the signature import failed" in (m["Subject"] or "")
                             for m in self.mails()), timeout=30, what="the import alert")
        # A backup that fails (its folder is a file): told too.
        status, _ = self.server.request("POST", "/api/v1/backups", token=self.token,
                                        timeout=60)
        self.assertEqual(status, 409)
        wait_for(lambda: any("a backup by admin failed" in (m["Subject"] or "")
                             for m in self.mails()), timeout=30, what="the backup alert")

    def test_held_alerts_survive_a_kill(self):
        self.email_channel()
        self.rule("slow", "detection", ["mail"], every=3600)
        wire, = AgentWire.enrolled(self.server, self.root, "host1")
        self.detect(wire, "/a")
        wait_for(lambda: len(self.mails()) == 1, timeout=15, what="the first mail")
        # (Recorded as sent: one killed before would be sent again.)
        wait_for(lambda: [m["state"] for m in self.api("GET", "/api/v1/alerts/log")[
            "messages"]] == ["sent"], timeout=10, what="the first mail recorded")
        self.detect(wire, "/b")
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait()
        self.server.log.close()
        self.server.start()
        self.token = self.server.login()
        rules = self.api("GET", "/api/v1/alerts/rules")["rules"]
        self.assertEqual((rules[0]["name"], rules[0]["held"]), ("slow", 1))
        # A message pending when wardd stopped is sent after the start.
        self.rule("slow", "detection", ["mail"], every=0)
        wait_for(lambda: len(self.mails()) >= 2, timeout=15, what="the held alert")
        time.sleep(2)
        self.assertEqual(len(self.mails()), 2)
        self.assertIn("/b", self.mails()[1]["Subject"])

    def test_refused(self):
        cases = [
            ({"name": "bad name!", "kind": "email", "config": {}}, "name: expected"),
            ({"name": "m", "kind": "fax", "config": {}}, "kind: expected email, syslog or "
             "webhook"),
            ({"name": "m", "kind": "email", "config": {"url": "http://x", "from": "a@b",
                                                        "to": ["c@d"]}},
             "url: expected smtp://"),
            ({"name": "m", "kind": "email", "config": {"url": "smtp://x", "from": "a@b",
                                                        "to": ["c@d>\r\nRCPT TO:<e@f"]}},
             "to: expected a list of 1 to 20 mail addresses"),
            ({"name": "m", "kind": "email", "config": {"url": "smtp://x", "from": "a@b"}},
             "to: missing"),
            ({"name": "m", "kind": "webhook", "config": {"url": "https://x", "extra": 1}},
             "extra: not an option of a webhook channel"),
            ({"name": "m", "kind": "webhook", "config": {"url": "http://x"}},
             "url: expected an https:// URL"),
            ({"name": "m", "kind": "syslog", "config": {"address": "udp://x"}},
             "address: expected udp://HOST:PORT"),
            ({"name": "m", "kind": "syslog", "config": {"address": "udp://x:514",
                                                         "facility": "local9"}},
             "facility: expected a syslog facility"),
        ]
        for body, error in cases:
            with self.subTest(error=error):
                answer = self.api("PUT", "/api/v1/alerts/channels", body, expect=400)
                self.assertIn(error, answer["error"])
        self.email_channel()
        for extra, error in [
                ({"kind": "weather", "channels": ["mail"]}, "kind: expected detection"),
                ({"kind": "detection", "channels": ["nope"]}, "channels: no alert channel nope"),
                ({"kind": "detection", "channels": []}, "channels: expected a list"),
                ({"kind": "outbreak", "channels": ["mail"], "params": {"minutes": 0}},
                 "params: minutes: expected 1 to 10080"),
                ({"kind": "detection", "channels": ["mail"], "params": {"hours": 1}},
                 "params: hours: not a parameter of a detection rule"),
                ({"kind": "detection", "channels": ["mail"], "scope": "/none"},
                 "scope: no domain /none")]:
            with self.subTest(error=error):
                answer = self.rule("r", expect=400, **extra)
                self.assertIn(error, answer["error"])
        self.rule("r", "detection", ["mail"])
        answer = self.api("DELETE", "/api/v1/alerts/channels?name=mail", expect=409)
        self.assertIn("rule r sends by it", answer["error"])
        self.api("DELETE", "/api/v1/alerts/rules?name=r")
        self.api("DELETE", "/api/v1/alerts/channels?name=mail")
        self.api("DELETE", "/api/v1/alerts/channels?name=mail", expect=404)
        # An SMTP server that is not there: tried again later, logged.
        self.api("PUT", "/api/v1/alerts/channels", {"name": "gone", "kind": "email", "config": {
            "url": f"smtp://127.0.0.1:{free_port()}", "from": "a@example.org",
            "to": ["b@example.org"]}})
        self.rule("r", "detection", ["gone"], every=0)
        wire, = AgentWire.enrolled(self.server, self.root, "host1")
        self.detect(wire, "/x")
        wait_for(lambda: any(m["attempts"] == 1 for m in
                             self.api("GET", "/api/v1/alerts/log")["messages"]),
                 timeout=30, what="a failed attempt")
        message = self.api("GET", "/api/v1/alerts/log")["messages"][0]
        self.assertEqual(message["state"], "pending")
        self.assertIn("127.0.0.1", message["error"])
        self.assertIn("tried again later", self.server.log_text())


if __name__ == "__main__":
    unittest.main()
