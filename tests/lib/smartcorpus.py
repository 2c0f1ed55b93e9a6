"""The signature source and scan corpus of the smart scan suites
(test_smart, test_ward_sps): the signed test CVD and custom hash, body and
allow-list files, and files that each must match, or not."""
import os
import shutil
import tempfile

from wardtest import Wardd, clamav_cvd, digest, payload, testfile, tgz_of, zip_of

MD5_SIZED = payload("md5-sized")
MD5_ANY = payload("md5-any")
SHA1_SIZED = payload("sha1-sized")
SHA256_ANY = payload("sha256-any")
WRONG_SIZE = payload("wrong-size")
IN_ZIP = payload("member-of-zip")
IN_TGZ = payload("member-of-tgz")
PUA = payload("pua")
TRUSTED_BODY = payload("trusted") + b"WARD-TEST-BODY-SIGNATURE"
CLAM_EXE = open(testfile("clam.exe"), "rb").read()


TRUSTED_ZIP = zip_of([("inside.bin", TRUSTED_BODY + b"!")])


def write_sources(src):
    """The ClamAV source directory: the test CVD and custom files."""
    shutil.copy(clamav_cvd(5), os.path.join(src, "main.cvd"))
    files = {
        "local.hdb": [f"{digest('md5', MD5_SIZED)}:{len(MD5_SIZED)}:Ward.Test.Md5Sized",
                      f"{digest('md5', WRONG_SIZE)}:{len(WRONG_SIZE) + 1}:Ward.Test.WrongSize",
                      f"{digest('md5', IN_ZIP)}:{len(IN_ZIP)}:Ward.Test.ZipMember",
                      ],
        "local.hsb": [f"{digest('md5', MD5_ANY)}:*:Ward.Test.Md5Any:73",
                      f"{digest('sha1', SHA1_SIZED)}:{len(SHA1_SIZED)}:Ward.Test.Sha1Sized",
                      f"{digest('sha256', SHA256_ANY)}:*:Ward.Test.Sha256Any:73",
                      f"{digest('sha256', IN_TGZ)}:{len(IN_TGZ)}:Ward.Test.TgzMember",
                      # The test CVD has clam.exe's MD5 as Clamav.Test.File-6.
                      f"{digest('sha256', CLAM_EXE)}:{len(CLAM_EXE)}:Ward.Test.ClamExe"],
        "local.hdu": [f"{digest('md5', PUA)}:{len(PUA)}:Ward.Test.Pua"],
        "local.ndb": ["Ward.Test.Body:0:*:" + b"WARD-TEST-BODY-SIGNATURE".hex()],
        # The trusted file and the zip holding a body-matching file are allowed.
        "local.fp": [f"{digest('md5', TRUSTED_BODY)}:{len(TRUSTED_BODY)}:Trusted.File"],
        "local.sfp": [f"{digest('sha256', TRUSTED_ZIP)}:*:Trusted.Zip:73"],
    }
    for name, lines in files.items():
        with open(os.path.join(src, name), "w") as f:
            f.write("".join(line + "\n" for line in lines))


def write_corpus(root):
    files = {
        "md5-sized.bin": MD5_SIZED, "md5-any.bin": MD5_ANY, "sha1-sized.bin": SHA1_SIZED,
        "sha256-any.bin": SHA256_ANY, "wrong-size.bin": WRONG_SIZE, "pua.bin": PUA,
        "trusted.bin": TRUSTED_BODY, "untrusted.bin": TRUSTED_BODY + b"!",
        "trusted.zip": TRUSTED_ZIP,
        "member.zip": zip_of([("a.txt", b"hello\n"), ("m.bin", IN_ZIP)]),
        "member.tar.gz": tgz_of([("dir/t.bin", IN_TGZ), ("dir/b.txt", b"x" * 100)]),
        "nested.zip": zip_of([("inner.tar.gz", tgz_of([("deep.bin", MD5_ANY)]))]),
        "clam.exe": CLAM_EXE,
    }
    for i in range(300):
        files[f"clean/{i:03d}.txt"] = payload(f"clean-{i}")
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    # Real archives from ClamAV's test files: clam.exe inside.
    for name in ("clam.7z", "clam.zip", "clam.tar.gz"):
        shutil.copy(testfile(name), os.path.join(root, name))


def start_server(prefix, cleanup):
    """A wardd importing the sources, and the corpus: (tmp, corpus, wardd).
    cleanup (a test's addCleanup or addClassCleanup) is given, at once, what
    removes the directory and stops wardd, even when what follows fails."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    cleanup(tmp.cleanup)
    src = os.path.join(tmp.name, "source")
    os.makedirs(src)
    write_sources(src)
    corpus = os.path.join(tmp.name, "corpus")
    write_corpus(corpus)
    server = Wardd(tmp.name, extra=(
        f"[updates]\nsource_dir = {src}\nwatch_interval = 1s\n[sps]\nttl = 600\n"
        "[http]\nlong_poll = 5s\n"))
    server.start()
    cleanup(server.stop)
    return tmp, corpus, server
