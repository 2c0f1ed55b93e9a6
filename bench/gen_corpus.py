#!/usr/bin/env python3
"""Generate a deterministic benchmark corpus of mixed files.

The corpus mixes generated text (source code, logs, configuration, HTML,
JSON, CSV, prose), ELF binaries copied from the system, random binary
blobs, .gz files, .zip and .tar.gz archives (some holding a nested zip),
spread over a tree of folders of 50-200 files each.  A few files are
"infected": their digest, or a body/logical pattern embedded in them, is a
signature that gen_db.py must add to the database.

Besides the corpus this writes
  planted.tsv   the planted signatures (kind, name, size, signature, path),
                input to gen_db.py --planted;
  manifest.tsv  each infected file's path relative to the corpus and the
                signature name a scanner must report for it.

For a given seed the output is identical from run to run on one machine; the
copied binaries depend on what is installed under /usr.
"""

import argparse
import collections
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import random
import sys
import tarfile
import time
import zipfile

from synthsig import PLATFORMS, body_pattern, ldb_body, sig_name, write_planted

MIB = 1 << 20
MIN_SIZE = 200
MAX_SIZE = 30 * MIB
HUGE_MAX = 60 * MIB
HUGE_SHARE = 0.0003        # of top-level files, drawn between MAX_SIZE and HUGE_MAX
SIGMA = 1.7                # spread of the log-normal file sizes
MEMBER_ELF_MAX = 4 * MIB   # keep binaries inside archives modest
ELF_DIRS = ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
FOLDER_FILES = (50, 200)
MAX_DEPTH = 6              # clamscan and clamd stop descending at 15 levels
ARCHIVE_TIME = (2023, 6, 1, 12, 0, 0)
ARCHIVE_EPOCH = 1685620800  # the same instant, for tar headers
PLANTED_ID = 9_000_000
GZIP_LEVEL = 6             # gzip(1)'s default; the module's own default is 9
BLOB_EXTS = ("bin", "dat", "enc")
# Like zip(1), store members that deflate would not shrink.
STORED_SUFFIXES = tuple("." + ext for ext in BLOB_EXTS + ("gz", "zip"))

WORDS = """time year people way day thing world school state family student group
country problem hand part place case week company system program question work
number night point home water room area money story fact month right study book
job word business issue side kind head house service friend power hour game line
end member law city community name team minute idea body information back level
office door health person history party result change morning reason research
moment teacher force education the of and to in is that for it as with was on be
by at this from have or are not but had they which one you were all we can her
has there been if more when will would who so no""".split()
TECH = """server client request response cache buffer index record session token
config update user file error data value stream packet socket thread queue worker
handler parser module driver device kernel memory process signal timeout retry
backup policy account invoice order payment report metric event node cluster
schema table column commit branch build deploy release image volume network
route proxy filter""".split()
NAMES = """james mary robert patricia john jennifer michael linda david elizabeth
william barbara richard susan joseph jessica thomas sarah charles karen daniel
lisa matthew nancy anthony betty mark sandra paul ashley steven emily andrew
donna joshua michelle kenneth carol kevin amanda brian melissa""".split()
SURNAMES = """smith johnson williams brown jones garcia miller davis rodriguez
martinez hernandez lopez gonzalez wilson anderson thomas taylor moore jackson
martin lee perez thompson white harris sanchez clark ramirez lewis robinson""".split()
CITIES = """Berlin Paris Madrid Rome Vienna Prague Warsaw Lisbon Dublin Oslo
Stockholm Helsinki Athens Zurich Brussels Amsterdam Copenhagen Budapest""".split()
DOMAINS = ("example.com", "example.org", "mail.test", "corp.example", "shop.example")
HOSTS = ("web", "db", "cache", "worker", "gw", "build", "mail")
DAEMONS = ("sshd", "nginx", "postgres", "cron", "systemd", "kernel", "dockerd",
           "app-server", "backup-agent", "sudo")
LEVELS = ("INFO",) * 6 + ("DEBUG",) * 3 + ("WARN", "ERROR")
DIR_WORDS = ("src", "docs", "logs", "data", "backup", "lib", "assets", "reports",
             "archive", "build", "cache", "home", "projects", "share", "tmp",
             "downloads", "exports", "config", "media", "vendor")

