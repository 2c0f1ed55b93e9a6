/* mounts.h -- filesystems a unit test mounts for itself: a private mount
 * namespace (so nothing it mounts is seen outside, and nothing of the
 * machine's is marked), tmpfs mounts in it, and a filesystem filled but
 * for a few blocks. */
#ifndef WARD_TEST_MOUNTS_H
#define WARD_TEST_MOUNTS_H

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Moves the process into a mount namespace of its own, every mount
 * private. Returns 0; 77 (skip) without root; 1, with a message, when the
 * kernel refuses. Call it before any thread starts. */
static inline int test_private_mounts(void)
{
	if (geteuid() != 0) {
		printf("needs root (mounts in a private namespace); skipped\n");
		return 77;
	}
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		perror("private mount namespace");
		return 1;
	}
	return 0;
}

/* Makes dir and mounts a tmpfs with opts on it; exits 1 naming dir when
 * it cannot. */
static inline void test_mount_tmpfs(const char *dir, const char *opts)
{
	mkdir(dir, 0755);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
		perror(dir);
		exit(1);
	}
}

/* Fills the filesystem of dir with files dir/fillN of 16 KiB until a
 * write fails, then removes four of them: 64 KiB stay free. Returns how
 * many are left, for test_unfill(). */
static inline int test_fill(const char *dir)
{
	char block[16384], filler[700];
	int n = 0, i, fd;

	memset(block, 'f', sizeof(block));
	for (;;) {
		snprintf(filler, sizeof(filler), "%s/fill%d", dir, n);
		fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, block, sizeof(block)) != (ssize_t)sizeof(block)) {
			if (fd >= 0)
				close(fd);
			unlink(filler);
			break;
		}
		close(fd);
		n++;
	}
	for (i = 0; i < 4 && n > 0; i++) {
		snprintf(filler, sizeof(filler), "%s/fill%d", dir, --n);
		unlink(filler);
	}
	return n;
}

/* Removes the n files test_fill() left in dir. */
static inline void test_unfill(const char *dir, int n)
{
	char filler[700];

	while (n > 0) {
		snprintf(filler, sizeof(filler), "%s/fill%d", dir, --n);
		unlink(filler);
	}
}

#endif
