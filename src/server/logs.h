/* logs.h -- the event log's routes: reading it (JSON or CSV, filtered by
 * kind, time, client and domain) and agents reporting detections into it.
 *
 * Handlers of the table in src/common/ops.c; they run on the HTTP loop's
 * thread like every handler (see api.h).
 */
#ifndef WARD_LOGS_H
#define WARD_LOGS_H

#include "server/api.h"

/* Most detections one report may carry. */
#define LOGS_MAX_REPORT 1000

/* GET /api/v1/logs: the events the query selects, newest first. */
void logs_get(struct api_ctx *ctx, struct http_req *req, const char *who);

/* Parses an agent's detection report (untrusted: every member checked,
 * no other member allowed). Returns the list of detections (a new
 * reference), or NULL with a message naming the bad entry in errbuf. */
json_t *logs_parse_report(const char *text, size_t len, char *errbuf, size_t errlen);

/* POST /api/v1/agent/detections: {"detections": [{"time", "path", "name",
 * "method"}, ...]} from agent who, each logged as a detection event. */
void logs_post_detections(struct api_ctx *ctx, struct http_req *req, const char *who);

/* Writes a field to b for CSV (RFC 4180 quoting); a field a spreadsheet
 * would run as a formula (starting = + - @, a tab or CR) gets a leading
 * quote. Returns 0, or -1 when out of memory. */
int logs_csv_field(struct util_buf *b, const char *s);

#endif