# Syntax of the generated source files, one entry per language.
LANGS = {
    "c": dict(comment="/* {} */", head="static int {f}(struct {t} *{a}, size_t {b})\n{{",
              stmt="    {v} = {f}({a}, {n});", cond="    if ({v} > {n})\n        {f}({a}, {v});",
              tail="    return {v};\n}}"),
    "py": dict(comment="# {}", head="def {f}({a}, {b}):", stmt="    {v} = {f}({a}, {n})",
               cond="    if {v} > {n}:\n        {f}({a}, {v})", tail="    return {v}"),
    "js": dict(comment="// {}", head="function {f}({a}, {b}) {{", stmt="  const {v} = {f}({a}, {n});",
               cond="  if ({v} > {n}) {{\n    {f}({a}, {v});\n  }}", tail="  return {v};\n}}"),
}

# Planted files: (signature kind, container, carrier, target type).  The list
# is cycled, so the default 40 infected files use every recipe twice.
# 'hsb*' is a SHA-256 signature that matches any file size.
RECIPES = (
    ("hdb", "plain", "blob", None), ("hsb", "plain", "text", None),
    ("ndb", "plain", "blob", 0), ("ldb", "plain", "blob", 0),
    ("hdb", "zip", "text", None), ("hsb", "targz", "blob", None),
    ("ndb", "plain", "elf", 6), ("ldb", "plain", "elf", 6),
    ("hsb*", "plain", "blob", None), ("hdb", "targz", "blob", None),
    ("ndb", "plain", "text", 7), ("ldb", "zip", "text", 0),
    ("hsb", "zipzip", "text", None), ("ndb", "gz", "blob", 0),
    ("hdb", "plain", "elf", None), ("ndb", "zip", "blob", 0),
    ("ldb", "plain", "text", 7), ("hsb", "zip", "blob", None),
    ("ndb", "targz", "text", 0), ("hsb*", "zip", "text", None),
)


def draw_size(rng, median, huge=False):
    if huge and rng.random() < HUGE_SHARE:
        return rng.randint(MAX_SIZE, HUGE_MAX)
    return min(max(int(rng.lognormvariate(math.log(median), SIGMA)), MIN_SIZE), MAX_SIZE)


def sentence(rng):
    words = rng.choices(WORDS + TECH, k=rng.randint(6, 16))
    return " ".join(words).capitalize() + "."


def ident(rng):
    return f"{rng.choice(TECH)}_{rng.choice(WORDS + TECH)}"


def ip(rng):
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def log_message(rng):
    pick = rng.randrange(5)
    if pick == 0:
        return f"Accepted publickey for {rng.choice(NAMES)} from {ip(rng)} port {rng.randrange(1024, 65536)} ssh2"
    if pick == 1:
        status = rng.choice((200, 200, 200, 304, 404, 500))
        return (f'{ip(rng)} - - "GET /{rng.choice(TECH)}/{rng.choice(WORDS)}?id={rng.randrange(10**6)} '
                f'HTTP/1.1" {status} {rng.randrange(100, 90000)} "-" "Mozilla/5.0"')
    if pick == 2:
        return f"{rng.choice(TECH)} {rng.choice(TECH)} completed in {rng.randrange(1, 5000)} ms"
    if pick == 3:
        return f"connection reset by peer while reading {rng.choice(TECH)} from {ip(rng)}"
    return f"job {rng.randrange(10**5)} ({ident(rng)}) finished with status {rng.choice((0, 0, 0, 1))}"


# Block makers: each returns a self-contained piece of one kind of text file.

def log_block(rng):
    """A burst of lines from one host, in time order."""
    t = 1_672_531_200 + rng.randrange(31_536_000)
    host = f"{rng.choice(HOSTS)}-{rng.randrange(1, 40):02d}"
    lines = []
    for _ in range(rng.randint(4, 24)):
        t += rng.expovariate(0.5)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        lines.append(f"{stamp}.{int(t * 1000) % 1000:03d}Z {host} {rng.choice(DAEMONS)}"
                     f"[{rng.randrange(300, 60000)}]: {rng.choice(LEVELS)} {log_message(rng)}\n")
    return "".join(lines)


