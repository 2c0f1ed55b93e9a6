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
 * answer only what the pattern says of malware. Runs on the HTTP loop's
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

/* Creates the service; answers may be kept ttl seconds by agents. Returns
 * NULL when out of memory. */
struct sps_service *sps_service_new(int64_t ttl);

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
