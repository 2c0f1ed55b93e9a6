"""Signature grammar shared by gen_db.py and gen_corpus.py.

Both generators draw body patterns from the same function, so the few planted
signatures that the corpus must trigger look exactly like the bulk of random
ones, and each pattern comes with a byte string that it matches.
"""

import csv

CATEGORIES = ("Trojan", "Malware", "Downloader", "Exploit", "Worm", "Virus",
              "Adware", "Ransomware", "Coinminer", "Backdoor", "Dropper")

# Platform prefixes that fit each .ndb/.ldb target type, and hash signatures.
PLATFORMS = {
    0: ("Win", "Multios", "Doc", "Html", "Js", "Unix"),
    1: ("Win",),
    6: ("Unix",),
    7: ("Txt", "Js", "Html", "Php", "Email"),
    "hash": ("Win", "Win", "Win", "Andr", "Doc", "Pdf", "Unix"),
}

# Printable bytes for patterns aimed at text.  Target type 7 matches the
# normalised (lower-cased, whitespace-collapsed) text, so these patterns use
# nothing that normalisation would change.
TEXT_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789"

# Static runs are at least MIN_RUN bytes so every pattern fills the
# Aho-Corasick trie depth.  Runs are random, so a run of r bytes occurs by
# chance about size/256**r times in a file.  Runs joined by bounded gaps
# multiply their rarity, but '*' lets both sides land anywhere, which is why
# it needs longer runs: with 4-byte runs a 2 GiB corpus would produce dozens
# of false detections.  Text runs draw from only 36 symbols, hence longer.
MIN_RUN = {False: 4, True: 12}
STAR_MIN_RUN = {False: 8, True: 12}
MIN_LEN = 8
MAX_LEN = 40

PLANTED_FIELDS = ("kind", "name", "size", "signature", "path")


def sig_name(rng, ident, platforms, family="Synth"):
    """A ClamAV-style name, Platform.Category.Family-ID-Revision."""
    return f"{rng.choice(platforms)}.{rng.choice(CATEGORIES)}.{family}-{ident}-{rng.randrange(3)}"


def hash_line(digest, size, name):
    """A .hdb/.hsb line; size '*' matches any size, which needs level 73."""
    if size == "*":
        return f"{digest}:*:{name}:73"
    return f"{digest}:{size}:{name}"


def ndb_line(name, body):
    """body is 'TargetType:Offset:HexSig'."""
    return f"{name}:{body}"


def ldb_line(name, body):
    """body is 'TargetDescription;LogicalExpression;Subsig0;Subsig1...'."""
    return f"{name};{body}"


def _filler(rng, n, text):
    return bytes(rng.choices(TEXT_BYTES, k=n)) if text else rng.randbytes(n)


def _run_lengths(rng, text):
    """Split a random total static length into runs of at least MIN_RUN."""
    min_run = MIN_RUN[text]
    total = rng.randint(max(MIN_LEN, min_run), MAX_LEN)
    max_runs = min(4, total // min_run)
    # Plain contiguous strings are the most common kind of real body signature.
    runs = 1 if max_runs == 1 or rng.random() < 0.4 else rng.randint(2, max_runs)
    spare = total - runs * min_run
    cuts = sorted(rng.randint(0, spare) for _ in range(runs - 1))
    return [min_run + b - a for a, b in zip([0] + cuts, cuts + [spare])]


def _separator(rng, text, star_ok):
    """One wildcard construct between two static runs: (sig text, bytes)."""
    kinds = ["skip", "range", "alt"] + (["star"] if star_ok else [])
    kind = rng.choices(kinds, weights=(30, 30, 25, 15)[:len(kinds)])[0]
    if kind == "skip":
        n = rng.randint(1, 4)
        return "??" * n, _filler(rng, n, text)
    if kind == "range":
        lo = rng.randint(0, 32)
        hi = lo + rng.randint(1, 64)
        return f"{{{lo}-{hi}}}", _filler(rng, rng.randint(lo, hi), text)
    if kind == "alt":
        width = rng.choice((1, 1, 2))
        wanted = rng.randint(2, 4)
        options = set()
        while len(options) < wanted:
            options.add(_filler(rng, width, text))
        options = sorted(options)
        return "(" + "|".join(o.hex() for o in options) + ")", rng.choice(options)
    return "*", _filler(rng, rng.randint(0, 64), text)


def body_pattern(rng, text=False):
    """A hex body pattern of 8-40 static bytes and a byte string it matches.

    text=True restricts static bytes and filler to TEXT_BYTES, for patterns
    that must match inside text files or their normalised form.
    """
    runs = [_filler(rng, n, text) for n in _run_lengths(rng, text)]
    sig, instance = [runs[0].hex()], [runs[0]]
    for prev, run in zip(runs, runs[1:]):
        star_ok = min(len(prev), len(run)) >= STAR_MIN_RUN[text]
        sep_sig, sep_bytes = _separator(rng, text, star_ok)
        sig += [sep_sig, run.hex()]
        instance += [sep_bytes, run]
    return "".join(sig), b"".join(instance)


def logic_expr(rng, indices, op=None):
    """A logical expression using every subsignature index exactly once.

    Only '&' and '|' are used, so a file containing every subsignature
    satisfies it whatever its shape.
    """
    if len(indices) == 1:
        return str(indices[0])
    op = op or rng.choice("&&|")
    other = "|" if op == "&" else "&"
    groups = rng.randint(2, min(3, len(indices)))
    cuts = sorted(rng.sample(range(1, len(indices)), groups - 1))
    parts = []
    for a, b in zip([0] + cuts, cuts + [len(indices)]):
        part = logic_expr(rng, indices[a:b], other)
        parts.append(part if b - a == 1 else f"({part})")
    return op.join(parts)


def ldb_body(rng, target, text, subsig_offset=None):
    """A logical signature body and the byte strings of its subsignatures.

    subsig_offset(rng, target) may return an 'Offset:' prefix for a
    subsignature, or ''; planted signatures use none so the instances can go
    anywhere in the file.
    """
    count = rng.randint(2, 5)
    subsigs, instances = [], []
    for _ in range(count):
        sig, instance = body_pattern(rng, text)
        prefix = subsig_offset(rng, target) if subsig_offset else ""
        subsigs.append(prefix + sig)
        instances.append(instance)
    expr = logic_expr(rng, list(range(count)))
    return f"Engine:51-255,Target:{target};{expr};" + ";".join(subsigs), instances


def write_planted(path, rows):
    """rows: dicts with PLANTED_FIELDS.  path names the file inside the
    corpus, with '!member' appended for each archive level."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, PLANTED_FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_planted(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))
