/* postgres.c -- the database layer's PostgreSQL backend (see db.h), on
 * libpq: the only code of wardd that names PostgreSQL, and the
 * PostgreSQL form of the schema.
 *
 * The store's portable SQL is rewritten once per statement text: `?` and
 * `?N` become `$N` (outside quoted literals and names). Statements are
 * prepared on the server once per session and cached by their text as
 * SQLite's are. Integers go as int8, text as text, blobs as bytea in
 * binary; results come as text (bytea unescaped when read).
 *
 * A connection lost (PostgreSQL restarted, a network cut) is opened
 * again at the next statement that is not inside a transaction, which
 * is then run once more: a statement outside a transaction that failed
 * on a dead connection did nothing. One inside a transaction fails with
 * it, and the store's caller sees SERR_DB: the transaction never
 * happened.
 */
#include "server/db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* Parameters of one statement, at most (the store's use 8). */
#define MAX_PARAMS 16

/* Type OIDs (catalog/pg_type.h is the server's; these never change). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

struct pg_stmt {
	struct db_stmt base;
	char *sql;                 /* the store's text, owned */
	char name[16];             /* kept: its server-side statement ("": not yet) */
	bool keep;                 /* prepared on the server, run many times */
	/* This run's parameters: text (ints in place) or a bytea. */
	char *values[MAX_PARAMS];
	int lengths[MAX_PARAMS];
	int formats[MAX_PARAMS];
	Oid types[MAX_PARAMS];
	bool owned[MAX_PARAMS];    /* values[i] is a copy this statement frees */
	char ints[MAX_PARAMS][24];
	/* This run's result, fetched whole at its first step. */
	PGresult *res;
	int row;                   /* the current row, -1 before the first */
	int64_t changes;
	unsigned char *blob;       /* the last bytea read, unescaped (libpq's memory) */
};

struct db_bell {
	PGconn *c;
	const char *const *channels;
	uint64_t asked_ns;   /* when the unanswered question was sent (0: none) */
};

struct pg_db {
	struct db base;
	PGconn *c;
	char *target;              /* the connection URI (owned): for pg_dump */
	unsigned next_name;
	enum db_open_mode mode;
	bool unreachable;          /* db_set_reachable(): no reconnecting meanwhile */
	struct db_bell *bell;      /* db_postgres_set_bell(): asked whether the server lives */
	uint64_t next_reconnect_ns; /* no try to reconnect before (the monotonic clock) */
};

/* How long a statement may wait for PostgreSQL before the server is
 * asked, on the bell's connection, whether it lives: one that answers
 * there within PROBE_MS is busy (a lock held by a long transaction, a
 * checkpoint) and is waited for again, up to MAX_WAIT_MS in all; one that
 * does not (stopped, or cut off with its kernel or a middlebox still
 * acknowledging) is given up, the connection with it, rather than holding
 * wardd's loop for as long as it stays silent. */
#define WAIT_MS 10000
#define PROBE_MS 3000
#define MAX_WAIT_MS 600000

/* Lost, the connection is opened again at most this often: each try may
 * wait for connect_timeout. */
#define RECONNECT_MS 5000

/* The session settings every connection starts with. No JIT: the store's
 * statements touch a few rows each, and a recursive query's estimate made
 * PostgreSQL compile one for 200 ms. */
static const char *session_sql(enum db_open_mode mode)
{
	return mode == DB_OPEN_READ ?
	       "SET default_transaction_read_only = on; SET client_min_messages = warning; "
	       "SET jit = off" : "SET client_min_messages = warning; SET jit = off";
}

/* Waits for the answer to what was just sent (sent: what the PQsend*
 * call returned) until WAIT_MS: the connection is non-blocking, so that
 * sending a large statement cannot block either. Returns the first
 * failed result, or else the last; NULL (a failure, whose words are
 * PQerrorMessage()'s) when nothing came. Past WAIT_MS the connection is
 * cut: the next statement opens another. */
/* Whether the server answers a question on the bell's connection within
 * PROBE_MS. Its notifications stay in libpq's queue for the doorbell,
 * which reads them at its next tick (the socket's data is taken here). */
static bool lives(struct db_bell *b)
{
	uint64_t deadline = util_now_ns() + (uint64_t)PROBE_MS * 1000000, now;
	struct pollfd p;
	PGresult *res;

	if (!b || PQstatus(b->c) != CONNECTION_OK)
		return false;
	if (!b->asked_ns) {
		if (!PQsendQuery(b->c, "SELECT 1"))
			return false;
		b->asked_ns = util_now_ns();
	}
	p = (struct pollfd){ .fd = PQsocket(b->c), .events = POLLIN };
	while (b->asked_ns) {
		now = util_now_ns();
		if (now >= deadline ||
		    (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 && errno != EINTR))
			return false;
		if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(b->c))
			return false;
		while (b->asked_ns && !PQisBusy(b->c)) {
			res = PQgetResult(b->c);
			if (!res)
				b->asked_ns = 0;
			PQclear(res);
		}
	}
	return true;
}

static PGresult *await(struct pg_db *d, int sent)
{
	uint64_t start = util_now_ns(), deadline = start + (uint64_t)WAIT_MS * 1000000;
	struct pollfd p = { .fd = PQsocket(d->c) };
	PGresult *res, *keep = NULL;
	uint64_t now;
	int flushed = sent ? 1 : -1;

	while (flushed >= 0) {
		flushed = PQflush(d->c);
		while (flushed == 0 && !PQisBusy(d->c)) {
			res = PQgetResult(d->c);
			if (!res)
				return keep;
			if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
				PQclear(res);
			} else {
				PQclear(keep);
				keep = res;
			}
		}
		now = util_now_ns();
		if (flushed < 0)
			break;
		if (now >= deadline && now - start < (uint64_t)MAX_WAIT_MS * 1000000 &&
		    lives(d->bell)) {
			deadline = util_now_ns() + (uint64_t)WAIT_MS * 1000000;
			continue;
		}
		if (now >= deadline) {
			log_msg(LOG_LVL_WARN, "database: PostgreSQL did not answer within %llu s, "
				"nor on the connection that hears the other servers; the "
				"connection is given up",
				(unsigned long long)((now - start) / 1000000000));
			shutdown(p.fd, SHUT_RDWR);
			PQconsumeInput(d->c);
			d->next_reconnect_ns = now + (uint64_t)RECONNECT_MS * 1000000;
			break;
		}
		p.events = POLLIN | (flushed == 1 ? POLLOUT : 0);
		p.revents = 0;
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 && errno != EINTR)
			break;
		if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(d->c))
			break;
	}
	PQclear(keep);
	return NULL;
}

