#!/usr/bin/env python3
"""Generate a synthetic ClamAV signature database directory.

Writes synth.hdb (MD5), synth.hsb (SHA-256), synth.ndb (body) and synth.ldb
(logical) into --out.  The signatures planted by gen_corpus.py (--planted)
are mixed in at random positions, so the corpus has real detections without
them sitting at the end of the files.  Output is a function of the
arguments and the planted file only.
"""

import argparse
import itertools
import math
import os
import random
import sys
import time

from synthsig import (PLATFORMS, body_pattern, hash_line, ldb_body, ldb_line,
                      ndb_line, read_planted, sig_name)

# Body and logical signatures by target type: any file, PE, ELF, ASCII text.
TARGET_WEIGHTS = {0: 45, 1: 35, 6: 12, 7: 8}
# Share of patterns made of printable text rather than arbitrary bytes
# (strings found in scripts and binaries); target 7 always uses text.
TEXT_SHARE = {0: 0.25, 1: 0.1, 6: 0.1, 7: 1.0}
STAR_SIZE_SHARE = 0.01
BATCH = 65536


def hash_size(rng):
    """File size of a hashed sample: log-normal around 150 KB, like the PE
    files that dominate real hash databases."""
    return min(max(int(rng.lognormvariate(math.log(150_000), 1.5)), 64), 50_000_000)


def ndb_offset(rng, target):
    """Mostly anywhere; else an absolute, end-relative or (PE only) entry-point offset."""
    if target == 7:
        return "*"  # offsets into normalised text mean little
    roll = rng.random()
    if roll < 0.65:
        return "*"
    if target == 1 and roll < 0.85:
        return f"EP+{rng.randrange(1024)}"
    if roll < 0.92:
        return str(rng.randrange(8192))
    return f"EOF-{rng.randrange(16, 8192)}"


def ldb_subsig_offset(rng, target):
    if target == 1 and rng.random() < 0.3:
        return f"EP+{rng.randrange(512)}:"
    if target in (0, 6) and rng.random() < 0.1:
        return f"{rng.randrange(4096)}:"
    return ""


def pick_target(rng):
    return rng.choices(list(TARGET_WEIGHTS), weights=TARGET_WEIGHTS.values())[0]


def write_db(path, rng, count, make_line, planted_lines):
    """Write count generated lines with planted_lines at random positions."""
    total = count + len(planted_lines)
    slots = dict(zip(sorted(rng.sample(range(total), len(planted_lines))), planted_lines))
    with open(path, "w", encoding="ascii", newline="\n") as f:
        batch = []
        for i in range(total):
            batch.append(slots[i] if i in slots else make_line())
            if len(batch) == BATCH:
                f.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            f.write("\n".join(batch) + "\n")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--md5", type=int, default=2_000_000, help="random .hdb signatures")
    ap.add_argument("--sha256", type=int, default=2_000_000, help="random .hsb signatures")
    ap.add_argument("--ndb", type=int, default=20_000, help="random .ndb signatures")
    ap.add_argument("--ldb", type=int, default=2_000, help="random .ldb signatures")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--planted", help="planted.tsv written by gen_corpus.py")
    ap.add_argument("--out", required=True, help="database directory to create")
    args = ap.parse_args()

    started = time.monotonic()
    # A string seed keeps this stream independent of gen_corpus.py's for the same --seed.
    rng = random.Random(f"ward-bench-db:{args.seed}")
    next_id = itertools.count(1_000_000).__next__
    planted = {"hdb": [], "hsb": [], "ndb": [], "ldb": []}
    for row in read_planted(args.planted) if args.planted else []:
        kind, name, body = row["kind"], row["name"], row["signature"]
        if kind in ("hdb", "hsb"):
            planted[kind].append(hash_line(body, row["size"], name))
        elif kind == "ndb":
            planted[kind].append(ndb_line(name, body))
        elif kind == "ldb":
            planted[kind].append(ldb_line(name, body))
        else:
            sys.exit(f"{args.planted}: unknown signature kind {kind!r}")

    def hash_maker(bits, star_share):
        def make():
            digest = f"{rng.getrandbits(bits):0{bits // 4}x}"
            size = "*" if rng.random() < star_share else hash_size(rng)
            return hash_line(digest, size, sig_name(rng, next_id(), PLATFORMS["hash"]))
        return make

    def make_ndb():
        target = pick_target(rng)
        sig, _ = body_pattern(rng, rng.random() < TEXT_SHARE[target])
        name = sig_name(rng, next_id(), PLATFORMS[target])
        return ndb_line(name, f"{target}:{ndb_offset(rng, target)}:{sig}")

    def make_ldb():
        target = pick_target(rng)
        body, _ = ldb_body(rng, target, rng.random() < TEXT_SHARE[target], ldb_subsig_offset)
        return ldb_line(sig_name(rng, next_id(), PLATFORMS[target]), body)

    os.makedirs(args.out, exist_ok=True)
    jobs = (("synth.hdb", args.md5, hash_maker(128, 0.0), "hdb"),
            ("synth.hsb", args.sha256, hash_maker(256, STAR_SIZE_SHARE), "hsb"),
            ("synth.ndb", args.ndb, make_ndb, "ndb"),
            ("synth.ldb", args.ldb, make_ldb, "ldb"))
    for filename, count, maker, kind in jobs:
        lines = write_db(os.path.join(args.out, filename), rng, count, maker, planted[kind])
        print(f"gen_db: {filename}: {lines} signatures ({len(planted[kind])} planted)",
              file=sys.stderr)
    print(f"gen_db: done in {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
