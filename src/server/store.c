/* store.c -- wardd's state in SQLite (see store.h). */
#include "server/store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

struct store {
	sqlite3 *db;
	int64_t observed;     /* seconds this server had run before this open */
	uint64_t opened_ns;   /* the monotonic clock then */
};

/* Schema version 1. Foreign keys cascade from a node to its settings, its
 * client row and that client's delivery. A client's effective settings are
 * kept as canonical JSON (sorted keys), so a recomputation that yields the
 * same text is no change and an agent is sent exactly what is stored. */
static const char schema_v1[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('settings_rev', 0);"
	"CREATE TABLE nodes ("
	" id INTEGER PRIMARY KEY,"
	" parent INTEGER REFERENCES nodes(id),"
	" kind INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),"
	" name TEXT NOT NULL,"
	" CHECK ((kind = 0) = (parent IS NULL)));"
	"CREATE INDEX nodes_parent ON nodes(parent);"
	"CREATE UNIQUE INDEX nodes_domain_name ON nodes(parent, name) WHERE kind = 1;"
	"INSERT INTO nodes (id, parent, kind, name) VALUES (1, NULL, 0, '');"
	"CREATE TABLE clients ("
	" node INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,"
	" uuid TEXT NOT NULL UNIQUE,"
	" hostname TEXT NOT NULL,"
	" secret BLOB NOT NULL,"
	" status TEXT,"
	" last_seen INTEGER NOT NULL DEFAULT 0,"
	" eff_json TEXT,"
	" eff_version INTEGER NOT NULL DEFAULT 0,"
	" acked_version INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'online',"
	" move TEXT);"
	"CREATE TABLE settings ("
	" node INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (node, key)) WITHOUT ROWID;"
	"CREATE TABLE admins (name TEXT PRIMARY KEY, pwhash TEXT NOT NULL);"
	"CREATE TABLE server_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE tokens ("
	" hash BLOB PRIMARY KEY,"
	" kind INTEGER NOT NULL,"
	" subject TEXT NOT NULL,"
	" expires INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE deliveries ("
	" client INTEGER PRIMARY KEY REFERENCES clients(node) ON DELETE CASCADE,"
	" version INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL);"
	"CREATE INDEX deliveries_order ON deliveries(created, client);";

/* Schema version 2: component packages, and a client's pending "update
 * now" (the settings version that carries it; 0: none). */
static const char schema_v2[] =
	"ALTER TABLE clients ADD COLUMN update_req INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE packages ("
	" file TEXT PRIMARY KEY,"
	" component TEXT NOT NULL,"
	" version INTEGER NOT NULL,"
	" base INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" envelope TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" UNIQUE (component, version, base));";

/* Schema version 3: the smart protection servers enrolled with wardd. */
static const char schema_v3[] =
	"CREATE TABLE sps_servers ("
	" id INTEGER PRIMARY KEY,"
	" uuid TEXT UNIQUE NOT NULL,"
	" secret BLOB NOT NULL,"
	" hostname TEXT NOT NULL,"
	" names TEXT NOT NULL,"
	" enrolled INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL DEFAULT 0,"
	" status TEXT);";

/* Schema version 4: the event log (system events, connection
 * verification, notification deliveries, detections; a client's host
 * name and domain are copied into its events, which outlive it), and
 * the absolute end of a token whose expiry slides with use (0: none). */
static const char schema_v4[] =
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" time INTEGER NOT NULL,"
	" kind TEXT NOT NULL,"
	" client INTEGER,"
	" hostname TEXT,"
	" domain TEXT,"
	" message TEXT NOT NULL);"
	"CREATE INDEX events_time ON events(time);"
	"CREATE INDEX events_client ON events(client, time);"
	"ALTER TABLE tokens ADD COLUMN ends INTEGER NOT NULL DEFAULT 0;";

/* Schema version 5: enrollment tokens with a count of uses and an
 * optional cap (a smart protection server's token is good for one); smart
 * protection servers with the pin of their certificate's key and a state
 * (enabled, disabled, revoked). Those enrolled before had certificates
 * from the server CA itself, which could stand for wardd: revoked. */
static const char schema_v5[] =
	"ALTER TABLE tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE sps_servers ADD COLUMN pin TEXT;"
	"ALTER TABLE sps_servers ADD COLUMN state TEXT NOT NULL DEFAULT 'enabled';"
	"UPDATE sps_servers SET state = 'revoked';";

/* Schema version 6: time as this server observed it, so that no clock
 * step removes or expires anything (store_observed()): the seconds it has
 * run, and that count at a client's last contact, at a token's expiry and
 * at each event; removed clients, kept for a while so that a removal can
 * be undone. Tokens made before count from the upgrade. */
static const char schema_v6[] =
	"INSERT INTO meta VALUES ('observed', 0);"
	"ALTER TABLE clients ADD COLUMN seen_observed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tokens ADD COLUMN observed_expires INTEGER NOT NULL DEFAULT 0;"
	"UPDATE tokens SET observed_expires = max(0, expires - unixepoch());"
	"ALTER TABLE events ADD COLUMN observed INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE removed_clients ("
	" node INTEGER PRIMARY KEY,"
	" uuid TEXT NOT NULL,"
	" hostname TEXT NOT NULL,"
	" secret BLOB NOT NULL,"
	" domain TEXT NOT NULL,"      /* the path it was in */
	" settings TEXT NOT NULL,"    /* {key: value} placed on the client itself */
	" status TEXT,"
	" last_seen INTEGER NOT NULL,"
	" removed INTEGER NOT NULL,"
	" removed_observed INTEGER NOT NULL,"
	" why TEXT NOT NULL);";

/* Schema version 7: administrators' roles ("admin": everything;
 * "read-only": what reads and nothing that changes). */
static const char schema_v7[] =
	"ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'"
	" CHECK (role IN ('admin', 'read-only'));";

/* A client is moved once it acknowledges a version at least that of its
 * move (move_version), later changes notwithstanding; moved clients get no
 * deliveries, and those queued before go. */
static const char schema_v8[] =
	"ALTER TABLE clients ADD COLUMN move_version INTEGER NOT NULL DEFAULT 0;"
	"UPDATE clients SET move_version = eff_version WHERE move IS NOT NULL;"
	"DELETE FROM deliveries WHERE client IN (SELECT node FROM clients WHERE state = 'moved');";

/* Schema version 9: tasks for agents (Scan Now, quarantine restores and
 * deletes, cancellations; ids never reused, since an agent may still hold
 * an old one), the last scan each client reported, the details of an
 * event beside its message (a detection's source and action), and each
 * agent's quarantine as it last reported it. */
static const char schema_v9[] =
	"CREATE TABLE tasks ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" client INTEGER NOT NULL REFERENCES clients(node) ON DELETE CASCADE,"
	" kind TEXT NOT NULL,"
	" args TEXT NOT NULL,"        /* JSON object: the task's members but id and kind */
	" state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'running',"
	"  'completed', 'cancelled', 'failed')),"
	" progress TEXT,"             /* JSON {files, bytes, detections} */
	" error TEXT,"
	" who TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL,"
	" sent INTEGER NOT NULL DEFAULT 0,"  /* last delivered; 0: never */
	" started INTEGER,"
	" finished INTEGER);"
	"CREATE INDEX tasks_client ON tasks(client, state);"
	"CREATE INDEX tasks_created ON tasks(created);"
	"ALTER TABLE clients ADD COLUMN last_scan TEXT;"
	"ALTER TABLE events ADD COLUMN detail TEXT;"
	"CREATE TABLE quarantine ("
	" client INTEGER NOT NULL REFERENCES clients(node) ON DELETE CASCADE,"
	" item TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" names TEXT NOT NULL,"       /* JSON list */
	" time INTEGER NOT NULL,"
	" source TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reported INTEGER NOT NULL,"
	" central INTEGER NOT NULL DEFAULT 0,"  /* bytes of its copy here; 0: none */
	" seen INTEGER NOT NULL DEFAULT 1,"
	" PRIMARY KEY (client, item)) WITHOUT ROWID;";

/* The steps from an empty database (user_version 0) to the current one. */
static const char *const schema_steps[] = { schema_v1, schema_v2, schema_v3, schema_v4,
					    schema_v5, schema_v6, schema_v7, schema_v8,
					    schema_v9 };

#define SCHEMA_VERSION ((int64_t)(sizeof(schema_steps) / sizeof(*schema_steps)))

/* A token in force at ?3 (the clock) and ?4 (store_observed()): expired
 * by either, it opens nothing; used up, neither. */
#define TOKEN_VALID "expires > ?3 AND observed_expires > ?4 AND " \
	"(max_uses = 0 OR uses < max_uses)"

/* Descendants of ?1, itself included. */
#define SUBTREE_CTE \
	"WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL " \
	"SELECT n.id FROM nodes n JOIN sub ON n.parent = sub.id) "

/* Reports the database's last error for the operation what. */
static enum serr db_fail(struct store *st, const char *what, char *errbuf, size_t errlen)
{
	int code = sqlite3_errcode(st->db);

	util_set_msg(errbuf, errlen, "database: %s: %s", what, sqlite3_errmsg(st->db));
	return code == SQLITE_NOMEM ? SERR_NOMEM : SERR_DB;
}

static enum serr exec(struct store *st, const char *sql, char *errbuf, size_t errlen)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(st, sql, errbuf, errlen);
	return SERR_OK;
}

/* Prepares sql and binds the arguments described by fmt: one 'i' per
 * int64_t, one 's' per string (NULL binds NULL). Returns NULL on failure
 * with the message in errbuf. */
static sqlite3_stmt *vprepare(struct store *st, char *errbuf, size_t errlen, const char *sql,
			      const char *fmt, va_list ap)
{
	sqlite3_stmt *stmt = NULL;
	int i, rc = SQLITE_OK;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_fail(st, "prepare", errbuf, errlen);
		return NULL;
	}
	for (i = 0; fmt[i] && rc == SQLITE_OK; i++) {
		if (fmt[i] == 'i')
			rc = sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t));
		else
			rc = sqlite3_bind_text(stmt, i + 1, va_arg(ap, const char *), -1,
					       SQLITE_TRANSIENT);
	}
	if (rc != SQLITE_OK) {
		db_fail(st, "bind", errbuf, errlen);
		sqlite3_finalize(stmt);
		return NULL;
	}
	return stmt;
}

/* vprepare() with the arguments inline. */
static sqlite3_stmt *prepare(struct store *st, char *errbuf, size_t errlen, const char *sql,
			     const char *fmt, ...)
{
	sqlite3_stmt *stmt;
	va_list ap;

	va_start(ap, fmt);
	stmt = vprepare(st, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return stmt;
}

/* Steps a statement that returns no rows, then finalizes it. */
static enum serr run(struct store *st, sqlite3_stmt *stmt, char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	int rc = SQLITE_DONE;

	if (!stmt)
		return SERR_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_CONSTRAINT)
		err = SERR_EXIST;
	else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = db_fail(st, "step", errbuf, errlen);
	sqlite3_finalize(stmt);
	return err;
}