/* The schema of version 13 (the SQLite backend's steps 1 to 13 in one),
 * which PostgreSQL databases start at. Every integer is a BIGINT (times,
 * sizes, and STORE_NEVER, the largest int64); ids the server assigns
 * itself (nodes) are plain keys, those the database assigns are
 * identities; a blob is BYTEA. */
static const char schema_v13[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO meta VALUES ('settings_rev', 0), ('observed', 0);"
	"CREATE TABLE nodes ("
	" id BIGINT PRIMARY KEY,"
	" parent BIGINT REFERENCES nodes(id),"
	" kind BIGINT NOT NULL CHECK (kind IN (0, 1, 2)),"
	" name TEXT NOT NULL,"
	" CHECK ((kind = 0) = (parent IS NULL)));"
	"CREATE INDEX nodes_parent ON nodes(parent);"
	"CREATE UNIQUE INDEX nodes_domain_name ON nodes(parent, name) WHERE kind = 1;"
	"INSERT INTO nodes (id, parent, kind, name) VALUES (1, NULL, 0, '');"
	"CREATE TABLE clients ("
	" node BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,"
	" uuid TEXT NOT NULL UNIQUE,"
	" hostname TEXT NOT NULL,"
	" secret BYTEA NOT NULL,"
	" status TEXT,"
	" last_seen BIGINT NOT NULL DEFAULT 0,"
	" eff_json TEXT,"
	" eff_version BIGINT NOT NULL DEFAULT 0,"
	" acked_version BIGINT NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'online',"
	" move TEXT,"
	" update_req BIGINT NOT NULL DEFAULT 0,"
	" seen_observed BIGINT NOT NULL DEFAULT 0,"
	" move_version BIGINT NOT NULL DEFAULT 0,"
	" last_scan TEXT,"
	" roaming BIGINT NOT NULL DEFAULT 0,"
	" frontend BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE settings ("
	" node BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (node, key));"
	"CREATE TABLE admins ("
	" name TEXT PRIMARY KEY,"
	" pwhash TEXT NOT NULL,"
	" role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'read-only')));"
	"CREATE TABLE server_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE tokens ("
	" hash BYTEA PRIMARY KEY,"
	" kind BIGINT NOT NULL,"
	" subject TEXT NOT NULL,"
	" expires BIGINT NOT NULL,"
	" ends BIGINT NOT NULL DEFAULT 0,"
	" uses BIGINT NOT NULL DEFAULT 0,"
	" max_uses BIGINT NOT NULL DEFAULT 0,"
	" observed_expires BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE deliveries ("
	" client BIGINT PRIMARY KEY REFERENCES clients(node) ON DELETE CASCADE,"
	" version BIGINT NOT NULL,"
	" attempts BIGINT NOT NULL DEFAULT 0,"
	" next_attempt BIGINT NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL,"
	" frontend BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX deliveries_order ON deliveries(created, client);"
	"CREATE INDEX deliveries_due ON deliveries(frontend, next_attempt, created, client);"
	"CREATE TABLE packages ("
	" file TEXT PRIMARY KEY,"
	" component TEXT NOT NULL,"
	" version BIGINT NOT NULL,"
	" base BIGINT NOT NULL,"
	" size BIGINT NOT NULL,"
	" envelope TEXT NOT NULL,"
	" created BIGINT NOT NULL,"
	" UNIQUE (component, version, base));"
	"CREATE TABLE sps_servers ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" uuid TEXT UNIQUE NOT NULL,"
	" secret BYTEA NOT NULL,"
	" hostname TEXT NOT NULL,"
	" names TEXT NOT NULL,"
	" enrolled BIGINT NOT NULL,"
	" last_seen BIGINT NOT NULL DEFAULT 0,"
	" status TEXT,"
	" pin TEXT,"
	" state TEXT NOT NULL DEFAULT 'enabled');"
	"CREATE TABLE events ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" time BIGINT NOT NULL,"
	" kind TEXT NOT NULL,"
	" client BIGINT,"
	" hostname TEXT,"
	" domain TEXT,"
	" message TEXT NOT NULL,"
	" observed BIGINT NOT NULL DEFAULT 0,"
	" detail TEXT);"
	"CREATE INDEX events_time ON events(time);"
	"CREATE INDEX events_client ON events(client, time);"
	"CREATE TABLE removed_clients ("
	" node BIGINT PRIMARY KEY,"
	" uuid TEXT NOT NULL,"
	" hostname TEXT NOT NULL,"
	" secret BYTEA NOT NULL,"
	" domain TEXT NOT NULL,"
	" settings TEXT NOT NULL,"
	" status TEXT,"
	" last_seen BIGINT NOT NULL,"
	" removed BIGINT NOT NULL,"
	" removed_observed BIGINT NOT NULL,"
	" why TEXT NOT NULL);"
	"CREATE TABLE tasks ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" client BIGINT NOT NULL REFERENCES clients(node) ON DELETE CASCADE,"
	" kind TEXT NOT NULL,"
	" args TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'running',"
	"  'completed', 'cancelled', 'failed')),"
	" progress TEXT,"
	" error TEXT,"
	" who TEXT NOT NULL,"
	" created BIGINT NOT NULL,"
	" updated BIGINT NOT NULL,"
	" sent BIGINT NOT NULL DEFAULT 0,"
	" started BIGINT,"
	" finished BIGINT);"
	"CREATE INDEX tasks_client ON tasks(client, state);"
	"CREATE INDEX tasks_created ON tasks(created);"
	"CREATE TABLE quarantine ("
	" client BIGINT NOT NULL REFERENCES clients(node) ON DELETE CASCADE,"
	" item TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" size BIGINT NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" names TEXT NOT NULL,"
	" time BIGINT NOT NULL,"
	" source TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reported BIGINT NOT NULL,"
	" central BIGINT NOT NULL DEFAULT 0,"
	" seen BIGINT NOT NULL DEFAULT 1,"
	" PRIMARY KEY (client, item));"
	"CREATE TABLE deployments ("
	" id TEXT PRIMARY KEY,"
	" token TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" address TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('script', 'package', 'enrolled', 'failed',"
	"  'timed-out', 'cancelled')),"
	" arch TEXT,"
	" version TEXT,"
	" message TEXT,"
	" client BIGINT,"
	" started BIGINT NOT NULL,"
	" updated BIGINT NOT NULL,"
	" deadline BIGINT NOT NULL);"
	"CREATE INDEX deployments_state ON deployments(state, deadline);"
	"CREATE INDEX deployments_started ON deployments(started);"
	"CREATE TABLE alert_channels ("
	" name TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('email', 'syslog', 'webhook')),"
	" config TEXT NOT NULL,"
	" updated BIGINT NOT NULL);"
	"CREATE TABLE alert_rules ("
	" name TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" scope TEXT NOT NULL,"
	" params TEXT NOT NULL,"
	" channels TEXT NOT NULL,"
	" every BIGINT NOT NULL,"
	" enabled BIGINT NOT NULL,"
	" last_sent BIGINT NOT NULL DEFAULT 0,"
	" dropped BIGINT NOT NULL DEFAULT 0,"
	" updated BIGINT NOT NULL);"
	"CREATE TABLE alert_items ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" rule TEXT NOT NULL,"
	" time BIGINT NOT NULL,"
	" subject TEXT NOT NULL,"
	" detail TEXT NOT NULL);"
	"CREATE INDEX alert_items_rule ON alert_items(rule, id);"
	"CREATE TABLE alert_open ("
	" rule TEXT NOT NULL,"
	" subject TEXT NOT NULL,"
	" since BIGINT NOT NULL,"
	" PRIMARY KEY (rule, subject));"
	"CREATE TABLE alert_messages ("
	" id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" time BIGINT NOT NULL,"
	" rule TEXT NOT NULL,"
	" channel TEXT NOT NULL,"
	" subject TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),"
	" attempts BIGINT NOT NULL DEFAULT 0,"
	" next_try BIGINT NOT NULL,"
	" error TEXT,"
	" done BIGINT);"
	"CREATE INDEX alert_messages_pending ON alert_messages(state, next_try);"
	"CREATE INDEX alert_messages_time ON alert_messages(time);";

/* Schema version 14 (as SQLite's). */
static const char schema_v14[] =
	"CREATE TABLE limits ("
	" kind BIGINT NOT NULL,"
	" name TEXT NOT NULL,"
	" failures BIGINT NOT NULL,"
	" since BIGINT NOT NULL,"
	" ends BIGINT NOT NULL,"
	" PRIMARY KEY (kind, name));"
	"CREATE TABLE package_parts ("
	" file TEXT NOT NULL,"
	" part BIGINT NOT NULL,"
	" data BYTEA NOT NULL,"
	" PRIMARY KEY (file, part));";

static const struct db_migration steps[] = {
	{ 13, "the schema of version 13, at once", schema_v13 },
	{ 14, "limits and package files shared by every server", schema_v14 },
};

static struct pg_db *conn(struct db *db)
{
	return (struct pg_db *)db;
}

static struct pg_stmt *stmt(struct db_stmt *s)
{
	return (struct pg_stmt *)s;
}

/* Connects to target with bounds on waiting that the URI may override:
 * a server gone from the network is given up after about 10 s (at
 * connection, and for each statement sent), rather than holding wardd's
 * loop for the minutes TCP would wait. NULL when out of memory. */
static PGconn *connect_to(const char *target)
{
	static const char *const keys[] = { "connect_timeout", "tcp_user_timeout",
		"keepalives_idle", "keepalives_interval", "keepalives_count", "dbname", NULL };
	const char *values[] = { "10", "10000", "10", "3", "3", target, NULL };

	return PQconnectdbParams(keys, values, 1);
}

/* Reports what failed: PostgreSQL's message, then the operation (its
 * first words when it is SQL). A unique key taken is SERR_EXIST; running
 * out of memory, SERR_NOMEM; anything else is the database's failure. */
static enum serr fail(PGconn *c, const PGresult *res, const char *what, char *errbuf,
		      size_t errlen)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	size_t n;

	/* Without the server's words (a lost connection), libpq's. */
	if (!msg)
		msg = PQerrorMessage(c);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	util_set_msg(errbuf, errlen, "database: %.*s (in %.60s%s)", (int)n, msg, what,
		     strlen(what) > 60 ? "..." : "");
	if (state && strcmp(state, "23505") == 0)
		return SERR_EXIST;
	if (state && strcmp(state, "55P03") == 0)
		return SERR_BUSY;
	return state && strcmp(state, "53200") == 0 ? SERR_NOMEM : SERR_DB;
}

/* Makes a new connection ready: non-blocking (await()), its session's
 * settings made. */
static bool ready(struct pg_db *d, char *errbuf, size_t errlen)
{
	PGresult *res;
	bool ok;

	if (PQsetnonblocking(d->c, 1) != 0) {
		util_set_msg(errbuf, errlen, "%s", PQerrorMessage(d->c));
		return false;
	}
	res = await(d, PQsendQuery(d->c, session_sql(d->mode)));
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fail(d->c, res, "SET", errbuf, errlen);
	PQclear(res);
	return ok;
}

/* Opens the connection again after it was lost (at most once every
 * RECONNECT_MS, and not while the doorbell finds the database out of
 * reach: each try may hold the loop for connect_timeout); the server-side
 * statements died with the old session. */
static bool reconnect(struct pg_db *d)
{
	uint64_t now = util_now_ns();
	char why[256];
	size_t i;

	if (d->unreachable || now < d->next_reconnect_ns)
		return false;
	PQreset(d->c);
	/* Counted from the end of this try: a try that waited out
	 * connect_timeout (longer than RECONNECT_MS) would otherwise let the
	 * next statement try again at once, and the loop would do nothing
	 * else, its timers (the doorbell's) included, while the database is
	 * out of reach. */
	if (PQstatus(d->c) != CONNECTION_OK || !ready(d, why, sizeof(why))) {
		d->next_reconnect_ns = util_now_ns() + (uint64_t)RECONNECT_MS * 1000000;
		log_msg(LOG_LVL_WARN, "database: the connection to PostgreSQL was lost, and "
			"opening it again failed: %s", PQstatus(d->c) != CONNECTION_OK ?
			PQerrorMessage(d->c) : why);
		return false;
	}
	log_msg(LOG_LVL_INFO, "database: the connection to PostgreSQL was lost; opened again");
	for (i = 0; i < DB_CACHE_SLOTS; i++)
		if (d->base.cache[i])
			((struct pg_stmt *)d->base.cache[i])->name[0] = '\0';
	return true;
}

/* Whether a statement that just failed should be run again: the
 * connection was lost outside a transaction (so it did nothing) and is
 * back. */
static bool retry(struct pg_db *d, const PGresult *res, bool idle_before)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	/* The server may say it ends the session (shutting down, 57P0x), or
	 * libpq find it gone (an error of its own, no SQLSTATE), before the
	 * connection's status says so. */
	bool lost = PQstatus(d->c) == CONNECTION_BAD || !state ||
		    strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0;

	return idle_before && lost && reconnect(d);
}

