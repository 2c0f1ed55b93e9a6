/* agents.c -- the store's agents and deliveries: agents' credentials and
 * contact, the queue of settings deliveries, removed clients, moves to
 * other servers, and the smart protection servers enrolled (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

enum serr store_delivery_count(struct store *st, int64_t *count)
{
	return store_sql_int(st, count, NULL, 0, "SELECT count(*) FROM deliveries", "");
}

enum serr store_agent_auth(struct store *st, const char *uuid,
			   const unsigned char secret_hash[32], int64_t *id)
{
	return store_sql_int(st, id, NULL, 0, "SELECT node FROM clients WHERE uuid = ? AND "
			     "secret = ?", "sh", uuid, secret_hash);
}

enum serr store_sps_auth(struct store *st, const char *uuid,
			 const unsigned char secret_hash[32], int64_t *id)
{
	return store_sql_int(st, id, NULL, 0, "SELECT id FROM sps_servers WHERE uuid = ? AND "
			     "secret = ? AND state != 'revoked'", "sh", uuid, secret_hash);
}

enum serr store_sps_add(struct store *st, const char *uuid,
			const unsigned char secret_hash[32], const char *hostname,
			const char *names, const char *pin, int64_t now, char *errbuf,
			size_t errlen)
{
	enum serr err;

	err = store_sql_exec(st, errbuf, errlen, "INSERT INTO sps_servers (uuid, hostname, names, "
			     "pin, enrolled, secret) VALUES (?, ?, ?, ?, ?, ?)", "ssssih", uuid,
			     hostname, names, pin, now, secret_hash);

	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "a smart protection server with uuid %s is enrolled "
			     "already", uuid);
	return err;
}

enum serr store_sps_seen(struct store *st, int64_t id, const char *status, int64_t now,
			 char *errbuf, size_t errlen)
{
	return store_sql_exec(st, errbuf, errlen, "UPDATE sps_servers SET status = ?, last_seen = "
			      "? WHERE id = ?", "sii", status, now, id);
}

enum serr store_sps_list(struct store *st, json_t **out)
{
	/* names and status are JSON text. */
	return store_sql_rows(st, 1u << 3 | 1u << 6, out, "SELECT id, uuid, hostname, names, "
			      "enrolled, last_seen, status, pin, state AS trust FROM sps_servers "
			      "ORDER BY id", "");
}

enum serr store_sps_set_state(struct store *st, int64_t id, const char *state,
			      int64_t *n)
{
	/* A revocation is for good: the server must enroll again. */
	return store_sql_count(st, n, NULL, 0, "UPDATE sps_servers SET state = ? WHERE id = ? AND "
			       "state != 'revoked'", "si", state, id);
}

enum serr store_sps_pins(struct store *st, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT pin FROM sps_servers WHERE state = "
				  "'enabled' AND pin IS NOT NULL ORDER BY id", "");
}

/* An agent's report not written yet. */
struct seen_entry {
	int64_t id;         /* 0: a free slot (node ids start at 1) */
	int64_t last_seen;
	int64_t observed;   /* store_observed() then */
	char *status;       /* owned; NULL: unchanged */
};

/* Reports held: open addressing by id, at most half full. */
struct store_seen {
	struct seen_entry *slot;
	size_t cap;         /* 0 or a power of two */
	size_t count;
};

/* Reports written by one statement (their JSON bound as one text). */
#define SEEN_CHUNK 256
/* The most reports held while the database fails or is busy: written by
 * the timer alone, so that a busy database costs the loop one wait a
 * second, not one per report. */
#define SEEN_MAX (1u << 20)

static struct seen_entry *seen_slot(struct seen_entry *slot, size_t cap, int64_t id)
{
	size_t i = (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15u) >> 32) & (cap - 1);

	while (slot[i].id != 0 && slot[i].id != id)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static const struct seen_entry *seen_find(const struct store_seen *s, int64_t id)
{
	const struct seen_entry *e = s && s->cap ? seen_slot(s->slot, s->cap, id) : NULL;

	return e && e->id == id ? e : NULL;
}