def csv_block(rng):
    day = time.strftime("%Y-%m-%d", time.gmtime((19_000 + rng.randrange(1000)) * 86400))
    first_id = rng.randrange(1, 10**6)
    rows = []
    for row in range(first_id, first_id + rng.randint(8, 32)):
        first, last = rng.choice(NAMES), rng.choice(SURNAMES)
        rows.append(f"{row},{day},{first.title()} {last.title()},{first}.{last}@{rng.choice(DOMAINS)},"
                    f"{rng.choice(CITIES)},{rng.uniform(1, 5000):.2f},{rng.choice(('EUR', 'USD', 'GBP'))},"
                    f"{rng.choice(('paid', 'paid', 'open', 'refunded'))}\n")
    return "".join(rows)


def json_block(rng):
    return json.dumps({
        "id": rng.randrange(10**7), "user": rng.choice(NAMES), "city": rng.choice(CITIES),
        "active": rng.random() < 0.8, "score": round(rng.uniform(0, 100), 3),
        "tags": rng.sample(TECH, rng.randint(0, 4)), "note": sentence(rng)})


def code_block(rng, lang):
    """One commented function."""
    syn = LANGS[lang]
    a, v = rng.choice(TECH), ident(rng)
    lines = [syn["comment"].format(sentence(rng)),
             syn["head"].format(f=ident(rng), t=rng.choice(TECH), a=a, b=rng.choice(WORDS))]
    for _ in range(rng.randint(2, 12)):
        form = syn["cond"] if rng.random() < 0.3 else syn["stmt"]
        lines.append(form.format(f=ident(rng), a=a, v=v, n=rng.randrange(4096)))
    lines.append(syn["tail"].format(v=v))
    return "\n".join(lines) + "\n\n"


def conf_block(rng):
    lines = [f"[{rng.choice(TECH)}.{rng.choice(WORDS)}]"]
    for _ in range(rng.randint(2, 10)):
        value = rng.choice((str(rng.randrange(65536)), rng.choice(("yes", "no")),
                            f"/var/lib/{rng.choice(TECH)}", f"{rng.choice(HOSTS)}.{rng.choice(DOMAINS)}"))
        lines.append(f"{ident(rng)} = {value}")
    return "\n".join(lines) + "\n\n"


def html_block(rng):
    if rng.random() < 0.2:
        return f'<div class="{rng.choice(TECH)}"><h2>{sentence(rng)}</h2></div>\n'
    return (f'<p>{sentence(rng)} <a href="https://{rng.choice(DOMAINS)}/{rng.choice(TECH)}/'
            f'{rng.randrange(9999)}">{rng.choice(WORDS)}</a> {sentence(rng)}</p>\n')


def doc_block(rng):
    heading = f"## {sentence(rng)}\n\n" if rng.random() < 0.15 else ""
    return heading + " ".join(sentence(rng) for _ in range(rng.randint(2, 7))) + "\n\n"


# A text file is header + blocks joined by sep + footer.
TextKind = collections.namedtuple("TextKind", "stems exts median block header sep footer",
                                  defaults=("", "", ""))
TEXT_KINDS = {
    "c": TextKind(("main", "util", "parser", "driver", "buffer"), ("c",), 6_000,
                  lambda rng: code_block(rng, "c"), "#include <stdio.h>\n#include <stdlib.h>\n\n"),
    "py": TextKind(("app", "models", "views", "tasks", "client"), ("py",), 5_000,
                   lambda rng: code_block(rng, "py"), "import os\nimport sys\n\n"),
    "js": TextKind(("index", "bundle", "handler", "server", "widget"), ("js",), 8_000,
                   lambda rng: code_block(rng, "js"), "'use strict';\n\n"),
    "doc": TextKind(("readme", "notes", "changelog", "guide", "todo"), ("txt", "md"), 8_000, doc_block),
    "conf": TextKind(("settings", "app", "service", "defaults"), ("ini", "conf", "cfg"), 2_000, conf_block),
    "log": TextKind(("access", "error", "syslog", "app", "audit"), ("log",), 64_000, log_block),
    "csv": TextKind(("export", "orders", "report", "customers"), ("csv",), 48_000, csv_block,
                    "id,date,customer,email,city,amount,currency,status\n"),
    "json": TextKind(("records", "dump", "events", "response"), ("json",), 16_000, json_block,
                     "[\n", ",\n", "\n]\n"),
    "html": TextKind(("index", "page", "article", "help"), ("html",), 24_000, html_block,
                     '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Help</title></head><body>\n',
                     "", "</body></html>\n"),
}
# Text files are mostly assembled from a per-kind pool of blocks made once:
# drawing every word from random runs at ~10 MB/s, far too slow for
# gigabytes, and a scanner's work does not depend on blocks recurring in
# other files.
POOL_BLOCKS = 512
# Plain-text kinds a planted text pattern can live in: ClamAV types them as
# ASCII text, which target type 7 signatures need.
PLAIN_TEXT = ("doc", "log", "csv")

