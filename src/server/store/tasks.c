/* tasks.c -- the store's tasks for agents, clients' last scans and the
 * agents' quarantines as they report them (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

const char *const store_task_states[] = { "queued", "delivered", "running", "completed",
					  "cancelled", "failed", NULL };

#define TASK_OPEN "state IN ('queued', 'delivered', 'running')"

enum serr store_tasks_queued_clients(struct store *st, json_t **out)
{
	json_t *rows = NULL, *ids = json_array(), *r;
	enum serr err = ids ? store_sql_rows(st, 0, &rows, "SELECT DISTINCT t.client AS client "
					     "FROM tasks t JOIN clients c ON c.node = t.client "
					     "WHERE t.state = 'queued' AND c.frontend = ?", "i",
					     st->frontend) : SERR_NOMEM;
	size_t i;

	json_array_foreach(rows, i, r)
		if (err == SERR_OK && json_array_append(ids, json_object_get(r, "client")) != 0)
			err = SERR_NOMEM;
	json_decref(rows);
	if (err != SERR_OK) {
		json_decref(ids);
		return err;
	}
	*out = ids;
	return SERR_OK;
}

/* Logs a task's state change as an event of kind "task" (inside the
 * caller's transaction). */
static enum serr task_event(struct store *st, int64_t client, int64_t id, const char *kind,
			    const char *what)
{
	char msg[1200];

	snprintf(msg, sizeof(msg), "task %lld (%.64s) %.1100s", (long long)id, kind, what);
	return store_event_add(st, "task", client, 0, msg);
}

/* Whether member key of two tasks' arguments is the same (null and
 * absent are). */
static bool same_member(const json_t *a, const json_t *b, const char *key)
{
	const json_t *x = json_object_get(a, key), *y = json_object_get(b, key);

	if (json_is_null(x))
		x = NULL;
	if (json_is_null(y))
		y = NULL;
	return x == y || (x && y && json_equal(x, y));
}

/* The open task of client and kind for the same target (the item, the
 * task cancelled) as args: its id in *id, SERR_NOENT without one. */
static enum serr open_task(struct store *st, int64_t client, const char *kind,
			   const json_t *args, int64_t *id)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT id, args FROM tasks WHERE "
					  "client = ? AND kind = ? AND " TASK_OPEN, "is", client,
					  kind);
	enum serr err = s ? SERR_NOENT : SERR_DB, step = SERR_OK;
	json_t *other;

	while (err == SERR_NOENT && db_step(s, &step, NULL, 0)) {
		other = json_loads(db_column_text(s, 1), 0, NULL);
		if (other && same_member(args, other, "item") && same_member(args, other, "task")) {
			*id = db_column_int(s, 0);
			err = SERR_OK;
		}
		json_decref(other);
	}
	db_finalize(s);
	return step != SERR_OK ? step : err;
}