/* Room for one more entry. */
static bool seen_room(struct store_seen *s)
{
	struct seen_entry *slot;
	size_t cap = s->cap ? s->cap * 2 : 256, i;

	if ((s->count + 1) * 2 <= s->cap)
		return true;
	slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return false;
	for (i = 0; i < s->cap; i++)
		if (s->slot[i].id)
			*seen_slot(slot, cap, s->slot[i].id) = s->slot[i];
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return true;
}

void store_seen_free(struct store *st)
{
	size_t i;

	if (!st->seen)
		return;
	for (i = 0; i < st->seen->cap; i++)
		free(st->seen->slot[i].status);
	free(st->seen->slot);
	free(st->seen);
	st->seen = NULL;
}

enum serr store_agent_seen(struct store *st, int64_t id, const char *status, int64_t now,
			   char *errbuf, size_t errlen)
{
	struct seen_entry *e;
	char *copy = NULL;

	if (!st->seen)
		st->seen = calloc(1, sizeof(*st->seen));
	if (!st->seen || st->seen->count >= SEEN_MAX || !seen_room(st->seen) ||
	    (status && !(copy = strdup(status)))) {
		util_set_msg(errbuf, errlen, "out of memory, or %u agents' reports held while "
			     "the database fails", SEEN_MAX);
		return SERR_NOMEM;
	}
	e = seen_slot(st->seen->slot, st->seen->cap, id);
	if (e->id == 0) {
		*e = (struct seen_entry){ .id = id };
		st->seen->count++;
	}
	e->last_seen = now;
	e->observed = store_observed(st);
	if (copy) {
		free(e->status);
		e->status = copy;
	}
	return SERR_OK;
}

/* Writes the reports of one chunk, a JSON array of [id, last_seen,
 * observed, status or null]. */
static enum serr seen_write(struct store *st, const char *chunk, char *errbuf, size_t errlen)
{
	char sql[400];

	snprintf(sql, sizeof(sql), "UPDATE clients SET last_seen = CAST(v.value ->> 1 AS "
		 "BIGINT), seen_observed = CAST(v.value ->> 2 AS BIGINT), status = "
		 "COALESCE(v.value ->> 3, clients.status) FROM %s WHERE clients.node = "
		 "CAST(v.value ->> 0 AS BIGINT)", db_json_rows(st->db));
	return store_sql_exec(st, errbuf, errlen, sql, "s", chunk);
}

enum serr store_seen_flush(struct store *st, char *errbuf, size_t errlen)
{
	struct store_seen *s = st->seen;
	json_t *chunk = NULL;
	const struct seen_entry *e;
	enum serr err;
	char *text;
	size_t i = 0;