/* Runs a query expected to return one integer; SERR_NOENT without a row. */
static enum serr query_int(struct store *st, sqlite3_stmt *stmt, int64_t *out,
			   char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	int rc = SQLITE_DONE;

	if (!stmt)
		return SERR_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	else if (rc == SQLITE_DONE)
		err = SERR_NOENT;
	else
		err = db_fail(st, "query", errbuf, errlen);
	sqlite3_finalize(stmt);
	return err;
}

/* Runs sql (arguments as for prepare()) for its effect. */
static enum serr sql_exec(struct store *st, char *errbuf, size_t errlen, const char *sql,
			  const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *stmt;

	va_start(ap, fmt);
	stmt = vprepare(st, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return run(st, stmt, errbuf, errlen);
}

/* Runs sql (arguments as for prepare()) for the integer in its first row. */
static enum serr sql_int(struct store *st, int64_t *out, char *errbuf, size_t errlen,
			 const char *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *stmt;

	va_start(ap, fmt);
	stmt = vprepare(st, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	return query_int(st, stmt, out, errbuf, errlen);
}

/* Runs sql (arguments as for prepare()) for the text in the first column
 * of its first row, copied into *out (the caller frees); SERR_NOENT
 * without a row or with NULL there. */
static enum serr sql_text(struct store *st, char **out, char *errbuf, size_t errlen,
			  const char *sql, const char *fmt, ...)
{
	enum serr err = SERR_NOENT;
	sqlite3_stmt *stmt;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	stmt = vprepare(st, errbuf, errlen, sql, fmt, ap);
	va_end(ap);
	if (!stmt)
		return SERR_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
		*out = strdup((const char *)sqlite3_column_text(stmt, 0));
		err = *out ? SERR_OK : SERR_NOMEM;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err = db_fail(st, "query", errbuf, errlen);
	}
	sqlite3_finalize(stmt);
	return err;
}

/* Undoes the start of a query that builds a JSON container when either
 * failed to be made: SERR_DB for the statement, else SERR_NOMEM. */
static enum serr list_fail(sqlite3_stmt *stmt, json_t *container)
{
	sqlite3_finalize(stmt);
	json_decref(container);
	return stmt ? SERR_NOMEM : SERR_DB;
}

/* Ends a query that built list row by row (rc: the last step's result):
 * finalizes stmt and hands list to *out, or frees it on failure. */
static enum serr finish_list(sqlite3_stmt *stmt, enum serr err, int rc, json_t *list,
			     json_t **out)
{
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = SERR_DB;
	sqlite3_finalize(stmt);
	if (err != SERR_OK) {
		json_decref(list);
		return err;
	}
	*out = list;
	return SERR_OK;
}

/* One column of the current row as JSON: integers, reals and text as
 * themselves, NULL as null; text is parsed as JSON where as_json is set. */
static json_t *column_json(sqlite3_stmt *stmt, int i, bool as_json)
{
	const char *text;

	switch (sqlite3_column_type(stmt, i)) {
	case SQLITE_INTEGER:
		return json_integer((json_int_t)sqlite3_column_int64(stmt, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(stmt, i));
	case SQLITE_NULL:
		return json_null();
	default:
		text = (const char *)sqlite3_column_text(stmt, i);
		if (!text)
			return NULL;
		return as_json ? json_loads(text, 0, NULL) : json_string(text);
	}
}

/* Runs stmt (NULL: preparing failed) and hands *out an array with one
 * object per row, keyed by the column names; bit i of json_cols marks
 * column i as holding JSON text. Finalizes stmt; the caller owns *out. */
static enum serr query_rows(sqlite3_stmt *stmt, unsigned json_cols, json_t **out)
{
	json_t *list = json_array(), *row, *v;
	enum serr err = SERR_OK;
	int rc = SQLITE_DONE, i, n;

	if (!stmt || !list)
		return list_fail(stmt, list);
	n = sqlite3_column_count(stmt);
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		row = json_object();
		if (!row || json_array_append_new(list, row) != 0) {
			err = SERR_NOMEM;
			break;
		}
		for (i = 0; i < n && err == SERR_OK; i++) {
			v = column_json(stmt, i, (json_cols >> i) & 1u);
			if (!v || json_object_set_new(row, sqlite3_column_name(stmt, i), v) != 0)
				err = SERR_NOMEM;
		}
	}
	return finish_list(stmt, err, rc, list, out);
}

static enum serr begin(struct store *st, char *errbuf, size_t errlen)
{
	return exec(st, "BEGIN IMMEDIATE", errbuf, errlen);
}

/* Commits when err is SERR_OK, rolls back otherwise; returns the outcome. */
static enum serr finish(struct store *st, enum serr err, char *errbuf, size_t errlen)
{
	/* Succeeded outside a transaction, the steps before would each have
	 * been committed on their own: half an operation stored. (A failed
	 * step may have ended it: SQLite rolls back on a full disk.) */
	if (err == SERR_OK) {
		util_assert(!sqlite3_get_autocommit(st->db));
		return exec(st, "COMMIT", errbuf, errlen);
	}
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

static enum serr node_kind(struct store *st, int64_t id, enum store_kind *kind,
			   char *errbuf, size_t errlen)
{
	int64_t k;
	enum serr err = sql_int(st, &k, errbuf, errlen,
				"SELECT kind FROM nodes WHERE id = ?", "i", id);

	if (err == SERR_NOENT)
		util_set_msg(errbuf, errlen, "no node with id %lld", (long long)id);
	*kind = (enum store_kind)k;
	return err;
}

/* Checks that id names the root or a domain: the places domains and
 * clients can live. */
static enum serr expect_container(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = node_kind(st, id, &kind, errbuf, errlen);

	if (err == SERR_OK && kind == STORE_KIND_CLIENT) {
		util_set_msg(errbuf, errlen, "node %lld is a client, not a domain", (long long)id);
		return SERR_INVAL;
	}
	return err;
}

static enum serr expect_kind(struct store *st, int64_t id, enum store_kind want,
			     char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = node_kind(st, id, &kind, errbuf, errlen);

	if (err == SERR_OK && kind != want) {
		util_set_msg(errbuf, errlen, "node %lld is not a %s", (long long)id,
			want == STORE_KIND_DOMAIN ? "domain" : "client");
		return SERR_INVAL;
	}
	return err;
}

/* Domain names: 1-64 bytes of valid UTF-8, no control characters, no '/',
 * not "." or "..", so that paths are unambiguous. */
static bool valid_name(const char *name, char *errbuf, size_t errlen)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		util_set_msg(errbuf, errlen, "domain name: must be 1 to 64 bytes, not '.' or '..'");
		return false;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/') {
			util_set_msg(errbuf, errlen,
				"domain name: '/' and control characters are not allowed");
			return false;
		}
	}
	if (!util_utf8_valid(name, n)) {
		util_set_msg(errbuf, errlen, "domain name: not valid UTF-8");
		return false;
	}
	return true;
}

/* Runs sql, whose rows are (key, JSON value) and whose ?1 is node, into a
 * new object: later rows replace earlier ones with the same key. */
static enum serr settings_object(struct store *st, const char *sql, int64_t node,
				 json_t **out, char *errbuf, size_t errlen)
{
	sqlite3_stmt *stmt = prepare(st, errbuf, errlen, sql, "i", node);
	json_t *obj = json_object(), *v;
	enum serr err = SERR_OK;
	int rc = SQLITE_DONE;

	if (!stmt || !obj)
		return list_fail(stmt, obj);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		v = json_loads((const char *)sqlite3_column_text(stmt, 1), JSON_DECODE_ANY, NULL);
		if (!v || json_object_set_new(obj, (const char *)sqlite3_column_text(stmt, 0),
					      v) != 0) {
			util_set_msg(errbuf, errlen, "database: a setting value of node %lld is "
				"unreadable", (long long)node);
			err = SERR_DB;
			break;
		}
	}
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = db_fail(st, "settings", errbuf, errlen);
	sqlite3_finalize(stmt);
	if (err != SERR_OK) {
		json_decref(obj);
		return err;
	}
	*out = obj;
	return SERR_OK;
}

/* Computes the effective settings of node: the values on the path from
 * the root down to it, the nearest winning. */
static enum serr effective(struct store *st, int64_t node, json_t **out,
			   char *errbuf, size_t errlen)
{
	return settings_object(st,
		"WITH RECURSIVE up(id, depth) AS (SELECT ?1, 0 UNION ALL "
		"SELECT n.parent, up.depth + 1 FROM nodes n JOIN up ON n.id = up.id "
		"WHERE n.parent IS NOT NULL) "
		"SELECT s.key, s.value FROM up JOIN settings s ON s.node = up.id "
		"ORDER BY up.depth DESC", node, out, errbuf, errlen);
}

/* Stores text as client id's effective settings and queues its delivery
 * (none to a client moved to another server), replacing any queued older
 * one. The first change of an operation takes a
 * new settings revision (*rev, 0 until then); later ones share it. */
static enum serr record_change(struct store *st, int64_t id, const char *text,
			       int64_t *rev, char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;

	if (*rev == 0) {
		err = sql_exec(st, errbuf, errlen,
			       "UPDATE meta SET value = value + 1 WHERE key = 'settings_rev'", "");
		if (err == SERR_OK)
			err = sql_int(st, rev, errbuf, errlen,
				      "SELECT value FROM meta WHERE key = 'settings_rev'", "");
	}
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET eff_json = ?, "
			       "eff_version = ? WHERE node = ?", "sii", text, *rev, id);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT OR REPLACE INTO deliveries "
			       "(client, version, created) SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
			       "(SELECT 1 FROM clients WHERE node = ?1 AND state = 'moved')", "iii",
			       id, *rev, (int64_t)time(NULL));
	return err;
}

/* Recomputes the effective settings of every client at or below node.
 * Clients whose settings changed share one new settings revision as their
 * version, and get a queued delivery replacing any older one. Runs inside
 * the caller's transaction. The clients are listed first and updated
 * after: SQLite leaves undefined what a query sees of rows changed while
 * it runs. */
static enum serr refresh(struct store *st, int64_t node, size_t *changed,
			 char *errbuf, size_t errlen)
{
	sqlite3_stmt *stmt = prepare(st, errbuf, errlen,
		SUBTREE_CTE "SELECT c.node, c.eff_json FROM sub JOIN clients c ON c.node = sub.id",
		"i", node);
	struct { int64_t id; char *old; } *list = NULL, *grown;
	enum serr err = SERR_OK;
	size_t i, n = 0, cap = 0, nchanged = 0;
	int64_t rev = 0;
	json_t *eff;
	char *text;
	int rc = SQLITE_DONE;

	if (!stmt)
		return SERR_DB;
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(stmt, 1);

		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				err = SERR_NOMEM;
				break;
			}
			list = grown;
		}
		list[n].id = sqlite3_column_int64(stmt, 0);
		list[n].old = old ? strdup(old) : NULL;
		if (old && !list[n].old)
			err = SERR_NOMEM;
		n++;
	}
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = db_fail(st, "refresh", errbuf, errlen);
	sqlite3_finalize(stmt);
	for (i = 0; err == SERR_OK && i < n; i++) {
		err = effective(st, list[i].id, &eff, errbuf, errlen);
		if (err != SERR_OK)
			break;
		text = json_dumps(eff, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(eff);
		if (!text) {
			err = SERR_NOMEM;
			break;
		}
		if (!list[i].old || strcmp(list[i].old, text) != 0) {
			err = record_change(st, list[i].id, text, &rev, errbuf, errlen);
			nchanged++;
		}
		free(text);
	}
	for (i = 0; i < n; i++)
		free(list[i].old);
	free(list);
	if (changed)
		*changed = nchanged;
	return err;
}

