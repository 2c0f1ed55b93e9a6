/* tasks.h -- the agent's scans: on-demand scans asked through the control
 * socket today; scheduled and server-started scans go here too.
 *
 * Each scan runs on a thread of its own (never the loop's), on a handle of
 * the component in use (components.h) that it holds to the end, so an
 * update in the middle of a scan does not change what it runs on. The
 * table of scans belongs to the loop's thread.
 */
#ifndef WARD_AGENT_TASKS_H
#define WARD_AGENT_TASKS_H

#include <stddef.h>

#include "common/loop.h"

struct agent;
struct tasks;

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

/* How many scans run. Loop's thread. */
unsigned tasks_running(const struct tasks *t);

/* Cancels every scan and waits for their threads (a file being scanned is
 * finished first). Loop's thread. */
void tasks_stop(struct tasks *t);

/* Frees t, after tasks_stop() and loop_free() (which collects the scans
 * that ended). */
void tasks_free(struct tasks *t);

#endif