	if (!s || s->count == 0)
		return SERR_OK;
	/* Soft state: its commit does not wait for the disk, nor its
	 * statements long for rows a change holds (a root change's refresh
	 * of every client): tried again at the next call. */
	err = store_begin(st, errbuf, errlen);
	if (err == SERR_OK)
		err = db_relax(st->db, errbuf, errlen);
	while (err == SERR_OK && i < s->cap) {
		chunk = json_array();
		for (; chunk && i < s->cap && json_array_size(chunk) < SEEN_CHUNK; i++) {
			e = &s->slot[i];
			if (e->id && json_array_append_new(chunk, json_pack("[I I I s?]",
					(json_int_t)e->id, (json_int_t)e->last_seen,
					(json_int_t)e->observed, e->status)) != 0)
				break;
		}
		text = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
		err = !text ? SERR_NOMEM : json_array_size(chunk) == 0 ? SERR_OK :
		      seen_write(st, text, errbuf, errlen);
		free(text);
		json_decref(chunk);
	}
	err = store_finish(st, err, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	for (i = 0; i < s->cap; i++)
		free(s->slot[i].status);
	memset(s->slot, 0, s->cap * sizeof(*s->slot));
	s->count = 0;
	return SERR_OK;
}

enum serr store_agent_settings(struct store *st, int64_t id, char **json,
			       int64_t *version, char *errbuf, size_t errlen)
{
	enum serr err = store_sql_text(st, json, errbuf, errlen,
				       "SELECT eff_json FROM clients WHERE node = ?", "i", id);

	if (err == SERR_OK) {
		err = store_sql_int(st, version, errbuf, errlen,
				    "SELECT eff_version FROM clients WHERE node = ?", "i", id);
		if (err != SERR_OK) {
			free(*json);
			*json = NULL;
		}
	}
	return err;
}

enum serr store_agent_ack(struct store *st, int64_t id, int64_t version, char *errbuf,
			  size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t n = 0;
	bool moved;

	if (err != SERR_OK)
		return err;
	err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET acked_version = ?1 WHERE "
			     "node = ?2 AND acked_version < ?1", "ii", version, id);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET update_req = 0 WHERE "
				     "node = ? AND update_req <= ?", "ii", id, version);
	/* An agent acknowledges a move once it has enrolled with the target;
	 * it will not ask for anything queued since: that is cancelled. */
	if (err == SERR_OK)
		err = store_sql_count(st, &n, errbuf, errlen, "UPDATE clients SET state = "
				      "'moved' WHERE node = ? AND move IS NOT NULL AND "
				      "move_version <= ? AND state != 'moved'", "ii", id, version);
	moved = err == SERR_OK && n > 0;
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM deliveries WHERE client = ? "
				     "AND version <= ?", "ii", id, version);
	if (err == SERR_OK && moved)
		err = store_sql_count(st, &n, errbuf, errlen, "DELETE FROM deliveries WHERE "
				      "client = ?", "i", id);
	if (err == SERR_OK && moved && n > 0)
		err = store_event_add(st, "delivery", id, 0, "moved to another server: its "
				      "queued delivery is cancelled");
	return store_finish(st, err, errbuf, errlen);
}

/* Rows read at a time: a few more than room, for the agents passed over
 * (those read and not looked at stay as they are). */
#define CLAIM_CHUNK 64

enum serr store_deliveries_claim(struct store *st, int64_t now, size_t room,
				 bool (*fn)(const struct store_delivery *d, void *arg), void *arg)
{
	struct store_delivery rows[CLAIM_CHUNK];
	enum serr err = store_begin(st, NULL, 0);
	struct db_stmt *stmt;
	size_t n, i, limit, taken = 0;

	while (err == SERR_OK && taken < room) {
		limit = room - taken < CLAIM_CHUNK - 16 ? room - taken + 16 : CLAIM_CHUNK;
		stmt = store_prepare(st, NULL, 0, "SELECT client, version, attempts, next_attempt "
				     "FROM deliveries WHERE frontend = ? AND next_attempt <= ? "
				     "ORDER BY next_attempt, created, client LIMIT ? "
				     "FOR UPDATE SKIP LOCKED", "iii", st->frontend, now,
				     (int64_t)limit);
		if (!stmt) {
			err = SERR_DB;
			break;
		}
		for (n = 0; n < CLAIM_CHUNK && db_step(stmt, &err, NULL, 0); n++) {
			rows[n].client = db_column_int(stmt, 0);
			rows[n].version = db_column_int(stmt, 1);
			rows[n].attempts = db_column_int(stmt, 2);
			rows[n].next_attempt = db_column_int(stmt, 3);
		}
		db_finalize(stmt);
		/* Marked after the query: what a query sees of rows changed
		 * while it runs is the backend's choice. */
		for (i = 0; err == SERR_OK && i < n && taken < room; i++) {
			if (fn(&rows[i], arg))
				taken++;
			err = store_sql_exec(st, NULL, 0, "UPDATE deliveries SET next_attempt = ? "
					     "WHERE client = ?", "ii", (int64_t)STORE_WAITING,
					     rows[i].client);
		}
		if (n < limit)
			break;
	}
	return store_finish(st, err, NULL, 0);
}

