#!/usr/bin/env python3
"""Checks Ward's C sources against the rules in DEVELOPERS.md that a
compiler does not enforce:

- no typedef'd structs, no trailing white space, lines of at most 100
  columns (tabs count 8), indentation with tabs;
- every non-static function defined in src/ carries its module's prefix
  (the PREFIXES table below: one per file);
- every function declared in a header has a comment right above it, which
  states its contract.

Prints one line per problem as FILE:LINE: message and exits 1 if any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Module prefix of each source file's non-static names.
PREFIXES = {
    "src/common/util.c": ("util_",),
    "src/engine/engine.c": ("engine_",),
    "src/scan/cache.c": ("scache_",),
    "src/scan/job.c": ("sjob_",),
    "src/scan/scan.c": ("scan_",),
    "src/cli/main.c": ("main",),
    "src/cli/scan_cmd.c": ("scan_cmd_",),
}

FUNC_DEF = re.compile(r"^(?!static\b)(?:[a-z_][\w\s\*]*?[\s\*])([a-z_]\w*)\(([^;]*)$")
DECL = re.compile(r"^(?!typedef\b)(?!#)[a-z_][\w\s\*]*?[\s\*]([a-z_]\w*)\(")


def width(line):
    return len(line.expandtabs(8))


def check_file(path, problems):
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().split("\n")
    for n, line in enumerate(lines, 1):
        if re.match(r"\s*typedef\s+struct\b", line):
            problems.append(f"{rel}:{n}: typedef'd struct")
        if line.rstrip() != line:
            problems.append(f"{rel}:{n}: trailing white space")
        if width(line) > 100:
            problems.append(f"{rel}:{n}: line longer than 100 columns")
        if re.match(r"^ {2,}\S", line) and not line.lstrip().startswith("*"):
            problems.append(f"{rel}:{n}: indented with spaces")
    if path.suffix == ".c" and rel in PREFIXES:
        for n, line in enumerate(lines, 1):
            m = FUNC_DEF.match(line)
            if m and not m.group(1).startswith(PREFIXES[rel]):
                problems.append(f"{rel}:{n}: non-static function {m.group(1)} lacks "
                                f"the module prefix {PREFIXES[rel][0]}")
    elif path.suffix == ".c" and rel.startswith("src/"):
        problems.append(f"{rel}:1: no module prefix registered in scripts/check_style.py")
    if path.suffix == ".h":
        for n, line in enumerate(lines, 1):
            if DECL.match(line) and line.rstrip().endswith((";", ",")) is not None:
                if not DECL.match(line) or "(" not in line:
                    continue
                prev = lines[n - 2].strip() if n >= 2 else ""
                if not (prev.endswith("*/") or prev.startswith("*") or
                        prev.startswith("/*") or prev.startswith("//") or
                        is_continued_group(lines, n - 2)):
                    problems.append(f"{rel}:{n}: declaration of {DECL.match(line).group(1)} "
                                    "without a comment stating its contract")


def is_continued_group(lines, i):
    """A declaration right after another one shares the comment above the
    group (e.g. a getter and its setter)."""
    while i >= 0 and lines[i].strip() and not lines[i].strip().endswith("*/"):
        if DECL.match(lines[i]) is None and not lines[i].startswith(("\t", " ")):
            return False
        i -= 1
    return i >= 0 and lines[i].strip().endswith("*/")


def main():
    problems = []
    for sub in ("src", "tests/unit", "tests/fuzz", "bench"):
        for path in sorted((ROOT / sub).rglob("*.[ch]")):
            check_file(path, problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check-style: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
