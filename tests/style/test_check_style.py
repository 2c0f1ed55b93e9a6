#!/usr/bin/env python3
"""scripts/check_style.py's rules on small sources: a banned call is found
on its line with what to use instead; the same names in comments, strings,
longer names and members are not calls."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import check_style  # noqa: E402


def banned(text):
    problems = []
    check_style.check_banned("x.c", text, problems)
    return problems


class BannedTest(unittest.TestCase):
    def test_calls_found(self):
        src = ("int f(char *d, const char *s)\n{\n"
               "\tstrcpy(d, s);\n"
               "\treturn atoi (s) + (int)system(s);\n}\n")
        self.assertEqual(banned(src), [
            "x.c:3: strcpy() is banned: use snprintf or util_buf",
            "x.c:4: atoi() is banned: use strtol with its end and errno checked",
            "x.c:4: system() is banned: use fork and exec without a shell",
        ])

    def test_not_calls(self):
        src = ("/* strcpy(d, s) and\n * sprintf( in a comment */\n"
               "// gets(line)\n"
               "const char *m = \"atoi(x) \\\" rand()\";\n"
               "char c = '(';\n"
               "int n = my_atoi(s) + o.rand() + p->system(1) + strtoll(s, 0, 10);\n")
        self.assertEqual(banned(src), [])

    def test_line_numbers_after_comments(self):
        src = "/* a\n b\n c */ int x;\nvoid g(void) { sprintf(b, \"%d\", 1); }\n"
        self.assertEqual(banned(src), ["x.c:4: sprintf() is banned: use snprintf"])

    def test_paths_outside_the_repository(self):
        """A clone must stand alone: the folder beside it, or more ".."
        than lead back to the root, is refused; a path inside is not."""
        d = check_style.ROOT / "tests" / "style" / "probe_outside"
        d.mkdir(exist_ok=True)
        try:
            # Made up here, so that this file does not itself refer outside.
            def joined(n):
                return "X = os.path.join(HERE, %s, \"x\")\n" % ", ".join(['"' + "." * 2 + '"'] * n)
            cases = {"a.py": (joined(4), 1),
                      "b.py": ('X = "' + check_style.SIBLING + '/testdata"\n', 1),
                      "c.py": (joined(3), 0)}
            for name, (text, want) in cases.items():
                (d / name).write_text(text)
                problems = []
                check_style.check_stands_alone(d / name, problems)
                self.assertEqual(len(problems), want, (name, problems))
        finally:
            for f in d.iterdir():
                f.unlink()
            d.rmdir()

    def test_sqlite_dialect_outside_the_backend(self):
        """SQL split over lines is read whole; SQLite's forms are named
        with the portable one; English messages and comments are not SQL."""
        src = ('#include <sqlite3.h>\n'
               'f("INSERT OR REPLACE INTO kv "\n  "VALUES (?, ?)");\n'
               'g("SELECT json_extract(a, \'$.b\') FROM t");\n'
               'h("UPDATE t SET v = max(v, ?) WHERE k IS ?");\n'
               'm("a name is 1 to %d letters");\n'
               '/* SELECT json(x) in a comment */\n'
               'ok("INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE "\n'
               '   "SET v = ?2 RETURNING id");\n')
        problems = []
        check_style.check_portable_sql("src/server/x.c", src, problems)
        self.assertEqual([p.split(": ", 1)[0] for p in problems],
                         ["src/server/x.c:1", "src/server/x.c:2", "src/server/x.c:4",
                          "src/server/x.c:5", "src/server/x.c:5"])
        self.assertIn("ON CONFLICT", problems[1])

    def test_tree_is_clean(self):
        self.assertEqual(check_style.main(), 0)


if __name__ == "__main__":
    unittest.main()
