/* store.c -- the store's handle: opening a database and bringing it up to
 * date, the server's own clock and key-value pairs, and the query helpers
 * the other parts of the store use (see store.h, store_int.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

struct db_stmt *store_prepare(struct store *st, char *errbuf, size_t errlen, const char *sql,
			      const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(st->db, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return s;
}

enum serr store_sql_count(struct store *st, int64_t *changes, char *errbuf, size_t errlen,
			  const char *sql, const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(st->db, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return db_run(s, changes, errbuf, errlen);
}

enum serr store_sql_int(struct store *st, int64_t *out, char *errbuf, size_t errlen,
			const char *sql, const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(st->db, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return db_query_int(s, out, errbuf, errlen);
}

enum serr store_sql_text(struct store *st, char **out, char *errbuf, size_t errlen,
			 const char *sql, const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(st->db, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return db_query_text(s, out, errbuf, errlen);
}

enum serr store_sql_rows(struct store *st, unsigned json_cols, json_t **out, const char *sql,
			 const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(st->db, NULL, 0, sql, fmt, ap);
	va_end(ap);
	return db_query_rows(s, json_cols, out);
}

enum serr store_begin(struct store *st, char *errbuf, size_t errlen)
{
	return db_begin(st->db, errbuf, errlen);
}

enum serr store_finish(struct store *st, enum serr err, char *errbuf, size_t errlen)
{
	return db_finish(st->db, err, errbuf, errlen);
}

enum serr store_lock(struct store *st, enum store_lock lock, char *errbuf, size_t errlen)
{
	return db_lock(st->db, (int64_t)lock, errbuf, errlen);
}

enum serr store_node_kind(struct store *st, int64_t id, enum store_kind *kind,
			  char *errbuf, size_t errlen)
{
	int64_t k = 0;
	enum serr err = store_sql_int(st, &k, errbuf, errlen,
				      "SELECT kind FROM nodes WHERE id = ?", "i", id);

	if (err == SERR_NOENT)
		util_set_msg(errbuf, errlen, "no node with id %lld", (long long)id);
	*kind = (enum store_kind)k;
	return err;
}

enum serr store_expect_container(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = store_node_kind(st, id, &kind, errbuf, errlen);

	if (err == SERR_OK && kind == STORE_KIND_CLIENT) {
		util_set_msg(errbuf, errlen, "node %lld is a client, not a domain", (long long)id);
		return SERR_INVAL;
	}
	return err;
}

enum serr store_expect_kind(struct store *st, int64_t id, enum store_kind want,
			    char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = store_node_kind(st, id, &kind, errbuf, errlen);

	if (err == SERR_OK && kind != want) {
		util_set_msg(errbuf, errlen, "node %lld is not a %s", (long long)id,
			want == STORE_KIND_DOMAIN ? "domain" : "client");
		return SERR_INVAL;
	}
	return err;
}

/* Puts at the root every setting it lacks, at its default (the root
 * holds every setting: those added since the database was made).
 * *added gets the number of settings put at the root. */
static enum serr settle_settings(struct store *st, int64_t *added, char *errbuf,
				 size_t errlen)
{
	const struct settings_def *defs;
	enum serr err = store_begin(st, errbuf, errlen);
	int64_t one = 0;
	size_t i, n;

	defs = settings_table(&n);
	for (i = 0; err == SERR_OK && i < n; i++) {
		err = store_sql_count(st, &one, errbuf, errlen, "INSERT INTO settings (node, key, "
				      "value) VALUES (1, ?, ?) ON CONFLICT (node, key) DO NOTHING",
				      "ss", defs[i].key, defs[i].default_json);
		*added += one;
	}
	return store_finish(st, err, errbuf, errlen);
}

/* Sends every client its settings with those a new version of Ward
 * added. A client whose settings cannot be computed (a value damaged by
 * a hand) keeps those it has: logged, never a reason not to start. */
static void settle_clients(struct store *st, const char *path)
{
	char msg[512];
	size_t n = 0;
	enum serr err = store_begin(st, msg, sizeof(msg));

	if (err == SERR_OK)
		err = store_refresh(st, STORE_ROOT, &n, msg, sizeof(msg));
	err = store_finish(st, err, msg, sizeof(msg));
	if (err != SERR_OK)
		log_msg(LOG_LVL_WARN, "database %s: clients keep the settings they have until "
			"their next change: %s", path, msg);
	else if (n)
		log_msg(LOG_LVL_INFO, "database %s: %zu clients get the settings this version "
			"adds", path, n);
}

/* A migration under way, for its progress. */
struct progress {
	const char *path;
	uint64_t started_ns;
	int64_t first;            /* the version it started from */
};

