/* service.h -- the smart protection service: answers hash-prefix lookups
 * from the Smart Scan Pattern in use, and reports its health and counters.
 * Both ward-sps and wardd's integrated smart protection server serve it.
 *
 * Routes (docs/api.md, "Smart protection"):
 *   POST /sps/v1/lookup   queries in, entries out (spsq.h)
 *   GET  /sps/v1/status   {"version", "entries", "requests", "queries",
 *                          "hits", "errors", "latency_us": {"p50", "p99"}}
 *   GET  /sps/v1/health   200 when a pattern is loaded, else 503
 * Lookups need no credential: a prefix tells nothing about a file, and an
 * answer only what the pattern says of malware. So that no request can
 * make much work or memory: prefixes shorter than the pattern's width
 * (less 2 bits) get 400, answers past max_entries or max_bytes 413, and
 * while the answers not yet taken by their clients pass max_held, lookups
 * get 503 with Retry-After. Runs on the HTTP loop's
 * thread; a new pattern replaces the old one between two requests, so no
 * request ever sees half of either.
 */
#ifndef WARD_SPS_SERVICE_H
#define WARD_SPS_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/http.h"
#include "sps/pattern.h"

struct sps_service;

/* What the service gives (docs/configuration.md, [sps]). */
struct sps_limits {
	int64_t ttl;          /* seconds agents may keep answers */
	size_t max_entries;   /* entries one answer holds at most */
	size_t max_bytes;     /* bytes one answer takes at most (at least
			       * SPS_MIN_ANSWER_BYTES, so one query always fits) */
	size_t max_held;      /* bytes of answers given but not yet taken by
			       * their clients (every route's) past which
			       * lookups get 503 */
};

/* The least max_bytes may be: one query's SPSQ_MAX_ENTRIES longest lines. */
#define SPS_MIN_ANSWER_BYTES 131072

/* Creates the service with the limits in lim (copied). Returns NULL when
 * out of memory. */
struct sps_service *sps_service_new(const struct sps_limits *lim);

/* Makes p (taken over) the pattern in use and frees the one before. */
void sps_service_set(struct sps_service *s, struct sps_pattern *p);

/* The pattern in use (NULL: none yet). */
const struct sps_pattern *sps_service_pattern(const struct sps_service *s);

/* Answers req when its path is one of the service's (returns true). */
bool sps_service_handle(struct sps_service *s, struct http_req *req);

/* Returns a new object with the status the status route answers. */
json_t *sps_service_status(const struct sps_service *s);

/* Frees s and its pattern (NULL is accepted). */
void sps_service_free(struct sps_service *s);

#endif
