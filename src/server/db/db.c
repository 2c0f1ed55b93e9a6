/* db.c -- the database layer's calls over a backend, and the helpers the
 * store runs its queries with (see db.h). */
#include "server/db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

const struct db_backend *db_backend_of(const char *target)
{
	if (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0)
		return &db_postgres;
	return &db_sqlite;
}

/* The cache slot of sql (FNV-1a: statement texts are short, and a
 * collision costs a parse). */
static size_t cache_slot(const char *sql)
{
	uint32_t h = 2166136261u;

	for (; *sql; sql++)
		h = (h ^ (unsigned char)*sql) * 16777619u;
	return h % DB_CACHE_SLOTS;
}

struct db *db_open(const struct db_backend *be, const char *target, enum db_open_mode mode,
		   char *errbuf, size_t errlen)
{
	return be->open(target, mode, errbuf, errlen);
}

void db_close(struct db *db)
{
	size_t i;

	if (!db)
		return;
	for (i = 0; i < DB_CACHE_SLOTS; i++)
		if (db->cache[i]) {
			free(db->cache[i]->sql);
			db->be->destroy(db->cache[i]);
		}
	db->be->close(db);
}

/* Hands out sql's cached statement when it is free, else a new one,
 * cached in sql's slot unless that holds one in use (the same statement
 * run while it is still being stepped, or a collision): that one is
 * destroyed at its end. */
static struct db_stmt *stmt_for(struct db *db, const char *sql, char *errbuf, size_t errlen)
{
	size_t slot = cache_slot(sql);
	struct db_stmt *s = db->cache[slot];
	char *key;
	bool keep;

	if (s && !s->busy && strcmp(s->sql, sql) == 0) {
		s->busy = true;
		return s;
	}
	keep = !s || !s->busy;
	key = keep ? strdup(sql) : NULL;
	s = keep && !key ? NULL : db->be->prepare(db, sql, keep, errbuf, errlen);
	if (!s) {
		if (keep && !key)
			util_set_msg(errbuf, errlen, "out of memory");
		free(key);
		return NULL;
	}
	if (keep) {
		if (db->cache[slot]) {
			free(db->cache[slot]->sql);
			db->be->destroy(db->cache[slot]);
		}
		db->cache[slot] = s;
		s->sql = key;
		s->busy = true;
	}
	return s;
}

enum serr db_exec(struct db *db, const char *sql, char *errbuf, size_t errlen)
{
	return db->be->exec(db, sql, errbuf, errlen);
}

struct db_stmt *db_vprepare(struct db *db, char *errbuf, size_t errlen, const char *sql,
			    const char *fmt, va_list ap)
{
	struct db_stmt *s = stmt_for(db, sql, errbuf, errlen);
	enum serr err = SERR_OK;
	const void *blob;
	int i;

	for (i = 0; s && fmt[i] && err == SERR_OK; i++) {
		if (fmt[i] == 'i') {
			err = db->be->bind_int(s, i + 1, va_arg(ap, int64_t));
		} else if (fmt[i] == 'h') {
			err = db->be->bind_blob(s, i + 1, va_arg(ap, const unsigned char *), 32);
		} else if (fmt[i] == 'b') {
			blob = va_arg(ap, const void *);
			err = db->be->bind_blob(s, i + 1, blob, va_arg(ap, size_t));
		} else {
			err = db->be->bind_text(s, i + 1, va_arg(ap, const char *));
		}
	}
	if (s && err != SERR_OK) {
		util_set_msg(errbuf, errlen, "database: binding parameter %d failed", i);
		db_finalize(s);
		return NULL;
	}
	return s;
}

