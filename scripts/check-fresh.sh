#!/bin/sh
# make check-fresh: `make test` in a clean clone of HEAD on a fresh Debian 12.
#
# A chroot made by scripts/chroot.sh (git, make and ca-certificates only),
# a `git clone` of the current commit at /src/ward inside it with nothing
# beside it, and `make test` run there as root, as a new user would. Prints
# the result and the time taken, and destroys the chroot afterwards.
#
#   WARD_FRESH_DIR    where the chroot and the log go (default build-fresh)
#   WARD_FRESH_KEEP=1 keep the chroot for debugging (scripts/chroot.sh run
#                     DIR/chroot sh to look inside, destroy to remove it)
#   WARD_CHROOT_CACHE keeps the downloaded .deb files between runs
#   JOBS              parallel build jobs (default: nproc; tests run one more)
#
# Tests HEAD: uncommitted changes are not in the clone. Needs root.
set -eu

die() {
	echo "check-fresh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (sudo make check-fresh)"
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
short=$(git -C "$repo" rev-parse --short HEAD)
base=${WARD_FRESH_DIR:-$repo/build-fresh}
dir=$base/chroot
log=$base/check-fresh.log
jobs=${JOBS:-$(nproc)}
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
	echo "check-fresh: uncommitted changes are not tested, only $commit" >&2

mkdir -p "$base"
sh "$repo/scripts/chroot.sh" destroy "$dir"
cleanup() {
	if [ -n "${WARD_FRESH_KEEP:-}" ]; then
		echo "check-fresh: kept $dir (scripts/chroot.sh destroy $dir removes it)"
	else
		sh "$repo/scripts/chroot.sh" destroy "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
echo "check-fresh: debootstrap of Debian 12 into $dir"
sh "$repo/scripts/chroot.sh" create "$dir"
# The clone is made with the chroot's own git, from a bundle of HEAD, so
# that nothing in it points back at this machine's repository.
git -C "$repo" bundle create "$dir/root/ward.bundle" HEAD >/dev/null 2>&1
mkdir -p "$dir/src"
sh "$repo/scripts/chroot.sh" run "$dir" sh -c \
	'git -c advice.detachedHead=false clone -q /root/ward.bundle /src/ward && rm /root/ward.bundle'
echo "check-fresh: make test in a clone of $commit (log: $log)"
status=0
sh "$repo/scripts/chroot.sh" run "$dir" sh -c "cd /src/ward && make test JOBS=$jobs" \
	>"$log" 2>&1 || status=$?
tail -n 40 "$log"
secs=$(($(date +%s) - start))
if [ "$status" -eq 0 ]; then
	result=PASSED
else
	result="FAILED (make test exited $status)"
fi
printf 'check-fresh: %s on a fresh Debian 12, commit %s, in %dm%02ds\n' \
	"$result" "$short" $((secs / 60)) $((secs % 60))
[ "$status" -eq 0 ]