enum serr store_delivery_get(struct store *st, int64_t client, struct store_delivery *d)
{
	struct db_stmt *stmt = store_prepare(st, NULL, 0, "SELECT version, attempts, next_attempt "
					     "FROM deliveries WHERE client = ?", "i", client);
	enum serr err = SERR_OK;

	if (!stmt)
		return SERR_DB;
	if (db_step(stmt, &err, NULL, 0)) {
		d->client = client;
		d->version = db_column_int(stmt, 0);
		d->attempts = db_column_int(stmt, 1);
		d->next_attempt = db_column_int(stmt, 2);
	} else if (err == SERR_OK) {
		err = SERR_NOENT;
	}
	db_finalize(stmt);
	return err;
}

enum serr store_poll_state(struct store *st, int64_t client, int64_t resend_before,
			   struct store_delivery *d, bool *queued, bool *tasks, bool *here)
{
	struct db_stmt *stmt = store_prepare(st, NULL, 0, "SELECT d.version, d.attempts, "
					     "d.next_attempt, CASE WHEN EXISTS (SELECT 1 FROM "
					     "tasks t WHERE t.client = ?1 AND (t.state = 'queued' "
					     "OR (t.state = 'delivered' AND t.sent <= ?2))) THEN 1 "
					     "ELSE 0 END, c.frontend FROM clients c LEFT JOIN "
					     "deliveries d ON d.client = c.node WHERE c.node = ?1",
					     "ii", client, resend_before);
	enum serr err = SERR_OK;

	*queued = *tasks = *here = false;
	if (!stmt)
		return SERR_DB;
	if (db_step(stmt, &err, NULL, 0)) {
		*queued = db_column_type(stmt, 0) != DB_NULL;
		if (*queued)
			*d = (struct store_delivery){ .client = client,
						      .version = db_column_int(stmt, 0),
						      .attempts = db_column_int(stmt, 1),
						      .next_attempt = db_column_int(stmt, 2) };
		*tasks = db_column_int(stmt, 3) != 0;
		*here = db_column_int(stmt, 4) == st->frontend;
	} else if (err == SERR_OK) {
		err = SERR_NOENT;
	}
	db_finalize(stmt);
	if (err != SERR_OK)
		*queued = *tasks = *here = false;
	return err;
}

/* One round trip, and no wait for the disk: a failover brings thousands
 * of these at once, and one lost in a crash of PostgreSQL is written again
 * at the agent's next poll. */
enum serr store_agent_here(struct store *st, int64_t client)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "WITH soft AS (%s) UPDATE clients SET frontend = ?1 FROM soft "
		 "WHERE node = ?2 AND (frontend IS NULL OR frontend != ?1)",
		 db_soft_commit(st->db));
	return store_sql_exec(st, NULL, 0, sql, "ii", st->frontend, client);
}

enum serr store_delivery_retry(struct store *st, int64_t client, int64_t attempts,
			       int64_t next_attempt)
{
	return store_sql_exec(st, NULL, 0, "UPDATE deliveries SET attempts = ?, next_attempt = ?, "
			      "frontend = ? WHERE client = ?", "iiii", attempts, next_attempt,
			      st->frontend, client);
}

enum serr store_deliveries_json(struct store *st, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT d.client AS client, c.uuid AS uuid, "
				  "c.hostname AS hostname, d.version AS version, "
				  "d.attempts AS attempts, CASE WHEN d.next_attempt < ? THEN "
				  "d.next_attempt END AS next_attempt FROM deliveries d JOIN "
				  "clients c ON c.node = d.client ORDER BY d.created, d.client",
				  "i", (int64_t)STORE_WAITING);
}