struct db_stmt *db_prepare(struct db *db, char *errbuf, size_t errlen, const char *sql,
			   const char *fmt, ...)
{
	struct db_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = db_vprepare(db, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return s;
}

bool db_step(struct db_stmt *s, enum serr *err, char *errbuf, size_t errlen)
{
	bool row = false;

	*err = s->be->step(s, &row, errbuf, errlen);
	return *err == SERR_OK && row;
}

enum db_type db_column_type(struct db_stmt *s, int i)
{
	return s->be->column_type(s, i);
}

int64_t db_column_int(struct db_stmt *s, int i)
{
	return s->be->column_int(s, i);
}

const char *db_column_text(struct db_stmt *s, int i)
{
	return s->be->column_text(s, i);
}

const void *db_column_blob(struct db_stmt *s, int i, size_t *n)
{
	return s->be->column_blob(s, i, n);
}

json_t *db_column_json(struct db_stmt *s, int i, bool as_json)
{
	const char *text;

	switch (s->be->column_type(s, i)) {
	case DB_INT:
		return json_integer((json_int_t)s->be->column_int(s, i));
	case DB_REAL:
		return json_real(s->be->column_real(s, i));
	case DB_TEXT:
		text = s->be->column_text(s, i);
		if (!text)
			return NULL;
		return as_json ? json_loads(text, JSON_DECODE_ANY, NULL) : json_string(text);
	default:
		return json_null();
	}
}

int64_t db_changes(struct db_stmt *s)
{
	return s->be->changes(s);
}

void db_finalize(struct db_stmt *s)
{
	if (!s)
		return;
	s->be->reset(s);
	if (s->sql)
		s->busy = false;
	else
		s->be->destroy(s);
}

enum serr db_run(struct db_stmt *s, int64_t *changes, char *errbuf, size_t errlen)
{
	enum serr err;

	if (!s)
		return SERR_DB;
	db_step(s, &err, errbuf, errlen);
	if (changes)
		*changes = err == SERR_OK ? s->be->changes(s) : 0;
	db_finalize(s);
	return err;
}

enum serr db_query_int(struct db_stmt *s, int64_t *out, char *errbuf, size_t errlen)
{
	enum serr err;

	if (!s)
		return SERR_DB;
	if (db_step(s, &err, errbuf, errlen))
		*out = s->be->column_int(s, 0);
	else if (err == SERR_OK)
		err = SERR_NOENT;
	db_finalize(s);
	return err;
}

enum serr db_query_text(struct db_stmt *s, char **out, char *errbuf, size_t errlen)
{
	const char *text;
	enum serr err;

	if (!s)
		return SERR_DB;
	if (db_step(s, &err, errbuf, errlen) && (text = s->be->column_text(s, 0))) {
		*out = strdup(text);
		err = *out ? SERR_OK : SERR_NOMEM;
	} else if (err == SERR_OK) {
		err = SERR_NOENT;
	}
	db_finalize(s);
	return err;
}

enum serr db_query_rows(struct db_stmt *s, unsigned json_cols, json_t **out)
{
	json_t *list = json_array(), *row, *v;
	enum serr err = SERR_OK, step = SERR_OK;
	int i, n;

	if (!s || !list) {
		db_finalize(s);
		json_decref(list);
		return s ? SERR_NOMEM : SERR_DB;
	}
	/* Columns counted at the first row: a backend may know them only once
	 * the statement ran. */
	while (err == SERR_OK && db_step(s, &step, NULL, 0)) {
		n = s->be->column_count(s);
		row = json_object();
		if (!row || json_array_append_new(list, row) != 0) {
			err = SERR_NOMEM;
			break;
		}
		for (i = 0; i < n && err == SERR_OK; i++) {
			v = db_column_json(s, i, (json_cols >> i) & 1u);
			if (!v || json_object_set_new(row, s->be->column_name(s, i), v) != 0)
				err = SERR_NOMEM;
		}
	}
	db_finalize(s);
	if (err == SERR_OK)
		err = step;
	if (err != SERR_OK) {
		json_decref(list);
		return err;
	}
	*out = list;
	return SERR_OK;
}

enum serr db_begin(struct db *db, char *errbuf, size_t errlen)
{
	return db->be->begin(db, errbuf, errlen);
}

enum serr db_finish(struct db *db, enum serr err, char *errbuf, size_t errlen)
{
	/* Succeeded outside a transaction, the steps before would each have
	 * been committed on their own: half an operation stored. (A failed
	 * step may have ended it: SQLite rolls back on a full disk.) */
	if (err == SERR_OK && !db->be->in_transaction(db)) {
		util_set_msg(errbuf, errlen, "database: the transaction ended before its commit");
		return SERR_DB;
	}
	if (err == SERR_OK)
		err = db->be->commit(db, errbuf, errlen);
	/* A commit that failed (a full disk) may leave it open: never joined
	 * by what follows. */
	if (err != SERR_OK && db->be->in_transaction(db))
		db->be->rollback(db);
	return err;
}

enum serr db_ring(struct db *db, const char *channel, char *errbuf, size_t errlen)
{
	return db->be->ring(db, channel, errbuf, errlen);
}

enum serr db_lock(struct db *db, int64_t key, char *errbuf, size_t errlen)
{
	return db->be->lock(db, key, errbuf, errlen);
}

enum serr db_hold(struct db *db, int64_t key, bool on, bool *taken, char *errbuf,
		  size_t errlen)
{
	return db->be->hold(db, key, on, taken, errbuf, errlen);
}

enum serr db_relax(struct db *db, char *errbuf, size_t errlen)
{
	return db->be->relax ? db->be->relax(db, errbuf, errlen) : SERR_OK;
}

bool db_shared(const struct db *db)
{
	return db->be->shared;
}

const char *db_json_rows(const struct db *db)
{
	return db->be->json_rows;
}

const char *db_soft_commit(const struct db *db)
{
	return db->be->soft_commit;
}

void db_set_reachable(struct db *db, bool reachable)
{
	if (db->be->set_reachable)
		db->be->set_reachable(db, reachable);
}

enum serr db_snapshot(struct db *db, const char *out, char *errbuf, size_t errlen)
{
	return db->be->snapshot(db, out, errbuf, errlen);
}

enum serr db_check(struct db *db, bool thorough, char *errbuf, size_t errlen)
{
	return db->be->check(db, thorough, errbuf, errlen);
}

enum serr db_servers(struct db *db, json_t **list, char *errbuf, size_t errlen)
{
	*list = NULL;
	return db->be->servers ? db->be->servers(db, list, errbuf, errlen) : SERR_OK;
}

enum serr db_version(struct db *db, int64_t *v, char *errbuf, size_t errlen)
{
	return db->be->version(db, v, errbuf, errlen);
}

int64_t db_current_version(const struct db *db)
{
	return db->be->migrations[db->be->n_migrations - 1].version;
}

enum serr db_migrate(struct db *db,
		     void (*progress)(const struct db_migration *m, int64_t from, int64_t to,
				      void *arg),
		     void *arg, char *errbuf, size_t errlen)
{
	int64_t version = 0, target = db_current_version(db), from;
	const struct db_migration *m;
	size_t i;
	enum serr err = db_version(db, &version, errbuf, errlen);
	char why[512];

	if (err == SERR_OK && version < 0) {
		util_set_msg(errbuf, errlen, "database: schema version %lld is none Ward writes",
			     (long long)version);
		return SERR_INVAL;
	}
	if (err == SERR_OK && version > target) {
		util_set_msg(errbuf, errlen, "database: schema version %lld is newer than this "
			     "wardd understands (%lld): run the wardd that wrote it, or restore a "
			     "backup made for this one", (long long)version, (long long)target);
		return SERR_INVAL;
	}
	/* The step from version: after the one that ends there. */
	for (i = 0, from = 0; err == SERR_OK && i < db->be->n_migrations && from < version; i++)
		from = db->be->migrations[i].version;
	if (err == SERR_OK && from != version) {
		util_set_msg(errbuf, errlen, "database: schema version %lld is none this "
			     "backend (%s) had: restore a backup made for it", (long long)version,
			     db->be->name);
		return SERR_INVAL;
	}
	for (; err == SERR_OK && i < db->be->n_migrations; i++) {
		m = &db->be->migrations[i];
		util_assert(m->version > version);
		if (progress)
			progress(m, version, target, arg);
		why[0] = '\0';
		err = db_begin(db, why, sizeof(why));
		if (err == SERR_OK) {
			err = db_exec(db, m->sql, why, sizeof(why));
			if (err == SERR_OK)
				err = db->be->set_version(db, m->version, why, sizeof(why));
			err = db_finish(db, err, why, sizeof(why));
		}
		if (err != SERR_OK)
			util_set_msg(errbuf, errlen, "database: schema step %lld (%s) failed, the "
				     "database stays at version %lld: %s", (long long)m->version,
				     m->what, (long long)version, why);
		else
			version = m->version;
	}
	return err;
}
