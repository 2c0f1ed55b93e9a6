/* fuzz_pack.c -- libFuzzer target for package payload archives, which
 * agents and smart protection servers extract (libarchive, through
 * pack_extract_fd()) after a download: the input is the archive (tar,
 * plain or compressed), extracted into a new scratch directory. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/pack.h"
#include "common/util.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[600], msg[512];
	int fd;

	fd = memfd_create("payload", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	scratch_path(dir, sizeof(dir), "out");
	if (mkdir(dir, 0700) != 0)
		abort();
	/* Small limits, so that the limits themselves are reached. */
	(void)pack_extract_fd(fd, "payload", dir, 1 << 16, 1 << 18, msg, sizeof(msg));
	close(fd);
	if (util_remove_tree(dir) != 0)
		abort();
	return 0;
}
