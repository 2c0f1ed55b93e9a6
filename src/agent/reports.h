/* reports.h -- what the agent reports and keeps for reporting: its status
 * (the heartbeat), the detections not yet reported to the server, and the
 * files smart scan left unverified, rescanned once a smart protection
 * source answers again.
 *
 * The lists live in the state directory under a lock (reports_lock()),
 * which every process and thread that changes them takes: scans, the
 * rescans, the reports to the server. The functions that talk to the
 * server use a->up.rc and run on the channel's thread.
 */
#ifndef WARD_AGENT_REPORTS_H
#define WARD_AGENT_REPORTS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent/components.h"
#include "agent/scan.h"

struct agent;
struct vault;

/* The last scan of the server or the schedule as STATE/last_scan.json
 * keeps it (tasks.c; its progress while it runs): a new object, or a new
 * JSON null when there is none. Any thread. */
json_t *reports_last_scan(const struct agent *a);

/* The last full scan (of scan.paths, scheduled or Scan Now) that
 * completed, as STATE/last_full_scan.json keeps it (tasks.c): a new
 * object {"finished", "source", "task"}, or a new JSON null. Any thread. */
json_t *reports_last_full_scan(const struct agent *a);

/* What a heartbeat reports (a new object; NULL when out of memory). */
json_t *reports_status(struct agent *a);

/* Opens (creating) the lock of the lists and takes it; with wait false,
 * returns -1 at once when another holds it. The caller closes the
 * descriptor returned to let go. */
int reports_lock(const struct agent *a, bool wait);

/* The JSON list in the state file path (a new list; empty when none is
 * kept). */
json_t *reports_load_list(const char *path);

/* Returns a new list of the newest detections of kept (whose reference it
 * takes) followed by found, at most the number kept for the server; NULL
 * when out of memory. */
json_t *reports_keep_newest(json_t *kept, const json_t *found);

/* Scans paths with the component of h as o says (scan.h; NULL: the
 * defaults), and keeps the unverified list and the detections to report
 * up to date; the caller holds the lock. Returns 0, or -1 when the scan
 * could not run or its results could not be kept (logged). */
int reports_scan(struct agent *a, const struct components_handle *h,
		 const char *const *paths, size_t n, const struct ascan_opts *o,
		 struct ascan_totals *t);

/* Queues found (a JSON array of detections of docs/protocol.md; borrowed)
 * for the server in STATE/detections-live.json, in one rewrite of the
 * list, under a lock of its own that scans do not hold (held only while
 * the list is rewritten). Returns 0, or -1 when they could not be kept
 * (logged). Any thread. */
int reports_queue_detections(struct agent *a, const json_t *found);

/* Adds path, which real-time scanning left unverified, to the unverified
 * list (once), taking the lock; act: whether its rescan takes the
 * policy's actions (false: real time was in detect mode, which reports
 * only). Returns 0, or -1 when it could not be kept. Any thread (blocks
 * on the lock). */
int reports_add_unverified(struct agent *a, const char *path, bool act);

/* Reports the detections kept to the server, a batch a call, and forgets
 * those it took; skipped while the lock is held elsewhere. */
void reports_send_detections(struct agent *a);

/* Rescans the unverified files once a smart protection source answers
 * again, trying at most every 10 seconds, until *cancel (NULL: never);
 * the source list is fetched again every 5 minutes, and at each try while
 * no source answers. What it finds is acted upon through v (NULL: only
 * reported) like any detection, with the source that left the file
 * unverified. Skipped while the lock is held elsewhere. */
void reports_rescan_unverified(struct agent *a, struct vault *v, const atomic_bool *cancel);

#endif
