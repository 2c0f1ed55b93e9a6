#!/bin/sh
# A fresh Debian 12 machine in a folder, for `make check-fresh` and the
# package tests.
#
#   scripts/chroot.sh create DIR [PACKAGE...]
#       debootstrap a minimal bookworm into DIR with git, make,
#       ca-certificates and the PACKAGEs given; the machine's apt sources,
#       apt settings and local CA certificates are copied in, so that the
#       chroot reaches the same archive the same way this machine does.
#   scripts/chroot.sh run DIR COMMAND...
#       run COMMAND inside DIR as root with /proc, /sys, /dev, /dev/pts,
#       /dev/shm, /run and /tmp mounted for it; everything mounted is
#       unmounted again when COMMAND ends, however it ends.
#   scripts/chroot.sh destroy DIR
#       unmount whatever is left mounted under DIR and remove it.
#
# Needs root and debootstrap. WARD_CHROOT_CACHE names a folder where the
# downloaded .deb files are kept between runs (default: none).
set -eu

die() {
	echo "chroot.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root"
[ $# -ge 2 ] || die "usage: chroot.sh create|run|destroy DIR [...]"
cmd=$1
dir=$2
shift 2

# Every mount point under DIR, deepest first.
mounts_under() {
	awk -v d="$(realpath -m "$1")" '$2 == d || index($2, d "/") == 1 { print $2 }' \
		/proc/self/mounts | sort -r
}

unmount_all() {
	for m in $(mounts_under "$1"); do
		umount -l "$m" 2>/dev/null || true
	done
}

case $cmd in
create)
	command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed"
	[ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || die "$dir exists and is not empty"
	include=git,make,ca-certificates
	for p in "$@"; do include=$include,$p; done
	mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
		head -1)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	set -- --variant=minbase --include="$include"
	if [ -n "${WARD_CHROOT_CACHE:-}" ]; then
		mkdir -p "$WARD_CHROOT_CACHE"
		set -- "$@" --cache-dir="$(realpath "$WARD_CHROOT_CACHE")"
	fi
	debootstrap "$@" bookworm "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 ||
		die "debootstrap failed; its log: $dir.debootstrap.log"
	rm -f "$dir.debootstrap.log"
	# The machine's way to the archive: its sources and apt settings.
	if [ -d /etc/apt/sources.list.d ]; then
		cp /etc/apt/sources.list.d/*.sources "$dir/etc/apt/sources.list.d/" 2>/dev/null ||
			true
	fi
	# debootstrap's own sources.list would name the archive twice.
	rm -f "$dir/etc/apt/sources.list"
	[ ! -f /etc/apt/sources.list ] || cp /etc/apt/sources.list "$dir/etc/apt/"
	for f in /etc/apt/apt.conf.d/99*; do
		[ ! -f "$f" ] || cp "$f" "$dir/etc/apt/apt.conf.d/"
	done
	# Its local CA certificates (a proxy in the way re-signs TLS).
	if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
		cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
		chroot "$dir" update-ca-certificates >/dev/null 2>&1
	fi
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	# The services of packages installed in it are not started (as in
	# any build chroot): they would run beside the machine's, on its
	# network (postgresql's own cluster on port 5432, say), and outlive
	# the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	# debootstrap writes no /etc/hosts, which every installed Debian has
	# (the installer's, below): without it "localhost" does not resolve.
	[ -e "$dir/etc/hosts" ] || cat >"$dir/etc/hosts" <<-EOF
		127.0.0.1	localhost
		::1	localhost ip6-localhost ip6-loopback
		ff02::1	ip6-allnodes
		ff02::2	ip6-allrouters
	EOF
	;;
run)
	[ -x "$dir/bin/sh" ] || die "$dir is not a chroot made by chroot.sh create"
	[ $# -ge 1 ] || die "run: no command"
	trap 'unmount_all "$dir"' EXIT INT TERM
	# The chroot's / a mount point of its own, as a machine's is: ip netns
	# exec and unshare --mount change the propagation of / (EINVAL on a
	# plain folder).
	mount --rbind "$dir" "$dir"
	mount --make-rprivate "$dir"
	mount -t proc proc "$dir/proc"
	mount -t sysfs sysfs "$dir/sys"
	# The machine's control groups, as a machine has them: systemd-nspawn
	# (the package tests boot a machine with it) needs them.
	if mountpoint -q /sys/fs/cgroup; then
		mount --rbind /sys/fs/cgroup "$dir/sys/fs/cgroup"
		mount --make-rslave "$dir/sys/fs/cgroup"
	fi
	mount --rbind /dev "$dir/dev"
	mount --make-rslave "$dir/dev"
	mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
	mount -t tmpfs -o mode=755 tmpfs "$dir/run"
	mount -t tmpfs -o mode=1777 tmpfs "$dir/tmp"
	chroot "$dir" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 "$@"
	;;
destroy)
	[ -e "$dir" ] || exit 0
	unmount_all "$dir"
	[ -z "$(mounts_under "$dir")" ] || die "$dir still has mounts"
	rm -rf "$dir"
	;;
*)
	die "unknown command $cmd (create, run or destroy)"
	;;
esac