enum serr store_task_add(struct store *st, int64_t client, const char *kind, const char *args,
			 const char *who, int64_t max, int64_t *id, char *errbuf,
			 size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t open = 0, now = (int64_t)time(NULL);
	json_t *parsed = json_loads(args, 0, NULL);
	char what[300], *text = parsed ? json_dumps(parsed, JSON_COMPACT) : NULL;

	*id = 0;
	if (err != SERR_OK)
		goto out;
	if (!json_is_object(parsed) || !text) {
		util_set_msg(errbuf, errlen, "args: not a JSON object");
		err = parsed && !text ? SERR_NOMEM : SERR_INVAL;
	}
	if (err == SERR_OK)
		err = store_expect_kind(st, client, STORE_KIND_CLIENT, errbuf, errlen);
	/* One open task per kind and target (the item, the task cancelled):
	 * asking again names the one there is. */
	if (err == SERR_OK && open_task(st, client, kind, parsed, id) == SERR_OK) {
		util_set_msg(errbuf, errlen, "client %lld already has %s task %lld unfinished",
			     (long long)client, kind, (long long)*id);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = store_sql_int(st, &open, errbuf, errlen, "SELECT count(*) FROM tasks WHERE "
				    "client = ? AND " TASK_OPEN, "i", client);
	if (err == SERR_OK && open >= max) {
		util_set_msg(errbuf, errlen, "client %lld has %lld unfinished tasks "
			     "(tasks.max_per_client)", (long long)client, (long long)open);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = store_sql_int(st, id, errbuf, errlen, "INSERT INTO tasks (client, kind, "
				    "args, state, who, created, updated) VALUES (?, ?, ?, "
				    "'queued', ?, ?, ?) RETURNING id", "isssii", client, kind, text,
				    who, now, now);
	if (err == SERR_OK)
		err = db_ring(st->db, STORE_BELL_TASKS, errbuf, errlen);
	if (err == SERR_OK) {
		snprintf(what, sizeof(what), "queued by %s", who);
		err = task_event(st, client, *id, kind, what);
	}
	err = store_finish(st, err, errbuf, errlen);
out:
	json_decref(parsed);
	free(text);
	return err;
}

enum serr store_tasks_due(struct store *st, int64_t client, int64_t resend_before,
			  int64_t now, json_t **out)
{
	enum serr err = store_begin(st, NULL, 0);
	struct db_stmt *stmt = NULL;
	json_t *list = json_array(), *t;
	int64_t id;

	*out = NULL;
	if (err != SERR_OK || !list) {
		json_decref(list);
		return store_finish(st, err == SERR_OK ? SERR_NOMEM : err, NULL, 0);
	}
	stmt = store_prepare(st, NULL, 0, "SELECT id, kind, args, state FROM tasks WHERE client = "
			     "? AND (state = 'queued' OR (state = 'delivered' AND sent <= ?)) "
			     "ORDER BY id", "ii", client, resend_before);
	if (!stmt)
		err = SERR_DB;
	while (err == SERR_OK && db_step(stmt, &err, NULL, 0)) {
		id = db_column_int(stmt, 0);
		t = json_loads(db_column_text(stmt, 2), 0, NULL);
		if (!t || json_object_set_new(t, "id", json_integer(id)) != 0 ||
		    json_object_set_new(t, "kind", json_string(db_column_text(stmt, 1))) != 0 ||
		    json_array_append_new(list, t) != 0) {
			err = SERR_NOMEM;
			break;
		}
		if (strcmp(db_column_text(stmt, 3), "queued") == 0)
			err = task_event(st, client, id, db_column_text(stmt, 1),
					 "delivered");
	}
	db_finalize(stmt);
	if (err == SERR_OK && json_array_size(list))
		err = store_sql_exec(st, NULL, 0, "UPDATE tasks SET state = 'delivered', sent = "
				     "?3, updated = CASE state WHEN 'queued' THEN ?3 ELSE updated "
				     "END WHERE client = ?1 AND (state = 'queued' OR (state = "
				     "'delivered' AND sent <= ?2))", "iii", client, resend_before,
				     now);
	err = store_finish(st, err, NULL, 0);
	if (err == SERR_OK)
		*out = list;
	else
		json_decref(list);
	return err;
}

enum serr store_tasks_seen(struct store *st, int64_t client, int64_t seen)
{
	return store_sql_exec(st, NULL, 0, "UPDATE tasks SET sent = 0 WHERE client = ? AND "
			      "state = 'delivered' AND id > ? AND sent > 0", "ii", client, seen);
}

/* Member key of o, a new reference; null when o has none. */
static json_t *member(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return v ? json_incref(v) : json_null();
}

/* Makes a scan task the client's last scan, a running one with its
 * progress, unless the client reported a later one (inside the caller's
 * transaction). */
static enum serr task_last_scan(struct store *st, int64_t client, int64_t id)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT t.started, t.finished, t.state, "
					  "t.progress, coalesce(t.finished, t.updated), "
					  "c.last_scan FROM tasks t JOIN clients c ON c.node = "
					  "t.client WHERE t.id = ? AND t.client = ?", "ii", id,
					  client);
	json_t *progress, *scan = NULL, *last;
	enum serr err = SERR_OK;
	char *text = NULL;
	bool newer = false;

	if (!s)
		return SERR_DB;
	if (db_step(s, &err, NULL, 0)) {
		progress = json_loads(db_column_text(s, 3) ? db_column_text(s, 3) : "{}", 0, NULL);
		last = json_loads(db_column_text(s, 5) ? db_column_text(s, 5) : "{}", 0, NULL);
		newer = json_integer_value(json_object_get(last, "finished")) <=
			db_column_int(s, 4);
		scan = json_pack("{sI ss so so ss so so so}", "task", (json_int_t)id,
				 "source", "scan_now",
				 "started", db_column_json(s, 0, false),
				 "finished", db_column_json(s, 1, false),
				 "state", db_column_text(s, 2),
				 "files", member(progress, "files"),
				 "bytes", member(progress, "bytes"),
				 "detections", member(progress, "detections"));
		text = scan ? json_dumps(scan, JSON_COMPACT) : NULL;
		if (!text)
			err = SERR_NOMEM;
		json_decref(progress);
		json_decref(last);
		json_decref(scan);
	}
	db_finalize(s);
	if (err == SERR_OK && newer)
		err = store_sql_exec(st, NULL, 0, "UPDATE clients SET last_scan = ? WHERE node = ?",
				     "si", text, client);
	free(text);
	return err;
}

