/* events.c -- the store's event log (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

const char *const store_event_kinds[] = { "system", "verify", "delivery", "detection", "task",
					  NULL };

/* Fills *host (NULL when unknown; the caller frees it) and domain with
 * client's host name and domain path, which events keep as they were. */
static void event_place(struct store *st, int64_t client, char **host, char *domain,
			size_t len)
{
	int64_t parent = 0;

	*host = NULL;
	domain[0] = '\0';
	if (client > 0 &&
	    store_sql_text(st, host, NULL, 0, "SELECT hostname FROM clients WHERE node = ?", "i",
			   client) == SERR_OK &&
	    store_sql_int(st, &parent, NULL, 0, "SELECT parent FROM nodes WHERE id = ?", "i",
			  client) == SERR_OK &&
	    store_domain_path(st, parent, domain, len) != SERR_OK)
		domain[0] = '\0';
}

static enum serr event_insert(struct store *st, const char *kind, int64_t client,
			      const char *host, const char *domain, int64_t when,
			      const char *message, const char *detail)
{
	return store_sql_exec(st, NULL, 0, "INSERT INTO events (time, kind, client, hostname, "
			      "domain, message, observed, detail) VALUES (?, ?, nullif(?, 0), ?, "
			      "nullif(?, ''), ?, ?, ?)", "isisssis",
			      when ? when : (int64_t)time(NULL), kind, client, host, domain,
			      message, store_observed(st), detail);
}

enum serr store_event_add(struct store *st, const char *kind, int64_t client,
			  int64_t when, const char *message)
{
	char *host, domain[1024];
	enum serr err;

	event_place(st, client, &host, domain, sizeof(domain));
	err = event_insert(st, kind, client, host, domain, when, message, NULL);
	free(host);
	return err;
}

enum serr store_events_add(struct store *st, const char *kind, int64_t client,
			   const int64_t *when, const char *const *messages,
			   const char *const *details, size_t n)
{
	char *host, domain[1024];
	enum serr err = store_begin(st, NULL, 0);
	size_t i;

	if (err != SERR_OK)
		return err;
	event_place(st, client, &host, domain, sizeof(domain));
	for (i = 0; i < n && err == SERR_OK; i++)
		err = event_insert(st, kind, client, host, domain, when[i], messages[i],
				   details ? details[i] : NULL);
	free(host);
	return store_finish(st, err, NULL, 0);
}

enum serr store_eventf(struct store *st, const char *kind, int64_t client,
		       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_INFO, "%s: %s", kind, msg);
	return store_event_add(st, kind, client, 0, msg);
}

enum serr store_events(struct store *st, const struct store_event_filter *f,
		       json_t **out)
{
	/* A domain matches itself and every domain below it. */
	return store_sql_rows(st, 1u << 6, out,
		"SELECT id, time, kind, client, hostname, domain, detail, message FROM events "
		"WHERE (?1 IS NULL OR kind = ?1) AND time >= ?2 AND time <= ?3 "
		"AND (?4 = 0 OR client = ?4) AND (?5 IS NULL OR domain = ?5 OR "
		"substr(domain, 1, length(?5) + 1) = ?5 || '/' OR "
		"(?5 = '/' AND domain IS NOT NULL)) "
		"AND (?6 = 0 OR id < ?6) ORDER BY id DESC LIMIT ?7", "siiisii",
		f->kind, f->since, f->until ? f->until : INT64_MAX, f->client, f->domain,
		f->before, f->limit);
}

enum serr store_events_prune(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	/* Older by the clock and by this server's own count: a clock set
	 * forward deletes nothing. */
	return store_sql_count(st, n, NULL, 0, "DELETE FROM events WHERE time < ? AND "
			       "observed < ?", "ii", now - keep, store_observed(st) - keep);
}

enum serr store_client_place(struct store *st, int64_t client, char *host, size_t hlen,
			     char *domain, size_t dlen)
{
	char *h = NULL;

	event_place(st, client, &h, domain, dlen);
	if (!h)
		return SERR_NOENT;
	snprintf(host, hlen, "%s", h);
	free(h);
	return SERR_OK;
}

enum serr store_detections_count(struct store *st, const char *scope, int64_t since,
				 int64_t *n, int64_t *clients)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT count(*), count(DISTINCT client) "
					  "FROM events WHERE kind = 'detection' AND time >= ?1 AND "
					  "(?2 = '/' OR domain = ?2 OR substr(domain, 1, "
					  "length(?2) + 1) = ?2 || '/')", "is", since, scope);
	enum serr err = s ? SERR_OK : SERR_DB;

	*n = *clients = 0;
	if (s && db_step(s, &err, NULL, 0)) {
		*n = db_column_int(s, 0);
		*clients = db_column_int(s, 1);
	}
	db_finalize(s);
	return err;
}
