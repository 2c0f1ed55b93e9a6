/* store_int.h -- what the parts of the store (src/server/store/) share:
 * the handle, its query helpers over the database layer, and the tree
 * operations that several parts build on. Not for use outside the store.
 */
#ifndef WARD_STORE_INT_H
#define WARD_STORE_INT_H

#include "server/db/db.h"
#include "server/store.h"

struct store {
	struct db *db;
	int64_t observed;     /* seconds this server had run before this open */
	uint64_t opened_ns;   /* the monotonic clock then */
	int64_t frontend;     /* this server's number among several on one database (0: alone) */
	struct store_seen *seen;   /* agents' reports not written yet (agents.c) */
};

/* Frees the reports held (store_agent_seen()), written or not. */
void store_seen_free(struct store *st);

/* The doorbell channels (store_bell_open()): settings to deliver, tasks
 * to hand out. */
#define STORE_BELL_DELIVERIES "ward_deliveries"
#define STORE_BELL_TASKS "ward_tasks"

/* The locks of what servers sharing a database do one at a time
 * (store_lock()). */
enum store_lock {
	/* The tree's shape, node ids, and the effective settings derived
	 * from them: a refresh reads the settings only once it holds it, so
	 * that a change another server commits meanwhile is either in what
	 * it reads or made after it (never lost by being written over), and
	 * a move's cycle and depth checks hold until its commit. */
	STORE_LOCK_TREE = 1,
};

/* Takes lock until the operation's transaction ends: another server on
 * the same database waits for it. Inside the caller's transaction. */
enum serr store_lock(struct store *st, enum store_lock lock, char *errbuf, size_t errlen);

/* Descendants of ?1, itself included. */
#define SUBTREE_CTE \
	"WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL " \
	"SELECT n.id FROM nodes n JOIN sub ON n.parent = sub.id) "

/* db_prepare() on the store's connection. */
struct db_stmt *store_prepare(struct store *st, char *errbuf, size_t errlen, const char *sql,
			      const char *fmt, ...);

/* Runs sql (arguments as for db_prepare()) for its effect; *changes
 * (when changes is not NULL) gets the rows it changed. */
enum serr store_sql_count(struct store *st, int64_t *changes, char *errbuf, size_t errlen,
			  const char *sql, const char *fmt, ...);

/* store_sql_count() without the count. */
#define store_sql_exec(st, errbuf, errlen, ...) \
	store_sql_count(st, NULL, errbuf, errlen, __VA_ARGS__)

/* Runs sql for the integer in its first row: SERR_NOENT without one. */
enum serr store_sql_int(struct store *st, int64_t *out, char *errbuf, size_t errlen,
			const char *sql, const char *fmt, ...);

/* Runs sql for the text in the first column of its first row, copied
 * into *out (the caller frees it): SERR_NOENT without a row or with NULL
 * there. */
enum serr store_sql_text(struct store *st, char **out, char *errbuf, size_t errlen,
			 const char *sql, const char *fmt, ...);

/* Runs sql for its rows, as db_query_rows() hands them (json_cols marks
 * the columns of JSON text). The caller owns *out. */
enum serr store_sql_rows(struct store *st, unsigned json_cols, json_t **out, const char *sql,
			 const char *fmt, ...);

/* Starts the transaction of one operation. */
enum serr store_begin(struct store *st, char *errbuf, size_t errlen);

/* Commits the operation's transaction when err is SERR_OK, rolls it back
 * otherwise; returns the outcome. */
enum serr store_finish(struct store *st, enum serr err, char *errbuf, size_t errlen);

/* The kind of node id: SERR_NOENT, with a message, when there is none. */
enum serr store_node_kind(struct store *st, int64_t id, enum store_kind *kind,
			  char *errbuf, size_t errlen);

/* Checks that id names the root or a domain: the places domains and
 * clients can live. */
enum serr store_expect_container(struct store *st, int64_t id, char *errbuf, size_t errlen);

/* Checks that id names a node of kind want. */
enum serr store_expect_kind(struct store *st, int64_t id, enum store_kind want,
			    char *errbuf, size_t errlen);

/* Stores text (canonical JSON) as client id's effective settings, with
 * roaming (whether they let it roam; -1: as it was), and queues its
 * delivery (none to a client moved to another server), replacing any
 * queued older one. The first change of an operation takes a new
 * settings revision (*rev, 0 until then); later ones share it. Inside
 * the caller's transaction. */
enum serr store_record_change(struct store *st, int64_t id, const char *text, int roaming,
			      int64_t *rev, char *errbuf, size_t errlen);

/* Recomputes the effective settings of every client at or below node;
 * those that changed share one new settings revision and get a queued
 * delivery (store_record_change()). *changed (may be NULL) gets their
 * number. Inside the caller's transaction. */
enum serr store_refresh(struct store *st, int64_t node, size_t *changed, char *errbuf,
			size_t errlen);

#endif
