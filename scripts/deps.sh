#!/bin/sh
# Installs the Debian 12 packages Ward needs to build, test and benchmark.
# Idempotent: when every package is present it prints nothing and changes
# nothing. Needs root (or sudo) only when something is missing.
set -eu

# Build and runtime libraries, then the peers and test data the tests and
# benchmarks compare against (clamscan, clamd, clamav-testfiles).
packages="
build-essential cmake pkg-config clang
libclamav-dev libjansson-dev libsqlite3-dev libsodium-dev
libmicrohttpd-dev libgnutls28-dev libcurl4-gnutls-dev libarchive-dev
clamav clamav-daemon clamdscan clamav-testfiles
python3 time curl
"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps: need root or sudo to install:$missing" >&2
		exit 1
	}
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent on a fresh machine; refresh them once.
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