/* Rewrites the store's `?` and `?N` into `$N`, outside quoted literals and
 * names; *nparams gets the highest number. NULL when out of memory or
 * past MAX_PARAMS. The caller frees the result. */
static char *rewrite(const char *sql, int *nparams)
{
	size_t n = strlen(sql), o = 0;
	char *out = malloc(n * 3 + 1), quote = 0;
	int next = 1, hi = 0, k;
	const char *p;

	if (!out)
		return NULL;
	for (p = sql; *p; p++) {
		if (quote || *p == '\'' || *p == '"' || *p != '?') {
			if (quote && *p == quote)
				quote = 0;
			else if (!quote && (*p == '\'' || *p == '"'))
				quote = *p;
			out[o++] = *p;
			continue;
		}
		k = 0;
		if (p[1] >= '1' && p[1] <= '9')
			while (p[1] >= '0' && p[1] <= '9' && k <= MAX_PARAMS)
				k = k * 10 + (*++p - '0');
		else
			k = next++;
		if (k > MAX_PARAMS) {
			free(out);
			return NULL;
		}
		if (k > hi)
			hi = k;
		o += (size_t)snprintf(out + o, 4, "$%d", k);
	}
	out[o] = '\0';
	*nparams = hi;
	return out;
}

/* Forgets the last run: its parameters and its result. */
static void clear_run(struct pg_stmt *s)
{
	int i;

	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
	s->changes = 0;
	PQfreemem(s->blob);
	s->blob = NULL;
	for (i = 0; i < MAX_PARAMS; i++) {
		if (s->owned[i])
			free(s->values[i]);
		s->values[i] = NULL;
		s->owned[i] = false;
		s->lengths[i] = 0;
		s->formats[i] = 0;
		s->types[i] = 0;
	}
}