# Top-level file kinds with their share of the file count.
KIND_WEIGHTS = {"c": 8, "py": 7, "js": 5, "doc": 8, "conf": 6, "log": 6, "csv": 5, "json": 5, "html": 6,
                "elf": 7, "blob": 14, "gz": 6, "zip": 8, "targz": 4}
# Archive members: text, blobs and small binaries; zips may hold a zip.
MEMBER_WEIGHTS = {"c": 10, "py": 8, "js": 7, "doc": 15, "conf": 10, "log": 5, "csv": 5, "json": 5,
                  "html": 10, "elf": 5, "blob": 15, "zip": 2}
BLOB_MEDIAN = 64_000
ARCHIVE_MEDIAN = {"gz": 96_000, "zip": 128_000, "targz": 256_000}
MEMBER_MEDIAN = 12_000


def elf_pool(rng):
    """ELF files under ELF_DIRS in a seed-determined order (symlinks skipped)."""
    found = []
    for top in ELF_DIRS:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    size = os.path.getsize(path)
                    with open(path, "rb") as f:
                        if MIN_SIZE <= size <= HUGE_MAX and f.read(4) == b"\x7fELF":
                            found.append((path, size))
                except OSError:
                    continue
    rng.shuffle(found)
    return found


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, ARCHIVE_TIME)  # fixed time: reproducible bytes
            info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def targz_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), ARCHIVE_EPOCH, 0o644
            info.uname = info.gname = "user"
            tf.addfile(info, io.BytesIO(data))
    # tarfile's own gzip layer stamps the current time; mtime=0 keeps it reproducible.
    return gzip.compress(buf.getvalue(), GZIP_LEVEL, mtime=0)


