"""Builds the signature databases and input files the CLI tests scan.

Everything is generated at test time into a temporary directory, so the
repository holds no test virus and no file an anti-virus product would flag.
Each signature comes with inputs that must match it and near misses that
must not.
"""
import hashlib
import os
import socket
import zipfile

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
         b"$H+H*")

# A fixed timestamp for zip members, so archives are byte-identical per run.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def _payload(label, size):
    """Deterministic bytes of a given size, distinct per label."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _hex(b):
    return b.hex()


def build(root):
    """Writes sigs/ and files/ (and tree/) under root; returns a dict of
    the names the tests use."""
    sigs = os.path.join(root, "sigs")
    files = os.path.join(root, "files")
    os.makedirs(sigs)
    os.makedirs(files)

    inputs = {}

    def add(name, data):
        inputs[name] = data
        _write(os.path.join(files, name), data)

    add("clean.txt", b"hello world\n")
    add("empty.txt", b"")
    add("md5-hit.bin", _payload("md5-hit", 3000))
    add("md5-wrongsize.bin", _payload("md5-wrongsize", 700))
    add("sha256-hit.bin", _payload("sha256-hit", 5000))
    add("sha256-star.bin", _payload("sha256-star", 1234))
    add("allowed.bin", _payload("allowed", 900))

    # Body signatures: a static run, a one-byte wildcard, a bounded gap
    # and an alternative, in noise.
    noise = _payload("noise", 400)
    add("body-wild.bin", noise[:150] + b"WARDBODY" + b"\x01" + b"WILDCARD" + b"xyz"
        + b"RANGEMARK" + b"ALTbMARK" + noise[150:])
    add("body-wild-miss.bin", noise[:150] + b"WARDBODY" + b"\x01" + b"WILDCARD"
        + b"toolonggap" + b"RANGEMARK" + noise[150:])
    add("body-offset.bin", b"o" * 100 + b"OFFSETSIG" + b"o" * 50)
    add("body-offset-miss.bin", b"o" * 101 + b"OFFSETSIG" + b"o" * 49)
    add("body-eof.bin", noise[:200] + b"TAILSIG!" + b"t" * 8)
    add("body-eof-miss.bin", noise[:200] + b"TAILSIG!" + b"t" * 9)
    add("logical-hit.bin", noise[:50] + b"LOGIC-ONE" + noise[50:120] + b"LOGIC-TWO")
    add("logical-half.bin", noise[:50] + b"LOGIC-ONE" + noise[50:120])
    add("multi.bin", b"MULTIPATTERN-" + _payload("multi", 600))

    md5 = lambda n: hashlib.md5(inputs[n]).hexdigest()
    sha = lambda n: hashlib.sha256(inputs[n]).hexdigest()

    _write(os.path.join(sigs, "md5.hdb"), (
        f"{md5('md5-hit.bin')}:{len(inputs['md5-hit.bin'])}:Ward.Test.MD5\n"
        # Right digest, wrong size: must not match.
        f"{md5('md5-wrongsize.bin')}:{len(inputs['md5-wrongsize.bin']) + 1}:Ward.Test.WrongSize\n"
        f"{md5('multi.bin')}:{len(inputs['multi.bin'])}:Ward.Test.Multi.Hash\n"
    ).encode())
    _write(os.path.join(sigs, "sha.hsb"), (
        f"{sha('sha256-hit.bin')}:{len(inputs['sha256-hit.bin'])}:Ward.Test.SHA256\n"
        f"{sha('sha256-star.bin')}:*:Ward.Test.SHA256.AnySize:73\n"
    ).encode())
    _write(os.path.join(sigs, "body.ndb"), (
        "Ward.Test.Body.Wild:0:*:"
        + _hex(b"WARDBODY") + "??" + _hex(b"WILDCARD") + "{2-4}" + _hex(b"RANGEMARK")
        + _hex(b"ALT") + "(61|62)" + _hex(b"MARK") + "\n"
        + "Ward.Test.Body.Offset:0:100:" + _hex(b"OFFSETSIG") + "\n"
        + "Ward.Test.Body.EOF:0:EOF-16:" + _hex(b"TAILSIG!") + "\n"
        + "Ward.Test.Multi.Body:0:0:" + _hex(b"MULTIPATTERN-") + "\n"
    ).encode())
    _write(os.path.join(sigs, "logical.ldb"), (
        "Ward.Test.Logical;Engine:51-255,Target:0;0&1;"
        + _hex(b"LOGIC-ONE") + ";" + _hex(b"LOGIC-TWO") + "\n"
    ).encode())
    _write(os.path.join(sigs, "allow.hdb"),
           f"{md5('allowed.bin')}:{len(inputs['allowed.bin'])}:Ward.Test.FalsePositive\n"
           .encode())
    _write(os.path.join(sigs, "allow.fp"),
           f"{md5('allowed.bin')}:{len(inputs['allowed.bin'])}:Ward.Test.FalsePositive\n"
           .encode())

    # One directory holding every format at once.
    alldir = os.path.join(root, "sigdir")
    os.makedirs(alldir)
    for name in ("md5.hdb", "sha.hsb", "body.ndb", "logical.ldb", "allow.hdb", "allow.fp"):
        with open(os.path.join(sigs, name), "rb") as src:
            _write(os.path.join(alldir, name), src.read())

    # Broken databases, one defect each.
    bad = os.path.join(root, "bad")
    _write(os.path.join(bad, "malformed.hdb"), b"garbage line here\n")
    _write(os.path.join(bad, "badline2.hdb"),
           f"{md5('md5-hit.bin')}:3000:Good\nnot:a:valid\n".encode())
    _write(os.path.join(bad, "empty.hdb"), b"")
    _write(os.path.join(bad, "badhex.ndb"), b"Bad.Hex:0:*:zz11\n")
    os.makedirs(os.path.join(bad, "nodbs"))
    _write(os.path.join(bad, "nodbs", "readme.txt"), b"not a database\n")

    # Archives: the md5 target as a member is found by its hash.
    with zipfile.ZipFile(os.path.join(files, "hit.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("inner/md5-hit.bin", ZIP_TIME), inputs["md5-hit.bin"])
        z.writestr(zipfile.ZipInfo("readme.txt", ZIP_TIME), b"nothing here\n")
    add_eicar = os.path.join(files, "eicar.com")
    _write(add_eicar, EICAR)

    # A tree for recursion: nesting, an empty file, links, a FIFO, a socket.
    tree = os.path.join(root, "tree")
    _write(os.path.join(tree, "a.txt"), b"a\n")
    _write(os.path.join(tree, "sub", "md5-hit.bin"), inputs["md5-hit.bin"])
    _write(os.path.join(tree, "sub", "deeper", "logical-hit.bin"), inputs["logical-hit.bin"])
    _write(os.path.join(tree, "sub", "deeper", "c.txt"), b"c\n")
    _write(os.path.join(tree, "sub", "empty"), b"")
    _write(os.path.join(tree, "z-body.bin"), inputs["body-offset.bin"])
    os.makedirs(os.path.join(tree, "emptydir"))
    os.symlink("a.txt", os.path.join(tree, "link-to-a"))
    os.symlink("sub", os.path.join(tree, "link-to-sub"))
    os.symlink("loop", os.path.join(tree, "loop"))
    os.mkfifo(os.path.join(tree, "pipe"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(tree, "sock"))
    sock.close()

    os.makedirs(os.path.join(root, "nodb"))
    return {"root": root}
