/* scan.h -- the scan layer's error codes, shared by its modules
 * (cache.c: the persistent scan cache; job.c: parallel tree scans). */
#ifndef WARD_SCAN_H
#define WARD_SCAN_H

enum scan_err {
	SCAN_OK = 0,
	SCAN_ENOMEM,  /* out of memory */
	SCAN_EIO,     /* a file or directory of our own could not be used */
	SCAN_EENGINE, /* the scan engine could not be prepared */
	SCAN_EUSAGE,  /* invalid configuration, e.g. a bad exclude pattern */
};

#endif
