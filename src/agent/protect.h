/* protect.h -- the running agent's real-time protection: the service that
 * hosts the real-time scanner (realtime.h).
 *
 * It turns the settings in effect into the scanner's policy (started
 * when realtime.enabled, reconfigured when the settings change, stopped
 * when disabled), re-marks filesystems when the mounts change, flushes
 * the verdict caches when the component in use changes, scans what the
 * scanner submits on a bounded pool of threads of its own through
 * components_scan_fd(), and takes what is found (the report kept for the
 * server, the unverified list for smart scan's rescans) off the decision
 * path, on a thread of its own.
 *
 * Threads: protect_new(), protect_apply(), protect_stop() and
 * protect_free() belong to the loop's thread (the scanner's owner must
 * live as long as it); protect_status() is thread-safe.
 */
#ifndef WARD_AGENT_PROTECT_H
#define WARD_AGENT_PROTECT_H

#include <jansson.h>

#include "common/loop.h"

struct agent;
struct channel;
struct protect;
struct vault;

/* The service for a (its state loaded) on loop; ch (may be NULL) is
 * woken when a detection is kept, so the report goes out at once. Not
 * started: protect_apply() starts it. Returns NULL when out of memory or
 * when its threads cannot start (logged). The caller frees it with
 * protect_free(). */
struct protect *protect_new(struct agent *a, struct loop *loop, struct channel *ch);

/* Has detections in block mode go through v's respond step (the policy's
 * actions: vault.h); without it they are reported only. Loop's thread,
 * before protect_apply(); v outlives p's threads. */
void protect_attach(struct protect *p, struct vault *v);

/* Applies settings (the settings in effect; not kept): starts, reconfigures
 * or stops the scanner. A failure is logged and reported by
 * protect_status(). Loop's thread. */
void protect_apply(struct protect *p, const json_t *settings);

/* The status report's "realtime" member (docs/protocol.md, "Protection
 * status"): a new reference, NULL when out of memory. p NULL: "off".
 * Thread-safe. */
json_t *protect_status(struct protect *p);

/* Stops the scanner (every access waiting allowed, marks removed) and the
 * threads (what they hold is answered or reported first). Loop's thread,
 * before loop_free(); idempotent. */
void protect_stop(struct protect *p);

/* Frees a stopped service. NULL is ignored. */
void protect_free(struct protect *p);

#endif
