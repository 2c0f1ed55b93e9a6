#!/bin/sh
# `make deb`: Ward's Debian packages, built with Debian's tooling
# (dpkg-buildpackage, debhelper) from a copy of this tree in DIR, so that
# the packages land in DIR and not beside the repository.
#
#   scripts/deb.sh DIR
#
# DIR/src is the copy (the files git tracks or would track, as they are in
# the work tree now); its CMake build directory is kept from the last run,
# so a rebuild compiles only what changed. Prints the packages made, then
# runs lintian on them: any error or warning (debian/*.lintian-overrides
# give the reasons of the tags kept) fails the build.
set -eu

[ $# -eq 1 ] || { echo "usage: deb.sh DIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
rm -rf "$out/src.new"
mkdir "$out/src.new"
# Modification times kept: the kept build directory sees what changed. (A
# file deleted but not yet committed is named by git and not copied.)
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 cp -p --parents -t "$out/src.new" || true)
[ -f "$out/src.new/debian/control" ] || { echo "deb.sh: copying the tree failed" >&2; exit 1; }
for obj in "$out"/src/obj-*; do
	[ ! -d "$obj" ] || mv "$obj" "$out/src.new/"
done
rm -rf "$out/src"
mv "$out/src.new" "$out/src"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
(cd "$out/src" && dpkg-buildpackage -b -uc -us --no-pre-clean >"$out/build.log" 2>&1) || {
	tail -40 "$out/build.log" >&2
	echo "deb.sh: dpkg-buildpackage failed; its log: $out/build.log" >&2
	exit 1
}
ls "$out"/*.deb
status=0
lintian --fail-on error,warning "$out"/*.changes >"$out/lintian.log" 2>&1 || status=$?
grep -v '^running with root privileges' "$out/lintian.log" >&2 || true
[ "$status" -eq 0 ] || { echo "deb.sh: lintian: errors or warnings (above)" >&2; exit 1; }
