/* doorbell.h -- what one wardd hears of the others sharing its
 * PostgreSQL database: a connection of its own that LISTENs to the
 * store's bell (store_bell_open()), watched by the event loop. A ring is
 * only "look again" (the database holds what changed): the notifier
 * claims the deliveries of its agents and hands out their tasks
 * (notify_rung()). Lost (PostgreSQL restarted), the bell is opened again
 * every second, and the queue looked at once it is back, for what rang
 * meanwhile. The bell also holds this server's number (server.frontend):
 * a second wardd with the same one is refused.
 *
 * Runs on the loop's thread only.
 */
#ifndef WARD_SERVER_DOORBELL_H
#define WARD_SERVER_DOORBELL_H

#include <stddef.h>
#include <stdint.h>
#include "common/loop.h"
#include "server/notify.h"

struct doorbell;

/* Opens the doorbell of server number frontend on the database at target
 * (kept, not copied: it outlives the doorbell). NULL with errbuf empty
 * when the database is no shared one (SQLite): nothing to hear; NULL
 * with a message when it cannot open, or another server has the number.
 * The caller owns it. */
struct doorbell *doorbell_new(struct loop *loop, const char *target, int64_t frontend,
			      struct notify *notify, char *errbuf, size_t errlen);

/* Closes it (NULL is accepted). */
void doorbell_free(struct doorbell *d);

#endif