class Generator:
    def __init__(self, rng):
        self.rng = rng
        self.elves = elf_pool(rng)
        self.pools = {}  # text kind -> blocks
        self.seq = itertools.count()

    def filename(self, stems, ext):
        name = f"{self.rng.choice(stems)}_{next(self.seq):05d}"
        return f"{name}.{ext}" if ext else name

    def text(self, kind, size):
        spec = TEXT_KINDS[kind]
        if kind not in self.pools:
            self.pools[kind] = [spec.block(self.rng) for _ in range(POOL_BLOCKS)]
        # A freshly made first block keeps small files from being byte-identical,
        # which would make one planted digest match several files.
        pool, blocks = self.pools[kind], [spec.block(self.rng)]
        n = len(blocks[0])
        while n < size:
            blocks.append(self.rng.choice(pool))
            n += len(blocks[-1])
        body = spec.header + spec.sep.join(blocks) + spec.footer
        return self.filename(spec.stems, self.rng.choice(spec.exts)), body.encode()

    def elf(self, limit):
        """The next unused system binary of at most limit bytes, or None."""
        for i, (path, size) in enumerate(self.elves):
            if size <= limit:
                del self.elves[i]
                base = os.path.basename(path)
                ext = "so" if ".so" in base else ""  # programs go without extension
                with open(path, "rb") as f:
                    return self.filename((base.partition(".")[0],), ext), f.read()
        return None

    def blob(self, size):
        name = self.filename(("data", "cache", "blob", "chunk", "payload"), self.rng.choice(BLOB_EXTS))
        return name, self.rng.randbytes(size)

    def members(self, total, allow_zip):
        """Archive members adding up to about total bytes."""
        out, n = [], 0
        while n < total or len(out) < 2:
            kind = self.rng.choices(list(MEMBER_WEIGHTS), weights=MEMBER_WEIGHTS.values())[0]
            if kind == "zip" and not allow_zip:
                continue
            name, data = self.make(kind, draw_size(self.rng, MEMBER_MEDIAN), top=False)
            folder = self.rng.choice(("", "", "docs/", "src/", "data/"))
            out.append((folder + name, data))
            n += len(data)
        return out

    def make(self, kind, size, top):
        """One file of the given kind: (filename, bytes).  Only top-level
        files may be large binaries or archives holding a zip."""
        if kind in TEXT_KINDS:
            return self.text(kind, size)
        if kind == "elf":
            found = self.elf(HUGE_MAX if top else MEMBER_ELF_MAX)
            return found or self.blob(size)  # pool exhausted: a blob stands in
        if kind == "blob":
            return self.blob(size)
        if kind == "gz":
            inner_kind = self.rng.choice(("log", "log", "csv", "json", "doc", "blob"))
            name, data = self.make(inner_kind, size, top=False)
            return name + ".gz", gzip.compress(data, GZIP_LEVEL, mtime=0)
        stems = ("backup", "release", "bundle", "archive", "photos", "project")
        if kind == "zip":
            return self.filename(stems, "zip"), zip_bytes(self.members(size, allow_zip=top))
        if kind == "targz":
            return self.filename(stems, "tar.gz"), targz_bytes(self.members(size, allow_zip=top))
        raise ValueError(kind)

    def regular(self):
        kind = self.rng.choices(list(KIND_WEIGHTS), weights=KIND_WEIGHTS.values())[0]
        if kind in TEXT_KINDS:
            median = TEXT_KINDS[kind].median
        else:
            median = ARCHIVE_MEDIAN.get(kind, BLOB_MEDIAN)
        return self.make(kind, draw_size(self.rng, median, huge=True), top=True)

    def carrier(self, carrier):
        """The file a planted signature goes into: (filename, bytes)."""
        size = draw_size(self.rng, 64_000)
        if carrier == "text":
            return self.text(self.rng.choice(PLAIN_TEXT), size)
        if carrier == "elf":
            found = self.elf(MEMBER_ELF_MAX)
            if found is None:
                sys.exit("gen_corpus: no ELF binary left to carry a planted signature")
            # A patched copy: random overlay bytes make its digest unique even
            # if the system holds the same binary twice.
            name, data = found
            return name, data + self.rng.randbytes(self.rng.randint(16, 4096))
        return self.blob(size)

    def splice(self, data, carrier, instances):
        """Insert instances into data without splitting one another.

        Text gets each instance on a line of its own, binaries get them
        appended after the last section (an overlay) so ELF parsing still
        works, blobs anywhere.  Returns the new data and each instance's offset.
        """
        if carrier == "elf":
            cuts = [len(data)] * len(instances)
        elif carrier == "text":
            cuts = sorted(data.find(b"\n", self.rng.randrange(len(data))) + 1 or len(data)
                          for _ in instances)
        else:
            cuts = sorted(self.rng.randrange(len(data) + 1) for _ in instances)
        glue = b"\n" if carrier == "text" else b""
        parts, offsets, pos, prev = [], [], 0, 0
        for cut, instance in zip(cuts, instances):
            parts += [data[prev:cut], instance + glue]
            pos += cut - prev
            offsets.append(pos)
            pos += len(instance) + len(glue)
            prev = cut
        parts.append(data[prev:])
        return b"".join(parts), offsets

    def planted(self, recipe, ident):
        """An infected file: (filename, bytes, planted.tsv row without path, member path)."""
        kind, container, carrier, target = recipe
        name, data = self.carrier(carrier)
        text = carrier == "text"
        if kind in ("hdb", "hsb", "hsb*"):
            sig_kind = kind.rstrip("*")
            digest = (hashlib.md5 if sig_kind == "hdb" else hashlib.sha256)(data).hexdigest()
            size = "*" if kind.endswith("*") else str(len(data))
            row = dict(kind=sig_kind, size=size, signature=digest,
                       name=sig_name(self.rng, ident, PLATFORMS["hash"], "Planted"))
        elif kind == "ndb":
            sig, instance = body_pattern(self.rng, text)
            data, (offset,) = self.splice(data, carrier, [instance])
            roll = self.rng.random()
            if target == 7 or roll < 0.5:
                where = "*"  # type 7 matches normalised text, where raw offsets do not hold
            elif roll < 0.75 or carrier == "elf":
                # libclamav ignores end-relative offsets in executables whose
                # header it rejects, as it does some system objects (e.g. >256 sections).
                where = str(offset)
            else:
                where = f"EOF-{len(data) - offset}"
            row = dict(kind="ndb", size="-", signature=f"{target}:{where}:{sig}",
                       name=sig_name(self.rng, ident, PLATFORMS[target], "Planted"))
        else:
            body, instances = ldb_body(self.rng, target, text)
            data, _ = self.splice(data, carrier, instances)
            row = dict(kind="ldb", size="-", signature=body,
                       name=sig_name(self.rng, ident, PLATFORMS[target], "Planted"))

        if container == "plain":
            return name, data, row, ""
        if container == "gz":
            return name + ".gz", gzip.compress(data, GZIP_LEVEL, mtime=0), row, "!" + name
        others = self.members(draw_size(self.rng, ARCHIVE_MEDIAN["zip"]), allow_zip=False)
        members = others + [(name, data)]
        self.rng.shuffle(members)
        stems = ("invoice", "update", "setup", "docs", "scan")
        if container == "targz":
            return self.filename(stems, "tar.gz"), targz_bytes(members), row, "!" + name
        inner = zip_bytes(members)
        if container == "zip":
            return self.filename(stems, "zip"), inner, row, "!" + name
        inner_name = self.filename(stems, "zip")
        outer = self.members(draw_size(self.rng, MEMBER_MEDIAN), allow_zip=False) + [(inner_name, inner)]
        self.rng.shuffle(outer)
        return self.filename(stems, "zip"), zip_bytes(outer), row, f"!{inner_name}!{name}"


