/* pset.c -- the compact hash-prefix set (see pset.h). */
#include "common/pset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char magic[4] = { 'W', 'P', 'X', '2' };

/* Prefixes between index entries. */
#define SKIP 256

/* Bounds that keep every count and bit position in 32 bits. */
#define MAX_STREAM (1u << 28)

/* Parameter records: type | PARAM_FLAG. */
#define PARAM_FLAG 0x10

struct ptype {
	unsigned bits, k;               /* 0 bits: the type is absent */
	uint32_t n;
	const unsigned char *stream;
	uint32_t nbytes;
	uint32_t *skip_val, *skip_pos;  /* element j*SKIP: its value, the bit after it */
};

struct pset {
	char *data;
	size_t len;
	struct ptype t[PSET_TYPES + 1];
};

unsigned pset_width(uint64_t n)
{
	double b = floor(log2((double)n) + 10.75);

	return b < 8 ? 8 : b > 32 ? 32 : (unsigned)b;
}

static uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The first bits bits of the four bytes at p, as a number. */
static uint32_t prefix_value(const unsigned char *p, unsigned bits)
{
	return (uint32_t)((uint64_t)load_be32(p) >> (32 - bits));
}

void pset_record(unsigned type, const unsigned char *digest, unsigned bits,
		 unsigned char rec[PSET_RECORD])
{
	rec[0] = (unsigned char)type;
	store_be32(rec + 1, (uint32_t)((uint64_t)prefix_value(digest, bits) << (32 - bits)));
}

void pset_param(unsigned type, unsigned bits, unsigned char rec[PSET_RECORD])
{
	memset(rec, 0, PSET_RECORD);
	rec[0] = (unsigned char)(PARAM_FLAG | type);
	rec[1] = (unsigned char)bits;
}

/* Bits appended MSB first. */
struct bitwr {
	struct util_buf *out;
	unsigned char cur;
	unsigned used;
	int failed;
};

static void put_bit(struct bitwr *w, unsigned bit)
{
	w->cur = (unsigned char)(w->cur | (bit << (7 - w->used)));
	if (++w->used == 8) {
		w->failed |= util_buf_append(w->out, &w->cur, 1);
		w->cur = 0;
		w->used = 0;
	}
}

static void put_rice(struct bitwr *w, uint32_t gap, unsigned k)
{
	uint32_t q = gap >> k;
	unsigned i;

	while (q--)
		put_bit(w, 1);
	put_bit(w, 0);
	for (i = k; i-- > 0;)
		put_bit(w, (gap >> i) & 1);
}

/* The Rice parameter for n values spread over 2^bits. */
static unsigned rice_k(uint32_t n, unsigned bits)
{
	double mean = ldexp(1.0, (int)bits) / n * 0.69;
	unsigned k = 0;

	while (k < 31 && ldexp(1.0, (int)k + 1) <= mean)
		k++;
	return k;
}

enum err pset_encode(const char *set, size_t n, struct util_buf *out, char *errbuf,
		     size_t errlen)
{
	const unsigned char *s = (const unsigned char *)set;
	unsigned bits[PSET_TYPES + 1] = { 0 }, type, ntypes = 0;
	size_t i, start, count[PSET_TYPES + 1] = { 0 };
	unsigned char head[11];
	uint32_t v, prev;
	struct bitwr w = { .out = out };
	size_t mark;

	if (n % PSET_RECORD) {
		util_set_msg(errbuf, errlen, "hash prefixes: not whole records (%zu bytes)", n);
		return ERR_FORMAT;
	}
	/* The parameter records come last (they sort after the elements). */
	for (i = 0; i < n; i += PSET_RECORD) {
		type = s[i] & ~(unsigned)PARAM_FLAG;
		if (type < 1 || type > PSET_TYPES || (i && memcmp(s + i - PSET_RECORD, s + i,
								 PSET_RECORD) >= 0)) {
			util_set_msg(errbuf, errlen, "hash prefixes: %s at record %zu",
				"an unknown type or an element out of order", i / PSET_RECORD);
			return ERR_FORMAT;
		}
		if (s[i] & PARAM_FLAG) {
			bits[type] = s[i + 1];
			if (bits[type] < 1 || bits[type] > 32 || load_be32(s + i + 1) << 8) {
				util_set_msg(errbuf, errlen, "hash prefixes: %s at record %zu",
					"a malformed parameter record", i / PSET_RECORD);
				return ERR_FORMAT;
			}
			ntypes++;
		} else {
			count[type]++;
		}
	}
	for (type = 1; type <= PSET_TYPES; type++)
		if (count[type] && !bits[type]) {
			util_set_msg(errbuf, errlen, "hash prefixes: no width for type %u", type);
			return ERR_FORMAT;
		}
	if (util_buf_append(out, magic, sizeof(magic)) ||
	    util_buf_append(out, &(unsigned char){ (unsigned char)ntypes }, 1))
		return ERR_NOMEM;
	for (start = 0, type = 1; type <= PSET_TYPES; start += count[type] * PSET_RECORD, type++) {
		if (!bits[type])
			continue;
		head[0] = (unsigned char)type;
		head[1] = (unsigned char)bits[type];
		head[2] = (unsigned char)(count[type] ? rice_k((uint32_t)count[type], bits[type])
					     : 0);
		store_be32(head + 3, (uint32_t)count[type]);
		if (util_buf_append(out, head, sizeof(head)))
			return ERR_NOMEM;
		mark = out->len - 4;
		prev = 0;
		for (i = start; i < start + count[type] * PSET_RECORD; i += PSET_RECORD) {
			if (load_be32(s + i + 1) != (uint32_t)((uint64_t)prefix_value(
				s + i + 1, bits[type]) << (32 - bits[type]))) {
				util_set_msg(errbuf, errlen, "hash prefixes: %s at record %zu",
					"bits beyond the width", i / PSET_RECORD);
				return ERR_FORMAT;
			}
			v = prefix_value(s + i + 1, bits[type]);
			put_rice(&w, i == start ? v : v - prev - 1, head[2]);
			prev = v;
		}
		if (w.used) {
			w.failed |= util_buf_append(out, &w.cur, 1);
			w.cur = 0;
			w.used = 0;
		}
		if (w.failed)
			return ERR_NOMEM;
		if (out->len - mark - 4 > MAX_STREAM) {
			util_set_msg(errbuf, errlen, "hash prefixes: %s (%zu records)", "too many",
				count[type]);
			return ERR_FORMAT;
		}
		store_be32((unsigned char *)out->data + mark, (uint32_t)(out->len - mark - 4));
	}
	return ERR_OK;
}