/* Logs each schema step as it starts, with how long those before took
 * and, from their pace, about how long the rest will: a long one is seen
 * to run. */
static void migrating(const struct db_migration *m, int64_t from, int64_t to, void *arg)
{
	struct progress *p = arg;
	double spent = (double)(util_now_ns() - p->started_ns) / 1e9;
	int64_t done = from - p->first;

	if (p->first < 0) {
		p->first = from;
		p->started_ns = util_now_ns();
		log_msg(LOG_LVL_INFO, "database %s: schema version %lld to %lld of %lld: %s",
			p->path, (long long)from, (long long)m->version, (long long)to, m->what);
		return;
	}
	log_msg(LOG_LVL_INFO, "database %s: schema version %lld to %lld of %lld: %s (%.1f s "
		"so far, about %.1f s left)", p->path, (long long)from, (long long)m->version,
		(long long)to, m->what, spent, spent / (double)done * (double)(to - from));
}

struct store *store_open(const char *path, char *errbuf, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	/* A PostgreSQL URI may hold a password: never logged. */
	struct progress p = { .path = db_backend_of(path) == &db_sqlite ? path :
			      "(server.database)", .first = -1 };
	int64_t added = 0;

	if (!st) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	st->db = db_open(db_backend_of(path), path, DB_OPEN_SERVE, errbuf, errlen);
	if (!st->db ||
	    db_migrate(st->db, migrating, &p, errbuf, errlen) != SERR_OK ||
	    settle_settings(st, &added, errbuf, errlen) != SERR_OK ||
	    store_sql_int(st, &st->observed, errbuf, errlen, "SELECT value FROM meta WHERE "
			  "key = 'observed'", "") != SERR_OK)
		goto fail;
	st->opened_ns = util_now_ns();
	if (added)
		settle_clients(st, path);
	return st;
fail:
	store_close(st);
	return NULL;
}

int64_t store_observed(const struct store *st)
{
	return st->observed + (int64_t)((util_now_ns() - st->opened_ns) / 1000000000u);
}

int64_t store_work(const struct store *st)
{
	return st->db->work;
}

enum serr store_observed_save(struct store *st)
{
	return store_sql_exec(st, NULL, 0, "UPDATE meta SET value = ?1 WHERE key = 'observed' "
			      "AND value < ?1", "i", store_observed(st));
}

void store_close(struct store *st)
{
	char msg[256];

	if (!st)
		return;
	if (st->db && st->seen && store_seen_flush(st, msg, sizeof(msg)) != SERR_OK)
		log_msg(LOG_LVL_WARN, "agents' last reports not written at close: %s", msg);
	store_seen_free(st);
	if (st->db && st->opened_ns)
		store_observed_save(st);
	db_close(st->db);
	free(st);
}

void store_set_frontend(struct store *st, int64_t frontend)
{
	st->frontend = frontend;
}

/* The bell's channels, in STORE_RUNG_* order. */
static const char *const bell_channels[] = { STORE_BELL_DELIVERIES, STORE_BELL_TASKS, NULL };

struct store_bell {
	struct db_bell *bell;
};

struct store_bell *store_bell_open(const char *target, int64_t frontend, char *errbuf,
				   size_t errlen)
{
	struct store_bell *b;

	if (errlen)
		errbuf[0] = '\0';
	if (db_backend_of(target) != &db_postgres)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	b->bell = db_postgres_bell_open(target, frontend, bell_channels, errbuf, errlen);
	if (!b->bell) {
		free(b);
		return NULL;
	}
	return b;
}

int store_bell_fd(const struct store_bell *b)
{
	return db_postgres_bell_fd(b->bell);
}

int store_bell_read(struct store_bell *b)
{
	return db_postgres_bell_read(b->bell);
}

uint64_t store_bell_ask(struct store_bell *b)
{
	return db_postgres_bell_ask(b->bell);
}

uint64_t store_bell_waited(const struct store_bell *b)
{
	return db_postgres_bell_waited(b->bell);
}

void store_set_bell(struct store *st, struct store_bell *bell)
{
	db_postgres_set_bell(st->db, bell ? bell->bell : NULL);
}

void store_set_reachable(struct store *st, bool reachable)
{
	db_set_reachable(st->db, reachable);
}

void store_bell_close(struct store_bell *b)
{
	if (!b)
		return;
	db_postgres_bell_close(b->bell);
	free(b);
}

enum serr store_ring_deliveries(struct store *st)
{
	return db_ring(st->db, STORE_BELL_DELIVERIES, NULL, 0);
}

int64_t store_schema_version(void)
{
	return db_sqlite.migrations[db_sqlite.n_migrations - 1].version;
}

