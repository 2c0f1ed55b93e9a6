/* cproto.h -- clamd's socket protocol, as clamd 1.4 reads it: the command
 * table, finding one command in the bytes a connection sent, and the
 * INSTREAM chunk framing (docs/protocol.md, "The clamd protocol").
 *
 * Pure functions over a buffer: no descriptors, no allocation, so the
 * service (clamd.h) keeps the state and the fuzz target (fuzz/) drives
 * them with hostile bytes. Everything here is thread-safe.
 */
#ifndef WARD_AGENT_CPROTO_H
#define WARD_AGENT_CPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The commands, in clamd's table order: a command is the first entry
 * its text starts with (VERSIONCOMMANDS before VERSION, DETSTATSCLEAR
 * before DETSTATS). STREAM, which clamd removed in 0.104, comes last. */
enum cproto_cmd {
	CPROTO_SCAN,
	CPROTO_QUIT,
	CPROTO_RELOAD,
	CPROTO_PING,
	CPROTO_CONTSCAN,
	CPROTO_VERSIONCOMMANDS,
	CPROTO_VERSION,
	CPROTO_END,
	CPROTO_SHUTDOWN,
	CPROTO_MULTISCAN,
	CPROTO_FILDES,
	CPROTO_STATS,
	CPROTO_IDSESSION,
	CPROTO_INSTREAM,
	CPROTO_DETSTATSCLEAR,
	CPROTO_DETSTATS,
	CPROTO_ALLMATCHSCAN,
	CPROTO_SELFCHECK,
	CPROTO_STREAM,
	CPROTO_UNKNOWN, /* no entry, a missing argument, trailing bytes, or an
			 * unprefixed command that needs a prefix */
};

#define CPROTO_NCMDS CPROTO_UNKNOWN

/* The most bytes a command may take, prefix and terminator included, as
 * clamd's buffer (PATH_MAX + 8): a connection that sends more without a
 * terminator is closed. */
#define CPROTO_MAX_COMMAND 4104

/* One command found in a buffer. */
struct cproto_command {
	enum cproto_cmd cmd;
	char term;          /* the reply's terminator: '\0' (z), '\n' (n, unprefixed) */
	bool oldstyle;      /* unprefixed */
	const char *arg;    /* SCAN and its kin: the path, into the buffer, NUL
			     * terminated there; else NULL */
	size_t used;        /* bytes of the buffer the command took */
};

/* The name of c as the table spells it ("SCAN"; "" for CPROTO_UNKNOWN). */
const char *cproto_name(enum cproto_cmd c);

/* Finds the command at the start of buf[0..len) (a connection's unread
 * bytes; buf must have room for one more byte, buf[len], which may be
 * written): a z command ends at its NUL, an n command at its newline; an
 * unprefixed one is one read, up to a newline or the end of what was read,
 * trailing CR and LF dropped, as clamd takes it. Writes NULs into buf to end
 * the command and its argument. Returns 1 with *c filled, 0 when more
 * bytes are needed (with len >= CPROTO_MAX_COMMAND the connection is to be
 * closed), never failing: an unknown command is CPROTO_UNKNOWN. */
int cproto_next(char *buf, size_t len, struct cproto_command *c);

/* Whether command c may be sent inside IDSESSION (clamd's list: SCAN,
 * FILDES, END, INSTREAM, VERSION, PING, STATS, VERSIONCOMMANDS). */
bool cproto_in_session(enum cproto_cmd c);

/* INSTREAM's framing: chunks of a 4-byte big-endian length and its data,
 * ended by a chunk of length 0, their sum at most limit bytes. */
struct cproto_stream {
	uint64_t left;      /* bytes the limit still allows */
	uint32_t chunk;     /* data bytes of the current chunk still to come */
	unsigned char hdr[4];
	unsigned nhdr;      /* bytes of the next length read so far */
};

enum cproto_stream_state {
	CPROTO_STREAM_MORE,  /* everything given was taken; send more */
	CPROTO_STREAM_END,   /* the zero chunk came: the stream is whole */
	CPROTO_STREAM_LIMIT, /* a chunk would pass the limit */
};

/* Starts a stream of at most limit bytes. */
void cproto_stream_init(struct cproto_stream *s, uint64_t limit);

/* Takes bytes from in[0..len): *used says how many were taken (after END,
 * the rest belongs to the next command), and each run of data bytes is
 * given to sink(arg, data, n), which returns 0, or -1 to stop (returned
 * as -1). Returns a state, or -1 when the sink stopped. */
int cproto_stream_feed(struct cproto_stream *s, const unsigned char *in, size_t len,
		       size_t *used, int (*sink)(void *arg, const unsigned char *data, size_t n),
		       void *arg);

#endif