static enum serr migrate(struct store *st, char *errbuf, size_t errlen)
{
	const struct settings_def *defs;
	enum serr err;
	int64_t version;
	char pragma[48];
	size_t i, n;

	err = sql_int(st, &version, errbuf, errlen, "PRAGMA user_version", "");
	if (err != SERR_OK || version == SCHEMA_VERSION)
		return err;
	if (version > SCHEMA_VERSION) {
		util_set_msg(errbuf, errlen, "database: schema version %lld is newer than this "
			     "wardd understands (%lld)", (long long)version,
			     (long long)SCHEMA_VERSION);
		return SERR_INVAL;
	}
	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	for (; err == SERR_OK && version < SCHEMA_VERSION; version++)
		err = exec(st, schema_steps[version], errbuf, errlen);
	/* The root holds every setting: those added since get their defaults. */
	defs = settings_table(&n);
	for (i = 0; err == SERR_OK && i < n; i++)
		err = sql_exec(st, errbuf, errlen,
			       "INSERT OR IGNORE INTO settings VALUES (1, ?, ?)", "ss",
			       defs[i].key, defs[i].default_json);
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long)SCHEMA_VERSION);
	if (err == SERR_OK)
		err = exec(st, pragma, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

/* Drops the stored values of settings no longer offered
 * (settings_retired()): from the nodes' own settings and from each
 * client's effective ones, without a new settings version (agents read
 * none of them; they drop them with their next change). Idempotent, so a
 * database keeps none whatever its age. */
static enum serr drop_retired(struct store *st, char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	const char *key;
	size_t i;

	for (i = 0; err == SERR_OK && (key = settings_retired_key(i)); i++) {
		err = sql_exec(st, errbuf, errlen, "DELETE FROM settings WHERE key = ?", "s", key);
		if (err == SERR_OK)
			err = sql_exec(st, errbuf, errlen, "UPDATE clients SET eff_json = "
				       "json_remove(eff_json, '$.\"' || ?1 || '\"') WHERE "
				       "json_type(eff_json, '$.\"' || ?1 || '\"') IS NOT NULL", "s",
				       key);
	}
	return err;
}

/* Checks the database's structure (pages, indexes, constraints): one
 * damaged by a disk or a hand is refused, never served or built upon. */
static bool intact(struct store *st, const char *path, char *errbuf, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const char *verdict;
	bool ok = false;
	int rc;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	verdict = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
	if (verdict && strcmp(verdict, "ok") == 0)
		ok = true;
	else
		util_set_msg(errbuf, errlen, "database %s is damaged (%s): restore it from a "
			     "backup; wardd does not start on it", path,
			     verdict ? verdict : sqlite3_errmsg(st->db));
	sqlite3_finalize(stmt);
	return ok;
}

struct store *store_open(const char *path, char *errbuf, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (!st) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		util_set_msg(errbuf, errlen, "database %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	/* WAL: readers never block the writer, and a commit is one append.
	 * synchronous=NORMAL in WAL mode loses no committed transaction on a
	 * process crash, only possibly the last ones on a power cut. */
	sqlite3_busy_timeout(st->db, 5000);
	if (!intact(st, path, errbuf, errlen) ||
	    exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		 "PRAGMA foreign_keys = ON;", errbuf, errlen) != SERR_OK ||
	    migrate(st, errbuf, errlen) != SERR_OK ||
	    drop_retired(st, errbuf, errlen) != SERR_OK ||
	    sql_int(st, &st->observed, errbuf, errlen, "SELECT value FROM meta WHERE key = "
		    "'observed'", "") != SERR_OK)
		goto fail;
	st->opened_ns = util_now_ns();
	return st;
fail:
	store_close(st);
	return NULL;
}

int64_t store_observed(const struct store *st)
{
	return st->observed + (int64_t)((util_now_ns() - st->opened_ns) / 1000000000u);
}

enum serr store_observed_save(struct store *st)
{
	return sql_exec(st, NULL, 0, "UPDATE meta SET value = max(value, ?) WHERE key = "
			"'observed'", "i", store_observed(st));
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->db)
		store_observed_save(st);
	sqlite3_close(st->db);
	free(st);
}

/* Checks that a subtree of height levels (1: a domain alone) fits under
 * parent within STORE_MAX_DEPTH levels of domains. */
static enum serr check_depth(struct store *st, int64_t parent, int64_t height,
			     char *errbuf, size_t errlen)
{
	int64_t depth = 0;
	enum serr err = sql_int(st, &depth, errbuf, errlen,
				"WITH RECURSIVE up(id, parent) AS (SELECT id, parent FROM "
				"nodes WHERE id = ?1 UNION ALL SELECT n.id, n.parent FROM "
				"nodes n JOIN up ON n.id = up.parent) SELECT count(*) - 1 "
				"FROM up", "i", parent);

	if (err == SERR_OK && depth + height > STORE_MAX_DEPTH) {
		util_set_msg(errbuf, errlen, "domains nest at most %d levels deep",
			     STORE_MAX_DEPTH);
		err = SERR_INVAL;
	}
	return err;
}

enum serr store_domain_create(struct store *st, int64_t parent, const char *name,
			      int64_t *id, char *errbuf, size_t errlen)
{
	enum serr err;

	if (!valid_name(name, errbuf, errlen))
		return SERR_INVAL;
	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = expect_container(st, parent, errbuf, errlen);
	if (err == SERR_OK)
		err = check_depth(st, parent, 1, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO nodes (parent, kind, name) "
			       "VALUES (?, 1, ?)", "is", parent, name);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "domain '%s' already exists there", name);
	if (err == SERR_OK)
		*id = sqlite3_last_insert_rowid(st->db);
	return finish(st, err, errbuf, errlen);
}

enum serr store_domain_rename(struct store *st, int64_t id, const char *name,
			      char *errbuf, size_t errlen)
{
	enum serr err;

	if (!valid_name(name, errbuf, errlen))
		return SERR_INVAL;
	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE nodes SET name = ? WHERE id = ?",
			       "si", name, id);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "domain '%s' already exists there", name);
	return finish(st, err, errbuf, errlen);
}

enum serr store_domain_delete(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err;
	int64_t children = 0;

	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_int(st, &children, errbuf, errlen, "SELECT count(*) FROM nodes "
			      "WHERE parent = ?", "i", id);
	if (err == SERR_OK && children > 0) {
		util_set_msg(errbuf, errlen, "domain %lld still holds %lld domains or clients",
			(long long)id, (long long)children);
		err = SERR_NOTEMPTY;
	}
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM nodes WHERE id = ?", "i", id);
	return finish(st, err, errbuf, errlen);
}

enum serr store_domain_move(struct store *st, int64_t id, int64_t parent,
			    char *errbuf, size_t errlen)
{
	enum serr err;
	int64_t inside = 0, height = 1;

	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = expect_container(st, parent, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_int(st, &inside, errbuf, errlen, SUBTREE_CTE
			      "SELECT count(*) FROM sub WHERE id = ?2", "ii", id,
			      parent);
	if (err == SERR_OK && inside) {
		util_set_msg(errbuf, errlen, "cannot move domain %lld into itself or below itself",
			(long long)id);
		err = SERR_INVAL;
	}
	if (err == SERR_OK)
		err = sql_int(st, &height, errbuf, errlen, "WITH RECURSIVE sub(id, level) AS "
			      "(SELECT ?1, 1 UNION ALL SELECT n.id, sub.level + 1 FROM nodes n "
			      "JOIN sub ON n.parent = sub.id WHERE n.kind = 1) SELECT "
			      "max(level) FROM sub", "i", id);
	if (err == SERR_OK)
		err = check_depth(st, parent, height, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE nodes SET parent = ? WHERE id = ?",
			       "ii", parent, id);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "a domain of that name already exists there");
	if (err == SERR_OK)
		err = refresh(st, id, NULL, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

enum serr store_domain_lookup(struct store *st, const char *path, int create, int64_t *id,
			      char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	int64_t cur = STORE_ROOT, next;
	char name[65];
	const char *p = path, *slash;
	int levels = 0;
	size_t n;

	if (path[0] != '/') {
		util_set_msg(errbuf, errlen, "domain path '%s' must start with '/'", path);
		return SERR_INVAL;
	}
	while (err == SERR_OK) {
		if (++levels > STORE_MAX_DEPTH + 1) {
			util_set_msg(errbuf, errlen, "domain path: domains nest at most %d levels "
				     "deep", STORE_MAX_DEPTH);
			return SERR_INVAL;
		}
		while (*p == '/')
			p++;
		if (!*p)
			break;
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n >= sizeof(name)) {
			util_set_msg(errbuf, errlen, "domain path '%s': a name is over 64 bytes",
				     path);
			return SERR_INVAL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;
		err = sql_int(st, &next, errbuf, errlen, "SELECT id FROM nodes WHERE "
			      "parent = ? AND kind = 1 AND name = ?", "is", cur, name);
		if (err == SERR_NOENT && create)
			err = store_domain_create(st, cur, name, &next, errbuf, errlen);
		else if (err == SERR_NOENT)
			util_set_msg(errbuf, errlen, "no domain '%s' in path '%s'", name, path);
		cur = next;
	}
	if (err == SERR_OK)
		*id = cur;
	return err;
}

enum serr store_domain_path(struct store *st, int64_t id, char *buf, size_t len)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0,
		"WITH RECURSIVE up(id, name, parent, depth) AS ("
		"SELECT id, name, parent, 0 FROM nodes WHERE id = ?1 AND kind != 2 UNION ALL "
		"SELECT n.id, n.name, n.parent, up.depth + 1 "
		"FROM nodes n JOIN up ON n.id = up.parent) "
		"SELECT name FROM up WHERE parent IS NOT NULL ORDER BY depth DESC", "i", id);
	size_t used = 0;
	int rc, rows = 0;

	if (!stmt)
		return SERR_DB;
	buf[0] = '\0';
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "/%s",
					 (const char *)sqlite3_column_text(stmt, 0));
		rows++;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return SERR_DB;
	if (rows == 0 && id != STORE_ROOT)
		return SERR_NOENT;
	if (rows == 0)
		snprintf(buf, len, "/");
	return used < len ? SERR_OK : SERR_INVAL;
}

enum serr store_tree(struct store *st, json_t **out, char *errbuf, size_t errlen)
{
	sqlite3_stmt *stmt = prepare(st, errbuf, errlen,
		"SELECT n.id, n.parent, n.kind, n.name, c.uuid, c.state = 'moved' FROM nodes n "
		"LEFT JOIN clients c ON c.node = n.id ORDER BY n.kind, n.name, n.id", "");
	json_t *byid = json_object(), *node, *parent, *root = NULL;
	enum serr err = SERR_OK;
	char key[24];
	int rc = SQLITE_DONE;

