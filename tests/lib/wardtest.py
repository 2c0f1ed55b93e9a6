"""Shared pieces of Ward's Python test suites: where the programs and the
test data are.

Every suite puts tests/lib on sys.path and imports from here, so that one
place says where tests/data is and a missing fixture fails with a message
naming the file rather than somewhere deeper with a bare traceback.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
# Debian's clamav-testfiles (scripts/deps.sh installs it).
TESTFILES = "/usr/share/clamav-testfiles"


def fixture(path, origin):
    """path, or FileNotFoundError naming it and where it comes from."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"missing test fixture: {path} ({origin})")
    return path


def data_file(*parts):
    """A file under tests/data, which the clone itself holds."""
    return fixture(os.path.join(DATA, *parts), "tests/data is part of the repository; "
                   "see tests/data/clamav/README.md")


def clamav_cvd(n):
    """ClamAV's signed test-N.cvd (N from 1 to 6)."""
    return data_file("clamav", "cvd", f"test-{n}.cvd")


def testfile(name):
    """A file of Debian's clamav-testfiles package (clam.exe and others)."""
    return fixture(os.path.join(TESTFILES, name),
                   "Debian package clamav-testfiles; scripts/deps.sh installs it")