/* Bits read MSB first, within nbits. */
struct bitrd {
	const unsigned char *p;
	uint64_t nbits, pos;
};

/* Reads a Rice code into *gap; false when the stream ends first or the
 * value would pass limit. */
static bool get_rice(struct bitrd *r, unsigned k, uint64_t limit, uint64_t *gap)
{
	uint64_t q = 0, low = 0;
	unsigned i;

	for (;;) {
		if (r->pos >= r->nbits)
			return false;
		if (!((r->p[r->pos >> 3] >> (7 - (r->pos & 7))) & 1))
			break;
		r->pos++;
		if (++q > (limit >> k))
			return false;
	}
	r->pos++;
	if (r->nbits - r->pos < k)
		return false;
	for (i = 0; i < k; i++, r->pos++)
		low = low << 1 | ((r->p[r->pos >> 3] >> (7 - (r->pos & 7))) & 1);
	*gap = q << k | low;
	return *gap <= limit;
}

/* Walks the file at data: checks every rule and, per type, fills t (when
 * not NULL) and appends the set records to out (when not NULL). */
static enum err walk(const unsigned char *data, size_t n, struct ptype *t,
		     struct util_buf *out, char *errbuf, size_t errlen)
{
	size_t at = 5, i;
	unsigned ntypes, type, last = 0, bits, k;
	uint32_t count, nbytes;
	uint64_t v, gap, limit, room;
	struct bitrd r;
	size_t nskip;
	unsigned char rec[PSET_RECORD], params[PSET_TYPES][PSET_RECORD];
	unsigned nparams = 0;

