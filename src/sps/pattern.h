/* pattern.h -- a Smart Scan Pattern loaded for lookups.
 *
 * The pattern is the hashes.wsp file of a smart-pattern component version:
 * entry lines sorted bytewise, so sorted by digest type and digest. It is
 * mapped read-only and indexed by line; a lookup binary-searches the lines
 * of the query's type for the first digest under its prefix and copies
 * out the lines that follow while they stay under it. Every line is
 * checked when the pattern loads, so lookups parse nothing.
 * Thread-safe once loaded: lookups only read.
 */
#ifndef WARD_SPS_PATTERN_H
#define WARD_SPS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include "common/spsq.h"
#include "common/util.h"

struct sps_pattern;

/* Loads the pattern file at path as version. Returns NULL with the file,
 * line and reason in errbuf when it is malformed or out of order. The
 * caller frees it with sps_pattern_free(). */
struct sps_pattern *sps_pattern_load(const char *path, int64_t version, char *errbuf,
				     size_t errlen);

/* Appends to out the entry lines under q (each ending in '\n'), at most
 * SPSQ_MAX_ENTRIES of them (the first, by digest); returns how many, -1
 * when out of memory, or -2 when they would be more than max or take out
 * past max_bytes (what was appended is then left in out). */
int sps_pattern_lookup(const struct sps_pattern *p, const struct spsq_query *q, size_t max,
		       size_t max_bytes, struct util_buf *out);

/* The prefix width in bits the agent pattern built with p has for digest
 * type (pset_width() of its distinct prefixes; 0: p has no such digest). */
unsigned sps_pattern_bits(const struct sps_pattern *p, unsigned type);

/* The version p was loaded as, and how many entries it holds. */
int64_t sps_pattern_version(const struct sps_pattern *p);
uint64_t sps_pattern_entries(const struct sps_pattern *p);

/* Frees p (NULL is accepted). */
void sps_pattern_free(struct sps_pattern *p);

#endif
