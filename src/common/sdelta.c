/* sdelta.c -- set deltas (see sdelta.h). */
#include "common/sdelta.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "WSDELTA2"
#define MAGIC_LEN 8

/* One element: its bytes without the line end. */
struct elem {
	const char *p;
	size_t n;
};

/* The elements of a set, in order. */
struct elems {
	struct elem *v;
	size_t n;
};

static int elem_cmp(const struct elem *a, const struct elem *b)
{
	int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);

	if (c)
		return c;
	return a->n < b->n ? -1 : a->n > b->n;
}

static int elem_qsort_cmp(const void *a, const void *b)
{
	return elem_cmp(a, b);
}

/* Splits the n bytes at s into elements. For lines, sloppy (normalising)
 * splitting drops '\r' before '\n' and empty lines and accepts a missing
 * final '\n'; strict splitting requires the normalised form. */
static enum err split(const char *s, size_t n, size_t width, bool sloppy,
		      struct elems *out)
{
	size_t cap, i = 0, end;

	out->v = NULL;
	out->n = 0;
	if (width > SDELTA_MAX_WIDTH || (width && n % width))
		return ERR_FORMAT;
	cap = width ? n / width : 0;
	if (!width)
		for (i = 0; i < n; i++)
			cap += s[i] == '\n';
	cap++;
	out->v = malloc(cap * sizeof(*out->v));
	if (!out->v)
		return ERR_NOMEM;
	for (i = 0; i < n; i = end + (width ? 0 : 1)) {
		struct elem e = { s + i, width };

		if (width) {
			end = i + width;
		} else {
			const char *nl = memchr(s + i, '\n', n - i);

			if (!nl && !sloppy)
				return ERR_FORMAT;
			end = nl ? (size_t)(nl - s) : n;
			e.n = end - i;
			if (e.n && s[end - 1] == '\r') {
				if (!sloppy)
					return ERR_FORMAT;
				e.n--;
			}
			if (!e.n) {
				if (!sloppy)
					return ERR_FORMAT;
				continue;
			}
		}
		out->v[out->n++] = e;
	}
	return ERR_OK;
}

/* Splits a set that must be strictly ascending. */
static enum err split_set(const char *s, size_t n, size_t width, struct elems *out)
{
	enum err err = split(s, n, width, false, out);
	size_t i;

	for (i = 1; err == ERR_OK && i < out->n; i++)
		if (elem_cmp(&out->v[i - 1], &out->v[i]) >= 0)
			err = ERR_FORMAT;
	return err;
}

static int put_elem(struct util_buf *out, const struct elem *e, size_t width)
{
	if (util_buf_append(out, e->p, e->n) != 0)
		return -1;
	return width ? 0 : util_buf_append(out, "\n", 1);
}

enum err sdelta_normalize(const char *in, size_t n, size_t width, struct util_buf *out)
{
	struct elems e;
	enum err err = split(in, n, width, true, &e);
	size_t i;

	if (err == ERR_OK && e.n)
		qsort(e.v, e.n, sizeof(*e.v), elem_qsort_cmp);
	for (i = 0; err == ERR_OK && i < e.n; i++)
		if ((i == 0 || elem_cmp(&e.v[i - 1], &e.v[i]) != 0) &&
		    put_elem(out, &e.v[i], width) != 0)
			err = ERR_NOMEM;
	free(e.v);
	return err;
}

/* Records of up to 8 bytes travel as numbers: big-endian, so their order
 * is the numbers' order, and additions can be coded as gaps. */
#define NUMERIC_WIDTH 8

static uint64_t elem_value(const struct elem *e)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < e->n; i++)
		v = v << 8 | (unsigned char)e->p[i];
	return v;
}

static int put_varint(struct util_buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return util_buf_append(out, b, n);
}

