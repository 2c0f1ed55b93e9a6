/* sources.h -- the update source table: ordered entries mapping an IPv4 or
 * IPv6 range to the URL agents in it update from, checked in order;
 * agents matching none update from the server itself.
 *
 * The table is JSON: [{"range": "10.1.0.0/16", "url": "https://..."}, ...].
 * Pure functions; thread-safe.
 */
#ifndef WARD_SOURCES_H
#define WARD_SOURCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Most entries a table may have. */
#define SOURCES_MAX 1024

/* Checks a table; false with a message naming the entry in errbuf. */
bool sources_validate(const json_t *table, char *errbuf, size_t errlen);

/* Returns the URL of the first entry whose range holds one of addresses
 * (a JSON list of address strings), or NULL: update from the server. The
 * string belongs to table. */
const char *sources_select(const json_t *table, const json_t *addresses);

#endif
