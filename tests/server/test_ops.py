#!/usr/bin/env python3
"""Arguments decoded by the operation table (src/common/ops.def) against a
real wardd: every route refuses a missing required argument naming it,
and a body member the table does not declare, a value of the wrong type
and a query number that is not one, each with a 400 naming the argument.
The table is read from `ward --print-reference api`, so a route added to
it is covered without a change here."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wardtest import temp_wardd  # noqa: E402

WARD = os.environ.get("WARD_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin/ward"))
ARG = re.compile(r"`(\w+)` \((body|query), ([^,)]+)(, optional)?\)")


def operations():
    """(method, path, who may call, [(name, in, type, required)]) per route."""
    out = subprocess.run([WARD, "--print-reference", "api"], capture_output=True, text=True,
                         check=True).stdout
    ops = []
    for row in out.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        method, path = cells[0].strip("`").split(" ", 1)
        args = [(m[0], m[1], m[2], not m[3]) for m in ARG.findall(cells[3])]
        ops.append((method, path, cells[1], args))
    return ops


class OpsArgsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.w = temp_wardd("ward-ops-", cls.addClassCleanup)
        cls.token = cls.w.login()

    def call(self, method, path, body=None, raw=None):
        return self.w.request(method, path, body, token=self.token, raw=raw)

    def test_missing_required_argument_named(self):
        checked = 0
        for method, path, who, args in operations():
            required = [a for a in args if a[3]]
            if not required or "administrator" not in who:
                continue
            with self.subTest(route=f"{method} {path}"):
                status, answer = self.call(method, path)
                self.assertEqual(status, 400, answer)
                self.assertIn(f"{required[0][0]}: missing (", answer["error"])
                checked += 1
        self.assertGreater(checked, 20)

    def test_bad_arguments_named(self):
        for method, path, body, raw, want in [
                ("PUT", "/api/v1/settings",
                 {"scope": "root", "key": "roaming", "value": True, "bogus": 1}, None,
                 "bogus: no such option of PUT /api/v1/settings (it takes scope, key, value, "
                 "apply)"),
                ("POST", "/api/v1/domains", {"path": 5}, None, "path: expected a string"),
                ("POST", "/api/v1/enroll/tokens", {"days": "7"}, None,
                 "days: expected an integer"),
                ("GET", "/api/v1/client?id=abc", None, None, "id: 'abc' is not a number"),
                ("GET", "/api/v1/logs?limit=9x", None, None, "limit: '9x' is not a number"),
                ("PUT", "/api/v1/settings", None, b"{bad", "invalid JSON at line 1"),
                ("POST", "/api/v1/domains", None, b"[1]", "expected a JSON object")]:
            with self.subTest(route=f"{method} {path}", body=body or raw):
                status, answer = self.call(method, path, body, raw)
                self.assertEqual(status, 400, answer)
                self.assertIn(want, answer["error"])

    def test_arguments_reach_the_handler(self):
        status, answer = self.call("POST", "/api/v1/domains", {"path": "/ops/a"})
        self.assertEqual(status, 201, answer)
        status, answer = self.call("PUT", "/api/v1/settings",
                                   {"scope": "domain:/ops/a", "key": "roaming", "value": True,
                                    "apply": "all"})
        self.assertEqual(status, 200, answer)
        status, answer = self.call("GET", "/api/v1/settings?scope=domain:/ops/a")
        self.assertEqual((status, answer["own"]), (200, {"roaming": True}))
        # null stands for an optional argument left out; all optional: no body at all.
        status, answer = self.call("POST", "/api/v1/enroll/tokens",
                                   {"domain": None, "days": 2})
        self.assertEqual(status, 201, answer)
        status, answer = self.call("POST", "/api/v1/enroll/tokens")
        self.assertEqual(status, 201, answer)
        status, answer = self.call("DELETE", "/api/v1/domains?path=/ops/none")
        self.assertEqual(status, 404, answer)
        status, answer = self.call("DELETE", "/api/v1/domains?path=/ops/a")
        self.assertEqual(status, 200, answer)


if __name__ == "__main__":
    unittest.main()
