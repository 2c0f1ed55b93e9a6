/* metrics.h -- what wardd counts for GET /metrics (the Prometheus text
 * format, docs/api.md): requests by route and status, delivery latency,
 * detections reported; the rest (agents, queues, downloads, smart
 * protection, imports, backups) is read from its owners at each scrape.
 *
 * Loop thread only.
 */
#ifndef WARD_METRICS_H
#define WARD_METRICS_H

#include <stdint.h>
#include "common/http.h"

struct metrics;

/* A new, zeroed set of counters, or NULL when out of memory. */
struct metrics *metrics_new(void);

/* Frees m (NULL is accepted). */
void metrics_free(struct metrics *m);

/* The http_answer_fn that counts each answer by its request's route
 * (http_req_set_route(): an operation's id, METRICS_ROUTE_SPS, or none)
 * and status; arg is the struct metrics. */
void metrics_answered(struct http_req *req, unsigned status, void *arg);

/* The route of the smart protection server's requests (/sps/v1/...). */
#define METRICS_ROUTE_SPS 1000

/* Counts a delivery of settings acknowledged seconds after it was sent. */
void metrics_delivered(struct metrics *m, double seconds);

/* Counts n detections reported by agents. */
void metrics_detections(struct metrics *m, int64_t n);

#endif
