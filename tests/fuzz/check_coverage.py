#!/usr/bin/env python3
"""Fuzzing that sees (issue 14): a libFuzzer target run over its seeds alone
(-runs=0) must cover at least MIN edges of instrumented code. With only the
harness instrumented, as before, the parsers' own edges are not counted
(cvd: 1, pkg: 3), so the target is blind; and fuzz_pkg must get past the
signature into the manifest checks.
Usage: check_coverage.py FUZZER SEED_DIR MIN
"""
import re
import subprocess
import sys


def main():
    fuzzer, seeds, minimum = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = subprocess.run([fuzzer, "-runs=0", seeds], capture_output=True, text=True,
                         timeout=300)
    found = re.search(r"INITED cov: (\d+)", run.stderr)
    if run.returncode != 0 or not found:
        print(run.stderr[-2000:])
        print(f"FAIL: {fuzzer} did not run over {seeds}")
        return 1
    cov = int(found.group(1))
    print(f"{fuzzer}: {cov} edges over the seeds (at least {minimum})")
    return 0 if cov >= minimum else 1


if __name__ == "__main__":
    sys.exit(main())
