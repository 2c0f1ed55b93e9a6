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

struct sps_pattern {
	const char *map;
	size_t len;
	uint32_t *lines;          /* offset of each line */
	uint64_t n;
	uint64_t first[4], end[4]; /* the lines of each digest type */
	int64_t version;
};

/* The first four digest bytes of the entry line at off, as a number. */
static uint32_t head_of(const struct sps_pattern *p, unsigned type, uint32_t off)
{
	const char *h = p->map + off + (type == 1 ? 4 : type == 2 ? 5 : 7);
	uint32_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 4 | (uint32_t)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
	return v;
}

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
	uint32_t *grown;
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
		if (!nl || spsq_parse_entry(line, (size_t)(nl - line), &e) != SPSQ_OK) {
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
			if (!grown) {
				snprintf(errbuf, errlen, "out of memory");
				goto fail;
			}
			p->lines = grown;
		}
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
	}
	close(fd);
	return p;
fail:
	if (fd >= 0)
		close(fd);
	sps_pattern_free(p);
	return NULL;
}

int sps_pattern_lookup(const struct sps_pattern *p, const struct spsq_query *q,
		       struct util_buf *out)
{
	uint32_t mask = q->bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> q->bits);
	uint64_t lo = p->first[q->type], hi = p->end[q->type], mid, i;
	const char *line, *nl;
	int count = 0;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (head_of(p, q->type, p->lines[mid]) < q->prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < p->end[q->type] && count < SPSQ_MAX_ENTRIES; i++, count++) {
		if ((head_of(p, q->type, p->lines[i]) & mask) != q->prefix)
			break;
		line = p->map + p->lines[i];
		nl = memchr(line, '\n', p->len - p->lines[i]);
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
	if (!p)
		return;
	if (p->map)
		munmap((void *)p->map, p->len);
	free(p->lines);
	free(p);
}
