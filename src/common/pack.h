/* pack.h -- tar archives of flat directories, through libarchive: writing
 * a package payload (tar compressed with zstd) and extracting a tar from
 * an untrusted source (a package payload, a CVD body) with every member
 * checked.
 *
 * Extraction accepts regular files with plain names only (no '/', not "."
 * or "..", no control characters); a link, a device, a path or a member
 * over its size limit fails the whole extraction, and the caller discards
 * the directory. Thread-safe: no state.
 */
#ifndef WARD_PACK_H
#define WARD_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include "common/err.h"


/* Returns true when name is a plain file name (see above). */
bool pack_plain_name(const char *name);

/* Writes the files names[0..n) of dir, in that order, as a tar compressed
 * with zstd at level to path (created with mode 0600, replaced if it
 * exists). */
enum err pack_write(const char *path, const char *dir, const char *const *names, size_t n,
		    int level, char *errbuf, size_t errlen);

/* Extracts the tar read from fd's current offset (compressed with gzip or
 * zstd, or not) into the existing directory dir, which must not hold the
 * members already. Each member may have at most max_member bytes and all
 * together max_total. Errors name the archive as label. */
enum err pack_extract_fd(int fd, const char *label, const char *dir,
			 long long max_member, long long max_total, char *errbuf,
			 size_t errlen);

#endif