/* Describes the database of st (opened as it is), as store_inspect()
 * says. */
static enum serr describe(struct store *st, json_t **info, char *errbuf, size_t errlen)
{
	int64_t version = 0, clients = 0, events = 0, deliveries = 0;
	json_t *packages = NULL, *agents = json_array(), *status, *deploying = NULL;
	json_t *servers = NULL;
	char *paused = NULL, *importing = NULL;
	struct db_stmt *s = NULL;
	enum serr err = db_version(st->db, &version, errbuf, errlen);

	if (err == SERR_OK && version >= 1)
		err = store_sql_int(st, &clients, errbuf, errlen, "SELECT count(*) FROM clients",
				    "");
	if (err == SERR_OK && version >= 4)
		err = store_sql_int(st, &events, errbuf, errlen, "SELECT count(*) FROM events",
				    "");
	if (err == SERR_OK && version >= 2)
		err = store_sql_rows(st, 0, &packages, "SELECT file, component, version FROM "
				     "packages ORDER BY file", "");
	else if (err == SERR_OK)
		packages = json_array();
	if (err == SERR_OK && version >= 1)
		err = store_sql_int(st, &deliveries, errbuf, errlen, "SELECT count(*) FROM "
				    "deliveries", "");
	if (err == SERR_OK && version >= 1) {
		store_kv_get(st, "notify.paused", &paused);
		store_kv_get(st, "updates.importing", &importing);
		s = store_prepare(st, errbuf, errlen, "SELECT node, hostname, status FROM clients "
				  "WHERE state != 'moved' ORDER BY node", "");
		err = s ? SERR_OK : SERR_DB;
	}
	while (err == SERR_OK && s && db_step(s, &err, errbuf, errlen)) {
		status = db_column_text(s, 2) ? json_loads(db_column_text(s, 2), 0, NULL) : NULL;
		if (json_array_append_new(agents, json_pack("{sI ss sO*}", "id",
				(json_int_t)db_column_int(s, 0), "hostname", db_column_text(s, 1),
				"version", json_object_get(status, "agent_version"))) != 0)
			err = SERR_NOMEM;
		json_decref(status);
	}
	db_finalize(s);
	if (err == SERR_OK && version >= 11)
		err = store_deploy_list(st, true, (int64_t)time(NULL), 1000, &deploying);
	else if (err == SERR_OK)
		deploying = json_array();
	if (err == SERR_OK)
		err = db_servers(st->db, &servers, errbuf, errlen);
	if (err == SERR_OK)
		*info = json_pack("{sI sI sI so sI sb ss* so so so*}", "schema",
				  (json_int_t)version, "clients", (json_int_t)clients, "events",
				  (json_int_t)events, "packages", packages, "deliveries",
				  (json_int_t)deliveries, "paused",
				  paused && strcmp(paused, "1") == 0,
				  "importing", importing, "agents", agents, "deploying", deploying,
				  "servers", servers);
	else
		json_decref(packages);
	if (err != SERR_OK) {
		json_decref(agents);
		json_decref(deploying);
		json_decref(servers);
	}
	free(paused);
	free(importing);
	if (err != SERR_OK)
		return err;
	return *info ? SERR_OK : SERR_NOMEM;
}

enum serr store_schema_of(const char *path, int64_t *version, char *errbuf, size_t errlen)
{
	struct db *db = db_open(db_backend_of(path), path, DB_OPEN_READ, errbuf, errlen);
	enum serr err = db ? db_version(db, version, errbuf, errlen) : SERR_DB;

	db_close(db);
	return err;
}

enum serr store_inspect(const char *path, bool thorough, json_t **info, char *errbuf,
			size_t errlen)
{
	struct store st = { .db = db_open(db_backend_of(path), path, DB_OPEN_READ, errbuf,
					  errlen) };
	enum serr err = st.db ? SERR_OK : SERR_DB;
	char why[256];

	if (err == SERR_OK && db_check(st.db, thorough, why, sizeof(why)) != SERR_OK) {
		util_set_msg(errbuf, errlen, "database %s is damaged (%s)", path, why);
		err = SERR_FORMAT;
	}
	if (err == SERR_OK)
		err = describe(&st, info, errbuf, errlen);
	db_close(st.db);
	return err;
}

/* A copy that is no database (PostgreSQL's dump) is described from the
 * connection that made it, still reading as of the copy's moment. */
