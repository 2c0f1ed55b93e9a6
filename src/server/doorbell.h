/* doorbell.h -- what one wardd hears of the others sharing its
 * PostgreSQL database: a connection of its own that LISTENs to the
 * store's bell (store_bell_open()), watched by the event loop. A ring is
 * only "look again" (the database holds what changed): the notifier
 * claims the deliveries of its agents and hands out their tasks
 * (notify_rung()). The bell asks for an answer every second it hears
 * nothing, so that a database cut off without a word (a partition, a
 * stopped server) is found out within SILENCE_MS. Lost, the bell is
 * opened again every second on a thread (a database out of reach holds a
 * connecting thread for connect_timeout, never the loop), and the queue
 * looked at once it is back, for what rang meanwhile. While it is lost,
 * the server is cut off (doorbell_cut_off()): rather than answer from
 * what it may no longer know, it answers every request 503 (its agents'
 * parked channels at once: notify_cut()), so that agents turn to the
 * other servers, and its store does not try to reconnect meanwhile. The
 * bell also holds this server's number (server.frontend): a second wardd
 * with the same one is refused.
 *
 * Runs on the loop's thread only.
 */
#ifndef WARD_SERVER_DOORBELL_H
#define WARD_SERVER_DOORBELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/loop.h"
#include "server/notify.h"

struct doorbell;

/* Opens the doorbell of server number frontend on the database at target
 * (kept, not copied: it outlives the doorbell), whose store is st. NULL with errbuf empty
 * when the database is no shared one (SQLite): nothing to hear; NULL
 * with a message when it cannot open, or another server has the number.
 * The caller owns it. */
struct doorbell *doorbell_new(struct loop *loop, struct store *st, const char *target,
			      int64_t frontend, struct notify *notify, char *errbuf, size_t errlen);

/* Whether the server is cut off from its database (the bell lost): it
 * answers 503 meanwhile. False for NULL (no database shared). */
bool doorbell_cut_off(const struct doorbell *d);

/* Whether the database answered the bell's last question in time (within
 * a tick and a half): false while cut off, or while it is silent (what
 * can wait, such as the agents' reports, is not sent: a statement to a
 * database cut off without a word holds the loop until the store gives
 * up on it). True for NULL. */
bool doorbell_answering(const struct doorbell *d);

/* Closes it (NULL is accepted). */
void doorbell_free(struct doorbell *d);

#endif
