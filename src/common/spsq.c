/* spsq.c -- the smart protection query protocol (see spsq.h). */
#include "common/spsq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = { NULL, "md5", "sha1", "sha256" };
static const char *const state_names[] = { "block", "pua", "allow" };

size_t spsq_digest_len(unsigned type)
{
	return type == 1 ? 16 : type == 2 ? 20 : type == 3 ? 32 : 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes exactly 2*n lowercase hex digits at p into out. */
static bool unhex(const char *p, size_t n, unsigned char *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = hexval(p[2 * i]);
		lo = hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* Parses "TYPE:" at the start of p (n bytes); returns its length, 0 when
 * it is not one. */
static size_t parse_type(const char *p, size_t n, unsigned *type)
{
	unsigned t;
	size_t len;

	for (t = 1; t <= 3; t++) {
		len = strlen(type_names[t]);
		if (n > len && memcmp(p, type_names[t], len) == 0 && p[len] == ':') {
			*type = t;
			return len + 1;
		}
	}
	return 0;
}

/* Parses the decimal number of n digits at p (no sign, no leading zero
 * unless it is 0) up to max into *v. */
static bool parse_num(const char *p, size_t n, uint64_t max, uint64_t *v)
{
	size_t i;

	if (n == 0 || n > 19 || (n > 1 && p[0] == '0'))
		return false;
	for (*v = 0, i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return *v <= max;
}

enum err spsq_parse_entry(const char *line, size_t n, struct spsq_entry *e)
{
	size_t at = parse_type(line, n, &e->type), hexlen, i;
	const char *c, *end = line + n;
	uint64_t size;
	unsigned s;

	if (!at)
		return ERR_FORMAT;
	e->digest_len = spsq_digest_len(e->type);
	hexlen = 2 * e->digest_len;
	if (n - at < hexlen + 1 || line[at + hexlen] != ':' ||
	    !unhex(line + at, e->digest_len, e->digest))
		return ERR_FORMAT;
	at += hexlen + 1;
	c = memchr(line + at, ':', n - at);
	if (!c)
		return ERR_FORMAT;
	if (c - (line + at) == 1 && line[at] == '*')
		e->size = -1;
	else if (parse_num(line + at, (size_t)(c - (line + at)), 0xfffffffeu, &size))
		e->size = (int64_t)size;
	else
		return ERR_FORMAT;
	at = (size_t)(c - line) + 1;
	for (s = 0; s < 3; s++) {
		i = strlen(state_names[s]);
		if (n - at > i && memcmp(line + at, state_names[s], i) == 0 && line[at + i] == ':')
			break;
	}
	if (s == 3)
		return ERR_FORMAT;
	e->state = (enum spsq_state)s;
	e->name = line + at + i + 1;
	e->name_len = (size_t)(end - e->name);
	if (e->name_len == 0 || e->name_len > SPSQ_NAME_MAX)
		return ERR_FORMAT;
	for (i = 0; i < e->name_len; i++)
		if ((unsigned char)e->name[i] <= ' ' || e->name[i] == ':' || e->name[i] == 0x7f)
			return ERR_FORMAT;
	return ERR_OK;
}

enum err spsq_parse_query(const char *line, size_t n, struct spsq_query *q)
{
	size_t at = parse_type(line, n, &q->type);
	unsigned char p[4];
	uint64_t bits;

	if (!at || n - at < 10 || line[at + 8] != '/' || !unhex(line + at, 4, p) ||
	    !parse_num(line + at + 9, n - at - 9, 32, &bits) || bits < 8)
		return ERR_FORMAT;
	q->bits = (unsigned)bits;
	q->prefix = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	/* Bits past the prefix must be zero: one way to write each query. */
	if (q->bits < 32 && (q->prefix & (0xffffffffu >> q->bits)))
		return ERR_FORMAT;
	return ERR_OK;
}

int spsq_format_query(const struct spsq_query *q, struct util_buf *out)
{
	return util_buf_printf(out, "%s:%08x/%u\n", type_names[q->type], (unsigned)q->prefix,
			       q->bits);
}

bool spsq_matches(const struct spsq_query *q, const struct spsq_entry *e)
{
	uint32_t head = (uint32_t)e->digest[0] << 24 | (uint32_t)e->digest[1] << 16 |
			(uint32_t)e->digest[2] << 8 | e->digest[3];
	uint32_t mask = q->bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> q->bits);

	return e->type == q->type && (head & mask) == q->prefix;
}

/* The next line of body from *at: its start and length (without '\n');
 * false at the end or when the last line has no newline (*bad set). */
static bool next_line(const char *body, size_t len, size_t *at, const char **line, size_t *n,
		      bool *bad)
{
	const char *nl;

	*bad = false;
	if (*at >= len)
		return false;
	nl = memchr(body + *at, '\n', len - *at);
	if (!nl) {
		*bad = true;
		return false;
	}
	*line = body + *at;
	*n = (size_t)(nl - *line);
	*at = (size_t)(nl - body) + 1;
	return true;
}

enum err spsq_parse_request(const char *body, size_t len, struct spsq_query *queries,
			    size_t max, size_t *n, char *errbuf, size_t errlen)
{
	size_t at = 0, ln;
	const char *line;
	bool bad;

	*n = 0;
	while (next_line(body, len, &at, &line, &ln, &bad)) {
		if (*n == max) {
			util_set_msg(errbuf, errlen, "more than %zu queries", max);
			return ERR_FORMAT;
		}
		if (spsq_parse_query(line, ln, &queries[*n]) != ERR_OK) {
			util_set_msg(errbuf, errlen, "line %zu: not a query (TYPE:PPPPPPPP/BITS)",
				*n + 1);
			return ERR_FORMAT;
		}
		(*n)++;
	}
	if (bad || *n == 0) {
		util_set_msg(errbuf, errlen, bad ? "line %zu: no newline at its end" :
			"no query (one TYPE:PPPPPPPP/BITS per line)", *n + 1);
		return ERR_FORMAT;
	}
	return ERR_OK;
}

enum err spsq_parse_answer(const char *body, size_t len, const struct spsq_query *queries,
			   size_t n, int64_t *version, int64_t *ttl, spsq_entry_fn fn,
			   void *arg, char *errbuf, size_t errlen)
{
	size_t at = 0, ln, i, lineno = 1, j;
	const char *line, *sp, *sp2;
	struct spsq_entry e;
	uint64_t v, t, count;
	struct util_buf want = { 0 };
	bool bad;

	if (!next_line(body, len, &at, &line, &ln, &bad) || ln < 11 ||
	    memcmp(line, "ward-sps 1 ", 11) != 0 ||
	    !(sp = memchr(line + 11, ' ', ln - 11)) ||
	    !parse_num(line + 11, (size_t)(sp - line - 11), INT64_MAX, &v) ||
	    !parse_num(sp + 1, (size_t)(line + ln - sp - 1), 86400 * 30, &t)) {
		util_set_msg(errbuf, errlen, "answer line 1: not a ward-sps 1 header");
		return ERR_FORMAT;
	}
	*version = (int64_t)v;
	*ttl = (int64_t)t;
	for (i = 0; i < n; i++) {
		lineno++;
		want.len = 0;
		if (spsq_format_query(&queries[i], &want) != 0) {
			util_buf_free(&want);
			return ERR_NOMEM;
		}
		if (!next_line(body, len, &at, &line, &ln, &bad) ||
		    !(sp2 = memchr(line, ' ', ln)) || (size_t)(sp2 - line) != want.len - 1 ||
		    memcmp(line, want.data, want.len - 1) != 0 ||
		    !parse_num(sp2 + 1, (size_t)(line + ln - sp2 - 1), SPSQ_MAX_ENTRIES, &count)) {
			util_set_msg(errbuf, errlen, "answer line %zu: not the answer to query %zu",
				lineno, i + 1);
			util_buf_free(&want);
			return ERR_FORMAT;
		}
		for (j = 0; j < count; j++) {
			lineno++;
			if (!next_line(body, len, &at, &line, &ln, &bad) ||
			    spsq_parse_entry(line, ln, &e) != ERR_OK ||
			    !spsq_matches(&queries[i], &e) || (fn && fn(i, &e, arg) != 0)) {
				util_set_msg(errbuf, errlen, "answer line %zu: not an entry under "
					"query %zu", lineno, i + 1);
				util_buf_free(&want);
				return ERR_FORMAT;
			}
		}
	}
	util_buf_free(&want);
	if (at != len) {
		util_set_msg(errbuf, errlen, "answer line %zu: more than was asked", lineno + 1);
		return ERR_FORMAT;
	}
	return ERR_OK;
}
