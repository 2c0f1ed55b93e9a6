/* backups.h -- the backups wardd makes itself: asked through the API
 * (`ward backup create`, the console) or by backup.schedule, each on a
 * thread of its own (backup_create()), into backup.dir, keeping the
 * backup.keep newest archives there. One runs at a time.
 *
 * Loop thread only, but for the backup's own thread, which touches
 * nothing here but its job until it is collected.
 */
#ifndef WARD_BACKUPS_H
#define WARD_BACKUPS_H

#include <jansson.h>
#include "common/http.h"
#include "server/config.h"
#include "server/store.h"

struct backups;

/* Makes the backups of the server cfg configures (config_path: its file,
 * kept in each archive; NULL: none), recording each outcome in st's event
 * log, on http's loop. NULL when out of memory. Free with backups_free(),
 * which waits for a backup under way. */
struct backups *backups_new(const struct config *cfg, const char *config_path,
			    struct store *st, struct http_server *http);

/* Waits for a backup under way, answers a request still waiting for it
 * (503), and frees b (NULL is accepted). */
void backups_free(struct backups *b);

/* Starts a backup now on behalf of who; req (may be NULL) is answered
 * when it is written (201, its manifest and where it is) or has failed
 * (500, why). A backup already running, or no passphrase configured, is
 * answered at once (409). */
void backups_start(struct backups *b, struct http_req *req, const char *who);

/* What GET /api/v1/backups shows: {"dir", "schedule", "keep", "running",
 * "next" (seconds since the epoch, or null), "last_success" (when the last
 * that succeeded since wardd started began, or null), "last" (the last
 * outcome, or null), "archives": [{"name", "size", "time"}], newest
 * first}. New; the caller owns it. NULL when out of memory. */
json_t *backups_status(const struct backups *b);

#endif