	if (!stmt || !byid)
		return list_fail(stmt, byid);
	/* Parents may have larger ids than children (domains move), so every
	 * node is made first and linked in a second pass. */
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		static const char *const kinds[] = { "root", "domain", "client" };
		int kind = sqlite3_column_int(stmt, 2);
		const char *uuid = (const char *)sqlite3_column_text(stmt, 4);

		node = json_pack("{sI sI ss ss}", "id", (json_int_t)sqlite3_column_int64(stmt, 0),
				 "parent", (json_int_t)sqlite3_column_int64(stmt, 1),
				 "kind", kinds[kind], "name", sqlite3_column_text(stmt, 3));
		if (node && kind == STORE_KIND_CLIENT) {
			json_object_set_new(node, "uuid", json_string(uuid));
			/* Moved to another server: shown apart, no action's target. */
			if (sqlite3_column_int(stmt, 5))
				json_object_set_new(node, "moved", json_true());
		}
		if (node && kind != STORE_KIND_CLIENT) {
			json_object_set_new(node, "domains", json_array());
			json_object_set_new(node, "clients", json_array());
		}
		snprintf(key, sizeof(key), "%lld", (long long)sqlite3_column_int64(stmt, 0));
		if (!node || json_object_set_new(byid, key, node) != 0)
			err = SERR_NOMEM;
	}
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = db_fail(st, "tree", errbuf, errlen);
	sqlite3_finalize(stmt);
	if (err == SERR_OK) {
		const char *k;

		json_object_foreach(byid, k, node) {
			json_int_t pid = json_integer_value(json_object_get(node, "parent"));
			const char *kind = json_string_value(json_object_get(node, "kind"));

			json_object_del(node, "parent");
			if (strcmp(kind, "root") == 0) {
				root = node;
				continue;
			}
			snprintf(key, sizeof(key), "%lld", (long long)pid);
			parent = json_object_get(byid, key);
			if (!parent || json_array_append(json_object_get(parent,
					strcmp(kind, "client") == 0 ? "clients" : "domains"),
					node) != 0)
				err = SERR_NOMEM;
		}
	}
	if (err == SERR_OK && root)
		*out = json_incref(root);
	json_decref(byid);
	return err == SERR_OK && !root ? SERR_DB : err;
}

enum serr store_client_add(struct store *st, int64_t domain, const char *uuid,
			   const char *hostname, const unsigned char secret_hash[32],
			   int64_t *id, char *errbuf, size_t errlen)
{
	sqlite3_stmt *stmt;
	enum serr err = begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = expect_container(st, domain, errbuf, errlen);
	/* A client id is never used twice, not even the last one's after its
	 * removal: the event log keeps naming removed clients by theirs. */
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO nodes (id, parent, kind, name) "
			       "VALUES (1 + max((SELECT max(id) FROM nodes), "
			       "coalesce((SELECT max(client) FROM events), 0), "
			       "coalesce((SELECT max(node) FROM removed_clients), 0)), ?, 2, ?)",
			       "is",
			       domain, hostname);
	if (err == SERR_OK) {
		*id = sqlite3_last_insert_rowid(st->db);
		stmt = prepare(st, errbuf, errlen, "INSERT INTO clients (node, uuid, hostname, "
			       "seen_observed, secret, last_seen) VALUES (?, ?, ?, ?, ?, ?)",
			       "issi", *id, uuid, hostname, store_observed(st));
		if (stmt && (sqlite3_bind_blob(stmt, 5, secret_hash, 32, SQLITE_TRANSIENT) !=
			     SQLITE_OK ||
			     sqlite3_bind_int64(stmt, 6, (int64_t)time(NULL)) != SQLITE_OK)) {
			sqlite3_finalize(stmt);
			stmt = NULL;
			db_fail(st, "bind", errbuf, errlen);
		}
		err = run(st, stmt, errbuf, errlen);
		if (err == SERR_EXIST)
			util_set_msg(errbuf, errlen, "a client with uuid %s exists already", uuid);
	}
	if (err == SERR_OK)
		err = refresh(st, *id, NULL, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

enum serr store_client_move(struct store *st, int64_t client, int64_t domain,
			    char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = expect_kind(st, client, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = expect_container(st, domain, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE nodes SET parent = ? WHERE id = ?",
			       "ii", domain, client);
	if (err == SERR_OK)
		err = refresh(st, client, NULL, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

/* The SETTINGS_AT_* level of a node kind. */
static unsigned level_of(enum store_kind kind)
{
	return kind == STORE_KIND_ROOT ? SETTINGS_AT_ROOT :
	       kind == STORE_KIND_DOMAIN ? SETTINGS_AT_DOMAIN : SETTINGS_AT_CLIENT;
}

enum serr store_setting_set(struct store *st, int64_t node, const char *key,
			    const json_t *value, enum store_apply mode, size_t *changed,
			    char *errbuf, size_t errlen)
{
	const struct settings_def *def = settings_find(key);
	enum store_kind kind;
	enum serr err;
	char *text;

	if (!def) {
		util_set_msg(errbuf, errlen, "%s: no such setting", key);
		return SERR_INVAL;
	}
	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = node_kind(st, node, &kind, errbuf, errlen);
	if (err == SERR_OK && !settings_validate(def, value, level_of(kind), errbuf, errlen))
		err = SERR_INVAL;
	if (err == SERR_OK && mode == STORE_APPLY_ALL)
		err = sql_exec(st, errbuf, errlen, SUBTREE_CTE "DELETE FROM settings WHERE "
			       "key = ?2 AND node IN (SELECT id FROM sub WHERE id != ?1)",
			       "is", node, key);
	if (err == SERR_OK) {
		text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		err = text ? sql_exec(st, errbuf, errlen, "INSERT OR REPLACE INTO settings "
				      "VALUES (?, ?, ?)", "iss", node, key, text) : SERR_NOMEM;
		free(text);
	}
	if (err == SERR_OK)
		err = refresh(st, node, changed, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

enum serr store_setting_unset(struct store *st, int64_t node, const char *key,
			      size_t *changed, char *errbuf, size_t errlen)
{
	enum serr err;
	int64_t had = 0;

	if (node == STORE_ROOT) {
		util_set_msg(errbuf, errlen, "%s: the root holds every setting; set it instead",
			     key);
		return SERR_INVAL;
	}
	err = begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = sql_int(st, &had, errbuf, errlen, "SELECT count(*) FROM settings WHERE "
		      "node = ? AND key = ?", "is", node, key);
	if (err == SERR_OK && !had) {
		util_set_msg(errbuf, errlen, "%s: node %lld has no value of its own", key,
			(long long)node);
		err = SERR_NOENT;
	}
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM settings WHERE node = ? AND "
			       "key = ?", "is", node, key);
	if (err == SERR_OK)
		err = refresh(st, node, changed, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

enum serr store_settings_get(struct store *st, int64_t node, json_t **own,
			     json_t **effective_out, char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = node_kind(st, node, &kind, errbuf, errlen);

	if (err == SERR_OK && effective_out)
		err = effective(st, node, effective_out, errbuf, errlen);
	if (err == SERR_OK && own) {
		err = settings_object(st, "SELECT key, value FROM settings WHERE node = ?1", node,
				      own, errbuf, errlen);
		if (err != SERR_OK && effective_out) {
			json_decref(*effective_out);
			*effective_out = NULL;
		}
	}
	return err;
}

enum serr store_settings_origin(struct store *st, int64_t node, json_t **out)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0,
		"WITH RECURSIVE up(id, depth) AS (SELECT ?1, 0 UNION ALL "
		"SELECT n.parent, up.depth + 1 FROM nodes n JOIN up ON n.id = up.id "
		"WHERE n.parent IS NOT NULL) "
		"SELECT s.key, up.id, n.kind FROM up JOIN settings s ON s.node = up.id "
		"JOIN nodes n ON n.id = up.id ORDER BY up.depth DESC", "i", node);
	json_t *origin = json_object();
	enum serr err = SERR_OK;
	char scope[1100], path[1024];
	int64_t id;
	int rc;

	if (!stmt || !origin)
		return list_fail(stmt, origin);
	/* Nearer nodes come last and replace what farther ones set. */
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 1);
		switch (sqlite3_column_int(stmt, 2)) {
		case STORE_KIND_ROOT:
			snprintf(scope, sizeof(scope), "root");
			break;
		case STORE_KIND_DOMAIN:
			err = store_domain_path(st, id, path, sizeof(path));
			snprintf(scope, sizeof(scope), "domain:%s", path);
			break;
		default:
			snprintf(scope, sizeof(scope), "client:%lld", (long long)id);
		}
		if (err == SERR_OK &&
		    json_object_set_new(origin, (const char *)sqlite3_column_text(stmt, 0),
					json_string(scope)) != 0)
			err = SERR_NOMEM;
	}
	return finish_list(stmt, err, rc, origin, out);
}

enum serr store_client_version(struct store *st, int64_t client, int64_t *version)
{
	return sql_int(st, version, NULL, 0, "SELECT eff_version FROM clients WHERE node = ?", "i",
		       client);
}

enum serr store_delivery_count(struct store *st, int64_t *count)
{
	return sql_int(st, count, NULL, 0, "SELECT count(*) FROM deliveries", "");
}

enum serr store_admin_put(struct store *st, const char *name, const char *pwhash,
			  char *errbuf, size_t errlen)
{
	return sql_exec(st, errbuf, errlen, "INSERT INTO admins (name, pwhash) VALUES (?1, ?2) "
			"ON CONFLICT (name) DO UPDATE SET pwhash = ?2", "ss", name, pwhash);
}

enum serr store_admin_add(struct store *st, const char *name, const char *pwhash,
			  const char *role, char *errbuf, size_t errlen)
{
	int64_t n = 0;
	enum serr err = sql_int(st, &n, errbuf, errlen, "SELECT count(*) FROM admins "
				"WHERE name = ?", "s", name);

	if (err == SERR_OK && n > 0) {
		util_set_msg(errbuf, errlen, "administrator '%s' exists already", name);
		return SERR_EXIST;
	}
	if (err != SERR_OK)
		return err;
	return sql_exec(st, errbuf, errlen, "INSERT INTO admins (name, pwhash, role) "
			"VALUES (?, ?, ?)", "sss", name, pwhash, role);
}

enum serr store_admin_role(struct store *st, const char *name, char **role)
{
	return sql_text(st, role, NULL, 0, "SELECT role FROM admins WHERE name = ?", "s", name);
}

enum serr store_admin_set_role(struct store *st, const char *name, const char *role,
			       char *errbuf, size_t errlen)
{
	return sql_exec(st, errbuf, errlen, "UPDATE admins SET role = ? WHERE name = ?", "ss",
			role, name);
}

enum serr store_admin_remove(struct store *st, const char *name, char *errbuf,
			     size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = sql_exec(st, errbuf, errlen, "DELETE FROM admins WHERE name = ?", "s", name);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM tokens WHERE kind IN (?, ?) AND "
			       "subject = ?", "iis", (int64_t)STORE_TOKEN_SESSION,
			       (int64_t)STORE_TOKEN_CONSOLE, name);
	return finish(st, err, errbuf, errlen);
}

enum serr store_admin_list(struct store *st, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT name, role FROM admins ORDER BY name",
				  ""), 0, out);
}