enum err sdelta_make(const char *old, size_t oldlen, const char *new_set, size_t newlen,
		     size_t width, struct util_buf *out)
{
	struct elems a = { 0 }, b = { 0 };
	struct util_buf adds = { 0 }, rems = { 0 };
	unsigned char hash[32], w = (unsigned char)width;
	size_t i = 0, j = 0, nadd = 0, nrem = 0, last = 0;
	uint64_t v, prev = 0;
	enum err err;
	int c, fail = 0;

	err = split_set(old, oldlen, width, &a);
	if (err == ERR_OK)
		err = split_set(new_set, newlen, width, &b);
	while (err == ERR_OK && !fail && (i < a.n || j < b.n)) {
		c = i == a.n ? 1 : j == b.n ? -1 : elem_cmp(&a.v[i], &b.v[j]);
		if (c < 0) {
			/* Gaps keep positions small: the first is absolute. */
			fail = put_varint(&rems, nrem ? i - last - 1 : i);
			last = i++;
			nrem++;
		} else if (c > 0) {
			/* Gaps again: the first addition absolute. */
			if (width && width <= NUMERIC_WIDTH) {
				v = elem_value(&b.v[j++]);
				fail = put_varint(&adds, nadd ? v - prev - 1 : v);
				prev = v;
			} else {
				fail = put_elem(&adds, &b.v[j++], width);
			}
			nadd++;
		} else {
			i++;
			j++;
		}
	}
	if (err == ERR_OK) {
		crypto_hash_sha256(hash, (const unsigned char *)old, oldlen);
		if (fail || util_buf_append(out, MAGIC, MAGIC_LEN) != 0 ||
		    util_buf_append(out, &w, 1) != 0 ||
		    util_buf_append(out, hash, sizeof(hash)) != 0 || put_varint(out, nrem) != 0 ||
		    util_buf_append(out, rems.data, rems.len) != 0 ||
		    put_varint(out, nadd) != 0 || util_buf_append(out, adds.data, adds.len) != 0)
			err = ERR_NOMEM;
	}
	free(a.v);
	free(b.v);
	util_buf_free(&adds);
	util_buf_free(&rems);
	return err;
}

/* A reader over the delta's bytes. */
struct reader {
	const unsigned char *p;
	size_t len, pos;
	char *errbuf;
	size_t errlen;
};

static enum err bad(struct reader *r, const char *what)
{
	snprintf(r->errbuf, r->errlen, "set delta: offset %zu: %s", r->pos, what);
	return ERR_FORMAT;
}

static enum err get_varint(struct reader *r, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	for (;;) {
		if (r->pos == r->len)
			return bad(r, "truncated number");
		if (shift > 63 || (shift == 63 && (r->p[r->pos] & 0x7e)))
			return bad(r, "number out of range");
		*v |= (uint64_t)(r->p[r->pos] & 0x7f) << shift;
		if (!(r->p[r->pos++] & 0x80))
			return ERR_OK;
		shift += 7;
	}
}

/* The additions being read: numeric ones are decoded into buf. */
struct adds {
	size_t width;
	uint64_t left, prev;
	bool first;
	unsigned char buf[2][NUMERIC_WIDTH];
	unsigned flip;
};

/* Reads the next added element into e, which stays valid until the
 * next-but-one call (the caller compares it with the one before). */
static enum err get_elem(struct reader *r, struct adds *a, struct elem *e)
{
	const unsigned char *nl;
	size_t width = a->width, i;
	uint64_t v;
	enum err err;

