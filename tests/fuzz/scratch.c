/* scratch.c -- a private scratch directory for fuzz targets (see scratch.h). */
#include "scratch.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static char dir[512];

static void remove_dir(void)
{
	util_remove_tree(dir);
}

const char *scratch_dir(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;

	if (dir[0])
		return dir;
	if (!base || !*base)
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/ward-fuzz-XXXXXX", base);
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	return dir;
}

void scratch_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", scratch_dir(), name);
}

const char *scratch_file(const char *name, const void *data, size_t n)
{
	static char path[600];

	scratch_path(path, sizeof(path), name);
	if (util_write_file(path, n ? data : "", n, 0600) != 0)
		abort();
	return path;
}
