/* deployments.c -- the store's agent deployments: each from the first
 * download of its install script to the agent it enrolled, or to its
 * failure, timeout or cancellation (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <string.h>

const char *const store_deploy_states[] = { "script", "package", "enrolled", "failed",
					    "timed-out", "cancelled", NULL };

/* A deployment that has not ended: its host is between the script and the
 * enrollment, with time left (?2 is now). */
#define DEPLOY_OPEN "state IN ('script', 'package') AND deadline > ?2"

#define DEPLOY_COLUMNS "id, token, domain, address, state, arch, version, message, " \
	"client, started, updated, deadline"

enum serr store_deploy_start(struct store *st, const char *id, const char *token,
			     const char *domain, const char *address, int64_t now,
			     int64_t deadline, int64_t max_open, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t open = 0;

	if (err == SERR_OK)
		err = store_sql_int(st, &open, errbuf, errlen, "SELECT count(*) FROM "
				    "deployments WHERE " DEPLOY_OPEN, "ii", (int64_t)0, now);
	if (err == SERR_OK && open >= max_open) {
		snprintf(errbuf, errlen, "%lld deployments are in progress "
			 "(deploy.max_in_progress)", (long long)open);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO deployments (id, token, "
				     "domain, address, state, started, updated, deadline) VALUES "
				     "(?, ?, ?, ?, 'script', ?, ?, ?)", "ssssiii", id, token,
				     domain, address, now, now, deadline);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_deploy_step(struct store *st, const char *id, const char *token,
			    const char *state, const char *arch, const char *version,
			    const char *message, int64_t client, int64_t now)
{
	int64_t changed = 0;
	enum serr err;

	/* Only an open deployment of the same token moves, and only forward
	 * (a package downloaded again leaves an enrolled one enrolled). */
	err = store_sql_count(st, &changed, NULL, 0, "UPDATE deployments SET state = ?3, "
			      "arch = coalesce(?4, arch), version = coalesce(?5, version), "
			      "message = coalesce(?6, message), client = CASE WHEN ?7 > 0 THEN ?7 "
			      "ELSE client END, updated = ?8 WHERE id = ?1 AND token = ?2 AND "
			      "state IN ('script', 'package') AND deadline > ?8", "ssssssii", id,
			      token, state, arch, version, message, client, now);
	if (err == SERR_OK && changed == 0)
		err = SERR_NOENT;
	return err;
}

enum serr store_deploy_cancel(struct store *st, const char *id, const char *who, int64_t now,
			      json_t **row)
{
	enum serr err;
	char msg[200];
	int64_t changed = 0;

	snprintf(msg, sizeof(msg), "cancelled by %.150s", who);
	err = store_sql_count(st, &changed, NULL, 0, "UPDATE deployments SET state = "
			      "'cancelled', message = ?3, updated = ?2 WHERE id = ?1 AND "
			      "state IN ('script', 'package')", "sis", id, now, msg);
	if (err == SERR_OK && changed == 0)
		err = SERR_NOENT;
	if (err == SERR_OK && row)
		err = store_deploy_get(st, id, row);
	return err;
}

enum serr store_deploy_get(struct store *st, const char *id, json_t **row)
{
	json_t *rows = NULL;
	enum serr err = store_sql_rows(st, 0, &rows, "SELECT " DEPLOY_COLUMNS " FROM "
				       "deployments WHERE id = ?", "s", id);

	if (err == SERR_OK && json_array_size(rows) == 0)
		err = SERR_NOENT;
	if (err == SERR_OK)
		*row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return err;
}

enum serr store_deploy_expire(struct store *st, int64_t now, int64_t keep_before,
			      json_t **expired)
{
	enum serr err = store_begin(st, NULL, 0);

	if (err == SERR_OK)
		err = store_sql_rows(st, 0, expired, "SELECT " DEPLOY_COLUMNS " FROM deployments "
				     "WHERE state IN ('script', 'package') AND deadline <= ?1 "
				     "ORDER BY started", "i", now);
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "UPDATE deployments SET state = 'timed-out', "
				     "updated = ?1 WHERE state IN ('script', 'package') AND "
				     "deadline <= ?1", "i", now);
	/* Ended deployments are kept for a while, then go. */
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "DELETE FROM deployments WHERE state NOT IN "
				     "('script', 'package') AND updated < ?", "i", keep_before);
	err = store_finish(st, err, NULL, 0);
	if (err != SERR_OK) {
		json_decref(*expired);
		*expired = NULL;
	}
	return err;
}

enum serr store_deploy_list(struct store *st, bool open_only, int64_t now, int64_t limit,
			    json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT " DEPLOY_COLUMNS " FROM deployments WHERE "
			      "?1 = 0 OR (" DEPLOY_OPEN ") ORDER BY started DESC, id LIMIT ?3",
			      "iii", (int64_t)open_only, now, limit);
}

enum serr store_deploy_count(struct store *st, int64_t now, json_t **counts)
{
	return store_sql_rows(st, 0, counts, "SELECT CASE WHEN state IN ('script', 'package') "
			      "AND deadline <= ?1 THEN 'timed-out' ELSE state END AS state, "
			      "count(*) AS n FROM deployments GROUP BY 1 ORDER BY 1", "i", now);
}