class Layout:
    """Hands out file paths, opening a new folder every 50-200 files."""

    def __init__(self, rng, root):
        self.rng, self.root = rng, root
        self.folders = []  # (relative path, depth)
        self.current, self.left = None, 0

    def place(self, filename):
        if not self.left:
            parents = [f for f in self.folders if f[1] < MAX_DEPTH] + [("", 0)]
            parent, depth = self.rng.choice(parents)
            rel = os.path.join(parent, f"{self.rng.choice(DIR_WORDS)}_{len(self.folders):03d}")
            os.makedirs(os.path.join(self.root, rel))
            self.folders.append((rel, depth + 1))
            self.current, self.left = rel, self.rng.randint(*FOLDER_FILES)
        self.left -= 1
        return os.path.join(self.current, filename)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048, help="corpus size in MiB (on disk)")
    ap.add_argument("--infected", type=int, default=40, help="number of planted infected files")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="corpus directory to create (must not exist)")
    ap.add_argument("--planted", help="planted.tsv to write (default: beside --out)")
    ap.add_argument("--manifest", help="manifest.tsv to write (default: beside --out)")
    args = ap.parse_args()
    beside = os.path.dirname(os.path.abspath(args.out))
    planted_path = args.planted or os.path.join(beside, "planted.tsv")
    manifest_path = args.manifest or os.path.join(beside, "manifest.tsv")
    if os.path.exists(args.out):
        sys.exit(f"gen_corpus: {args.out} already exists")

    started = time.monotonic()
    rng = random.Random(f"ward-bench-corpus:{args.seed}")
    gen = Generator(rng)
    layout = Layout(rng, args.out)
    target = args.size_mb * MIB
    # Infected files go out when the running total passes a random mark, which
    # spreads them over the whole tree.
    recipes = [RECIPES[i % len(RECIPES)] for i in range(args.infected)]
    marks = sorted(rng.randrange(target) for _ in recipes)
    planted_rows, manifest = [], []
    written = files = 0
    next_report = 256 * MIB
    while written < target or len(planted_rows) < len(recipes):
        i = len(planted_rows)
        if i < len(recipes) and written >= marks[i]:
            name, data, row, member = gen.planted(recipes[i], PLANTED_ID + i)
            rel = layout.place(name)
            planted_rows.append(dict(row, path=rel + member))
            manifest.append((rel, row["name"]))
        else:
            name, data = gen.regular()
            rel = layout.place(name)
        with open(os.path.join(args.out, rel), "wb") as f:
            f.write(data)
        written += len(data)
        files += 1
        if written >= next_report:
            print(f"gen_corpus: {written / MIB:.0f} MiB, {files} files", file=sys.stderr)
            next_report += 256 * MIB

    write_planted(planted_path, planted_rows)
    with open(manifest_path, "w", encoding="utf-8") as f:
        f.write("path\tname\n")
        f.writelines(f"{rel}\t{name}\n" for rel, name in manifest)
    print(f"gen_corpus: {files} files, {written / MIB:.0f} MiB in {len(layout.folders)} folders, "
          f"{len(manifest)} infected, {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
