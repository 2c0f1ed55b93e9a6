#!/bin/sh
# Installs the Debian 12 packages Ward needs to build, test and benchmark.
# Idempotent: when every package is present it prints nothing and changes
# nothing. Needs root (or sudo) only when something is missing.
set -eu

# Build and runtime libraries, then the peers and test data the tests and
# benchmarks compare against (clamscan, clamd, clamav-testfiles; clamonacc,
# which bench-realtime runs beside ward-agent, is in clamav-daemon), then the
# browser the console's tests drive (chromium), faketime for the tests of
# clock steps, systemd-analyze for the units' privileges, and ip (iproute2)
# and sysctl, pgrep (procps) for the tests in network namespaces. clang's
# sanitizer runtime (libclang-rt-14-dev) is only a recommendation of clang,
# which --no-install-recommends leaves out: the sanitizer build needs it.
packages="
build-essential cmake pkg-config clang libclang-rt-14-dev
libclamav-dev libjansson-dev libsqlite3-dev libsodium-dev
libmicrohttpd-dev libgnutls28-dev libcurl4-gnutls-dev libarchive-dev libseccomp-dev
clamav clamav-daemon clamdscan clamav-testfiles
python3 time curl chromium faketime systemd iproute2 procps
"
# bench-realtime makes its workload with `git archive` of HEAD (e2fsprogs,
# for the ext4 image it mounts, is a required package).
packages="$packages git"
# make deb and its test: Debian's packaging tools, lintian, and
# debootstrap for the fresh Debian 12 the packages are installed into;
# systemd-nspawn boots it, for the agent upgraded through dpkg under
# systemd.
packages="$packages debhelper dpkg-dev lintian debootstrap systemd-container"
# The PostgreSQL backend: libpq to build, and the server its tests start
# on a private directory and socket (postgresql; pg_dump for backups).
# Debian starts a cluster of its own ("main", port 5432) when it installs
# the server; the tests never use it.
packages="$packages libpq-dev postgresql"
# Several wardd behind a TCP load balancer, as docs/architecture.md
# shows it: Debian's HAProxy, run by its test on loopback with a
# configuration of its own (Debian's service, with its own configuration,
# listens nowhere).
packages="$packages haproxy"
# The alerts' tests: a real SMTP server on loopback (aiosmtpd).
packages="$packages python3-aiosmtpd"
# The agent's clamd service is tested with the clamd clients Debian
# packages (server.clamd): pyclamd, c-icap with its virus_scan service's
# clamd module (and c-icap-client), exim's malware condition (the heavy
# daemon has content scanning; the tests run exim -bmalware with a
# configuration of their own), check_clamd, and Perl's ClamAV::Client.
# Debian starts exim's service when it installs it (mail to localhost
# only); c-icap's stays off (/etc/default/c-icap).
packages="$packages python3-pyclamd c-icap libc-icap-mod-virus-scan exim4-daemon-heavy
monitoring-plugins-basic libclamav-client-perl"
# The posture report's policy server: FreeRADIUS with its rest module,
# run by its test on loopback with a configuration of its own, and
# radtest (freeradius-utils). Debian starts its own service when it
# installs it (its default configuration, port 1812); the test's listens
# on a port of its own.
packages="$packages freeradius freeradius-rest freeradius-utils"
# Users told of a restart the agent's update waits for: notify-send
# (libnotify-bin), which the agent runs; its test gives a user a desktop
# session as one runs: an X server (xvfb), a session bus (dbus-daemon, and
# dbus-monitor from dbus-bin to see the call) and Debian's
# notification-daemon.
packages="$packages libnotify-bin xvfb dbus-daemon dbus-bin notification-daemon"
# Node.js and npm run the browser tests; a machine that has them (any
# version from 18 on) keeps its own, others get Debian's.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done

# playwright-core, at the version of the committed lock file.
browser_tests=$(dirname "$0")/../tests/browser
npm_ci() {
	[ -d "$browser_tests/node_modules/playwright-core" ] && return 0
	echo "deps: installing playwright-core for the browser tests (npm ci)" >&2
	(cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ -z "$missing" ]; then
	npm_ci
	exit 0
fi

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
npm_ci