enum serr store_deliveries_cancel(struct store *st, int64_t client, int64_t *n)
{
	return client < 0 ? store_sql_count(st, n, NULL, 0, "DELETE FROM deliveries", "") :
	       store_sql_count(st, n, NULL, 0, "DELETE FROM deliveries WHERE client = ?", "i",
			       client);
}

/* store_clients_each(), with each client's effective settings as
 * "settings" when settings is true. */
static enum serr each_client(struct store *st, int64_t only, bool settings,
			     int (*fn)(json_t *c, void *arg), void *arg)
{
#define CLIENT_COLUMNS "SELECT c.node, c.uuid, c.hostname, n.parent, c.last_seen, " \
	"c.eff_version, c.acked_version, c.status, c.roaming, c.state, c.seen_observed, " \
	"c.last_scan"
#define ALL " FROM clients c JOIN nodes n ON n.id = c.node ORDER BY c.node"
#define ONE " FROM clients c JOIN nodes n ON n.id = c.node WHERE c.node = ?"
#define SUB " FROM sub JOIN clients c ON c.node = sub.id JOIN nodes n ON n.id = c.node " \
	"ORDER BY c.node"
	/* Three statements, not one with "?1 = 0 OR": that would read every
	 * client to show one; and a client by its key, not as a subtree,
	 * which PostgreSQL reads every node for (a recursive query's rows
	 * are estimated, and a client has none below it). The settings
	 * (kilobytes each) only when asked for. */
	static const char *const sql[2][3] = {
		{ CLIENT_COLUMNS ALL, CLIENT_COLUMNS ONE, SUBTREE_CTE CLIENT_COLUMNS SUB },
		{ CLIENT_COLUMNS ", c.eff_json" ALL, CLIENT_COLUMNS ", c.eff_json" ONE,
		  SUBTREE_CTE CLIENT_COLUMNS ", c.eff_json" SUB } };
	enum store_kind kind = STORE_KIND_DOMAIN;
	enum serr err = only == 0 ? SERR_OK : store_node_kind(st, only, &kind, NULL, 0);
	struct db_stmt *stmt = NULL;
	const struct seen_entry *held;
	const char *status;
	json_t *obj;
	int stop = 0;

	if (err == SERR_NOENT)
		return SERR_OK;
	if (err != SERR_OK)
		return err;
	if (only == 0)
		stmt = store_prepare(st, NULL, 0, sql[settings][0], "");
	else
		stmt = store_prepare(st, NULL, 0, sql[settings][kind == STORE_KIND_CLIENT ? 1 : 2],
				     "i", only);
#undef CLIENT_COLUMNS
#undef ALL
#undef ONE
#undef SUB
	if (!stmt)
		return SERR_DB;
	while (!stop && db_step(stmt, &err, NULL, 0)) {
		/* A report held (store_agent_seen()) is newer than the row. */
		held = seen_find(st->seen, db_column_int(stmt, 0));
		status = held && held->status ? held->status : db_column_text(stmt, 7);
		obj = json_pack("{sI ss ss sI sI sI sI so sb ss}",
				"id", (json_int_t)db_column_int(stmt, 0),
				"uuid", db_column_text(stmt, 1),
				"hostname", db_column_text(stmt, 2),
				"domain", (json_int_t)db_column_int(stmt, 3),
				"last_seen", (json_int_t)(held ? held->last_seen :
							  db_column_int(stmt, 4)),
				"version", (json_int_t)db_column_int(stmt, 5),
				"acked_version", (json_int_t)db_column_int(stmt, 6),
				"status", status ? json_loads(status, 0, NULL) : json_null(),
				"roaming", (int)db_column_int(stmt, 8),
				"verified_state", db_column_text(stmt, 9));
		if (obj) {
			json_object_set_new(obj, "seen_observed",
					    json_integer(held ? held->observed :
							 db_column_int(stmt, 10)));
			json_object_set_new(obj, "last_scan", db_column_json(stmt, 11, true));
			if (settings)
				json_object_set_new(obj, "settings",
						    db_column_json(stmt, 12, true));
		}
		if (!obj) {
			err = SERR_NOMEM;
			break;
		}
		stop = fn(obj, arg);
		json_decref(obj);
	}
	db_finalize(stmt);
	return err;
}

