/* db.h -- the database layer under the store: connections, prepared
 * statements, transactions and rows, through a backend (struct
 * db_backend): SQLite (db/sqlite.c), a file beside the server, or
 * PostgreSQL (db/postgres.c), a server that several wardd can share.
 *
 * The store above speaks portable SQL through this layer and names no
 * backend type. Portable SQL here means: parameters written `?` (numbered
 * in order) or `?N`; upserts as INSERT ... ON CONFLICT (...) DO UPDATE or
 * DO NOTHING; new ids through RETURNING; no JSON functions, no PRAGMA, no
 * scalar max()/min() of several arguments, no IS [NOT] between values
 * (use IS NULL or =); rows changed read with db_changes(); rows a
 * transaction claims (no other connection reads them until it ends) by
 * a SELECT that ends with FOR UPDATE SKIP LOCKED. scripts/
 * check_style.py refuses the SQLite dialect outside the backend. Schema
 * changes (db_migration) are the one place SQL is the backend's own.
 *
 * A connection is not thread-safe: one thread uses it, and its
 * statements, at a time. Functions that fail return SERR_DB (SERR_NOMEM
 * when memory ran out, SERR_EXIST for a violated constraint) and write
 * what failed to errbuf when one is given.
 */
#ifndef WARD_DB_H
#define WARD_DB_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "server/serr.h"

/* The type of a column's value in the current row. */
enum db_type {
	DB_NULL = 0,
	DB_INT,
	DB_REAL,
	DB_TEXT,
	DB_BLOB,
};

struct db_backend;
struct db_stmt;

/* Prepared statements are kept for reuse, by their SQL, in this many
 * slots of each connection: parsing them anew at every use was a sixth
 * of wardd's time enrolling agents. */
#define DB_CACHE_SLOTS 256

/* A connection: backends embed it first in their own. */
struct db {
	const struct db_backend *be;
	struct db_stmt *cache[DB_CACHE_SLOTS];
	/* The work done for the statements ended so far, in the backend's
	 * unit (SQLite: virtual machine steps): for comparing what
	 * operations cost, never a time. */
	int64_t work;
};

/* A statement being run: backends embed it first in their own. */
struct db_stmt {
	const struct db_backend *be;
	struct db *db;
	char *sql;                 /* cached: its text (owned), the cache's key; else NULL */
	bool busy;                 /* cached: handed out, not yet finalized */
};

/* How a database is opened. */
enum db_open_mode {
	DB_OPEN_SERVE = 0,   /* read and write, creating it when missing, structure checked */
	DB_OPEN_READ,        /* read only, as found: to copy or inspect it beside its server */
};

/* One step of a schema: from the version of the step before it (0 for
 * the first) to version, in SQL of the backend; what (a few words) is
 * printed while it runs. A backend added later starts with one step to
 * the schema of its day, and steps one at a time from there as the
 * others do. */
struct db_migration {
	int64_t version;
	const char *what;
	const char *sql;
};

/* What a backend provides. Every member is set. Columns are numbered
 * from 0, parameters from 1; text and blobs read from a row stay valid
 * until the next step or the statement's end. */
