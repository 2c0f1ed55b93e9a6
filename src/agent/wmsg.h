/* wmsg.h -- the messages between the privileged agent and its scan
 * workers (docs/protocol.md, "Scan worker channel").
 *
 * Each message is one datagram of a SOCK_SEQPACKET socket pair: a 16-byte
 * header (type, payload length, request id; little-endian) and the
 * payload of its type. A scan request carries the descriptor to scan as
 * SCM_RIGHTS. Everything received is checked by wmsg_decode() before use:
 * each side takes the other for hostile (a worker parses hostile files and
 * may have been taken over).
 */
#ifndef WARD_AGENT_WMSG_H
#define WARD_AGENT_WMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define WMSG_HEADER 16
/* The largest message, header included: both sides' socket buffers are
 * sized for it. A smart protection answer larger than this is refused. */
#define WMSG_MAX (256u << 10)
#define WMSG_MAX_TEXT 4096   /* a file name, an error message */
#define WMSG_MAX_NAMES 64    /* signature names in one result */
#define WMSG_MAX_SIGNAME 256 /* bytes of one signature name */

enum wmsg_type {
	WMSG_READY = 1,  /* worker: engine loaded, confined, serving */
	WMSG_SCAN,       /* agent: scan the descriptor attached */
	WMSG_RESULT,     /* worker: the verdict of request id */
	WMSG_QUERY,      /* worker: post body to smart protection source */
	WMSG_ANSWER,     /* agent: the source's answer to query id */
};

enum wmsg_verdict {
	WMSG_CLEAN = 0,
	WMSG_INFECTED,    /* names say what matched */
	WMSG_UNVERIFIED,  /* smart scan: no source answered */
	WMSG_ERROR,       /* text says why */
};

#define WMSG_ASKED 0x1  /* RESULT flag: the verdict rests on smart answers */
#define WMSG_LOW 0x1    /* SCAN flag: at the lowest CPU and idle I/O priority */
#define WMSG_ALLMATCH 0x2 /* SCAN flag: every signature that matches */

/* One message. Decoded, its pointers point into the buffer decoded (each
 * string is NUL-terminated there); to encode, fill what the type uses. */
struct wmsg {
	enum wmsg_type type;
	uint64_t id;
	uint64_t signatures;        /* READY */
	enum wmsg_verdict verdict;  /* RESULT */
	uint32_t flags;             /* RESULT: WMSG_ASKED; SCAN: WMSG_LOW, WMSG_ALLMATCH */
	uint64_t bytes;             /* RESULT: bytes scanned */
	const char *names[WMSG_MAX_NAMES];  /* RESULT, infected: nnames >= 1 */
	size_t nnames;
	const char *text;           /* SCAN: file name; RESULT (error), ANSWER
				     * (no answer): why; else "" */
	uint32_t source;            /* QUERY: index of the source */
	uint32_t timeout;           /* QUERY: seconds */
	int32_t status;             /* ANSWER: HTTP status; 0: none came */
	const unsigned char *body;  /* QUERY, ANSWER: the bytes posted, answered */
	size_t body_len;
};

/* Decodes the len bytes at buf into *m. Returns 0, or -1 with errbuf
 * naming what is wrong (a short or oversized message, an unknown type, a
 * length that disagrees, a field out of range, bytes left over). buf must
 * stay while m is used. Thread-safe. */
int wmsg_decode(const unsigned char *buf, size_t len, struct wmsg *m, char *errbuf,
		size_t errlen);

/* Encodes m into out (replacing its contents). Returns 0, or -1 when a
 * field is beyond the limits above or memory runs out. Thread-safe. */
int wmsg_encode(const struct wmsg *m, struct util_buf *out);

#endif
