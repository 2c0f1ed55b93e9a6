/* sources.h -- where agents get things from, by their addresses: the
 * update source table and the smart protection source lists. Both are
 * ordered lists of entries with a "range" (an IPv4 or IPv6 address or
 * CIDR range), checked in order; the first entry holding one of an
 * agent's addresses is the agent's.
 *
 * The update source table: [{"range": "10.1.0.0/16", "url": "https://..."},
 * ...]; agents matching none update from the server itself.
 *
 * The smart protection source lists: [{"range": "10.1.0.0/16", "sources":
 * ["https://sps1.example:8443", "integrated"], "proxy": "http://..."}, ...]:
 * sources are tried in order; "integrated" is the server's own integrated
 * smart protection server; a proxy, when given, is what the agent reaches
 * and the sources are reached through it. A range "*" holds every agent:
 * the standard list, put last. Agents matching no list use the integrated
 * server. Pure functions; thread-safe.
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

/* Returns the first entry of table (either kind) whose range holds one of
 * addresses (a JSON list of address strings), or NULL. The entry belongs
 * to table. */
const json_t *sources_match(const json_t *table, const json_t *addresses);

/* The most sources a smart protection source list may name. */
#define SOURCES_SPS_URLS 16

/* The source that stands for the server's integrated smart protection server. */
#define SOURCES_INTEGRATED "integrated"

/* Checks smart protection source lists; false with a message naming the
 * list in errbuf. */
bool sources_sps_validate(const json_t *lists, char *errbuf, size_t errlen);

/* Whether an agent reaching the network over family af (AF_INET or
 * AF_INET6) can reach some source of list: through its proxy when it has
 * one, else directly. A host name counts as reachable over both; the
 * integrated server is reached as the agent reaches the server. */
bool sources_sps_reachable(const json_t *list, int af);

#endif