struct db_backend {
	const char *name;
	/* Opens the database at target as mode says; DB_OPEN_SERVE refuses
	 * one whose structure is damaged (check). */
	struct db *(*open)(const char *target, enum db_open_mode mode, char *errbuf,
			   size_t errlen);
	/* Closes the connection; its statements were destroyed before. */
	void (*close)(struct db *db);
	/* Runs one or more statements without parameters or rows. */
	enum serr (*exec)(struct db *db, const char *sql, char *errbuf, size_t errlen);
	/* A new statement of sql; keep: it is cached, and run many times. */
	struct db_stmt *(*prepare)(struct db *db, const char *sql, bool keep, char *errbuf,
				   size_t errlen);
	enum serr (*bind_int)(struct db_stmt *s, int i, int64_t v);
	enum serr (*bind_text)(struct db_stmt *s, int i, const char *v);   /* NULL: NULL */
	enum serr (*bind_blob)(struct db_stmt *s, int i, const void *v, size_t n);
	/* Runs the statement to its next row: SERR_OK with *row true (a row)
	 * or false (done). */
	enum serr (*step)(struct db_stmt *s, bool *row, char *errbuf, size_t errlen);
	/* The columns of a row: known once a step returned one. */
	int (*column_count)(struct db_stmt *s);
	const char *(*column_name)(struct db_stmt *s, int i);
	enum db_type (*column_type)(struct db_stmt *s, int i);
	int64_t (*column_int)(struct db_stmt *s, int i);
	double (*column_real)(struct db_stmt *s, int i);
	const char *(*column_text)(struct db_stmt *s, int i);
	const void *(*column_blob)(struct db_stmt *s, int i, size_t *n);
	/* Rows inserted, changed or deleted by the statement's last step. */
	int64_t (*changes)(struct db_stmt *s);
	/* Ends a run: adds its work to the connection's and makes the
	 * statement ready to be bound and run again. */
	void (*reset)(struct db_stmt *s);
	/* Frees the statement (reset or never run). */
	void (*destroy)(struct db_stmt *s);
	/* A write transaction (taken at once, not at the first write). */
	enum serr (*begin)(struct db *db, char *errbuf, size_t errlen);
	enum serr (*commit)(struct db *db, char *errbuf, size_t errlen);
	void (*rollback)(struct db *db);
	bool (*in_transaction)(struct db *db);
	/* Rings the doorbell channel (db_bell) when the transaction commits:
	 * servers sharing the database look at what changed. A backend no
	 * two servers share does nothing. */
	enum serr (*ring)(struct db *db, const char *channel, char *errbuf, size_t errlen);
	/* Takes the lock named key until the transaction ends, waiting for
	 * another connection holding it: for what several servers on one
	 * database must do one at a time. A backend whose write transactions
	 * exclude each other already does nothing. */
	enum serr (*lock)(struct db *db, int64_t key, char *errbuf, size_t errlen);
	/* Takes (on) or gives back the lock named key for as long as the
	 * connection lasts, without waiting: *taken says whether it was
	 * free. Always taken on a backend no two servers share. */
	enum serr (*hold)(struct db *db, int64_t key, bool on, bool *taken, char *errbuf,
			  size_t errlen);
	/* Whether several servers may share one database of this backend. */
	bool shared;
	/* The FROM item of the elements of a JSON array bound as one text
	 * parameter, aliased v: its column value holds each element, read
	 * with ->> (one statement for a batch of rows, whatever its size). */
	const char *json_rows;
	/* A query of one row whose evaluation lets the single statement
	 * (autocommitted) it is a WITH item of commit without waiting for the
	 * disk: soft state, one round trip. */
	const char *soft_commit;
	/* Lets the transaction under way commit without waiting for the
	 * disk, and its statements wait at most 100 ms for a lock another
	 * transaction holds (SERR_BUSY) (NULL: a backend whose commits cost
	 * no such wait and whose writers never wait on each other's rows):
	 * for soft state only, which a crash may set back by a moment and a
	 * later try writes. */
	enum serr (*relax)(struct db *db, char *errbuf, size_t errlen);
	/* db_set_reachable() (NULL: a backend with nothing out of reach). */
	void (*set_reachable)(struct db *db, bool reachable);
	/* Checks the database's structure: its pages, and when thorough
	 * every index against its table too (seconds for a large one). */
	enum serr (*check)(struct db *db, bool thorough, char *errbuf, size_t errlen);
	/* The server numbers (server.frontend) of the wardd serving from
	 * the database now, as a new JSON array (NULL: a backend whose one
	 * server is told by its data directory's lock). */
	enum serr (*servers)(struct db *db, json_t **list, char *errbuf, size_t errlen);
	/* Writes a consistent copy of the whole database, as of one moment,
	 * to the new file out while others go on writing: one step, never
	 * restarted by their writes. A backend whose copy is no database
	 * (copy_is_db false) leaves the connection reading as of the copy's
	 * moment, so that what is read next describes the copy; closing the
	 * connection ends that. */
	enum serr (*snapshot)(struct db *db, const char *out, char *errbuf, size_t errlen);
	/* Whether a copy is itself a database of this backend (SQLite's
	 * file), opened as any other; else (PostgreSQL's dump) copy_version
	 * and restore serve it. */
	bool copy_is_db;
	/* The schema version a copy holds, checking that it reads whole
	 * (copy_is_db false only; NULL otherwise). */
	enum serr (*copy_version)(const char *copy, int64_t *v, char *errbuf, size_t errlen);
	/* Replaces what the database holds with the copy's contents, in one
	 * transaction (copy_is_db false only; NULL otherwise). */
	enum serr (*restore)(struct db *db, const char *copy, char *errbuf, size_t errlen);
	/* The schema version stored in the database (0: empty), and setting
	 * it inside the caller's transaction. */
	enum serr (*version)(struct db *db, int64_t *v, char *errbuf, size_t errlen);
	enum serr (*set_version)(struct db *db, int64_t v, char *errbuf, size_t errlen);
	/* The steps from an empty database to the backend's current schema,
	 * in order, their versions rising. */
	const struct db_migration *migrations;
	size_t n_migrations;
};