enum serr store_admin_count_role(struct store *st, const char *role, int64_t *count)
{
	return sql_int(st, count, NULL, 0, "SELECT count(*) FROM admins WHERE role = ?", "s",
		       role);
}

enum serr store_admin_get(struct store *st, const char *name, char **pwhash,
			  char *errbuf, size_t errlen)
{
	return sql_text(st, pwhash, errbuf, errlen, "SELECT pwhash FROM admins WHERE name = ?",
			"s", name);
}

enum serr store_admin_count(struct store *st, int64_t *count)
{
	return sql_int(st, count, NULL, 0, "SELECT count(*) FROM admins", "");
}

enum serr store_token_put(struct store *st, const unsigned char hash[32],
			  enum store_token kind, const char *subject, int64_t expires,
			  int64_t ends, char *errbuf, size_t errlen)
{
	int64_t now = (int64_t)time(NULL), observed = store_observed(st);
	sqlite3_stmt *stmt;

	/* Expired tokens go as new ones come: expired by the clock and by this
	 * server's own count, so a clock set forward deletes none. */
	if (sql_exec(st, errbuf, errlen, "DELETE FROM tokens WHERE expires <= ? AND "
		     "observed_expires <= ?", "ii", now, observed) != SERR_OK)
		return SERR_DB;
	stmt = prepare(st, errbuf, errlen, "INSERT INTO tokens (hash, kind, subject, expires, "
		       "ends, observed_expires) VALUES (?, ?, ?, ?, ?, ?)", "");
	if (!stmt)
		return SERR_DB;
	if (sqlite3_bind_blob(stmt, 1, hash, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int(stmt, 2, (int)kind) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 3, subject, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 4, expires) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 5, ends) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 6, observed + (expires - now)) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, "token", errbuf, errlen);
	}
	return run(st, stmt, errbuf, errlen);
}

/* Binds a token's hash as parameter i of stmt; false on failure (stmt is
 * then finalized). */
static bool bind_hash(sqlite3_stmt *stmt, int i, const unsigned char hash[32])
{
	if (stmt && sqlite3_bind_blob(stmt, i, hash, 32, SQLITE_TRANSIENT) == SQLITE_OK)
		return true;
	sqlite3_finalize(stmt);
	return false;
}

enum serr store_token_check(struct store *st, const unsigned char hash[32],
			    enum store_token kind, int64_t now, int64_t idle,
			    char *subject, size_t len, int64_t *expires)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "SELECT subject, expires, ends FROM tokens "
				     "WHERE hash = ?1 AND kind = ?2 AND " TOKEN_VALID, "");
	enum serr err = SERR_NOENT;
	int64_t until = 0, ends = 0, slid;

	if (!bind_hash(stmt, 1, hash))
		return SERR_DB;
	if (sqlite3_bind_int(stmt, 2, (int)kind) == SQLITE_OK &&
	    sqlite3_bind_int64(stmt, 3, now) == SQLITE_OK &&
	    sqlite3_bind_int64(stmt, 4, store_observed(st)) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW) {
		snprintf(subject, len, "%s", (const char *)sqlite3_column_text(stmt, 0));
		until = sqlite3_column_int64(stmt, 1);
		ends = sqlite3_column_int64(stmt, 2);
		err = SERR_OK;
	}
	sqlite3_finalize(stmt);
	/* A sliding token lives idle seconds past its last use, up to its end;
	 * written only when that moves it by a twelfth of idle or more, not on
	 * every request. A failed write leaves the token valid as it was. */
	slid = now + idle < ends ? now + idle : ends;
	if (err == SERR_OK && idle > 0 && ends > 0 && (slid - until) * 12 >= idle) {
		stmt = prepare(st, NULL, 0, "UPDATE tokens SET expires = ?2, observed_expires = "
			       "?3 WHERE hash = ?1", "");
		if (bind_hash(stmt, 1, hash)) {
			if (sqlite3_bind_int64(stmt, 2, slid) != SQLITE_OK ||
			    sqlite3_bind_int64(stmt, 3, store_observed(st) + (slid - now)) !=
			    SQLITE_OK)
				sqlite3_finalize(stmt);
			else if (run(st, stmt, NULL, 0) == SERR_OK)
				until = slid;
		}
	}
	if (expires)
		*expires = until;
	return err;
}

enum serr store_token_delete(struct store *st, const unsigned char hash[32])
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "DELETE FROM tokens WHERE hash = ?1", "");

	if (!bind_hash(stmt, 1, hash))
		return SERR_DB;
	return run(st, stmt, NULL, 0);
}

enum serr store_admin_end_sessions(struct store *st, const char *name,
				   const unsigned char keep[32])
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "DELETE FROM tokens WHERE kind IN (?1, ?2) "
				     "AND subject = ?3 AND hash IS NOT ?4", "iis",
				     (int64_t)STORE_TOKEN_SESSION, (int64_t)STORE_TOKEN_CONSOLE,
				     name);

	if (keep ? !bind_hash(stmt, 4, keep) : !stmt)
		return SERR_DB;
	return run(st, stmt, NULL, 0);
}

/* A token's public name: the first 8 bytes of its SHA-256, in hex. */
#define TOKEN_ID "lower(hex(substr(hash, 1, 8)))"

enum serr store_tokens_list(struct store *st, enum store_token kind, int64_t now,
			    json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT " TOKEN_ID " AS id, subject, expires, "
				  "uses, max_uses FROM tokens WHERE kind = ?2 AND " TOKEN_VALID
				  " ORDER BY expires", "iiii", (int64_t)0, (int64_t)kind, now,
				  store_observed(st)), 0, out);
}

enum serr store_token_use(struct store *st, const unsigned char hash[32],
			  int64_t max_uses)
{
	const char *sql = max_uses >= 0 ? "UPDATE tokens SET max_uses = ?2 WHERE hash = ?1" :
			  "UPDATE tokens SET uses = uses + 1 WHERE hash = ?1";
	sqlite3_stmt *stmt = prepare(st, NULL, 0, sql, "");

	if (!bind_hash(stmt, 1, hash))
		return SERR_DB;
	if (max_uses >= 0 && sqlite3_bind_int64(stmt, 2, max_uses) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return SERR_DB;
	}
	return run(st, stmt, NULL, 0);
}

enum serr store_token_revoke(struct store *st, enum store_token kind, const char *id,
			     int64_t *n)
{
	enum serr err = sql_exec(st, NULL, 0, "DELETE FROM tokens WHERE kind = ? AND "
				 TOKEN_ID " = ?", "is", (int64_t)kind, id);

	*n = err == SERR_OK ? sqlite3_changes(st->db) : 0;
	return err;
}

enum serr store_token_count(struct store *st, enum store_token kind, int64_t now,
			    int64_t *count)
{
	return sql_int(st, count, NULL, 0, "SELECT count(*) FROM tokens WHERE kind = ?2 AND "
		       TOKEN_VALID, "iiii", (int64_t)0, (int64_t)kind, now, store_observed(st));
}

/* Finds the id of the row of sql ("SELECT id ... WHERE uuid = ? AND secret
 * = ?") for uuid and secret_hash: SERR_NOENT when there is none. */
static enum serr auth(struct store *st, const char *sql, const char *uuid,
		      const unsigned char secret_hash[32], int64_t *id)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, sql, "s", uuid);
	enum serr err = SERR_NOENT;
	int rc;

	if (!stmt)
		return SERR_DB;
	if (sqlite3_bind_blob(stmt, 2, secret_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return SERR_DB;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(stmt, 0);
		err = SERR_OK;
	} else if (rc != SQLITE_DONE) {
		err = SERR_DB;
	}
	sqlite3_finalize(stmt);
	return err;
}

enum serr store_agent_auth(struct store *st, const char *uuid,
			   const unsigned char secret_hash[32], int64_t *id)
{
	return auth(st, "SELECT node FROM clients WHERE uuid = ? AND secret = ?", uuid,
		    secret_hash, id);
}

enum serr store_sps_auth(struct store *st, const char *uuid,
			 const unsigned char secret_hash[32], int64_t *id)
{
	return auth(st, "SELECT id FROM sps_servers WHERE uuid = ? AND secret = ? AND "
		    "state != 'revoked'", uuid, secret_hash, id);
}

enum serr store_sps_add(struct store *st, const char *uuid,
			const unsigned char secret_hash[32], const char *hostname,
			const char *names, const char *pin, int64_t now, char *errbuf,
			size_t errlen)
{
	sqlite3_stmt *stmt = prepare(st, errbuf, errlen, "INSERT INTO sps_servers (uuid, hostname, "
				     "names, pin, enrolled, secret) VALUES (?, ?, ?, ?, ?, ?)",
				     "ssssi", uuid, hostname, names, pin, now);

	if (stmt && sqlite3_bind_blob(stmt, 6, secret_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	return run(st, stmt, errbuf, errlen);
}

enum serr store_sps_seen(struct store *st, int64_t id, const char *status, int64_t now,
			 char *errbuf, size_t errlen)
{
	return sql_exec(st, errbuf, errlen, "UPDATE sps_servers SET status = ?, last_seen = ? "
			"WHERE id = ?", "sii", status, now, id);
}

enum serr store_sps_list(struct store *st, json_t **out)
{
	/* names and status are JSON text. */
	return query_rows(prepare(st, NULL, 0, "SELECT id, uuid, hostname, names, enrolled, "
				  "last_seen, status, pin, state AS trust FROM sps_servers "
				  "ORDER BY id", ""), 1u << 3 | 1u << 6, out);
}

enum serr store_sps_set_state(struct store *st, int64_t id, const char *state,
			      int64_t *n)
{
	/* A revocation is for good: the server must enroll again. */
	enum serr err = sql_exec(st, NULL, 0, "UPDATE sps_servers SET state = ? WHERE "
				 "id = ? AND state != 'revoked'", "si", state, id);

	*n = err == SERR_OK ? sqlite3_changes(st->db) : 0;
	return err;
}

enum serr store_sps_pins(struct store *st, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT pin FROM sps_servers WHERE state = "
				  "'enabled' AND pin IS NOT NULL ORDER BY id", ""), 0, out);
}

enum serr store_agent_seen(struct store *st, int64_t id, const char *status, int64_t now,
			   char *errbuf, size_t errlen)
{
	if (status)
		return sql_exec(st, errbuf, errlen, "UPDATE clients SET status = ?, last_seen = ?, "
				"seen_observed = ? WHERE node = ?", "siii", status, now,
				store_observed(st), id);
	return sql_exec(st, errbuf, errlen, "UPDATE clients SET last_seen = ?, seen_observed = ? "
			"WHERE node = ?", "iii", now, store_observed(st), id);
}

