/* fuzz_cproto.c -- libFuzzer target for the clamd protocol's reader
 * (src/agent/cproto.c), which takes whatever any local program (or, with
 * clamd.tcp, a peer) sends the agent's clamd service: commands as a
 * connection's buffer holds them, then INSTREAM's chunks. */
#include <stdint.h>
#include <string.h>

#include "agent/cproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *arg, const unsigned char *p, size_t n)
{
	size_t *total = arg;

	*total += n;
	return p[0] == 0xff && n > 3 ? -1 : 0; /* the sink may stop it */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[CPROTO_MAX_COMMAND + 1];
	struct cproto_command c;
	struct cproto_stream s;
	size_t len, used, total = 0, at;
	int st;

	/* As a connection: the commands its buffer holds, one after another. */
	len = size < CPROTO_MAX_COMMAND ? size : CPROTO_MAX_COMMAND;
	memcpy(buf, data, len);
	while (len && cproto_next(buf, len, &c) == 1) {
		if (c.used == 0 || c.used > len || (c.arg && (c.arg < buf || c.arg > buf + len)))
			__builtin_trap();
		(void)cproto_name(c.cmd);
		(void)cproto_in_session(c.cmd);
		memmove(buf, buf + c.used, len - c.used);
		len -= c.used;
	}
	/* As INSTREAM: the bytes in pieces of varying size, a small limit. */
	cproto_stream_init(&s, size / 2 + 1);
	for (at = 0, st = CPROTO_STREAM_MORE; at < size && st == CPROTO_STREAM_MORE;
	     at += used) {
		size_t piece = 1 + data[at] % 17;

		piece = piece < size - at ? piece : size - at;
		st = cproto_stream_feed(&s, data + at, piece, &used, sink, &total);
		if (used > piece || (st == CPROTO_STREAM_MORE && used != piece))
			__builtin_trap();
	}
	return 0;
}
