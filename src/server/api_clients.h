/* api_clients.h -- clients as functions that take no request (the routes
 * of api_clients.c answer with them; wardd's timers, a command-line tool or
 * a control socket can call them alike), and what the other routes take
 * from src/server/api_clients.c: a client's connection state, bulk
 * operations on clients.
 *
 * The functions returning enum serr set *out to the answer (new; the
 * caller owns it; NULL when out of memory) on SERR_OK, else msg (len
 * bytes) names what was wrong (SERR_INVAL: ids is not a client id or a
 * list of them; SERR_NOENT: no such domain). ids is one client id or a
 * JSON list; each id's outcome is in the answer's "results" ({"id", "ok",
 * "error"?}). who names the administrator in the event log. Loop thread
 * only (the store is not locked).
 */
#ifndef WARD_API_CLIENTS_H
#define WARD_API_CLIENTS_H

#include "server/api.h"

/* A client's connection state at now for c (a client of
 * store_clients_each()): "moved" (to another server), "online" (event
 * channel open, or seen within agents.offline_after), "inactive" (not seen
 * for agents.inactive_after), "roaming" (away, with the roaming privilege)
 * or "offline". Static storage; loop thread only. */
const char *api_clients_state(const struct api_ctx *ctx, json_t *c, int64_t now);

/* A bulk operation on clients: fn(ctx, id, arg, msg, len) for each id of
 * ids (one id, or a list), each result {"id", "ok", "error"?} appended to
 * results. Returns how many succeeded. Takes no request: the HTTP routes
 * and any other caller share it. Loop thread only. */
int64_t api_clients_each(struct api_ctx *ctx, json_t *ids, json_t *results,
			 enum serr (*fn)(struct api_ctx *ctx, int64_t id, void *arg,
					 char *msg, size_t len),
			 void *arg);

/* A store_clients_each() callback: appends the addresses client c
 * reported (its status's "ipv4" and "ipv6") to arg, a JSON list; returns 1
 * (one client). Loop thread only. */
int api_clients_addresses(json_t *c, void *arg);

/* Refuses (SERR_LICENSE, msg saying why) moving node id (a client, or a
 * domain with what is below it) into domain when the domain would switch
 * it to what no active license covers (its smart scan or real-time
 * scanning, where the node has no value of its own), as placing the
 * setting would be. Loop thread only. */
enum serr api_clients_move_licensed(struct api_ctx *ctx, int64_t id, int64_t domain,
				    char *msg, size_t len);

/* Moves the clients ids to the domain to: {"moved": N, "results"}. */
enum serr api_clients_move_to(struct api_ctx *ctx, const char *who, json_t *ids,
			      const char *to, json_t **out, char *msg, size_t len);

/* Removes the clients ids from the tree (restorable for
 * agents.removed_keep): {"removed": N, "results"}. */
enum serr api_clients_remove_ids(struct api_ctx *ctx, const char *who, json_t *ids,
				 json_t **out, char *msg, size_t len);

/* Puts the removed clients ids back: {"restored": N, "results"}. */
enum serr api_clients_restore_ids(struct api_ctx *ctx, const char *who, json_t *ids,
				  json_t **out, char *msg, size_t len);

/* Tells the clients ids to move to the wardd at server (https://HOST:PORT)
 * with its enrollment token and CA certificate (PEM): each re-enrolls there
 * in the domain of the same path: {"moving": N, "results"}. */
enum serr api_clients_send(struct api_ctx *ctx, const char *who, json_t *ids,
			   const char *server, const char *token, const char *ca,
			   json_t **out, char *msg, size_t len);

/* Verifies every client's connection state and logs each change since the
 * last verification; with remove, also removes clients inactive for longer
 * than agents.remove_after (from the tree only: the daily task, and
 * verification on demand). Returns a new report {"summary": {...},
 * "changed": [...], "removed": [...]}, or NULL when out of memory. Takes no
 * request: wardd's timers and the route share it. Loop thread only. */
json_t *api_clients_verify_all(struct api_ctx *ctx, bool remove);

#endif