	if (n < 5 || memcmp(data, magic, sizeof(magic)) != 0) {
		util_set_msg(errbuf, errlen, "hash prefixes: not a WPX2 file at offset 0");
		return ERR_FORMAT;
	}
	ntypes = data[4];
	while (ntypes--) {
		if (n - at < 11) {
			util_set_msg(errbuf, errlen, "hash prefixes: truncated at offset %zu", at);
			return ERR_FORMAT;
		}
		type = data[at];
		bits = data[at + 1];
		k = data[at + 2];
		count = load_be32(data + at + 3);
		nbytes = load_be32(data + at + 7);
		if (type <= last || type > PSET_TYPES || bits < 1 || bits > 32 || k > 31 ||
		    nbytes > MAX_STREAM || n - at - 11 < nbytes ||
		    (uint64_t)count > nbytes * 8ull || (uint64_t)count > (1ull << bits)) {
			util_set_msg(errbuf, errlen, "hash prefixes: %s at offset %zu",
				"a malformed type header", at);
			return ERR_FORMAT;
		}
		last = type;
		at += 11;
		r = (struct bitrd){ .p = data + at, .nbits = (uint64_t)nbytes * 8 };
		limit = (1ull << bits) - 1;
		if (t) {
			nskip = (count + SKIP - 1) / SKIP + 1;
			t[type] = (struct ptype){ .bits = bits, .k = k, .n = count,
						  .stream = data + at, .nbytes = nbytes };
			t[type].skip_val = malloc(nskip * sizeof(uint32_t));
			t[type].skip_pos = malloc(nskip * sizeof(uint32_t));
			if (!t[type].skip_val || !t[type].skip_pos)
				return ERR_NOMEM;
		}
		for (i = 0, v = 0; i < count; i++) {
			room = i ? (v < limit ? limit - v - 1 : 0) : limit;
			if ((i && v >= limit) || !get_rice(&r, k, room, &gap)) {
				util_set_msg(errbuf, errlen, "hash prefixes: %s at offset %zu",
					"a prefix code runs past the stream or the width",
					at + (size_t)(r.pos >> 3));
				return ERR_FORMAT;
			}
			v = i ? v + 1 + gap : gap;
			if (t && i % SKIP == 0) {
				t[type].skip_val[i / SKIP] = (uint32_t)v;
				t[type].skip_pos[i / SKIP] = (uint32_t)r.pos;
			}
			if (out) {
				rec[0] = (unsigned char)type;
				store_be32(rec + 1, (uint32_t)(v << (32 - bits)));
				if (util_buf_append(out, rec, sizeof(rec)))
					return ERR_NOMEM;
			}
		}
		/* The stream ends in its last byte, padded with zero bits. */
		if ((r.pos + 7) / 8 != nbytes ||
		    (r.pos & 7 && data[at + nbytes - 1] & (0xff >> (r.pos & 7)))) {
			util_set_msg(errbuf, errlen, "hash prefixes: %s at offset %zu",
				"bytes or bits left over", at + (size_t)(r.pos >> 3));
			return ERR_FORMAT;
		}
		pset_param(type, bits, params[nparams++]);
		at += nbytes;
	}
	if (at != n) {
		util_set_msg(errbuf, errlen, "hash prefixes: bytes left over at offset %zu", at);
		return ERR_FORMAT;
	}
	for (i = 0; out && i < nparams; i++)
		if (util_buf_append(out, params[i], PSET_RECORD))
			return ERR_NOMEM;
	return ERR_OK;
}

enum err pset_decode(const char *data, size_t n, struct util_buf *out, char *errbuf,
		     size_t errlen)
{
	return walk((const unsigned char *)data, n, NULL, out, errbuf, errlen);
}

struct pset *pset_load(const char *data, size_t n, char *errbuf, size_t errlen)
{
	struct pset *s = calloc(1, sizeof(*s));
	enum err err;

	if (!s || !(s->data = malloc(n ? n : 1))) {
		free(s);
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	memcpy(s->data, data, n);
	s->len = n;
	err = walk((const unsigned char *)s->data, n, s->t, NULL, errbuf, errlen);
	if (err != ERR_OK) {
		if (err == ERR_NOMEM)
			snprintf(errbuf, errlen, "out of memory");
		pset_free(s);
		return NULL;
	}
	return s;
}

unsigned pset_bits(const struct pset *s, unsigned type)
{
	return type >= 1 && type <= PSET_TYPES ? s->t[type].bits : 0;
}

bool pset_has(const struct pset *s, unsigned type, const unsigned char *digest)
{
	const struct ptype *t;
	size_t lo, hi, mid, i;
	uint64_t v, want, gap;
	struct bitrd r;

	if (type < 1 || type > PSET_TYPES || !s->t[type].bits || !s->t[type].n)
		return false;
	t = &s->t[type];
	want = prefix_value(digest, t->bits);
	/* The last index entry at or below want. */
	lo = 0;
	hi = (t->n - 1) / SKIP;
	if (t->skip_val[0] > want)
		return false;
	while (lo < hi) {
		mid = (lo + hi + 1) / 2;
		if (t->skip_val[mid] <= want)
			lo = mid;
		else
			hi = mid - 1;
	}
	v = t->skip_val[lo];
	r = (struct bitrd){ .p = t->stream, .nbits = (uint64_t)t->nbytes * 8,
			    .pos = t->skip_pos[lo] };
	for (i = lo * SKIP + 1; v < want && i < t->n; i++) {
		if (!get_rice(&r, t->k, UINT64_MAX >> 1, &gap))
			return false;
		v += 1 + gap;
	}
	return v == want;
}

uint64_t pset_count(const struct pset *s)
{
	uint64_t n = 0;
	unsigned type;

	for (type = 1; type <= PSET_TYPES; type++)
		n += s->t[type].n;
	return n;
}

size_t pset_memory(const struct pset *s)
{
	size_t m = sizeof(*s) + s->len;
	unsigned type;

	for (type = 1; type <= PSET_TYPES; type++)
		m += 2 * ((s->t[type].n + SKIP - 1) / SKIP + 1) * sizeof(uint32_t);
	return m;
}

void pset_free(struct pset *s)
{
	unsigned type;

	if (!s)
		return;
	for (type = 1; type <= PSET_TYPES; type++) {
		free(s->t[type].skip_val);
		free(s->t[type].skip_pos);
	}
	free(s->data);
	free(s);
}