enum serr store_agent_settings(struct store *st, int64_t id, char **json,
			       int64_t *version, char *errbuf, size_t errlen)
{
	enum serr err = sql_text(st, json, errbuf, errlen,
				 "SELECT eff_json FROM clients WHERE node = ?", "i", id);

	if (err == SERR_OK) {
		err = sql_int(st, version, errbuf, errlen,
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
	enum serr err = begin(st, errbuf, errlen);
	bool moved;

	if (err != SERR_OK)
		return err;
	err = sql_exec(st, errbuf, errlen, "UPDATE clients SET acked_version = max(acked_version,"
		       " ?) WHERE node = ?", "ii", version, id);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET update_req = 0 WHERE "
			       "node = ? AND update_req <= ?", "ii", id, version);
	/* An agent acknowledges a move once it has enrolled with the target;
	 * it will not ask for anything queued since: that is cancelled. */
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET state = 'moved' "
			       "WHERE node = ? AND move IS NOT NULL AND move_version <= ? AND "
			       "state != 'moved'", "ii", id, version);
	moved = err == SERR_OK && sqlite3_changes(st->db) > 0;
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM deliveries WHERE client = ? AND "
			       "version <= ?", "ii", id, version);
	if (err == SERR_OK && moved)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM deliveries WHERE client = ?", "i",
			       id);
	if (err == SERR_OK && moved && sqlite3_changes(st->db) > 0)
		err = store_event_add(st, "delivery", id, 0, "moved to another server: its "
				      "queued delivery is cancelled");
	return finish(st, err, errbuf, errlen);
}

enum serr store_deliveries_due(struct store *st, int64_t now,
			       int (*fn)(const struct store_delivery *d, void *arg),
			       void *arg)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "SELECT client, version, attempts, "
				     "next_attempt FROM deliveries WHERE next_attempt <= ? "
				     "ORDER BY created, client", "i", now);
	struct store_delivery d;
	int rc;

	if (!stmt)
		return SERR_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		d.client = sqlite3_column_int64(stmt, 0);
		d.version = sqlite3_column_int64(stmt, 1);
		d.attempts = sqlite3_column_int64(stmt, 2);
		d.next_attempt = sqlite3_column_int64(stmt, 3);
		if (fn(&d, arg))
			break;
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SERR_OK : SERR_DB;
}

enum serr store_delivery_get(struct store *st, int64_t client, struct store_delivery *d)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "SELECT version, attempts, next_attempt FROM "
				     "deliveries WHERE client = ?", "i", client);
	enum serr err = SERR_NOENT;
	int rc;

	if (!stmt)
		return SERR_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		d->client = client;
		d->version = sqlite3_column_int64(stmt, 0);
		d->attempts = sqlite3_column_int64(stmt, 1);
		d->next_attempt = sqlite3_column_int64(stmt, 2);
		err = SERR_OK;
	} else if (rc != SQLITE_DONE) {
		err = SERR_DB;
	}
	sqlite3_finalize(stmt);
	return err;
}

enum serr store_delivery_retry(struct store *st, int64_t client, int64_t attempts,
			       int64_t next_attempt)
{
	return sql_exec(st, NULL, 0, "UPDATE deliveries SET attempts = ?, next_attempt = ? "
			"WHERE client = ?", "iii", attempts, next_attempt, client);
}

enum serr store_deliveries_json(struct store *st, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT d.client AS client, c.uuid AS uuid, "
				  "c.hostname AS hostname, d.version AS version, "
				  "d.attempts AS attempts, "
				  "NULLIF(d.next_attempt, ?) AS next_attempt "
				  "FROM deliveries d JOIN clients c ON c.node = d.client "
				  "ORDER BY d.created, d.client", "i", (int64_t)STORE_NEVER),
			  0, out);
}

enum serr store_deliveries_cancel(struct store *st, int64_t client, int64_t *n)
{
	enum serr err = client < 0 ?
		sql_exec(st, NULL, 0, "DELETE FROM deliveries", "") :
		sql_exec(st, NULL, 0, "DELETE FROM deliveries WHERE client = ?", "i", client);

	*n = err == SERR_OK ? sqlite3_changes(st->db) : 0;
	return err;
}

enum serr store_clients_each(struct store *st, int64_t only,
			     int (*fn)(json_t *c, void *arg), void *arg)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, SUBTREE_CTE
				     "SELECT c.node, c.uuid, c.hostname, n.parent, "
				     "c.last_seen, c.eff_version, c.acked_version, c.status, "
				     "json_extract(c.eff_json, '$.roaming'), c.state, "
				     "c.seen_observed, c.last_scan FROM clients c JOIN nodes n ON "
				     "n.id = c.node "
				     "WHERE ?1 = 0 OR c.node IN (SELECT id FROM sub) "
				     "ORDER BY c.node", "i", only);
	enum serr err = SERR_OK;
	const char *status;
	json_t *obj;
	int rc = SQLITE_DONE, stop = 0;

	if (!stmt)
		return SERR_DB;
	while (!stop && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		status = (const char *)sqlite3_column_text(stmt, 7);
		obj = json_pack("{sI ss ss sI sI sI sI so sb ss}",
				"id", (json_int_t)sqlite3_column_int64(stmt, 0),
				"uuid", sqlite3_column_text(stmt, 1),
				"hostname", sqlite3_column_text(stmt, 2),
				"domain", (json_int_t)sqlite3_column_int64(stmt, 3),
				"last_seen", (json_int_t)sqlite3_column_int64(stmt, 4),
				"version", (json_int_t)sqlite3_column_int64(stmt, 5),
				"acked_version", (json_int_t)sqlite3_column_int64(stmt, 6),
				"status", status ? json_loads(status, 0, NULL) : json_null(),
				"roaming", sqlite3_column_int(stmt, 8),
				"verified_state", sqlite3_column_text(stmt, 9));
		if (obj) {
			json_object_set_new(obj, "seen_observed",
					    json_integer(sqlite3_column_int64(stmt, 10)));
			json_object_set_new(obj, "last_scan", column_json(stmt, 11, true));
		}
		if (!obj) {
			err = SERR_NOMEM;
			break;
		}
		stop = fn(obj, arg);
		json_decref(obj);
	}
	if (err == SERR_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = SERR_DB;
	sqlite3_finalize(stmt);
	return err;
}

enum serr store_kv_get(struct store *st, const char *key, char **value)
{
	return sql_text(st, value, NULL, 0, "SELECT value FROM server_kv WHERE key = ?", "s", key);
}

enum serr store_kv_put(struct store *st, const char *key, const char *value,
		       char *errbuf, size_t errlen)
{
	return sql_exec(st, errbuf, errlen, "INSERT OR REPLACE INTO server_kv VALUES (?, ?)",
			"ss", key, value);
}

enum serr store_client_set_state(struct store *st, int64_t id, const char *state)
{
	return sql_exec(st, NULL, 0, "UPDATE clients SET state = ? WHERE node = ?", "si", state,
			id);
}

enum serr store_client_remove(struct store *st, int64_t id, const char *why,
			      char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	int64_t parent = 0;
	char path[4096];

	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_int(st, &parent, errbuf, errlen, "SELECT parent FROM nodes WHERE id = ?",
			      "i", id);
	if (err == SERR_OK)
		err = store_domain_path(st, parent, path, sizeof(path));
	if (err == SERR_OK)
		err = store_event_add(st, "system", id, 0, why);
	/* Kept, credential and settings included, for an administrator to
	 * restore within agents.removed_keep. */
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO removed_clients (node, uuid, "
			       "hostname, secret, domain, settings, status, last_seen, removed, "
			       "removed_observed, why) SELECT c.node, c.uuid, c.hostname, "
			       "c.secret, ?2, (SELECT json_group_array(json_array(key, value)) "
			       "FROM settings WHERE node = c.node), c.status, c.last_seen, ?3, ?4, "
			       "?5 FROM "
			       "clients c WHERE c.node = ?1", "isiis", id, path,
			       (int64_t)time(NULL), store_observed(st), why);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM nodes WHERE id = ?", "i", id);
	return finish(st, err, errbuf, errlen);
}

enum serr store_removed_list(struct store *st, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT node AS id, uuid, hostname, domain, "
				  "last_seen, removed, why FROM removed_clients ORDER BY removed "
				  "DESC, node", ""), 0, out);
}

enum serr store_client_restore(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	char *path = NULL;
	int64_t domain = STORE_ROOT, other = 0;

	if (err != SERR_OK)
		return err;
	err = sql_text(st, &path, errbuf, errlen, "SELECT domain FROM removed_clients WHERE "
		       "node = ?", "i", id);
	if (err == SERR_NOENT)
		util_set_msg(errbuf, errlen, "no removed client %lld (restored already, or kept "
			     "no longer)", (long long)id);
	if (err == SERR_OK &&
	    sql_int(st, &other, NULL, 0, "SELECT c.node FROM clients c JOIN removed_clients r "
		    "ON r.uuid = c.uuid WHERE r.node = ?", "i", id) == SERR_OK) {
		util_set_msg(errbuf, errlen, "client %lld's agent has enrolled again, as client "
			     "%lld", (long long)id, (long long)other);
		err = SERR_EXIST;
	}
	/* Back in its domain, or the root when that is gone. */
	if (err == SERR_OK && store_domain_lookup(st, path, 0, &domain, NULL, 0) != SERR_OK)
		domain = STORE_ROOT;
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO nodes (id, parent, kind, name) "
			       "SELECT node, ?2, 2, hostname FROM removed_clients WHERE node = ?1",
			       "ii", id, domain);
	/* Seen now: its inactivity counts afresh. */
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO clients (node, uuid, hostname, "
			       "secret, status, last_seen, seen_observed) SELECT node, uuid, "
			       "hostname, secret, status, ?2, ?3 FROM removed_clients WHERE "
			       "node = ?1", "iii", id, (int64_t)time(NULL), store_observed(st));
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO settings (node, key, value) SELECT "
			       "?1, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') "
			       "FROM removed_clients r, json_each(r.settings) j WHERE r.node = ?1",
			       "i", id);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "DELETE FROM removed_clients WHERE node = ?",
			       "i", id);
	if (err == SERR_OK)
		err = refresh(st, id, NULL, errbuf, errlen);
	free(path);
	return finish(st, err, errbuf, errlen);
}

enum serr store_removed_purge(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	/* Past keep by the clock and by this server's own count. */
	enum serr err = sql_exec(st, NULL, 0, "DELETE FROM removed_clients WHERE removed < ? "
				 "AND removed_observed < ?", "ii", now - keep,
				 store_observed(st) - keep);

	*n = err == SERR_OK ? (int64_t)sqlite3_changes(st->db) : 0;
	return err;
}

enum serr store_client_move_server(struct store *st, int64_t id, const char *move,
				   char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	int64_t rev = 0;
	char *eff = NULL;

	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET move = ? WHERE node = ?",
			       "si", move, id);
	if (err == SERR_OK)
		err = sql_text(st, &eff, errbuf, errlen, "SELECT eff_json FROM clients WHERE "
			       "node = ?", "i", id);
	/* A new version carries the move to the agent like a settings change. */
	if (err == SERR_OK)
		err = record_change(st, id, eff, &rev, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET move_version = ? WHERE "
			       "node = ?", "ii", rev, id);
	free(eff);
	return finish(st, err, errbuf, errlen);
}

enum serr store_client_update_now(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	int64_t rev = 0;
	char *eff = NULL;

	if (err != SERR_OK)
		return err;
	err = expect_kind(st, id, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_text(st, &eff, errbuf, errlen, "SELECT eff_json FROM clients WHERE "
			       "node = ?", "i", id);
	if (err == SERR_OK)
		err = record_change(st, id, eff, &rev, errbuf, errlen);
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "UPDATE clients SET update_req = ? WHERE "
			       "node = ? AND update_req = 0", "ii", rev, id);
	free(eff);
	return finish(st, err, errbuf, errlen);
}