/* Ends s for good, its server-side statement with it. */
static void pg_destroy(struct db_stmt *ds)
{
	struct pg_stmt *s = stmt(ds);
	struct pg_db *d = conn(ds->db);
	char sql[32];

	if (s->name[0] && PQstatus(d->c) == CONNECTION_OK) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
		PQclear(await(d, PQsendQuery(d->c, sql)));
	}
	clear_run(s);
	free(s->sql);
	free(s);
}

static void pg_close(struct db *db)
{
	struct pg_db *d = conn(db);

	if (!db)
		return;
	PQfinish(d->c);
	free(d->target);
	free(d);
}

/* Runs sql (no parameters), once more if the connection was lost
 * outside a transaction. */
static PGresult *exec_sql(struct pg_db *d, const char *sql)
{
	bool idle = PQtransactionStatus(d->c) == PQTRANS_IDLE ||
		    PQstatus(d->c) == CONNECTION_BAD;
	PGresult *res;

	if (PQstatus(d->c) == CONNECTION_BAD && idle)
		reconnect(d);
	res = await(d, PQsendQuery(d->c, sql));
	if (PQresultStatus(res) == PGRES_FATAL_ERROR && retry(d, res, idle)) {
		PQclear(res);
		res = await(d, PQsendQuery(d->c, sql));
	}
	return res;
}

static enum serr pg_exec(struct db *db, const char *sql, char *errbuf, size_t errlen)
{
	PGresult *res = exec_sql(conn(db), sql);
	ExecStatusType st = PQresultStatus(res);
	enum serr err = SERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = fail(conn(db)->c, res, sql, errbuf, errlen);
	PQclear(res);
	return err;
}

/* Connects to the URI target; DB_OPEN_READ makes a session that can
 * write nothing. Notices (IF NOT EXISTS and the like) are not logged. */