enum serr store_clients_each(struct store *st, int64_t only,
			     int (*fn)(json_t *c, void *arg), void *arg)
{
	return each_client(st, only, false, fn, arg);
}

enum serr store_clients_each_settings(struct store *st, int64_t only,
				      int (*fn)(json_t *c, void *arg), void *arg)
{
	return each_client(st, only, true, fn, arg);
}

enum serr store_client_set_state(struct store *st, int64_t id, const char *state)
{
	return store_sql_exec(st, NULL, 0, "UPDATE clients SET state = ? WHERE node = ?", "si",
			      state, id);
}

/* The settings placed on client id itself, as a removed client keeps
 * them: JSON text of [[key, value as JSON text], ...] in *out (the caller
 * frees it). */
static enum serr own_settings(struct store *st, int64_t id, char **out)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT key, value FROM settings WHERE "
					  "node = ? ORDER BY key", "i", id);
	json_t *list = json_array();
	enum serr err = s ? SERR_OK : SERR_DB;

	if (!list)
		err = SERR_NOMEM;
	while (err == SERR_OK && db_step(s, &err, NULL, 0))
		if (json_array_append_new(list, json_pack("[ss]", db_column_text(s, 0),
							  db_column_text(s, 1))) != 0)
			err = SERR_NOMEM;
	db_finalize(s);
	*out = err == SERR_OK ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	return err == SERR_OK && !*out ? SERR_NOMEM : err;
}

/* Places on removed client id again the settings it kept (own_settings()). */
static enum serr put_own_settings(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	char *text = NULL;
	enum serr err = store_sql_text(st, &text, errbuf, errlen, "SELECT settings FROM "
				       "removed_clients WHERE node = ?", "i", id);
	json_t *list = err == SERR_OK ? json_loads(text, 0, NULL) : NULL, *pair;
	size_t i;

	if (err == SERR_OK && !json_is_array(list)) {
		util_set_msg(errbuf, errlen, "database: the settings kept of removed client %lld "
			     "are unreadable", (long long)id);
		err = SERR_DB;
	}
	json_array_foreach(list, i, pair) {
		if (err != SERR_OK)
			break;
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO settings (node, key, value) "
				     "VALUES (?, ?, ?)", "iss", id,
				     json_string_value(json_array_get(pair, 0)),
				     json_string_value(json_array_get(pair, 1)));
	}
	json_decref(list);
	free(text);
	return err;
}

enum serr store_client_remove(struct store *st, int64_t id, const char *why,
			      char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t parent = 0;
	char path[4096], *settings = NULL;

	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_int(st, &parent, errbuf, errlen, "SELECT parent FROM nodes WHERE "
				    "id = ?", "i", id);
	if (err == SERR_OK)
		err = store_domain_path(st, parent, path, sizeof(path));
	if (err == SERR_OK)
		err = store_event_add(st, "system", id, 0, why);
	/* Kept, credential and settings included, for an administrator to
	 * restore within agents.removed_keep. */
	if (err == SERR_OK)
		err = own_settings(st, id, &settings);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO removed_clients (node, "
				     "uuid, hostname, secret, domain, settings, status, last_seen, "
				     "removed, removed_observed, why) SELECT node, uuid, hostname, "
				     "secret, ?2, ?3, status, last_seen, ?4, ?5, ?6 FROM clients "
				     "WHERE node = ?1", "issiis", id, path, settings,
				     (int64_t)time(NULL), store_observed(st), why);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM nodes WHERE id = ?", "i", id);
	free(settings);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_removed_list(struct store *st, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT node AS id, uuid, hostname, domain, "
				  "last_seen, removed, why FROM removed_clients ORDER BY removed "
				  "DESC, node", "");
}