enum serr store_client_update_pending(struct store *st, int64_t id, int *pending)
{
	int64_t v = 0;
	enum serr err = sql_int(st, &v, NULL, 0, "SELECT update_req FROM clients WHERE "
				"node = ?", "i", id);

	*pending = err == SERR_OK && v > 0;
	return err;
}

enum serr store_package_add(struct store *st, const char *component, int64_t version,
			    int64_t base, const char *file, int64_t size,
			    const char *envelope, char *errbuf, size_t errlen)
{
	return sql_exec(st, errbuf, errlen, "INSERT INTO packages (file, component, version, "
			"base, size, envelope, created) VALUES (?, ?, ?, ?, ?, ?, ?)", "ssiiisi",
			file, component, version, base, size, envelope, (int64_t)time(NULL));
}

enum serr store_package_remove(struct store *st, const char *file)
{
	return sql_exec(st, NULL, 0, "DELETE FROM packages WHERE file = ?", "s", file);
}

enum serr store_package_reseal(struct store *st, const json_t *envelopes, const char *key,
			       const char *value, char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	const char *file;
	json_t *env;

	if (err != SERR_OK)
		return err;
	json_object_foreach((json_t *)envelopes, file, env)
		if (err == SERR_OK)
			err = sql_exec(st, errbuf, errlen, "UPDATE packages SET envelope = ? "
				       "WHERE file = ?", "ss", json_string_value(env), file);
	if (err == SERR_OK)
		err = store_kv_put(st, key, value, errbuf, errlen);
	return finish(st, err, errbuf, errlen);
}

enum serr store_packages(struct store *st, const char *component, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, "SELECT version, base, file, size, envelope, "
				  "created FROM packages WHERE component = ? "
				  "ORDER BY version, base", "s", component), 0, out);
}

enum serr store_client_move_info(struct store *st, int64_t id, char **move)
{
	return sql_text(st, move, NULL, 0, "SELECT move FROM clients WHERE node = ? AND "
			"move IS NOT NULL AND state != 'moved'", "i", id);
}

enum serr store_export(struct store *st, json_t **out)
{
	sqlite3_stmt *stmt = prepare(st, NULL, 0, "SELECT id FROM nodes WHERE kind != 2 "
				     "ORDER BY id", "");
	json_t *list = json_array(), *own;
	enum serr err = SERR_OK;
	char path[4096];
	int64_t *ids = NULL, *grown;
	size_t n = 0, i;

	if (!stmt || !list)
		return list_fail(stmt, list);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		grown = realloc(ids, (n + 1) * sizeof(*ids));
		if (!grown) {
			err = SERR_NOMEM;
			break;
		}
		ids = grown;
		ids[n++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_finalize(stmt);
	for (i = 0; err == SERR_OK && i < n; i++) {
		own = NULL;
		err = store_domain_path(st, ids[i], path, sizeof(path));
		if (err == SERR_OK)
			err = store_settings_get(st, ids[i], &own, NULL, NULL, 0);
		if (err == SERR_OK &&
		    json_array_append_new(list, json_pack("{ss so}", "path", path, "settings",
							  own)) != 0)
			err = SERR_NOMEM;
	}
	free(ids);
	if (err != SERR_OK) {
		json_decref(list);
		return err;
	}
	*out = list;
	return SERR_OK;
}

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
	    sql_text(st, host, NULL, 0, "SELECT hostname FROM clients WHERE node = ?", "i",
		     client) == SERR_OK &&
	    sql_int(st, &parent, NULL, 0, "SELECT parent FROM nodes WHERE id = ?", "i",
		    client) == SERR_OK &&
	    store_domain_path(st, parent, domain, len) != SERR_OK)
		domain[0] = '\0';
}

static enum serr event_insert(struct store *st, const char *kind, int64_t client,
			      const char *host, const char *domain, int64_t when,
			      const char *message, const char *detail)
{
	return sql_exec(st, NULL, 0, "INSERT INTO events (time, kind, client, hostname, domain, "
			"message, observed, detail) VALUES (?, ?, nullif(?, 0), ?, nullif(?, ''), "
			"?, ?, ?)", "isisssis", when ? when : (int64_t)time(NULL), kind, client,
			host, domain, message, store_observed(st), detail);
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
	enum serr err = begin(st, NULL, 0);
	size_t i;

	if (err != SERR_OK)
		return err;
	event_place(st, client, &host, domain, sizeof(domain));
	for (i = 0; i < n && err == SERR_OK; i++)
		err = event_insert(st, kind, client, host, domain, when[i], messages[i],
				   details ? details[i] : NULL);
	free(host);
	return finish(st, err, NULL, 0);
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
	return query_rows(prepare(st, NULL, 0,
		"SELECT id, time, kind, client, hostname, domain, detail, message FROM events "
		"WHERE (?1 IS NULL OR kind = ?1) AND time >= ?2 AND time <= ?3 "
		"AND (?4 = 0 OR client = ?4) AND (?5 IS NULL OR domain = ?5 OR "
		"substr(domain, 1, length(?5) + 1) = ?5 || '/' OR "
		"(?5 = '/' AND domain IS NOT NULL)) "
		"AND (?6 = 0 OR id < ?6) ORDER BY id DESC LIMIT ?7", "siiisii",
		f->kind, f->since, f->until ? f->until : INT64_MAX, f->client, f->domain,
		f->before, f->limit), 1u << 6, out);
}

enum serr store_events_prune(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	/* Older by the clock and by this server's own count: a clock set
	 * forward deletes nothing. */
	enum serr err = sql_exec(st, NULL, 0, "DELETE FROM events WHERE time < ? AND "
				 "observed < ?", "ii", now - keep, store_observed(st) - keep);

	*n = err == SERR_OK ? (int64_t)sqlite3_changes(st->db) : 0;
	return err;
}

const char *const store_task_states[] = { "queued", "delivered", "running", "completed",
					  "cancelled", "failed", NULL };

#define TASK_OPEN "state IN ('queued', 'delivered', 'running')"

/* Logs a task's state change as an event of kind "task" (inside the
 * caller's transaction). */
static enum serr task_event(struct store *st, int64_t client, int64_t id, const char *kind,
			    const char *what)
{
	char msg[1200];

	snprintf(msg, sizeof(msg), "task %lld (%s) %s", (long long)id, kind, what);
	return store_event_add(st, "task", client, 0, msg);
}

enum serr store_task_add(struct store *st, int64_t client, const char *kind, const char *args,
			 const char *who, int64_t max, int64_t *id, char *errbuf,
			 size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	int64_t open = 0, now = (int64_t)time(NULL);
	char what[300];

	*id = 0;
	if (err != SERR_OK)
		return err;
	err = expect_kind(st, client, STORE_KIND_CLIENT, errbuf, errlen);
	/* One open task per kind and target (the item, the task cancelled):
	 * asking again names the one there is. */
	if (err == SERR_OK &&
	    sql_int(st, id, NULL, 0, "SELECT id FROM tasks WHERE client = ?1 AND kind = ?2 AND "
		    TASK_OPEN " AND json_extract(args, '$.item') IS json_extract(?3, '$.item') "
		    "AND json_extract(args, '$.task') IS json_extract(?3, '$.task')", "iss",
		    client, kind, args) == SERR_OK) {
		util_set_msg(errbuf, errlen, "client %lld already has %s task %lld unfinished",
			     (long long)client, kind, (long long)*id);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = sql_int(st, &open, errbuf, errlen, "SELECT count(*) FROM tasks WHERE "
			      "client = ? AND " TASK_OPEN, "i", client);
	if (err == SERR_OK && open >= max) {
		util_set_msg(errbuf, errlen, "client %lld has %lld unfinished tasks "
			     "(tasks.max_per_client)", (long long)client, (long long)open);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		err = sql_exec(st, errbuf, errlen, "INSERT INTO tasks (client, kind, args, state, "
			       "who, created, updated) VALUES (?, ?, json(?), 'queued', ?, ?, ?)",
			       "isssii", client, kind, args, who, now, now);
	if (err == SERR_OK) {
		*id = (int64_t)sqlite3_last_insert_rowid(st->db);
		snprintf(what, sizeof(what), "queued by %s", who);
		err = task_event(st, client, *id, kind, what);
	}
	return finish(st, err, errbuf, errlen);
}

enum serr store_tasks_due(struct store *st, int64_t client, int64_t resend_before,
			  int64_t now, json_t **out)
{
	enum serr err = begin(st, NULL, 0);
	sqlite3_stmt *stmt = NULL;
	json_t *list = json_array(), *t;
	int rc = SQLITE_DONE;
	int64_t id;

	*out = NULL;
	if (err != SERR_OK || !list) {
		json_decref(list);
		return finish(st, err == SERR_OK ? SERR_NOMEM : err, NULL, 0);
	}
	stmt = prepare(st, NULL, 0, "SELECT id, kind, args, state FROM tasks WHERE client = ? "
		       "AND (state = 'queued' OR (state = 'delivered' AND sent <= ?)) ORDER BY id",
		       "ii", client, resend_before);
	if (!stmt)
		err = SERR_DB;
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 0);
		t = json_loads((const char *)sqlite3_column_text(stmt, 2), 0, NULL);
		if (!t || json_object_set_new(t, "id", json_integer(id)) != 0 ||
		    json_object_set_new(t, "kind", json_string((const char *)
							sqlite3_column_text(stmt, 1))) != 0 ||
		    json_array_append_new(list, t) != 0) {
			err = SERR_NOMEM;
			break;
		}
		if (strcmp((const char *)sqlite3_column_text(stmt, 3), "queued") == 0)
			err = task_event(st, client, id, (const char *)sqlite3_column_text(stmt, 1),
					 "delivered");
	}
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = SERR_DB;
	sqlite3_finalize(stmt);
	if (err == SERR_OK && json_array_size(list))
		err = sql_exec(st, NULL, 0, "UPDATE tasks SET state = 'delivered', sent = ?3, "
			       "updated = CASE state WHEN 'queued' THEN ?3 ELSE updated END "
			       "WHERE client = ?1 AND (state = 'queued' OR (state = 'delivered' "
			       "AND sent <= ?2))", "iii", client, resend_before, now);
	err = finish(st, err, NULL, 0);
	if (err == SERR_OK)
		*out = list;
	else
		json_decref(list);
	return err;
}

enum serr store_tasks_seen(struct store *st, int64_t client, int64_t seen)
{
	return sql_exec(st, NULL, 0, "UPDATE tasks SET sent = 0 WHERE client = ? AND "
			"state = 'delivered' AND id > ? AND sent > 0", "ii", client, seen);
}

/* Makes a scan task the client's last scan, a running one with its
 * progress, unless the client reported a later one (inside the caller's
 * transaction). */
static enum serr task_last_scan(struct store *st, int64_t client, int64_t id)
{
	return sql_exec(st, NULL, 0, "UPDATE clients SET last_scan = (SELECT json_object("
			"'task', id, 'source', 'scan_now', 'started', started, 'finished', "
			"finished, 'state', state, 'files', json_extract(progress, '$.files'), "
			"'bytes', json_extract(progress, '$.bytes'), 'detections', "
			"json_extract(progress, '$.detections')) FROM tasks WHERE id = ?2) "
			"WHERE node = ?1 AND coalesce(json_extract(last_scan, '$.finished'), 0) <= "
			"(SELECT coalesce(finished, updated) FROM tasks WHERE id = ?2)", "ii",
			client, id);
}