static struct db *pg_open(const char *target, enum db_open_mode mode, char *errbuf,
			  size_t errlen)
{
	struct pg_db *d = calloc(1, sizeof(*d));
	char why[512];

	if (!d || !(d->target = strdup(target))) {
		free(d);
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	d->base.be = &db_postgres;
	d->mode = mode;
	/* Messages name the database and its host, never the URI, which may
	 * hold a password. */
	d->c = connect_to(target);
	if (!d->c) {
		util_set_msg(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (PQstatus(d->c) != CONNECTION_OK) {
		util_set_msg(errbuf, errlen, "PostgreSQL database %s on %s: %s", PQdb(d->c),
			     PQhost(d->c), PQerrorMessage(d->c));
		goto fail;
	}
	if (!ready(d, why, sizeof(why))) {
		util_set_msg(errbuf, errlen, "PostgreSQL database %s on %s: %s", PQdb(d->c),
			     PQhost(d->c), why);
		goto fail;
	}
	return &d->base;
fail:
	pg_close(&d->base);
	return NULL;
}

/* Rows given as JSON (the store's batches: db_json_rows()). */
#define JSON_ROWS "json_array_elements(CAST(? AS json)) AS v"

/* keep: prepared on the server at its first run in a session; but not a
 * statement over rows given as JSON, planned at each run for the rows it
 * has. Prepared, PostgreSQL's generic plan guessed 100 rows and, made
 * while the tables were small, read every client's row to change one:
 * per enrollment and per single change, work in proportion to the fleet
 * (server_pg.scale). */
static struct db_stmt *pg_prepare(struct db *db, const char *sql, bool keep, char *errbuf,
				  size_t errlen)
{
	struct pg_stmt *s = calloc(1, sizeof(*s));

	if (!s || !(s->sql = strdup(sql))) {
		free(s);
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	s->base.be = &db_postgres;
	s->base.db = db;
	s->row = -1;
	s->keep = keep && !strstr(sql, JSON_ROWS);
	return &s->base;
}

static enum serr pg_bind_int(struct db_stmt *ds, int i, int64_t v)
{
	struct pg_stmt *s = stmt(ds);

	if (i < 1 || i > MAX_PARAMS)
		return SERR_DB;
	snprintf(s->ints[i - 1], sizeof(s->ints[i - 1]), "%lld", (long long)v);
	s->values[i - 1] = s->ints[i - 1];
	s->types[i - 1] = OID_INT8;
	return SERR_OK;
}

static enum serr pg_bind_text(struct db_stmt *ds, int i, const char *v)
{
	struct pg_stmt *s = stmt(ds);

	if (i < 1 || i > MAX_PARAMS)
		return SERR_DB;
	s->types[i - 1] = OID_TEXT;
	if (!v)
		return SERR_OK;
	s->values[i - 1] = strdup(v);
	if (!s->values[i - 1])
		return SERR_NOMEM;
	s->owned[i - 1] = true;
	return SERR_OK;
}

static enum serr pg_bind_blob(struct db_stmt *ds, int i, const void *v, size_t n)
{
	struct pg_stmt *s = stmt(ds);

	if (i < 1 || i > MAX_PARAMS || n > INT32_MAX)
		return SERR_DB;
	s->types[i - 1] = OID_BYTEA;
	s->formats[i - 1] = 1;
	if (!v)
		return SERR_OK;   /* NULL, as SQLite binds it */
	s->values[i - 1] = malloc(n ? n : 1);
	if (!s->values[i - 1])
		return SERR_NOMEM;
	memcpy(s->values[i - 1], v, n);
	s->owned[i - 1] = true;
	s->lengths[i - 1] = (int)n;
	return SERR_OK;
}

/* Sends the statement with its parameters: a cached one is prepared on
 * the server at its first run in a session (typed by that run's
 * parameters), others go in one message. */
static PGresult *send_stmt(struct pg_db *d, struct pg_stmt *s, const char *text, int n)
{
	PGresult *res;

	if (!s->keep)
		return await(d, PQsendQueryParams(d->c, text, n, s->types,
						  (const char *const *)s->values, s->lengths,
						  s->formats, 0));
	if (!s->name[0]) {
		snprintf(s->name, sizeof(s->name), "w%u", ++d->next_name);
		res = await(d, PQsendPrepare(d->c, s->name, text, n, s->types));
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			s->name[0] = '\0';
			return res;
		}
		PQclear(res);
	}
	return await(d, PQsendQueryPrepared(d->c, s->name, n, (const char *const *)s->values,
					    s->lengths, s->formats, 0));
}

/* Runs the statement, its whole result fetched at once: the store's
 * results are small, and each is stepped to its end before the next. */
static enum serr run(struct pg_stmt *s, char *errbuf, size_t errlen)
{
	struct pg_db *d = conn(s->base.db);
	bool idle = PQtransactionStatus(d->c) == PQTRANS_IDLE ||
		    PQstatus(d->c) == CONNECTION_BAD;
	ExecStatusType st;
	char *text;
	int n = 0;

	text = rewrite(s->sql, &n);
	if (!text) {
		util_set_msg(errbuf, errlen, "database: a statement with more than %d "
			     "parameters, or out of memory", MAX_PARAMS);
		return SERR_DB;
	}
	if (PQstatus(d->c) == CONNECTION_BAD && idle)
		reconnect(d);
	s->res = send_stmt(d, s, text, n);
	if (PQresultStatus(s->res) == PGRES_FATAL_ERROR && retry(d, s->res, idle)) {
		PQclear(s->res);
		s->res = send_stmt(d, s, text, n);
	}
	free(text);
	st = PQresultStatus(s->res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return fail(d->c, s->res, s->sql, errbuf, errlen);
	s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
	return SERR_OK;
}

static enum serr pg_step(struct db_stmt *ds, bool *row, char *errbuf, size_t errlen)
{
	struct pg_stmt *s = stmt(ds);
	enum serr err;

	*row = false;
	if (!s->res) {
		err = run(s, errbuf, errlen);
		if (err != SERR_OK)
			return err;
	}
	PQfreemem(s->blob);
	s->blob = NULL;
	if (s->row < PQntuples(s->res))
		s->row++;
	*row = s->row < PQntuples(s->res);
	return SERR_OK;
}

static int pg_column_count(struct db_stmt *s)
{
	return stmt(s)->res ? PQnfields(stmt(s)->res) : 0;
}

static const char *pg_column_name(struct db_stmt *s, int i)
{
	return PQfname(stmt(s)->res, i);
}

/* A numeric (sum() of BIGINTs) is an integer when it has no fraction. */
static enum db_type pg_column_type(struct db_stmt *ds, int i)
{
	struct pg_stmt *s = stmt(ds);

	if (PQgetisnull(s->res, s->row, i))
		return DB_NULL;
	switch (PQftype(s->res, i)) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_BOOL:
		return DB_INT;
	case OID_NUMERIC:
		return strpbrk(PQgetvalue(s->res, s->row, i), ".eEN") ? DB_REAL : DB_INT;
	case OID_FLOAT4:
	case OID_FLOAT8:
		return DB_REAL;
	case OID_BYTEA:
		return DB_BLOB;
	default:
		return DB_TEXT;
	}
}

static int64_t pg_column_int(struct db_stmt *ds, int i)
{
	struct pg_stmt *s = stmt(ds);
	const char *v = PQgetvalue(s->res, s->row, i);

	if (PQftype(s->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static double pg_column_real(struct db_stmt *ds, int i)
{
	return strtod(PQgetvalue(stmt(ds)->res, stmt(ds)->row, i), NULL);
}

static const char *pg_column_text(struct db_stmt *ds, int i)
{
	struct pg_stmt *s = stmt(ds);

	return PQgetisnull(s->res, s->row, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

static const void *pg_column_blob(struct db_stmt *ds, int i, size_t *n)
{
	struct pg_stmt *s = stmt(ds);

	*n = 0;
	if (PQgetisnull(s->res, s->row, i))
		return NULL;
	PQfreemem(s->blob);
	s->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), n);
	return s->blob;
}

static int64_t pg_changes(struct db_stmt *s)
{
	return stmt(s)->changes;
}

/* Counts the rows the run returned and changed as its work (the
 * server's counts of rows visited are kept per table, and late). */
static void pg_reset(struct db_stmt *ds)
{
	struct pg_stmt *s = stmt(ds);

	if (s->res && PQresultStatus(s->res) == PGRES_TUPLES_OK)
		ds->db->work += PQntuples(s->res);
	ds->db->work += s->changes;
	clear_run(s);
}

/* READ COMMITTED, PostgreSQL's own: each statement sees what was
 * committed before it began; where wardd servers sharing the database
 * could race, the store serializes them itself (store_int.h). */
static enum serr pg_begin(struct db *db, char *errbuf, size_t errlen)
{
	return pg_exec(db, "BEGIN", errbuf, errlen);
}

static enum serr pg_commit(struct db *db, char *errbuf, size_t errlen)
{
	PGresult *res = await(conn(db), PQsendQuery(conn(db)->c, "COMMIT"));
	enum serr err = SERR_OK;

	/* A transaction that had failed is rolled back by COMMIT, which says
	 * so only in its command tag. */
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		err = fail(conn(db)->c, res, "COMMIT", errbuf, errlen);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			util_set_msg(errbuf, errlen, "database: the transaction had failed and "
				     "was rolled back");
	}
	PQclear(res);
	return err;
}

static void pg_rollback(struct db *db)
{
	PQclear(await(conn(db), PQsendQuery(conn(db)->c, "ROLLBACK")));
}

static bool pg_in_transaction(struct db *db)
{
	PGTransactionStatusType t = PQtransactionStatus(conn(db)->c);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* Ward's advisory locks are pairs whose first number is this ("Ward"),
 * the second the lock's key; a server number's is FRONTEND_LOCK + it. */
#define WARD_LOCKS 1466004068
#define FRONTEND_LOCK 1000000

/* NOTIFY: sent at commit, once however often a transaction rings. The
 * channel is the store's constant, never input. */
static enum serr pg_ring(struct db *db, const char *channel, char *errbuf, size_t errlen)
{
	char sql[80];

	snprintf(sql, sizeof(sql), "NOTIFY %s", channel);
	return pg_exec(db, sql, errbuf, errlen);
}

/* An advisory lock of the transaction. */
static enum serr pg_lock(struct db *db, int64_t key, char *errbuf, size_t errlen)
{
	char sql[80];

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d, %d)", WARD_LOCKS, (int)key);
	return pg_exec(db, sql, errbuf, errlen);
}

/* An advisory lock of the session. One the connection lost (reconnected
 * after PostgreSQL restarted) is free for others again: what it guards
 * must also hold without it (imports: the package table's unique
 * versions). */
static enum serr pg_hold(struct db *db, int64_t key, bool on, bool *taken, char *errbuf,
			 size_t errlen)
{
	char sql[96];
	PGresult *res;
	enum serr err = SERR_OK;

	*taken = false;
	snprintf(sql, sizeof(sql), "SELECT %s(%d, %d)", on ? "pg_try_advisory_lock" :
		 "pg_advisory_unlock", WARD_LOCKS, (int)key);
	res = exec_sql(conn(db), sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		err = fail(conn(db)->c, res, sql, errbuf, errlen);
	else
		*taken = on && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return err;
}

/* The commit of this transaction does not wait for its WAL on disk: a
 * crash of PostgreSQL may lose it (the last ~0.6 s of such commits),
 * never half of it, and never a commit that waited. */
static enum serr pg_relax(struct db *db, char *errbuf, size_t errlen)
{
	return pg_exec(db, "SET LOCAL synchronous_commit = off; SET LOCAL lock_timeout = 100",
		       errbuf, errlen);
}

void db_postgres_set_bell(struct db *db, struct db_bell *bell)
{
	if (db->be == &db_postgres)
		conn(db)->bell = bell;
}

/* Within reach again (the doorbell just connected): a lost connection
 * is opened again at the next statement, without waiting RECONNECT_MS.
 * Out of reach (the doorbell heard no answer): the connection is given up
 * now, so that statements fail at once instead of each waiting WAIT_MS
 * for a database that does not answer (wardd's stop among them). */
static void pg_set_reachable(struct db *db, bool reachable)
{
	struct pg_db *d = conn(db);

	d->unreachable = !reachable;
	if (reachable) {
		d->next_reconnect_ns = 0;
	} else if (PQstatus(d->c) == CONNECTION_OK) {
		shutdown(PQsocket(d->c), SHUT_RDWR);
		PQconsumeInput(d->c);
	}
}


struct db_bell *db_postgres_bell_open(const char *target, int64_t frontend,
				      const char *const *channels, char *errbuf, size_t errlen)
{
	struct db_bell *b = calloc(1, sizeof(*b));
	PGresult *res = NULL;
	char sql[96];
	size_t i;

	if (!b) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	b->channels = channels;
	b->c = connect_to(target);
	if (!b->c || PQstatus(b->c) != CONNECTION_OK) {
		util_set_msg(errbuf, errlen, "PostgreSQL database %s on %s: %s",
			     b->c ? PQdb(b->c) : "?", b->c ? PQhost(b->c) : "?",
			     b->c ? PQerrorMessage(b->c) : "out of memory");
		goto fail;
	}
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, %lld)", WARD_LOCKS,
		 (long long)(FRONTEND_LOCK + frontend));
	res = PQexec(b->c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fail(b->c, res, "taking the server number", errbuf, errlen);
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		util_set_msg(errbuf, errlen, "another wardd on this database runs as frontend "
			     "%lld: give each its own server.frontend", (long long)frontend);
		goto fail;
	}
	for (i = 0; channels[i]; i++) {
		PQclear(res);
		snprintf(sql, sizeof(sql), "LISTEN %s", channels[i]);
		res = PQexec(b->c, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fail(b->c, res, sql, errbuf, errlen);
			goto fail;
		}
	}
	PQclear(res);
	return b;
fail:
	PQclear(res);
	db_postgres_bell_close(b);
	return NULL;
}

int db_postgres_bell_fd(const struct db_bell *b)
{
	return PQsocket(b->c);
}

uint64_t db_postgres_bell_ask(struct db_bell *b)
{
	uint64_t now = util_now_ns();

	if (b->asked_ns)
		return (now - b->asked_ns) / 1000000;
	if (PQsendQuery(b->c, "SELECT 1"))
		b->asked_ns = now;
	return 0;
}

uint64_t db_postgres_bell_waited(const struct db_bell *b)
{
	return b->asked_ns ? (util_now_ns() - b->asked_ns) / 1000000 : 0;
}

/* How many reads db_postgres_bell_read() makes at most of what waits. */
#define BELL_READS 256

int db_postgres_bell_read(struct db_bell *b)
{
	struct pollfd p = { .fd = PQsocket(b->c), .events = POLLIN };
	PGresult *res;
	PGnotify *n;
	int rung = 0, i, reads = 0;
	bool heard = false;

	/* All that waits: a loop held for seconds finds the notifications of
	 * that time queued before the answer to its question, more than one
	 * read of libpq takes, and would judge the database silent. */
	do {
		if (!PQconsumeInput(b->c) || PQstatus(b->c) != CONNECTION_OK)
			return -1;
		p.revents = 0;
	} while (++reads < BELL_READS && poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
	/* The answer to db_postgres_bell_ask(), taken in whole. */
	while (b->asked_ns && !PQisBusy(b->c)) {
		res = PQgetResult(b->c);
		if (!res)
			b->asked_ns = 0;
		PQclear(res);
	}
	while ((n = PQnotifies(b->c)) != NULL) {
		heard = true;
		for (i = 0; b->channels[i]; i++)
			if (strcmp(n->relname, b->channels[i]) == 0)
				rung |= 1 << i;
		PQfreemem(n);
	}
	/* Notifications still coming: the database lives, and the answer
	 * comes behind them; silence counts from the last heard. */
	if (heard && b->asked_ns)
		b->asked_ns = util_now_ns();
	return rung;
}

void db_postgres_bell_close(struct db_bell *b)
{
	if (!b)
		return;
	PQfinish(b->c);
	free(b);
}

/* PostgreSQL keeps its own pages whole (its write-ahead log, and data
 * checksums where the cluster has them): what is checked here is that
 * the server answers and the schema's version can be read. */
static enum serr pg_version(struct db *db, int64_t *v, char *errbuf, size_t errlen);

static enum serr pg_check(struct db *db, bool thorough, char *errbuf, size_t errlen)
{
	int64_t v;

	(void)thorough;
	return pg_version(db, &v, errbuf, errlen);
}

/* Each running wardd holds its server number's advisory lock for as long
 * as its doorbell's connection lives (db_postgres_bell_open()). */
static enum serr pg_servers(struct db *db, json_t **list, char *errbuf, size_t errlen)
{
	char sql[256];
	PGresult *res;
	enum serr err = SERR_OK;
	int i;

	snprintf(sql, sizeof(sql), "SELECT objid::bigint - %d FROM pg_locks WHERE locktype = "
		 "'advisory' AND granted AND classid = %u AND objsubid = 2 AND objid >= %d AND "
		 "database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		 "ORDER BY 1", FRONTEND_LOCK, (unsigned)WARD_LOCKS, FRONTEND_LOCK);
	res = exec_sql(conn(db), sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = fail(conn(db)->c, res, "listing the servers on the database", errbuf,
			   errlen);
		goto out;
	}
	*list = json_array();
	for (i = 0; *list && i < PQntuples(res); i++)
		if (json_array_append_new(*list, json_integer(strtoll(PQgetvalue(res, i, 0), NULL,
									10))))
			break;
	if (!*list || i < PQntuples(res)) {
		json_decref(*list);
		*list = NULL;
		err = SERR_NOMEM;
	}
out:
	PQclear(res);
	return err;
}

/* Whether the variable of entry (NAME=VALUE) is one an option of opts
 * with a value sets. */
static bool set_by(const PQconninfoOption *opts, const char *entry)
{
	size_t n = strcspn(entry, "=");

	for (; opts->keyword; opts++)
		if (opts->val && opts->envvar && strlen(opts->envvar) == n &&
		    strncmp(opts->envvar, entry, n) == 0)
			return true;
	return false;
}

/* The environment of a PostgreSQL client program reaching the database
 * of target: target's parameters as PG* variables (so a password never
 * goes on a command line, which every local user can read), then the
 * caller's but for those. NULL when target does not parse or memory ran
 * out; the caller frees each string and the array. */
static char **client_env(const char *target)
{
	PQconninfoOption *opts = PQconninfoParse(target, NULL), *o;
	extern char **environ;
	size_t n = 0, k = 0, i;
	char **env;

	if (!opts)
		return NULL;
	for (o = opts; o->keyword; o++)
		n++;
	for (i = 0; environ[i]; i++)
		n++;
	env = calloc(n + 1, sizeof(*env));
	for (o = opts; env && o->keyword; o++)
		if (o->val && o->envvar && !(env[k++] = util_printf("%s=%s", o->envvar, o->val)))
			goto fail;
	for (i = 0; env && environ[i]; i++)
		if (!set_by(opts, environ[i]) && !(env[k++] = strdup(environ[i])))
			goto fail;
	PQconninfoFree(opts);
	return env;
fail:
	PQconninfoFree(opts);
	for (i = 0; i < k; i++)
		free(env[i]);
	free(env);
	return NULL;
}

/* Runs a PostgreSQL client program (argv, found in PATH) on the
 * database of target, its standard output kept in *out (up to 64 KiB;
 * when out is not NULL) or dropped. SERR_OK when it exited with 0; else
 * the message names the program and its end (its own words go to
 * wardd's standard error, the log). */
static enum serr run_client(const char *target, char *const argv[], char **out,
			    char *errbuf, size_t errlen)
{
	char **env = client_env(target), buf[4096];
	struct util_buf text = { 0 };
	int status = 0, fd, pipefd[2] = { -1, -1 };
	enum serr err = SERR_OK;
	ssize_t n;
	pid_t pid;
	size_t i;

	if (!env) {
		util_set_msg(errbuf, errlen, "database: the URI does not parse, or out of memory");
		return SERR_DB;
	}
	if (out && pipe2(pipefd, O_CLOEXEC) != 0) {
		util_set_msg(errbuf, errlen, "%s: pipe: %s", argv[0], strerror(errno));
		err = SERR_IO;
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(out ? pipefd[1] : fd, STDOUT_FILENO);
		}
		execvpe(argv[0], argv, env);
		_exit(127);
	}
	if (pid < 0) {
		util_set_msg(errbuf, errlen, "%s: fork: %s", argv[0], strerror(errno));
		err = SERR_IO;
		goto out;
	}
	if (out) {
		close(pipefd[1]);
		pipefd[1] = -1;
		while ((n = read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			if (n > 0 && text.len < 65536 &&
			    util_buf_append(&text, buf, (size_t)n) != 0)
				err = SERR_NOMEM;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		util_set_msg(errbuf, errlen, "%s %s %d%s", argv[0],
			     WIFEXITED(status) ? "exited with" : "was killed by signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     WIFEXITED(status) && WEXITSTATUS(status) == 127 ?
			     " (is postgresql-client installed?)" : " (its words are in the log)");
		err = SERR_DB;
	}
	if (err == SERR_OK && out) {
		*out = text.data ? text.data : strdup("");
		text.data = NULL;
		err = *out ? SERR_OK : SERR_NOMEM;
	}
out:
	util_buf_free(&text);
	for (i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	for (i = 0; env[i]; i++)
		free(env[i]);
	free(env);
	return err;
}

/* pg_dump writes the database to out in its custom format, sharing the
 * snapshot of a read transaction of this connection (exported to it),
 * which stays open: the store describes the copy from it. */
static enum serr pg_snapshot(struct db *db, const char *out, char *errbuf, size_t errlen)
{
	char snapshot[64] = "--snapshot=", *argv[] = { "pg_dump", "--format=custom",
		"--no-owner", snapshot, "--file", (char *)out, NULL };
	enum serr err = pg_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errbuf,
				errlen);
	PGresult *res = err == SERR_OK ?
			await(conn(db), PQsendQuery(conn(db)->c, "SELECT pg_export_snapshot()")) :
			NULL;

	if (err == SERR_OK && (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
			       strlen(PQgetvalue(res, 0, 0)) > 48))
		err = fail(conn(db)->c, res, "exporting a snapshot", errbuf, errlen);
	if (err == SERR_OK) {
		snprintf(snapshot + 11, sizeof(snapshot) - 11, "%s", PQgetvalue(res, 0, 0));
		err = run_client(conn(db)->target, argv, NULL, errbuf, errlen);
	}
	PQclear(res);
	if (err != SERR_OK && pg_in_transaction(db))
		pg_rollback(db);
	return err;
}

/* The version in the dump's ward_schema, read by pg_restore as SQL
 * (which reads the dump's table of contents, and so checks it): the line
 * after the table's COPY. */
static enum serr pg_copy_version(const char *copy, int64_t *v, char *errbuf, size_t errlen)
{
	char *argv[] = { "pg_restore", "--data-only", "--table=ward_schema", "--file=-",
			 (char *)copy, NULL }, *out = NULL, *line, *end;
	enum serr err = run_client("postgresql://", argv, &out, errbuf, errlen);

	line = out ? strstr(out, "COPY public.ward_schema (version) FROM stdin;\n") : NULL;
	if (err == SERR_OK && line) {
		line = strchr(line, '\n') + 1;
		errno = 0;
		*v = strtoll(line, &end, 10);
		if (errno || end == line || *end != '\n')
			line = NULL;
	}
	if (err == SERR_OK && !line) {
		util_set_msg(errbuf, errlen, "%s: no schema version in the dump", copy);
		err = SERR_FORMAT;
	} else if (err != SERR_OK) {
		util_set_msg(errbuf, errlen, "%s: not a dump pg_restore reads", copy);
		err = SERR_FORMAT;
	}
	free(out);
	return err;
}

/* pg_restore, in one transaction: the dump's tables dropped and made
 * again, with their rows. */
static enum serr pg_restore(struct db *db, const char *copy, char *errbuf, size_t errlen)
{
	char dbname[256] = "--dbname=", *argv[] = { "pg_restore", "--clean", "--if-exists",
		"--no-owner", "--single-transaction", "--exit-on-error", dbname, (char *)copy,
		NULL };

	snprintf(dbname + 9, sizeof(dbname) - 9, "%s", PQdb(conn(db)->c));
	return run_client(conn(db)->target, argv, NULL, errbuf, errlen);
}

/* The version is a one-row table of its own; none (a new database) is 0. */
static enum serr pg_version(struct db *db, int64_t *v, char *errbuf, size_t errlen)
{
	PGresult *res = exec_sql(conn(db), "SELECT CASE WHEN to_regclass('ward_schema') IS NULL "
				 "THEN NULL ELSE 1 END");
	enum serr err = SERR_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = fail(conn(db)->c, res, "schema version", errbuf, errlen);
	} else if (PQgetisnull(res, 0, 0)) {
		*v = 0;
	} else {
		PQclear(res);
		res = exec_sql(conn(db), "SELECT version FROM ward_schema");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			err = fail(conn(db)->c, res, "schema version", errbuf, errlen);
		else
			*v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		if (err != SERR_OK && PQresultStatus(res) == PGRES_TUPLES_OK)
			util_set_msg(errbuf, errlen, "database: ward_schema holds %d rows, not one",
				     PQntuples(res));
	}
	PQclear(res);
	return err;
}

static enum serr pg_set_version(struct db *db, int64_t v, char *errbuf, size_t errlen)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS ward_schema (version BIGINT "
		 "NOT NULL); DELETE FROM ward_schema; INSERT INTO ward_schema VALUES (%lld)",
		 (long long)v);
	return pg_exec(db, sql, errbuf, errlen);
}

const struct db_backend db_postgres = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.bind_int = pg_bind_int,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.column_count = pg_column_count,
	.column_name = pg_column_name,
	.column_type = pg_column_type,
	.column_int = pg_column_int,
	.column_real = pg_column_real,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.changes = pg_changes,
	.reset = pg_reset,
	.destroy = pg_destroy,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.in_transaction = pg_in_transaction,
	.ring = pg_ring,
	.lock = pg_lock,
	.hold = pg_hold,
	.shared = true,
	.json_rows = JSON_ROWS,
	.soft_commit = "SELECT set_config('synchronous_commit', 'off', true)",
	.set_reachable = pg_set_reachable,
	.relax = pg_relax,
	.check = pg_check,
	.servers = pg_servers,
	.snapshot = pg_snapshot,
	.copy_is_db = false,
	.copy_version = pg_copy_version,
	.restore = pg_restore,
	.version = pg_version,
	.set_version = pg_set_version,
	.migrations = steps,
	.n_migrations = sizeof(steps) / sizeof(*steps),
};