/* The backends. */
extern const struct db_backend db_sqlite;
extern const struct db_backend db_postgres;

/* The backend a database target names: a PostgreSQL connection URI
 * (postgresql:// or postgres://) or the path of a SQLite file. */
const struct db_backend *db_backend_of(const char *target);


/* Opens target through backend be as mode says; NULL with a message on
 * failure. The caller owns the connection and closes it with db_close(). */
struct db *db_open(const struct db_backend *be, const char *target, enum db_open_mode mode,
		   char *errbuf, size_t errlen);

/* Closes the connection (NULL is accepted). */
void db_close(struct db *db);

/* Runs sql (no parameters, no rows). */
enum serr db_exec(struct db *db, const char *sql, char *errbuf, size_t errlen);

/* Prepares sql and binds the arguments fmt describes: one 'i' per
 * int64_t, one 's' per string (NULL binds NULL), one 'b' per pointer and
 * size_t length of a blob, one 'h' per pointer to a
 * 32-byte hash (a blob). NULL on failure, with the message in errbuf. The
 * caller ends the statement with db_finalize() or one of the db_run,
 * db_query_* functions, which take it over (and accept NULL). */
struct db_stmt *db_prepare(struct db *db, char *errbuf, size_t errlen, const char *sql,
			   const char *fmt, ...);

/* db_prepare() with the arguments as a va_list. */
struct db_stmt *db_vprepare(struct db *db, char *errbuf, size_t errlen, const char *sql,
			    const char *fmt, va_list ap);

/* Steps s to its next row: true for a row; false when done or on failure
 * (*err says which; SERR_OK when done). */
bool db_step(struct db_stmt *s, enum serr *err, char *errbuf, size_t errlen);

/* The value of column i of the current row. */
enum db_type db_column_type(struct db_stmt *s, int i);
int64_t db_column_int(struct db_stmt *s, int i);
const char *db_column_text(struct db_stmt *s, int i);
const void *db_column_blob(struct db_stmt *s, int i, size_t *n);

/* Column i of the current row as JSON: numbers and text as themselves,
 * NULL as null, text parsed as JSON where as_json is set (a blob: null).
 * NULL when memory ran out or the JSON text does not parse. The caller
 * owns the result. */
json_t *db_column_json(struct db_stmt *s, int i, bool as_json);

/* Rows changed by the last step of s. */
int64_t db_changes(struct db_stmt *s);

/* Ends a statement (NULL is accepted). */
void db_finalize(struct db_stmt *s);

/* Runs s (NULL: its preparing failed) for its effect, stores the rows it
 * changed in *changes when that is not NULL, and ends it. */
enum serr db_run(struct db_stmt *s, int64_t *changes, char *errbuf, size_t errlen);

/* Runs s for the integer in the first column of its first row, and ends
 * it: SERR_NOENT without a row. */
enum serr db_query_int(struct db_stmt *s, int64_t *out, char *errbuf, size_t errlen);

/* Runs s for the text in the first column of its first row, copied into
 * *out (the caller frees it), and ends it: SERR_NOENT without a row or
 * with NULL there. */
enum serr db_query_text(struct db_stmt *s, char **out, char *errbuf, size_t errlen);

/* Runs s, ends it, and hands *out an array with one object per row keyed
 * by the column names; bit i of json_cols marks column i as JSON text.
 * The caller owns *out. */
enum serr db_query_rows(struct db_stmt *s, unsigned json_cols, json_t **out);

/* Starts a write transaction. */
enum serr db_begin(struct db *db, char *errbuf, size_t errlen);

/* Ends the transaction db_begin() started: commits when err is SERR_OK,
 * else rolls back. Returns the outcome. */
enum serr db_finish(struct db *db, enum serr err, char *errbuf, size_t errlen);

