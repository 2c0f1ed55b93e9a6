#!/usr/bin/env python3
"""The smart protection service of wardd (its integrated smart protection
server): hash-prefix lookups answered from the Smart Scan Pattern built from
a real ClamAV directory with custom hash files, the pattern swapped when a
new one is imported, malformed and oversized queries answered 400/413 with
the server still serving, health and counters.
WARDD_BIN names the program.
"""
import hashlib
import http.client
import os
import shutil
import ssl
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import clamav_cvd, query, temp_dir, wait_for, Wardd  # noqa: E402


MALWARE = b"pretend this is malware\n"
PUA = b"pretend this is adware\n"
TRUSTED = b"a file the administrator trusts\n"


def md5(b):
    return hashlib.md5(b).hexdigest()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


class SpsTest(unittest.TestCase):
    def setUp(self):
        # Undone even when what follows fails.
        self.tmp = temp_dir("ward-sps-", self.addCleanup)
        self.src = os.path.join(self.tmp.name, "source")
        os.makedirs(self.src)
        shutil.copy(clamav_cvd(5), os.path.join(self.src, "main.cvd"))
        with open(os.path.join(self.src, "local.hdb"), "w") as f:
            f.write(f"{md5(MALWARE)}:{len(MALWARE)}:Ward.Test.Malware\n")
        with open(os.path.join(self.src, "local.hsb"), "w") as f:
            f.write(f"{sha256(MALWARE)}:*:Ward.Test.AnySize\n")
        with open(os.path.join(self.src, "local.hdu"), "w") as f:
            f.write(f"{md5(PUA)}:{len(PUA)}:Ward.Test.Pua\n")
        with open(os.path.join(self.src, "local.fp"), "w") as f:
            f.write(f"{md5(TRUSTED)}:{len(TRUSTED)}:Trusted.File\n")
        self.server = Wardd(self.tmp.name, extra=(
            f"[updates]\nsource_dir = {self.src}\nwatch_interval = 1s\n[sps]\nttl = 600\n"))
        self.server.start()
        self.addCleanup(self.server.stop)
        self.token = self.server.login()
        wait_for(lambda: self.sps("GET", "/sps/v1/health")[0] == 200, what="first pattern")
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))

    def sps(self, method, path, body=None, host="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data, "ca.crt"))
        conn = http.client.HTTPSConnection(host, self.server.port, context=ctx, timeout=30)
        conn.request(method, path, body=body,
                     headers={"Content-Type": "text/plain"} if body is not None else {})
        resp = conn.getresponse()
        data = resp.read().decode()
        conn.close()
        return resp.status, data

    def lookup(self, lines, host="127.0.0.1"):
        status, text = self.sps("POST", "/sps/v1/lookup", "".join(f"{l}\n" for l in lines),
                                host=host)
        self.assertEqual(status, 200, text)
        return text

    def test_lookups(self):
        q_md5 = query("md5", md5(MALWARE))
        q_sha = query("sha256", sha256(MALWARE), 20)
        q_pua = query("md5", md5(PUA), 30)
        q_fp = query("md5", md5(TRUSTED))
        q_clean = query("md5", md5(b"nothing known"))
        text = self.lookup([q_md5, q_sha, q_pua, q_fp, q_clean])
        lines = text.split("\n")
        self.assertRegex(lines[0], r"^ward-sps 1 1 600$")
        self.assertEqual(lines[1:3], [
            f"{q_md5} 1", f"md5:{md5(MALWARE)}:{len(MALWARE)}:block:Ward.Test.Malware"])
        self.assertEqual(lines[3], f"{q_sha} 1")
        self.assertEqual(lines[4], f"sha256:{sha256(MALWARE)}:*:block:Ward.Test.AnySize")
        self.assertEqual(lines[5:7], [f"{q_pua} 1", f"md5:{md5(PUA)}:{len(PUA)}:pua:Ward.Test.Pua"])
        self.assertEqual(lines[7:9], [f"{q_fp} 1",
                                      f"md5:{md5(TRUSTED)}:{len(TRUSTED)}:allow:Trusted.File"])
        self.assertEqual(lines[9:], [f"{q_clean} 0", ""])
        # The same over IPv6.
        self.assertEqual(self.lookup([q_md5], host="::1").split("\n")[1], f"{q_md5} 1")
        status, body = self.sps("GET", "/sps/v1/status")
        self.assertEqual(status, 200)
        self.assertIn('"queries":6', body.replace(" ", ""))
        self.assertIn('"hits":5', body.replace(" ", ""))

    def test_bad_queries_answered_400(self):
        good = query("md5", md5(MALWARE))
        for body, want in (
                ("", "no query"),
                ("md5:0000000/32\n", "line 1"),
                (good + "\nsha512:00000000/32\n", "line 2"),
                ("md5:ffffffff/8\n", "line 1"),       # bits past the prefix
                ("md5:00000000/7\n", "line 1"),       # too short a prefix
                ("md5:00000000/33\n", "line 1"),
                ("MD5:00000000/32\n", "line 1"),
                (good, "no newline"),
                (good + "\n\n", "line 2"),
                ("".join(f"md5:{i:08x}/32\n" for i in range(1025)), "more than 1024")):
            status, text = self.sps("POST", "/sps/v1/lookup", body)
            self.assertEqual(status, 400, (body[:40], text))
            self.assertIn(want, text)
        status, text = self.sps("POST", "/sps/v1/lookup", "x" * (2 << 20))
        self.assertEqual(status, 413, text)
        status, _ = self.sps("GET", "/sps/v1/lookup")
        self.assertEqual(status, 404)
        # Still serving.
        self.assertEqual(self.lookup([good]).split("\n")[1], f"{good} 1")
        self.assertRegex(self.sps("GET", "/sps/v1/status")[1].replace(" ", ""), '"errors":1[12]')

    def test_new_pattern_swapped_in(self):
        extra = b"another one\n"
        q = query("md5", md5(extra))
        self.assertEqual(self.lookup([q]).split("\n")[1], f"{q} 0")
        with open(os.path.join(self.src, "more.hdb"), "w") as f:
            f.write(f"{md5(extra)}:{len(extra)}:Ward.Test.Later\n")
        answer = self.server.request("POST", "/api/v1/update/now", token=self.token)[1]
        self.assertTrue(answer["ok"], answer)
        text = self.lookup([q])
        self.assertTrue(text.startswith("ward-sps 1 2 600\n"), text)
        self.assertEqual(text.split("\n")[1:3], [
            f"{q} 1", f"md5:{md5(extra)}:{len(extra)}:block:Ward.Test.Later"])
        self.assertIn("Smart Scan Pattern version 2 in use", self.server.log_text())
        # After a restart the newest pattern is served at once.
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertTrue(self.lookup([q]).startswith("ward-sps 1 2 600\n"))

    def test_switched_off(self):
        self.assertEqual(self.server.stop(), 0)
        with open(self.server.conf, "a") as f:
            f.write("[sps]\nenabled = no\n")
        self.server.start()
        status, _ = self.sps("GET", "/sps/v1/health")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=1, argv=sys.argv[:1])