enum serr store_task_report(struct store *st, int64_t client,
			    const struct store_task_report *r, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	char *kind = NULL, *state = NULL, what[1200], *progress = NULL;
	int64_t now = (int64_t)time(NULL), files, bytes, hits;
	json_t *p = r->progress ? json_loads(r->progress, 0, NULL) : NULL;
	size_t i;

	if (err != SERR_OK)
		goto out;
	if (r->progress && !(progress = p ? json_dumps(p, JSON_COMPACT) : NULL)) {
		util_set_msg(errbuf, errlen, "progress: not JSON");
		err = p ? SERR_NOMEM : SERR_INVAL;
		goto out;
	}
	if (store_sql_text(st, &kind, errbuf, errlen, "SELECT kind FROM tasks WHERE id = ? AND "
			   "client = ?", "ii", r->id, client) != SERR_OK ||
	    store_sql_text(st, &state, errbuf, errlen, "SELECT state FROM tasks WHERE id = ?", "i",
			   r->id) != SERR_OK) {
		util_set_msg(errbuf, errlen, "id: this agent has no task %lld", (long long)r->id);
		err = SERR_NOENT;
		goto out;
	}
	for (i = 3; store_task_states[i] && strcmp(store_task_states[i], state) != 0; i++)
		;
	if (store_task_states[i]) {
		util_set_msg(errbuf, errlen, "id: task %lld is %s already", (long long)r->id,
			     state);
		err = SERR_EXIST;
		goto out;
	}
	err = store_sql_exec(st, errbuf, errlen, "UPDATE tasks SET state = ?2, progress = "
			     "coalesce(?3, progress), error = coalesce(?4, error), started = "
			     "coalesce(nullif(?5, 0), started), finished = coalesce(nullif(?6, 0), "
			     "finished), updated = ?7 WHERE id = ?1", "isssiii", r->id, r->state,
			     progress, r->error, r->started, r->finished, now);
	/* Each report, progress too: the client's last scan is live. */
	if (err == SERR_OK && strcmp(kind, "scan") == 0)
		err = task_last_scan(st, client, r->id);
	if (err != SERR_OK || strcmp(state, r->state) == 0)
		goto out;
	files = json_integer_value(json_object_get(p, "files"));
	bytes = json_integer_value(json_object_get(p, "bytes"));
	hits = json_integer_value(json_object_get(p, "detections"));
	if (strcmp(r->state, "failed") == 0)
		snprintf(what, sizeof(what), "failed: %s", r->error ? r->error : "no reason given");
	else if (strcmp(kind, "scan") == 0 && strcmp(r->state, "running") != 0)
		snprintf(what, sizeof(what), "%s: %lld files, %lld bytes, %lld detections",
			 r->state, (long long)files, (long long)bytes, (long long)hits);
	else
		snprintf(what, sizeof(what), "%s", r->state);
	err = task_event(st, client, r->id, kind, what);
out:
	json_decref(p);
	free(progress);
	free(kind);
	free(state);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_task_cancel(struct store *st, int64_t id, const char *who, int64_t max,
			    int64_t *client, int64_t *cancel, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	char *kind = NULL, *state = NULL, what[300], args[64];

	*cancel = 0;
	*client = 0;
	if (err != SERR_OK)
		return err;
	if (store_sql_int(st, client, NULL, 0, "SELECT client FROM tasks WHERE id = ?", "i",
			  id) != SERR_OK ||
	    store_sql_text(st, &kind, errbuf, errlen, "SELECT kind FROM tasks WHERE id = ?", "i",
			   id) != SERR_OK ||
	    store_sql_text(st, &state, errbuf, errlen, "SELECT state FROM tasks WHERE id = ?", "i",
			   id) != SERR_OK) {
		util_set_msg(errbuf, errlen, "no task %lld", (long long)id);
		err = SERR_NOENT;
		goto out;
	}
	if (strcmp(state, "queued") == 0) {
		err = store_sql_exec(st, errbuf, errlen, "UPDATE tasks SET state = 'cancelled', "
				     "updated = ? WHERE id = ?", "ii", (int64_t)time(NULL), id);
		snprintf(what, sizeof(what), "cancelled by %s before its agent had it", who);
		if (err == SERR_OK)
			err = task_event(st, *client, id, kind, what);
		goto out;
	}
	if (strcmp(state, "delivered") != 0 && strcmp(state, "running") != 0) {
		util_set_msg(errbuf, errlen, "task %lld is %s already", (long long)id, state);
		err = SERR_EXIST;
		goto out;
	}
	if (strcmp(kind, "cancel") == 0) {
		util_set_msg(errbuf, errlen, "task %lld is a cancellation: it cannot be cancelled",
			     (long long)id);
		err = SERR_INVAL;
		goto out;
	}
	err = store_finish(st, SERR_OK, errbuf, errlen);
	free(kind);
	free(state);
	if (err != SERR_OK)
		return err;
	snprintf(args, sizeof(args), "{\"task\":%lld}", (long long)id);
	return store_task_add(st, *client, "cancel", args, who, max, cancel, errbuf, errlen);
out:
	free(kind);
	free(state);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_tasks_list(struct store *st, const struct store_task_filter *f, json_t **out)
{
	return store_sql_rows(st, (1u << 4) | (1u << 6), out, SUBTREE_CTE
		"SELECT t.id, t.client, c.hostname, t.kind, t.args, t.state, t.progress, t.error, "
		"t.who, t.created, t.updated, nullif(t.sent, 0) AS delivered, t.started, "
		"t.finished FROM tasks t JOIN clients c ON c.node = t.client "
		"WHERE (?1 = 0 OR t.client IN (SELECT id FROM sub)) AND (?2 = 0 OR t.id = ?2) "
		"AND (?3 IS NULL OR t.state = ?3) AND (?4 IS NULL OR t.kind = ?4) AND "
		"t.created >= ?5 AND (?6 = 0 OR t.id < ?6) ORDER BY t.id DESC LIMIT ?7",
		"iissiii", f->node, f->id, f->state, f->kind, f->since, f->before, f->limit);
}

/* What a client's newest status says of an upgrade waiting for a restart. */
struct pending {
	char *version;       /* status.restart_pending.version (NULL: none) */
	int64_t last_seen;
};

static int pending_of(json_t *c, void *arg)
{
	struct pending *p = arg;
	const char *v = json_string_value(json_object_get(json_object_get(json_object_get(
		c, "status"), "restart_pending"), "version"));

	p->version = v ? strdup(v) : NULL;
	p->last_seen = json_integer_value(json_object_get(c, "last_seen"));
	return 1;
}

/* An agent upgrade staged for the next restart (docs/protocol.md, "Agent
 * upgrades") stays running for as long as the restart takes, days maybe:
 * while its agent, seen within older + offline (a long poll holds its last
 * sight for a while), reports that version pending, its task is not
 * expired but counted as heard of now. (An agent gone for good lets it
 * expire: a rollout counts it in its batch.) */
static enum serr keep_staged(struct store *st, int64_t older, int64_t offline, int64_t now)
{
	json_t *rows = NULL, *r, *args;
	enum serr err = store_sql_rows(st, 0, &rows, "SELECT id, client, args FROM tasks WHERE "
				       "kind = 'agent_upgrade' AND state = 'running' AND "
				       "updated < ?", "i", now - older);
	struct pending p;
	const char *want;
	size_t i;

	json_array_foreach(err == SERR_OK ? rows : NULL, i, r) {
		p = (struct pending){ 0 };
		args = json_loads(json_string_value(json_object_get(r, "args")), 0, NULL);
		want = json_string_value(json_object_get(args, "version"));
		err = store_clients_each(st, json_integer_value(json_object_get(r, "client")),
					 pending_of, &p);
		if (err == SERR_OK && p.version && want && strcmp(p.version, want) == 0 &&
		    now - p.last_seen <= older + offline)
			err = store_sql_exec(st, NULL, 0, "UPDATE tasks SET updated = ? WHERE "
					     "id = ?", "ii", now,
					     json_integer_value(json_object_get(r, "id")));
		free(p.version);
		json_decref(args);
		if (err != SERR_OK)
			break;
	}
	json_decref(rows);
	return err;
}

enum serr store_tasks_expire(struct store *st, int64_t older, int64_t offline, int64_t now,
			     int64_t *n)
{
	enum serr err = store_begin(st, NULL, 0);
	struct db_stmt *stmt;
	char what[200];

	*n = 0;
	if (err != SERR_OK)
		return err;
	err = keep_staged(st, older, offline, now);
	snprintf(what, sizeof(what), "failed: expired (no report from its agent for %llds, "
		 "tasks.expire)", (long long)older);
	stmt = err == SERR_OK ? store_prepare(st, NULL, 0, "SELECT id, client, kind FROM tasks "
					      "WHERE " TASK_OPEN " AND updated < ?", "i",
					      now - older) : NULL;
	if (err == SERR_OK && !stmt)
		err = SERR_DB;
	while (err == SERR_OK && db_step(stmt, &err, NULL, 0)) {
		err = task_event(st, db_column_int(stmt, 1), db_column_int(stmt, 0),
				 db_column_text(stmt, 2), what);
		++*n;
	}
	db_finalize(stmt);
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "UPDATE tasks SET state = 'failed', error = ?, "
				     "updated = ? WHERE " TASK_OPEN " AND updated < ?", "sii",
				     what + 8, now, now - older);
	return store_finish(st, err, NULL, 0);
}

enum serr store_tasks_prune(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	return store_sql_count(st, n, NULL, 0, "DELETE FROM tasks WHERE NOT " TASK_OPEN " AND "
			       "updated < ?", "i", now - keep);
}

/* When a scan (its last_scan object) ended, or else started; 0: never. */
static json_int_t scan_time(const json_t *scan)
{
	const json_t *t = json_object_get(scan, "finished");

	if (json_is_null(t) || !t)
		t = json_object_get(scan, "started");
	return json_integer_value(t);
}

/* Whether a scan object's state is "running". */
static bool running(const json_t *scan)
{
	const char *state = json_string_value(json_object_get(scan, "state"));

	return state && strcmp(state, "running") == 0;
}

enum serr store_client_last_scan(struct store *st, int64_t client, const char *scan)
{
	json_t *now = json_loads(scan, 0, NULL), *last = NULL, *task;
	char *old = NULL, *text = now ? json_dumps(now, JSON_COMPACT) : NULL;
	enum serr err = text ? SERR_OK : now ? SERR_NOMEM : SERR_INVAL;

	if (err == SERR_OK)
		err = store_begin(st, NULL, 0);
	if (err != SERR_OK)
		goto out;
	err = store_sql_text(st, &old, NULL, 0, "SELECT coalesce(last_scan, '{}') FROM clients "
			     "WHERE node = ?", "i", client);
	last = old ? json_loads(old, 0, NULL) : NULL;
	task = json_object_get(now, "task");
	/* A status saying that the task's scan runs is not newer than the
	 * task's own progress reports (an agent writes it at the start);
	 * the same scan again is no write. */
	if (err == SERR_OK && scan_time(last) <= scan_time(now) && strcmp(old, text) != 0 &&
	    !(task && !json_is_null(task) && json_equal(task, json_object_get(last, "task")) &&
	      running(now) && running(last)))
		err = store_sql_exec(st, NULL, 0, "UPDATE clients SET last_scan = ? WHERE "
				     "node = ?", "si", text, client);
	err = store_finish(st, err == SERR_NOENT ? SERR_OK : err, NULL, 0);
out:
	json_decref(now);
	json_decref(last);
	free(old);
	free(text);
	return err;
}

enum serr store_quarantine_put(struct store *st, int64_t client, const json_t *items,
			       bool complete, int64_t max, json_t **gone, char *errbuf,
			       size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t now = (int64_t)time(NULL), count = 0;
	struct db_stmt *stmt;
	char *names;
	json_t *r;
	size_t i;

	*gone = json_array();
	if (err != SERR_OK || !*gone)
		return store_finish(st, err == SERR_OK ? SERR_NOMEM : err, errbuf, errlen);
	if (complete)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE quarantine SET seen = 0 WHERE "
				     "client = ?", "i", client);
	json_array_foreach(items, i, r) {
		if (err != SERR_OK)
			break;
		names = json_dumps(json_object_get(r, "names"), JSON_COMPACT);
		if (!names) {
			err = SERR_NOMEM;
			break;
		}
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO quarantine (client, item, "
				     "path, size, sha256, names, time, source, state, reported, "
				     "seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1) ON "
				     "CONFLICT (client, item) DO UPDATE SET path = ?3, size = ?4, "
				     "sha256 = ?5, names = ?6, time = ?7, source = ?8, state = ?9, "
				     "reported = ?10, seen = 1", "issississi", client,
				     json_string_value(json_object_get(r, "id")),
				     json_string_value(json_object_get(r, "path")),
				     (int64_t)json_integer_value(json_object_get(r, "size")),
				     json_string_value(json_object_get(r, "sha256")), names,
				     (int64_t)json_integer_value(json_object_get(r, "time")),
				     json_string_value(json_object_get(r, "source")),
				     json_string_value(json_object_get(r, "state")), now);
		free(names);
	}
	/* What a complete inventory no longer holds is gone from the agent;
	 * the caller removes the central copies of those that had one. */
	if (err == SERR_OK && complete) {
		stmt = store_prepare(st, errbuf, errlen, "SELECT item FROM quarantine WHERE client "
				     "= ? AND seen = 0 AND central > 0", "i", client);
		if (!stmt)
			err = SERR_DB;
		while (err == SERR_OK && db_step(stmt, &err, errbuf, errlen))
			if (json_array_append_new(*gone, json_string(db_column_text(stmt, 0))) != 0)
				err = SERR_NOMEM;
		db_finalize(stmt);
		if (err == SERR_OK)
			err = store_sql_exec(st, errbuf, errlen, "DELETE FROM quarantine WHERE "
					     "client = ? AND seen = 0", "i", client);
	}
	if (err == SERR_OK)
		err = store_sql_int(st, &count, errbuf, errlen, "SELECT count(*) FROM quarantine "
				    "WHERE client = ?", "i", client);
	if (err == SERR_OK && count > max) {
		util_set_msg(errbuf, errlen, "items: the server keeps at most %lld quarantine "
			     "records of one agent (quarantine.max_items); this report makes %lld",
			     (long long)max, (long long)count);
		err = SERR_INVAL;
	}
	err = store_finish(st, err, errbuf, errlen);
	if (err != SERR_OK) {
		json_decref(*gone);
		*gone = NULL;
	}
	return err;
}

