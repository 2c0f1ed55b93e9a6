/* test_cproto.c -- the clamd protocol's reader: each command form as
 * clamd 1.4 takes it (the table: text sent, command, terminator, argument),
 * commands read across arbitrary boundaries, and INSTREAM's framing. */
#include <stdint.h>
#include <string.h>

#include "agent/cproto.h"
#include "check.h"

static const struct {
	const char *sent;
	size_t len;
	enum cproto_cmd cmd;
	char term;
	const char *arg;
	size_t used;
} cases[] = {
#define CASE(s, cmd, term, arg, used) { s, sizeof(s) - 1, cmd, term, arg, used }
	CASE("zPING\0", CPROTO_PING, '\0', NULL, 6),
	CASE("nPING\n", CPROTO_PING, '\n', NULL, 6),
	CASE("nPING\r\n", CPROTO_PING, '\n', NULL, 6),    /* clamd's stray byte */
	CASE("PING\n", CPROTO_PING, '\n', NULL, 5),
	CASE("PING", CPROTO_PING, '\n', NULL, 4),          /* one read, one command */
	CASE("zPINGX\0", CPROTO_UNKNOWN, '\0', NULL, 7),    /* trailing bytes */
	CASE("zSCAN\0", CPROTO_UNKNOWN, '\0', NULL, 6),     /* no argument */
	CASE("zSCAN \0", CPROTO_SCAN, '\0', "", 7),         /* an empty one */
	CASE("zSCAN /a b\0", CPROTO_SCAN, '\0', "/a b", 11),
	CASE("zSCANX/a\0", CPROTO_SCAN, '\0', "/a", 9),     /* any separator */
	CASE("zVERSIONCOMMANDS\0", CPROTO_VERSIONCOMMANDS, '\0', NULL, 17),
	CASE("zVERSION\0", CPROTO_VERSION, '\0', NULL, 9),
	CASE("VERSIONCOMMANDS\n", CPROTO_UNKNOWN, '\n', NULL, 16), /* needs a prefix */
	CASE("STATS\n", CPROTO_UNKNOWN, '\n', NULL, 6),
	CASE("FILDES\n", CPROTO_FILDES, '\n', NULL, 7),
	CASE("nALLMATCHSCAN /x\n", CPROTO_ALLMATCHSCAN, '\n', "/x", 17),
	CASE("ALLMATCHSCAN /x\n", CPROTO_UNKNOWN, '\n', NULL, 16),
	CASE("zDETSTATSCLEAR\0", CPROTO_DETSTATSCLEAR, '\0', NULL, 15),
	CASE("zCONTSCAN /x\0zPING\0", CPROTO_CONTSCAN, '\0', "/x", 13),
	CASE("\n", CPROTO_UNKNOWN, '\n', NULL, 1),
#undef CASE
};

static int collect(void *arg, const unsigned char *p, size_t n)
{
	struct { unsigned char data[64]; size_t n; } *out = arg;

	CHECK(out->n + n <= sizeof(out->data));
	if (out->n + n <= sizeof(out->data))
		memcpy(out->data + out->n, p, n);
	out->n += n;
	return 0;
}

int main(void)
{
	static const unsigned char chunks[] = { 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 2, 'd', 'e',
						0, 0, 0, 0, 'z', 'P' };
	struct { unsigned char data[64]; size_t n; } out = { { 0 }, 0 };
	char buf[CPROTO_MAX_COMMAND + 1];
	struct cproto_command c;
	struct cproto_stream s;
	size_t i, used, at;
	int st = CPROTO_STREAM_MORE;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(buf, cases[i].sent, cases[i].len);
		CHECK(cproto_next(buf, cases[i].len, &c) == 1);
		if (c.cmd != cases[i].cmd || c.term != cases[i].term || c.used != cases[i].used ||
		    (cases[i].arg ? !c.arg || strcmp(c.arg, cases[i].arg) != 0 : c.arg != NULL))
			fprintf(stderr, "case %zu (%s): cmd %d term %d used %zu arg %s\n", i,
				cases[i].sent, c.cmd, c.term, c.used, c.arg ? c.arg : "(none)");
		CHECK(c.cmd == cases[i].cmd && c.term == cases[i].term && c.used == cases[i].used);
		CHECK(cases[i].arg ? c.arg && strcmp(c.arg, cases[i].arg) == 0 : c.arg == NULL);
	}
	/* A prefixed command is whole only with its terminator. */
	memcpy(buf, "zPIN", 4);
	CHECK(cproto_next(buf, 4, &c) == 0);
	memcpy(buf, "nSCAN /x", 8);
	CHECK(cproto_next(buf, 8, &c) == 0);
	CHECK(strcmp(cproto_name(CPROTO_VERSIONCOMMANDS), "VERSIONCOMMANDS") == 0);
	CHECK(cproto_in_session(CPROTO_SCAN) && !cproto_in_session(CPROTO_CONTSCAN) &&
	      !cproto_in_session(CPROTO_UNKNOWN));

	/* INSTREAM, fed a byte at a time: the data, its end, the rest left. */
	cproto_stream_init(&s, 5);
	for (at = 0; at < sizeof(chunks) && st == CPROTO_STREAM_MORE; at += used)
		st = cproto_stream_feed(&s, chunks + at, 1, &used, collect, &out);
	CHECK(st == CPROTO_STREAM_END && at == 17 && out.n == 5 &&
	      memcmp(out.data, "abcde", 5) == 0);
	/* A chunk past the limit is refused before its data. */
	cproto_stream_init(&s, 4);
	out.n = 0;
	CHECK(cproto_stream_feed(&s, chunks, sizeof(chunks), &used, collect, &out) ==
	      CPROTO_STREAM_LIMIT && used == 11 && out.n == 3);
	return check_finish();
}