enum serr store_task_report(struct store *st, int64_t client,
			    const struct store_task_report *r, char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	char *kind = NULL, *state = NULL, what[1200];
	int64_t now = (int64_t)time(NULL), files, bytes, hits;
	json_t *p;
	size_t i;

	if (err != SERR_OK)
		return err;
	if (sql_text(st, &kind, errbuf, errlen, "SELECT kind FROM tasks WHERE id = ? AND "
		     "client = ?", "ii", r->id, client) != SERR_OK ||
	    sql_text(st, &state, errbuf, errlen, "SELECT state FROM tasks WHERE id = ?", "i",
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
	err = sql_exec(st, errbuf, errlen, "UPDATE tasks SET state = ?2, progress = "
		       "coalesce(json(?3), progress), error = coalesce(?4, error), started = "
		       "coalesce(nullif(?5, 0), started), finished = coalesce(nullif(?6, 0), "
		       "finished), updated = ?7 WHERE id = ?1", "isssiii", r->id, r->state,
		       r->progress, r->error, r->started, r->finished, now);
	/* Each report, progress too: the client's last scan is live. */
	if (err == SERR_OK && strcmp(kind, "scan") == 0)
		err = task_last_scan(st, client, r->id);
	if (err != SERR_OK || strcmp(state, r->state) == 0)
		goto out;
	p = r->progress ? json_loads(r->progress, 0, NULL) : NULL;
	files = json_integer_value(json_object_get(p, "files"));
	bytes = json_integer_value(json_object_get(p, "bytes"));
	hits = json_integer_value(json_object_get(p, "detections"));
	json_decref(p);
	if (strcmp(r->state, "failed") == 0)
		snprintf(what, sizeof(what), "failed: %s", r->error ? r->error : "no reason given");
	else if (strcmp(kind, "scan") == 0 && strcmp(r->state, "running") != 0)
		snprintf(what, sizeof(what), "%s: %lld files, %lld bytes, %lld detections",
			 r->state, (long long)files, (long long)bytes, (long long)hits);
	else
		snprintf(what, sizeof(what), "%s", r->state);
	err = task_event(st, client, r->id, kind, what);
out:
	free(kind);
	free(state);
	return finish(st, err, errbuf, errlen);
}

enum serr store_task_cancel(struct store *st, int64_t id, const char *who, int64_t max,
			    int64_t *client, int64_t *cancel, char *errbuf, size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	char *kind = NULL, *state = NULL, what[300], args[64];

	*cancel = 0;
	*client = 0;
	if (err != SERR_OK)
		return err;
	if (sql_int(st, client, NULL, 0, "SELECT client FROM tasks WHERE id = ?", "i", id) !=
	    SERR_OK ||
	    sql_text(st, &kind, errbuf, errlen, "SELECT kind FROM tasks WHERE id = ?", "i", id) !=
	    SERR_OK ||
	    sql_text(st, &state, errbuf, errlen, "SELECT state FROM tasks WHERE id = ?", "i",
		     id) != SERR_OK) {
		util_set_msg(errbuf, errlen, "no task %lld", (long long)id);
		err = SERR_NOENT;
		goto out;
	}
	if (strcmp(state, "queued") == 0) {
		err = sql_exec(st, errbuf, errlen, "UPDATE tasks SET state = 'cancelled', "
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
	err = finish(st, SERR_OK, errbuf, errlen);
	free(kind);
	free(state);
	if (err != SERR_OK)
		return err;
	snprintf(args, sizeof(args), "{\"task\":%lld}", (long long)id);
	return store_task_add(st, *client, "cancel", args, who, max, cancel, errbuf, errlen);
out:
	free(kind);
	free(state);
	return finish(st, err, errbuf, errlen);
}

enum serr store_tasks_list(struct store *st, const struct store_task_filter *f, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, SUBTREE_CTE
		"SELECT t.id, t.client, c.hostname, t.kind, t.args, t.state, t.progress, t.error, "
		"t.who, t.created, t.updated, nullif(t.sent, 0) AS delivered, t.started, "
		"t.finished FROM tasks t JOIN clients c ON c.node = t.client "
		"WHERE (?1 = 0 OR t.client IN (SELECT id FROM sub)) AND (?2 = 0 OR t.id = ?2) "
		"AND (?3 IS NULL OR t.state = ?3) AND (?4 IS NULL OR t.kind = ?4) AND "
		"t.created >= ?5 AND (?6 = 0 OR t.id < ?6) ORDER BY t.id DESC LIMIT ?7",
		"iissiii", f->node, f->id, f->state, f->kind, f->since, f->before, f->limit),
		(1u << 4) | (1u << 6), out);
}

enum serr store_tasks_expire(struct store *st, int64_t older, int64_t now, int64_t *n)
{
	enum serr err = begin(st, NULL, 0);
	sqlite3_stmt *stmt;
	int rc = SQLITE_DONE;
	char what[200];

	*n = 0;
	if (err != SERR_OK)
		return err;
	snprintf(what, sizeof(what), "failed: expired (no report from its agent for %llds, "
		 "tasks.expire)", (long long)older);
	stmt = prepare(st, NULL, 0, "SELECT id, client, kind FROM tasks WHERE " TASK_OPEN
		       " AND updated < ?", "i", now - older);
	if (!stmt)
		err = SERR_DB;
	while (err == SERR_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		err = task_event(st, sqlite3_column_int64(stmt, 1), sqlite3_column_int64(stmt, 0),
				 (const char *)sqlite3_column_text(stmt, 2), what);
		++*n;
	}
	if (err == SERR_OK && rc != SQLITE_DONE)
		err = SERR_DB;
	sqlite3_finalize(stmt);
	if (err == SERR_OK)
		err = sql_exec(st, NULL, 0, "UPDATE tasks SET state = 'failed', error = ?, "
			       "updated = ? WHERE " TASK_OPEN " AND updated < ?", "sii", what + 8,
			       now, now - older);
	return finish(st, err, NULL, 0);
}

enum serr store_tasks_prune(struct store *st, int64_t keep, int64_t now, int64_t *n)
{
	enum serr err = sql_exec(st, NULL, 0, "DELETE FROM tasks WHERE NOT " TASK_OPEN " AND "
				 "updated < ?", "i", now - keep);

	*n = err == SERR_OK ? (int64_t)sqlite3_changes(st->db) : 0;
	return err;
}

enum serr store_client_last_scan(struct store *st, int64_t client, const char *scan)
{
	/* A status saying that the task's scan runs is not newer than the
	 * task's own progress reports (an agent writes it at the start). */
	return sql_exec(st, NULL, 0, "UPDATE clients SET last_scan = json(?2) WHERE node = ?1 "
			"AND coalesce(json_extract(last_scan, '$.finished'), "
			"json_extract(last_scan, '$.started'), 0) <= coalesce(json_extract(?2, "
			"'$.finished'), json_extract(?2, '$.started'), 0) AND NOT ("
			"json_extract(?2, '$.task') IS NOT NULL AND json_extract(?2, '$.task') IS "
			"json_extract(last_scan, '$.task') AND json_extract(?2, '$.state') IS "
			"'running' AND json_extract(last_scan, '$.state') IS 'running')", "is",
			client, scan);
}

enum serr store_quarantine_put(struct store *st, int64_t client, const json_t *items,
			       bool complete, int64_t max, json_t **gone, char *errbuf,
			       size_t errlen)
{
	enum serr err = begin(st, errbuf, errlen);
	int64_t now = (int64_t)time(NULL), count = 0;
	sqlite3_stmt *stmt;
	char *names;
	json_t *r;
	size_t i;
	int rc;

	*gone = json_array();
	if (err != SERR_OK || !*gone)
		return finish(st, err == SERR_OK ? SERR_NOMEM : err, errbuf, errlen);
	if (complete)
		err = sql_exec(st, errbuf, errlen, "UPDATE quarantine SET seen = 0 WHERE "
			       "client = ?", "i", client);
	json_array_foreach(items, i, r) {
		if (err != SERR_OK)
			break;
		names = json_dumps(json_object_get(r, "names"), JSON_COMPACT);
		if (!names) {
			err = SERR_NOMEM;
			break;
		}
		err = sql_exec(st, errbuf, errlen, "INSERT INTO quarantine (client, item, path, "
			       "size, sha256, names, time, source, state, reported, seen) VALUES "
			       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1) ON CONFLICT (client, "
			       "item) DO UPDATE SET path = ?3, size = ?4, sha256 = ?5, names = ?6, "
			       "time = ?7, source = ?8, state = ?9, reported = ?10, seen = 1",
			       "issississi", client,
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
		stmt = prepare(st, errbuf, errlen, "SELECT item FROM quarantine WHERE client = ? "
			       "AND seen = 0 AND central > 0", "i", client);
		while (stmt && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
			json_array_append_new(*gone, json_string((const char *)
								sqlite3_column_text(stmt, 0)));
		sqlite3_finalize(stmt);
		err = stmt ? sql_exec(st, errbuf, errlen, "DELETE FROM quarantine WHERE "
				      "client = ? AND seen = 0", "i", client) : SERR_DB;
	}
	if (err == SERR_OK)
		err = sql_int(st, &count, errbuf, errlen, "SELECT count(*) FROM quarantine WHERE "
			      "client = ?", "i", client);
	if (err == SERR_OK && count > max) {
		util_set_msg(errbuf, errlen, "items: the server keeps at most %lld quarantine "
			     "records of one agent (quarantine.max_items); this report makes %lld",
			     (long long)max, (long long)count);
		err = SERR_INVAL;
	}
	err = finish(st, err, errbuf, errlen);
	if (err != SERR_OK) {
		json_decref(*gone);
		*gone = NULL;
	}
	return err;
}

enum serr store_quarantine_list(struct store *st, int64_t node, const char *item,
				const char *state, int64_t limit, json_t **out)
{
	return query_rows(prepare(st, NULL, 0, SUBTREE_CTE
		"SELECT q.client, c.hostname, q.item AS id, q.path, q.size, q.sha256, q.names, "
		"q.time, q.source, q.state, q.reported, q.central FROM quarantine q JOIN clients c "
		"ON c.node = q.client WHERE (?1 = 0 OR q.client IN (SELECT id FROM sub)) AND "
		"(?2 IS NULL OR q.item = ?2) AND (?3 IS NULL OR q.state = ?3) "
		"ORDER BY q.time DESC, q.client, q.item LIMIT ?4", "issi", node, item, state,
		limit), 1u << 6, out);
}

enum serr store_quarantine_central(struct store *st, int64_t client, const char *item,
				   int64_t size)
{
	return sql_exec(st, NULL, 0, "UPDATE quarantine SET central = ? WHERE client = ? AND "
			"item = ?", "iis", size, client, item);
}

enum serr store_quarantine_central_total(struct store *st, int64_t *total)
{
	return sql_int(st, total, NULL, 0, "SELECT coalesce(sum(central), 0) FROM quarantine",
		       "");
}
