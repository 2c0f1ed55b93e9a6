/* spsq.h -- the smart protection query protocol: hash entries, the lookup
 * request an agent sends and the answer a smart protection server gives
 * (docs/protocol.md, "Smart protection lookups").
 *
 * Text, line by line, strictly parsed. A request body is one query per
 * line, "TYPE:PPPPPPPP/B": a digest type (md5, sha1, sha256), the first
 * four digest bytes in hex with every bit past the first B zero, and B.
 * The answer starts "ward-sps 1 VERSION TTL" (the Smart Scan Pattern
 * version and how many seconds the agent may keep the answers), then for
 * each query, in order, the query line followed by " N" and its N entries,
 * each a Smart Scan Pattern line "TYPE:DIGEST:SIZE:STATE:NAME". The server
 * learns a prefix, never a digest. Thread-safe: no state.
 */
#ifndef WARD_SPSQ_H
#define WARD_SPSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "common/err.h"


/* The most queries one request may carry, and entries one query may get. */
#define SPSQ_MAX_QUERIES 1024
#define SPSQ_MAX_ENTRIES 256

/* The longest signature name accepted. */
#define SPSQ_NAME_MAX 256

enum spsq_state {
	SPSQ_BLOCK,  /* .hdb, .hsb: detects */
	SPSQ_PUA,    /* .hdu, .hsu: detects when PUA detection is on */
	SPSQ_ALLOW,  /* .fp, .sfp: the file (and what it holds) is clean */
};

/* One query: a digest type (1 MD5, 2 SHA-1, 3 SHA-256, as comp_digest),
 * a prefix of bits bits, in the high bits of prefix. */
struct spsq_query {
	unsigned type;
	uint32_t prefix;
	unsigned bits;
};

/* One hash entry; name points into the parsed text (not NUL-terminated). */
struct spsq_entry {
	unsigned type;
	unsigned char digest[32];
	size_t digest_len;
	int64_t size;             /* -1: any size ("*") */
	enum spsq_state state;
	const char *name;
	size_t name_len;
};

/* Returns the digest length of type in bytes (0 for no such type). */
size_t spsq_digest_len(unsigned type);

/* Parses one entry line (n bytes, no newline). */
enum err spsq_parse_entry(const char *line, size_t n, struct spsq_entry *e);

/* Parses one query line (n bytes, no newline). */
enum err spsq_parse_query(const char *line, size_t n, struct spsq_query *q);

/* Appends the query line (with its newline) to out. */
int spsq_format_query(const struct spsq_query *q, struct util_buf *out);

/* Returns whether entry e falls under query q. */
bool spsq_matches(const struct spsq_query *q, const struct spsq_entry *e);

/* Parses a request body into queries (at most max): *n gets the count. */
enum err spsq_parse_request(const char *body, size_t len, struct spsq_query *queries,
			    size_t max, size_t *n, char *errbuf, size_t errlen);

/* Called by spsq_parse_answer() for each entry of query index i. */
typedef int (*spsq_entry_fn)(size_t i, const struct spsq_entry *e, void *arg);

/* Parses an answer to the n queries asked: checks the header (its version
 * and ttl in *version and *ttl), that each query comes back in order with
 * its count, and that every entry is well formed and under its query;
 * calls fn for each entry (a non-zero return stops with ERR_FORMAT). */
enum err spsq_parse_answer(const char *body, size_t len, const struct spsq_query *queries,
			   size_t n, int64_t *version, int64_t *ttl, spsq_entry_fn fn,
			   void *arg, char *errbuf, size_t errlen);

#endif