/* Rings channel at the commit of the transaction (db_backend.ring). */
enum serr db_ring(struct db *db, const char *channel, char *errbuf, size_t errlen);

/* A connection of its own that hears the rings of servers sharing a
 * PostgreSQL database (LISTEN), and holds the lock of one server number
 * while it lives, so that no two servers run as the same one. */
struct db_bell;

/* Opens the bell of server number frontend on the database at target,
 * listening on channels (NULL-terminated, at most 8). NULL with a
 * message when it cannot, or when another server holds the number. The
 * caller owns it. */
struct db_bell *db_postgres_bell_open(const char *target, int64_t frontend,
				      const char *const *channels, char *errbuf, size_t errlen);

/* The descriptor to wait on for rings (readable). */
int db_postgres_bell_fd(const struct db_bell *b);

/* Reads what arrived: bit i set for each of channels[i] rung, 0 for
 * none; -1 when the connection was lost (close it, open another). */
int db_postgres_bell_read(struct db_bell *b);

/* Asks the server for an answer on the bell's connection, unless one is
 * awaited already: a connection cut off without a word (a partition, the
 * server stopped) is found out by the answer that does not come. Returns
 * the milliseconds the awaited answer has been waited for (0: none was). */
uint64_t db_postgres_bell_ask(struct db_bell *b);

/* The milliseconds the answer db_postgres_bell_ask() awaits has been
 * waited for (0: none is awaited); asks nothing. */
uint64_t db_postgres_bell_waited(const struct db_bell *b);

/* Lets db's statements that wait long ask bell (NULL: none) whether the
 * server lives (see await() in postgres.c). Nothing on another backend. */
void db_postgres_set_bell(struct db *db, struct db_bell *bell);

/* Tells the connection whether the database is within reach (the
 * doorbell's finding): while it is not, a lost connection is not opened
 * again (each try may wait for connect_timeout), its statements failing
 * at once. Nothing on a backend other than PostgreSQL. */
void db_set_reachable(struct db *db, bool reachable);

/* Closes the bell (NULL is accepted), letting its number go. */
void db_postgres_bell_close(struct db_bell *b);

/* Takes the lock key until the transaction ends (db_backend.lock). */
enum serr db_lock(struct db *db, int64_t key, char *errbuf, size_t errlen);

/* Takes or gives back the lock key for the connection (db_backend.hold). */
enum serr db_hold(struct db *db, int64_t key, bool on, bool *taken, char *errbuf,
		  size_t errlen);

/* Lets the transaction under way commit without waiting for the disk
 * nor long for others' locks (db_backend.relax). */
enum serr db_relax(struct db *db, char *errbuf, size_t errlen);

/* Whether several servers may share db's database (db_backend.shared). */
bool db_shared(const struct db *db);

/* The FROM item of a JSON array parameter's elements (db_backend's
 * json_rows). */
const char *db_json_rows(const struct db *db);

/* The query that makes a statement's commit soft (db_backend's
 * soft_commit). */
const char *db_soft_commit(const struct db *db);

/* Copies the database to the new file out (db_backend.snapshot). */
enum serr db_snapshot(struct db *db, const char *out, char *errbuf, size_t errlen);

/* Checks the database's structure (db_backend.check). */
enum serr db_check(struct db *db, bool thorough, char *errbuf, size_t errlen);

/* The servers serving from the database now (db_backend.servers): *list
 * is a new array the caller owns, or NULL for a backend that cannot
 * tell (SQLite: the data directory's lock tells). */
enum serr db_servers(struct db *db, json_t **list, char *errbuf, size_t errlen);

/* The schema version stored in the database (0: a new one). */
enum serr db_version(struct db *db, int64_t *v, char *errbuf, size_t errlen);

/* The schema version this build's backend brings a database to. */
int64_t db_current_version(const struct db *db);

/* Brings the database from its version to db_current_version(), one
 * step per transaction with its version recorded in it, so a failure or
 * a kill leaves the database at the last step completed. progress (may
 * be NULL) is told of each step as it starts, with arg. A database newer
 * than this build is refused with a message naming both versions. */
enum serr db_migrate(struct db *db,
		     void (*progress)(const struct db_migration *m, int64_t from, int64_t to,
				      void *arg),
		     void *arg, char *errbuf, size_t errlen);

#endif
