/* logs.h -- the event log's routes: reading it (JSON or CSV, filtered by
 * kind, time, client and domain) and agents reporting detections into it.
 *
 * Handlers of the operations in src/common/ops.def; they run on the HTTP loop's
 * thread like every handler (see api.h).
 */
#ifndef WARD_LOGS_H
#define WARD_LOGS_H

#include "server/api.h"

/* Most detections one report may carry. */
#define LOGS_MAX_REPORT 1000

/* Bytes of an action's error text in a detection. */
#define LOGS_MAX_TEXT 1024

/* GET /api/v1/logs: the events the query selects, newest first. */
void logs_get(struct api_ctx *ctx, struct http_req *req, const char *who,
	      const struct api_args *args);

/* Parses an agent's detection report (untrusted: every member checked,
 * no other member allowed). Returns the list of detections (a new
 * reference), or NULL with a message naming the bad entry in errbuf. */
json_t *logs_parse_report(const char *text, size_t len, char *errbuf, size_t errlen);

/* What each agent has reported lately, against logs.detections_per_hour
 * and logs.detections_per_day (in memory: from wardd's start). */
struct logs_quota;

/* Returns a new, empty record, or NULL when out of memory. */
struct logs_quota *logs_quota_new(void);

/* Frees q (NULL is accepted). */
void logs_quota_free(struct logs_quota *q);

/* POST /api/v1/agent/detections: {"detections": [{"time", "path", "name",
 * "method", and optionally "source", "action", "action_result",
 * "action_error", "second_action", "second_result", "quarantine", "task",
 * "process"}, ...]} from agent who, each logged as a detection event (the
 * detection itself as its detail), all
 * in one transaction. A report that would take the agent past its hourly
 * or daily number is refused whole with 429 and a Retry-After of the
 * seconds until it fits (the agent keeps it); that is logged once per
 * agent and hour. */
void logs_post_detections(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args);

/* Writes a field to b for CSV (RFC 4180 quoting); a field a spreadsheet
 * would run as a formula (starting = + - @, a tab or CR) gets a leading
 * quote. Returns 0, or -1 when out of memory. */
int logs_csv_field(struct util_buf *b, const char *s);

#endif