enum serr store_snapshot(const char *path, const char *out, json_t **info, char *errbuf,
			 size_t errlen)
{
	struct store st = { .db = db_open(db_backend_of(path), path, DB_OPEN_READ, errbuf,
					  errlen) };
	uint64_t t0 = util_now_ns();
	enum serr err = st.db ? db_snapshot(st.db, out, errbuf, errlen) : SERR_DB;
	double secs = (double)(util_now_ns() - t0) / 1e9;
	bool copy_is_db = db_backend_of(path)->copy_is_db;

	if (err == SERR_OK && !copy_is_db)
		err = describe(&st, info, errbuf, errlen);
	db_close(st.db);
	if (err == SERR_OK && copy_is_db)
		err = store_inspect(out, false, info, errbuf, errlen);
	if (err == SERR_OK && json_object_set_new(*info, "snapshot_seconds", json_real(secs)))
		err = SERR_NOMEM;
	return err;
}

const char *store_copy_part(const char *target)
{
	return db_backend_of(target)->copy_is_db ? "data/ward.db" : "database/ward.pgdump";
}

enum serr store_copy_schema(const char *part, const char *path, int64_t *version,
			    char *errbuf, size_t errlen)
{
	json_t *info = NULL;
	enum serr err;

	if (strcmp(part, "database/ward.pgdump") == 0)
		return db_postgres.copy_version(path, version, errbuf, errlen);
	err = store_inspect(path, true, &info, errbuf, errlen);
	if (err == SERR_OK)
		*version = json_integer_value(json_object_get(info, "schema"));
	json_decref(info);
	return err;
}

enum serr store_restore(const char *target, const char *copy, bool force, char *errbuf,
			size_t errlen)
{
	struct db *db = db_open(db_backend_of(target), target, DB_OPEN_SERVE, errbuf, errlen);
	enum serr err = db ? SERR_OK : SERR_DB;
	int64_t version = 0;
	json_t *servers = NULL;
	char *numbers = NULL;

	if (err == SERR_OK && !db->be->restore) {
		util_set_msg(errbuf, errlen, "a %s database is restored as a file of the data "
			     "directory", db->be->name);
		err = SERR_INVAL;
	}
	if (err == SERR_OK)
		err = db_version(db, &version, errbuf, errlen);
	if (err == SERR_OK && version > 0 && !force) {
		util_set_msg(errbuf, errlen, "the database (server.database) holds a server's "
			     "data, of schema %lld: restore over it with --force",
			     (long long)version);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = db_servers(db, &servers, errbuf, errlen);
	if (err == SERR_OK && json_array_size(servers)) {
		util_set_msg(errbuf, errlen, "%zu wardd serve from the database (server.database) "
			     "now, server number%s %s: stop every one of them first",
			     json_array_size(servers), json_array_size(servers) == 1 ? "" : "s",
			     (numbers = json_dumps(servers, JSON_COMPACT)) ? numbers : "?");
		err = SERR_BUSY;
	}
	if (err == SERR_OK)
		err = db->be->restore(db, copy, errbuf, errlen);
	db_close(db);
	json_decref(servers);
	free(numbers);
	return err;
}

enum serr store_kv_get(struct store *st, const char *key, char **value)
{
	return store_sql_text(st, value, NULL, 0, "SELECT value FROM server_kv WHERE key = ?",
			      "s", key);
}

enum serr store_kv_delete(struct store *st, const char *key)
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM server_kv WHERE key = ?", "s", key);
}

enum serr store_kv_put(struct store *st, const char *key, const char *value,
		       char *errbuf, size_t errlen)
{
	return store_sql_exec(st, errbuf, errlen, "INSERT INTO server_kv (key, value) VALUES "
			      "(?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", "ss", key,
			      value);
}

enum serr store_kv_claim(struct store *st, const char *key, const char *value,
			 const char *also, const char *also_value, bool *claimed, char *errbuf,
			 size_t errlen)
{
	int64_t changes = 0;
	enum serr err = store_begin(st, errbuf, errlen);

	if (err == SERR_OK)
		err = store_sql_count(st, &changes, errbuf, errlen, "INSERT INTO server_kv "
				      "(key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
				      "ss", key, value);
	if (err == SERR_OK && changes == 1 && also)
		err = store_kv_put(st, also, also_value, errbuf, errlen);
	err = store_finish(st, err, errbuf, errlen);
	*claimed = err == SERR_OK && changes == 1;
	return err;
}

enum serr store_kv_list(struct store *st, const char *prefix, json_t **out)
{
	size_t n = strlen(prefix);

	*out = NULL;
	if (n == 0 || n > 64 || strspn(prefix, "abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-_") != n)
		return SERR_INVAL;
	/* substr(), not a range or LIKE: byte-exact under any collation. */
	return store_sql_rows(st, 0, out, "SELECT key, value FROM server_kv WHERE "
			      "substr(key, 1, length(?1)) = ?1 ORDER BY key", "s", prefix);
}
