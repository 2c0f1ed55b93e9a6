/* api_tasks.h -- tasks for agents (Scan Now, quarantine restores and
 * deletes, cancellations) as functions that take no request, beside the
 * routes of api_tasks.c: the quarantine's routes queue their tasks here.
 *
 * A task is queued in the store, goes to its agent with the answer of its
 * event channel (woken at once when parked; see notify.h) and is
 * delivered until the agent reports on it (POST /api/v1/agent/tasks);
 * docs/protocol.md has the wire format. Loop thread only.
 */
#ifndef WARD_API_TASKS_H
#define WARD_API_TASKS_H

#include "server/api.h"

/* Queues a task of kind with args (an object of its members but id and
 * kind; borrowed) for client, asked by who, and wakes the client's event
 * channel: SERR_OK with its id in *id, else the store's error with msg
 * naming what was wrong (an unfinished task of the same kind and target,
 * tasks.max_per_client reached, no such client). */
enum serr api_tasks_queue(struct api_ctx *ctx, int64_t client, const char *kind,
			  const json_t *args, const char *who, int64_t *id, char *msg,
			  size_t len);

/* Starts Scan Now on the online agents of scope ("root", "domain:/PATH",
 * "client:ID") for who, of paths (a list of absolute paths; NULL: each
 * client's scan.paths) at cpu ("low", "normal"; NULL: scan.cpu): *out is
 * {"tasks": [{"client", "task"}], "refused": [{"client", "error"}],
 * "skipped": {STATE: N}} (clients not online, counted by state). */
enum serr api_tasks_scan(struct api_ctx *ctx, const char *who, const char *scope,
			 const json_t *paths, const char *cpu, json_t **out, char *msg,
			 size_t len);

/* Fails the tasks whose agents have not reported on them for
 * tasks.expire (wardd's timer). Returns how many expired. */
int64_t api_tasks_expire(struct api_ctx *ctx);

#endif