enum serr store_client_restore(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	char *path = NULL;
	int64_t domain = STORE_ROOT, other = 0;

	if (err != SERR_OK)
		return err;
	err = store_sql_text(st, &path, errbuf, errlen, "SELECT domain FROM removed_clients WHERE "
			     "node = ?", "i", id);
	if (err == SERR_NOENT)
		util_set_msg(errbuf, errlen, "no removed client %lld (restored already, or kept "
			     "no longer)", (long long)id);
	if (err == SERR_OK &&
	    store_sql_int(st, &other, NULL, 0, "SELECT c.node FROM clients c JOIN removed_clients "
			  "r ON r.uuid = c.uuid WHERE r.node = ?", "i", id) == SERR_OK) {
		util_set_msg(errbuf, errlen, "client %lld's agent has enrolled again, as client "
			     "%lld", (long long)id, (long long)other);
		err = SERR_EXIST;
	}
	/* Back in its domain, or the root when that is gone. */
	if (err == SERR_OK && store_domain_lookup(st, path, 0, &domain, NULL, 0) != SERR_OK)
		domain = STORE_ROOT;
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO nodes (id, parent, kind, "
				     "name) SELECT node, ?2, 2, hostname FROM removed_clients "
				     "WHERE node = ?1", "ii", id, domain);
	/* Seen now: its inactivity counts afresh. */
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO clients (node, uuid, "
				     "hostname, secret, status, last_seen, seen_observed) SELECT "
				     "node, uuid, hostname, secret, status, ?2, ?3 FROM "
				     "removed_clients WHERE node = ?1", "iii", id,
				     (int64_t)time(NULL), store_observed(st));
	if (err == SERR_OK)
		err = put_own_settings(st, id, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM removed_clients WHERE node = "
				     "?", "i", id);
	if (err == SERR_OK)
		err = store_refresh(st, id, NULL, errbuf, errlen);
	free(path);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_removed_purge(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	/* Past keep by the clock and by this server's own count. */
	return store_sql_count(st, n, NULL, 0, "DELETE FROM removed_clients WHERE removed < ? "
			       "AND removed_observed < ?", "ii", now - keep,
			       store_observed(st) - keep);
}

enum serr store_client_move_server(struct store *st, int64_t id, const char *move,
				   char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t rev = 0;
	char *eff = NULL;

	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET move = ? WHERE node = "
				     "?", "si", move, id);
	if (err == SERR_OK)
		err = store_sql_text(st, &eff, errbuf, errlen, "SELECT eff_json FROM clients WHERE "
				     "node = ?", "i", id);
	/* A new version carries the move to the agent like a settings change. */
	if (err == SERR_OK)
		err = store_record_change(st, id, eff, -1, &rev, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET move_version = ? "
				     "WHERE node = ?", "ii", rev, id);
	free(eff);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_client_update_now(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t rev = 0;
	char *eff = NULL;

	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_text(st, &eff, errbuf, errlen, "SELECT eff_json FROM clients WHERE "
				     "node = ?", "i", id);
	if (err == SERR_OK)
		err = store_record_change(st, id, eff, -1, &rev, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET update_req = ? WHERE "
				     "node = ? AND update_req = 0", "ii", rev, id);
	free(eff);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_client_update_pending(struct store *st, int64_t id, int *pending)
{
	int64_t v = 0;
	enum serr err = store_sql_int(st, &v, NULL, 0, "SELECT update_req FROM clients WHERE "
				      "node = ?", "i", id);

	*pending = err == SERR_OK && v > 0;
	return err;
}

enum serr store_client_move_info(struct store *st, int64_t id, char **move)
{
	return store_sql_text(st, move, NULL, 0, "SELECT move FROM clients WHERE node = ? AND "
			      "move IS NOT NULL AND state != 'moved'", "i", id);
}
