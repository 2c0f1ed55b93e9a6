/* cvd.h -- ClamAV signature database containers (CVD and CLD): the
 * 512-byte header, and the checks an import runs before trusting a file.
 *
 * The header is "ClamAV-VDB:TIME:VERSION:SIGS:FLEVEL:MD5:DSIG:BUILDER:STIME",
 * padded with spaces to 512 bytes; the body (a tar, gzip-compressed in a
 * CVD) follows. Thread-safe.
 */
#ifndef WARD_CVD_H
#define WARD_CVD_H

#include <stddef.h>
#include <stdint.h>
#include "server/serr.h"


#define CVD_HEADER_SIZE 512

struct cvd_header {
	char build_time[64];
	uint32_t version;
	uint32_t sigs;
	uint32_t flevel;
	char md5[33];       /* lowercase hex */
	char builder[64];
	uint64_t stime;     /* build time, Unix seconds */
};

/* Parses a header from the first len bytes of buf (at least 512 are
 * needed). Strict: nine fields, numbers in range, only spaces after. */
enum serr cvd_parse_header(const unsigned char *buf, size_t len, struct cvd_header *h,
			   char *errbuf, size_t errlen);

/* Checks the file at path: its header, and for a CVD the MD5 of its body
 * and ClamAV's digital signature (libclamav). A CLD's header describes
 * the CVD it was made from, so only its header is checked. Fills *h. */
enum serr cvd_check_file(const char *path, struct cvd_header *h, char *errbuf,
			 size_t errlen);

#endif
