/* tasks.h -- the agent's scans: on-demand scans asked through the control
 * socket (source "manual"), server-started scans (Scan Now, "scan_now")
 * and scheduled scans (scan.scheduled, scan.schedule: "scheduled"), all on
 * the same path: scan.exclude_paths and the vault's local exclusions left
 * out, what is found given to vault_respond() and queued for the server,
 * progress and the end reported (server tasks), the last one kept as
 * STATE/last_scan.json for the status, its progress with it every few
 * seconds. With scan.cpu=low a scan runs one scanning thread at nice 19
 * and the idle I/O class. The loop's long works (quarantine restores and
 * deletes) run here too, one after another on a thread of their own.
 *
 * Each scan runs on a thread of its own (never the loop's), on a handle of
 * the component in use (components.h) that it holds to the end, so an
 * update in the middle of a scan does not change what it runs on. The
 * table of scans and works belongs to the loop's thread.
 */
#ifndef WARD_AGENT_TASKS_H
#define WARD_AGENT_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

struct agent;
struct tasks;
struct vault;

/* Takes a task report (docs/protocol.md, POST /api/v1/agent/tasks; a
 * reference the callee takes) to send to the server. Any thread. */
typedef void (*tasks_report_fn)(json_t *report, void *arg);

/* Called when STATE/last_scan.json (the status's last_scan) was
 * rewritten, so that the status reaches the server now: as a scan starts
 * and ends, and every few seconds while it runs. From a scan's thread. */
typedef void (*tasks_status_fn)(void *arg);

/* The scans of a, at most max_scans at once, whose threads report their
 * end to loop. Returns NULL when out of memory. The caller frees it with
 * tasks_free() after tasks_stop() and loop_free(). */
struct tasks *tasks_new(struct agent *a, struct loop *loop, unsigned max_scans);

/* Starts an on-demand scan of paths[0..n) (absolute; copied) that streams
 * its outcomes as JSON lines to fd, which it takes over and closes at its
 * end: {"file", "verdict": "OK"|"FOUND"|"Unverified"|"error", "name" (FOUND)
 * or "error" (error)} per file, then {"done": true, "method", "files",
 * "infected", "unverified", "errors"}, or {"error"} when the scan cannot
 * run. A client that goes away cancels its scan. Returns 0, or -1 with
 * errbuf set (too many scans, out of memory), fd not taken. Loop's thread. */
int tasks_scan(struct tasks *t, const char *const *paths, size_t n, int fd, char *errbuf,
	       size_t errlen);

/* Gives t the vault that acts on what its scans find (NULL: none; reported
 * only), where task reports go (report; NULL: nowhere) and who hears that
 * the last scan changed (status; NULL: none), both called with arg.
 * Before any scan; loop's thread. */
void tasks_attach(struct tasks *t, struct vault *v, tasks_report_fn report,
		  tasks_status_fn status, void *arg);

/* Takes the settings in effect (borrowed; copied): scan.* for the scans
 * that start from now on, and the schedule of scheduled scans. Loop's
 * thread. */
void tasks_configure(struct tasks *t, const json_t *settings);

/* Starts the server's scan task (id > 0; 0: a scheduled scan) of
 * paths[0..n) (NULL: scan.paths) at cpu ("low", "normal"; NULL: scan.cpu),
 * reporting it running, its progress every few seconds and its end.
 * Returns 0, or -1 with errbuf set (too many scans, out of memory): the
 * caller reports the task failed. Loop's thread. */
int tasks_start(struct tasks *t, int64_t id, const char *const *paths, size_t n,
		const char *cpu, char *errbuf, size_t errlen);

/* Cancels the scan of task id on behalf of the cancel task cancel_id,
 * which is reported completed once the scan has stopped. Returns false
 * when no scan of that task runs. Loop's thread. */
bool tasks_cancel(struct tasks *t, int64_t id, int64_t cancel_id);

/* Work of the loop's that may take long (a quarantine restore, delete or
 * list: the quarantine's lock may be held by a restore for long), run off
 * the loop's thread. */
typedef void (*tasks_work_fn)(void *arg);

/* Its end, on the loop's thread: ran false when the agent stopped before
 * the work started (dropped). */
typedef void (*tasks_done_fn)(void *arg, bool ran);

/* Runs work(arg) on a thread of t's, one work at a time in the order
 * given, then done(arg, true) on the loop's thread (or done(arg, false)
 * from tasks_stop() if it had not started). A scan started after it
 * reads the local exclusions once it has run. Returns 0, or -1 when out
 * of memory (done not called). Loop's thread. */
int tasks_run(struct tasks *t, tasks_work_fn work, tasks_done_fn done, void *arg);

/* How many scans run. Loop's thread. */
unsigned tasks_running(const struct tasks *t);

/* Cancels every scan and waits for their threads (a file being scanned is
 * finished first) and the work running; drops the works waiting. Loop's
 * thread. */
void tasks_stop(struct tasks *t);

/* Frees t, after tasks_stop() and loop_free() (which collects the scans
 * that ended). */
void tasks_free(struct tasks *t);

#endif