	if (width && width <= NUMERIC_WIDTH) {
		err = get_varint(r, &v);
		if (err != ERR_OK)
			return err;
		if (!a->first && (v >= UINT64_MAX - a->prev))
			return bad(r, "addition out of range");
		v = a->first ? v : a->prev + v + 1;
		if (width < 8 && v >> (8 * width))
			return bad(r, "addition out of range");
		a->first = false;
		a->prev = v;
		a->flip ^= 1;
		for (i = width; i-- > 0; v >>= 8)
			a->buf[a->flip][i] = (unsigned char)v;
		e->p = (const char *)a->buf[a->flip];
		e->n = width;
		return ERR_OK;
	}
	e->p = (const char *)r->p + r->pos;
	if (width) {
		if (r->len - r->pos < width)
			return bad(r, "truncated record");
		e->n = width;
		r->pos += width;
		return ERR_OK;
	}
	nl = memchr(r->p + r->pos, '\n', r->len - r->pos);
	if (!nl)
		return bad(r, "truncated line");
	e->n = (size_t)(nl - (r->p + r->pos));
	if (e->n == 0 || e->p[e->n - 1] == '\r')
		return bad(r, "empty line or line ending in CR");
	r->pos += e->n + 1;
	return ERR_OK;
}

enum err sdelta_apply(const char *old, size_t oldlen, const char *delta, size_t dlen,
		      struct util_buf *out, char *errbuf, size_t errlen)
{
	struct reader r = { (const unsigned char *)delta, dlen, 0, errbuf, errlen };
	struct elems a = { 0 };
	struct elem add, prev = { NULL, 0 };
	struct adds adds = { .first = true };
	unsigned char hash[32];
	bool *removed = NULL, have_prev = false, have_add = false;
	uint64_t nrem, gap, pos = 0, k;
	size_t width, i = 0;
	enum err err;
	int c;

	if (dlen < MAGIC_LEN + 1 + 32 || memcmp(delta, MAGIC, MAGIC_LEN) != 0)
		return bad(&r, "not a set delta");
	width = adds.width = r.p[MAGIC_LEN];
	r.pos = MAGIC_LEN + 1;
	crypto_hash_sha256(hash, (const unsigned char *)old, oldlen);
	if (memcmp(hash, r.p + r.pos, 32) != 0) {
		snprintf(errbuf, errlen, "set delta: made from another version of the file");
		return ERR_BASE;
	}
	r.pos += 32;
	err = split_set(old, oldlen, width, &a);
	if (err == ERR_FORMAT)
		snprintf(errbuf, errlen, "set delta: the installed file is not a set");
	if (err == ERR_OK)
		err = get_varint(&r, &nrem);
	if (err == ERR_OK && nrem > a.n)
		err = bad(&r, "more removals than elements");
	if (err == ERR_OK && !(removed = calloc(a.n + 1, sizeof(*removed))))
		err = ERR_NOMEM;
	for (k = 0; err == ERR_OK && k < nrem; k++) {
		err = get_varint(&r, &gap);
		if (err != ERR_OK)
			break;
		if (gap >= a.n || (k && gap >= a.n - pos - 1)) {
			err = bad(&r, "removed position out of range");
			break;
		}
		pos = k ? pos + gap + 1 : gap;
		removed[pos] = true;
	}
	if (err == ERR_OK)
		err = get_varint(&r, &adds.left);
	/* Merge what stays with the additions, which must be new and ascending. */
	while (err == ERR_OK) {
		while (i < a.n && removed[i])
			i++;
		if (!have_add && adds.left) {
			err = get_elem(&r, &adds, &add);
			if (err != ERR_OK)
				break;
			if (have_prev && elem_cmp(&prev, &add) >= 0) {
				err = bad(&r, "additions out of order");
				break;
			}
			prev = add;
			have_prev = have_add = true;
			adds.left--;
		}
		if (i == a.n && !have_add)
			break;
		c = i == a.n ? 1 : !have_add ? -1 : elem_cmp(&a.v[i], &add);
		if (c == 0) {
			err = bad(&r, "addition already in the set");
		} else if (c < 0) {
			if (put_elem(out, &a.v[i++], width) != 0)
				err = ERR_NOMEM;
		} else {
			have_add = false;
			if (put_elem(out, &add, width) != 0)
				err = ERR_NOMEM;
		}
	}
	if (err == ERR_OK && r.pos != r.len)
		err = bad(&r, "bytes after the last addition");
	free(removed);
	free(a.v);
	return err;
}
