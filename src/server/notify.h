/* notify.h -- delivering settings to agents over their event channels.
 *
 * Each online agent keeps one long poll open (its event channel). The
 * store queues one delivery per client whose effective settings changed;
 * the notifier answers the event channels of queued clients, at most
 * notify.batch at a time: the next ones go as earlier ones acknowledge or
 * time out. A delivery that is not acknowledged within notify.ack_timeout
 * is retried every notify.retry_interval, notify.retries times, and after
 * that when the agent reconnects. The queue lives in the store, so a
 * restarted server resumes it; an agent reports the version it has, so a
 * delivery the agent applied before a crash is not sent again. Tasks
 * (store_task_add()) go with the poll answers too: at once when queued or
 * when the agent polls, again after notify.ack_timeout until the agent
 * reports on them.
 *
 * Everything runs on the HTTP loop's thread.
 */
#ifndef WARD_NOTIFY_H
#define WARD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"
#include "common/http.h"
#include "server/store.h"

struct notify;

/* Creates the notifier and registers its timers on http. The caller owns
 * it and frees it with notify_free() after http_free(). NULL when out of
 * memory. */
struct notify *notify_new(struct store *st, const struct config *cfg, struct http_server *http);

struct updates;

/* Lets the notifier sign the moves it delivers with u's package key (a
 * move is not delivered before this is called). */
void notify_set_signer(struct notify *n, const struct updates *u);

struct metrics;

/* Sends urls (the URLs agents reach the servers of this database by;
 * kept, not copied: it outlives n) with every settings delivery. */
void notify_set_frontends(struct notify *n, json_t *urls);

/* Has the notifier count each acknowledged delivery's latency in m. */
void notify_set_metrics(struct notify *n, struct metrics *m);

/* Frees the notifier (NULL is accepted). */
void notify_free(struct notify *n);

/* Handles an agent's event channel: client has settings version have.
 * Answers at once when a delivery for it may go now, else parks req for
 * wait seconds (0, or more than http.long_poll: http.long_poll). */
void notify_poll(struct notify *n, struct http_req *req, int64_t client, int64_t have,
		 int64_t wait);

/* Records client's acknowledgement of version and lets the next delivery go. */
void notify_ack(struct notify *n, int64_t client, int64_t version);

/* Answers client's parked event channel at once with its tasks due
 * (store_tasks_due()), if it has a channel parked; else they go with its
 * next poll. Call after queuing a task. */
void notify_tasks(struct notify *n, int64_t client);

/* Looks for deliveries that may go now (call after the queue grew). */
void notify_kick(struct notify *n);

/* What another server on the database rang (STORE_RUNG_* bits): the
 * queue is looked at again, its pause read anew, and tasks queued for
 * agents with a channel open here are handed out. */
void notify_rung(struct notify *n, int rung);

/* Answers every parked event channel 503: this server is cut off from
 * its database (doorbell.h), and its agents are to turn to another. */
void notify_cut(struct notify *n);

/* Returns whether client has its event channel open. */
int notify_connected(const struct notify *n, int64_t client);

/* Returns the number of deliveries sent and not yet acknowledged. */
int64_t notify_in_flight(const struct notify *n);

/* Holds (paused true) or lets go again the deliveries of settings: held,
 * none is sent; those sent already are acknowledged as usual, and the
 * queue keeps growing with changes. Kept in the store across restarts
 * (an upgrade's preflight accepts queued deliveries while paused). */
enum serr notify_pause(struct notify *n, bool paused, char *errbuf, size_t errlen);

/* Whether deliveries are held (notify_pause()). */
bool notify_paused(const struct notify *n);

#endif