enum serr store_quarantine_list(struct store *st, int64_t node, const char *item,
				const char *state, int64_t limit, json_t **out)
{
	return store_sql_rows(st, 1u << 6, out, SUBTREE_CTE
		"SELECT q.client, c.hostname, q.item AS id, q.path, q.size, q.sha256, q.names, "
		"q.time, q.source, q.state, q.reported, q.central FROM quarantine q JOIN clients c "
		"ON c.node = q.client WHERE (?1 = 0 OR q.client IN (SELECT id FROM sub)) AND "
		"(?2 IS NULL OR q.item = ?2) AND (?3 IS NULL OR q.state = ?3) "
		"ORDER BY q.time DESC, q.client, q.item LIMIT ?4", "issi", node, item, state,
		limit);
}

enum serr store_quarantine_central(struct store *st, int64_t client, const char *item,
				   int64_t size)
{
	return store_sql_exec(st, NULL, 0, "UPDATE quarantine SET central = ? WHERE client = ? AND "
			      "item = ?", "iis", size, client, item);
}

enum serr store_quarantine_central_total(struct store *st, int64_t *total)
{
	return store_sql_int(st, total, NULL, 0, "SELECT coalesce(sum(central), 0) FROM quarantine",
			     "");
}

enum serr store_quarantine_centrals(struct store *st, json_t **out)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT client, item FROM quarantine "
					  "WHERE central > 0", "");
	enum serr err = s ? SERR_OK : SERR_DB;
	char key[96];

	*out = json_object();
	if (!*out)
		err = SERR_NOMEM;
	while (err == SERR_OK && db_step(s, &err, NULL, 0)) {
		snprintf(key, sizeof(key), "%lld/%s", (long long)db_column_int(s, 0),
			 db_column_text(s, 1));
		if (json_object_set_new(*out, key, json_true()) != 0)
			err = SERR_NOMEM;
	}
	db_finalize(s);
	if (err != SERR_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return err;
}

