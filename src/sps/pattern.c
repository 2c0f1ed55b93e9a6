/* pattern.c -- a Smart Scan Pattern loaded for lookups (see pattern.h). */
#include "sps/pattern.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/pset.h"

/* Lines are found through the first 16 bits of their digest: a bucket per
 * value and type holds the index of the first line at or above it, so a
 * lookup binary-searches a few dozen heads that sit side by side in
 * memory instead of the whole pattern's lines. */
#define BUCKET_BITS 16
#define BUCKETS (1u << BUCKET_BITS)

struct sps_pattern {
	const char *map;
	size_t len;
	uint32_t *lines;          /* offset of each line */
	uint32_t *heads;          /* the first four digest bytes of each line */
	uint32_t *buckets[4];     /* per type, BUCKETS + 1 line indexes */
	uint64_t n;
	uint64_t first[4], end[4]; /* the lines of each digest type */
	unsigned bits[4];          /* the agent pattern's prefix width of each type */
	int64_t version;
};

/* Compares the type and digest of two entry lines (the key they sort by). */
/* The length of "TYPE:DIGEST" at the start of a checked entry line. */
static size_t key_len(const char *line, size_t n)
{
	const char *c = memchr(line, ':', n);

	c = memchr(c + 1, ':', n - (size_t)(c + 1 - line));
	return (size_t)(c - line);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t ka = key_len(a, alen), kb = key_len(b, blen);
	int c = memcmp(a, b, ka < kb ? ka : kb);

	return c ? c : (ka > kb) - (ka < kb);
}

struct sps_pattern *sps_pattern_load(const char *path, int64_t version, char *errbuf,
				     size_t errlen)
{
	struct sps_pattern *p = calloc(1, sizeof(*p));
	const char *line, *nl, *prev = NULL;
	struct spsq_entry e;
	size_t cap = 0, prevlen = 0, at;
	uint32_t *grown, *grown_heads;
	uint64_t i, b;
	struct stat st;
	unsigned t, last = 0;
	int fd = -1;

	if (!p) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	p->version = version;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size >= UINT32_MAX) {
		snprintf(errbuf, errlen, "%s: larger than 4 GiB", path);
		goto fail;
	}
	p->len = (size_t)st.st_size;
	if (p->len) {
		p->map = mmap(NULL, p->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p->map == MAP_FAILED) {
			p->map = NULL;
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	for (at = 0; at < p->len; at = (size_t)(nl - p->map) + 1) {
		line = p->map + at;
		nl = memchr(line, '\n', p->len - at);
		if (!nl || spsq_parse_entry(line, (size_t)(nl - line), &e) != ERR_OK) {
			snprintf(errbuf, errlen, "%s line %llu: %s", path,
				 (unsigned long long)p->n + 1, nl ? "not a hash entry" :
				 "no newline at its end");
			goto fail;
		}
		if (prev && key_cmp(prev, prevlen, line, (size_t)(nl - line)) > 0) {
			snprintf(errbuf, errlen, "%s line %llu: out of order", path,
				 (unsigned long long)p->n + 1);
			goto fail;
		}
		if (p->n == cap) {
			cap = cap ? 2 * cap : 4096;
			grown = realloc(p->lines, cap * sizeof(*p->lines));
			if (grown)
				p->lines = grown;
			grown_heads = grown ? realloc(p->heads, cap * sizeof(*p->heads)) : NULL;
			if (!grown_heads) {
				snprintf(errbuf, errlen, "out of memory");
				goto fail;
			}
			p->heads = grown_heads;
		}
		p->heads[p->n] = (uint32_t)e.digest[0] << 24 | (uint32_t)e.digest[1] << 16 |
				 (uint32_t)e.digest[2] << 8 | e.digest[3];
		for (t = last + 1; t <= e.type; t++)
			p->first[t] = p->n;
		last = e.type > last ? e.type : last;
		p->lines[p->n++] = (uint32_t)at;
		prev = line;
		prevlen = (size_t)(nl - line);
	}
	for (t = 1; t <= 3; t++) {
		if (t > last)
			p->first[t] = p->n;
		p->end[t] = t < 3 ? (t + 1 <= last ? p->first[t + 1] : p->n) : p->n;
		p->buckets[t] = malloc((BUCKETS + 1) * sizeof(**p->buckets));
		if (!p->buckets[t]) {
			snprintf(errbuf, errlen, "out of memory");
			goto fail;
		}
		for (i = p->first[t], b = 0; b <= BUCKETS; b++) {
			while (i < p->end[t] && (p->heads[i] >> (32 - BUCKET_BITS)) < b)
				i++;
			p->buckets[t][b] = (uint32_t)i;
		}
		/* The builder cuts one prefix per distinct head to this width. */
		for (i = p->first[t], b = 0; i < p->end[t]; i++)
			b += i == p->first[t] || p->heads[i] != p->heads[i - 1];
		p->bits[t] = b ? pset_width(b) : 0;
	}
	close(fd);
	return p;
fail:
	if (fd >= 0)
		close(fd);
	sps_pattern_free(p);
	return NULL;
}

unsigned sps_pattern_bits(const struct sps_pattern *p, unsigned type)
{
	return type >= 1 && type <= 3 ? p->bits[type] : 0;
}

int sps_pattern_lookup(const struct sps_pattern *p, const struct spsq_query *q, size_t max,
		       size_t max_bytes, struct util_buf *out)
{
	uint32_t mask = q->bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> q->bits);
	uint32_t b = q->prefix >> (32 - BUCKET_BITS);
	uint64_t lo = p->buckets[q->type][b], hi = p->buckets[q->type][b + 1], mid, i;
	const char *line, *nl;
	int count = 0;

	/* The first line at or above the prefix is in its bucket, or is the
	 * first of the next. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (p->heads[mid] < q->prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < p->end[q->type] && count < SPSQ_MAX_ENTRIES; i++, count++) {
		if ((p->heads[i] & mask) != q->prefix)
			break;
		line = p->map + p->lines[i];
		nl = memchr(line, '\n', p->len - p->lines[i]);
		if ((size_t)count == max || out->len + (size_t)(nl - line) + 1 > max_bytes)
			return -2;
		if (util_buf_append(out, line, (size_t)(nl - line) + 1) != 0)
			return -1;
	}
	return count;
}

int64_t sps_pattern_version(const struct sps_pattern *p)
{
	return p->version;
}

uint64_t sps_pattern_entries(const struct sps_pattern *p)
{
	return p->n;
}

void sps_pattern_free(struct sps_pattern *p)
{
	unsigned t;

	if (!p)
		return;
	if (p->map)
		munmap((void *)p->map, p->len);
	free(p->lines);
	free(p->heads);
	for (t = 1; t <= 3; t++)
		free(p->buckets[t]);
	free(p);
}
