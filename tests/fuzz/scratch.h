/* scratch.h -- a private scratch directory for fuzz targets that need
 * files: made on first use (under TMPDIR, else /dev/shm when it exists,
 * else /tmp) and removed with everything in it when the process exits. */
#ifndef WARD_FUZZ_SCRATCH_H
#define WARD_FUZZ_SCRATCH_H

#include <stddef.h>

/* Returns the directory, or aborts when it cannot be made. */
const char *scratch_dir(void);

/* Writes the path of name in the scratch directory to buf. */
void scratch_path(char *buf, size_t len, const char *name);

/* Replaces the scratch file name with the n bytes of data; aborts when it
 * cannot. Returns its path (static storage, until the next call). */
const char *scratch_file(const char *name, const void *data, size_t n);

#endif
