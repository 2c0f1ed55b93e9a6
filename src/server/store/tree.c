/* tree.c -- the store's client tree and settings: domains, clients'
 * places, the settings placed on each node and those each client
 * effectively has (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

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
	struct db_stmt *stmt = store_prepare(st, errbuf, errlen, sql, "i", node);
	json_t *obj = json_object(), *v;
	enum serr err = stmt ? SERR_OK : SERR_DB;

	if (!obj)
		err = SERR_NOMEM;
	while (err == SERR_OK && db_step(stmt, &err, errbuf, errlen)) {
		v = json_loads(db_column_text(stmt, 1), JSON_DECODE_ANY, NULL);
		if (!v || json_object_set_new(obj, db_column_text(stmt, 0), v) != 0) {
			util_set_msg(errbuf, errlen, "database: a setting value of node %lld is "
				"unreadable", (long long)node);
			err = SERR_DB;
			break;
		}
	}
	db_finalize(stmt);
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

/* Takes the next settings revision (the first change of a transaction):
 * its row stays locked to the commit, so servers sharing the database
 * take revisions one after the other; the others hear of the deliveries
 * at the commit. */
static enum serr take_rev(struct store *st, int64_t *rev, char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;

	if (*rev == 0) {
		err = store_sql_int(st, rev, errbuf, errlen, "UPDATE meta SET value = value + 1 "
				    "WHERE key = 'settings_rev' RETURNING value", "");
		if (err == SERR_OK)
			err = db_ring(st->db, STORE_BELL_DELIVERIES, errbuf, errlen);
	}
	return err;
}

/* A newer version replaces a queued one, its retries starting over. */
#define DELIVERY_UPSERT "ON CONFLICT (client) DO UPDATE SET version = excluded.version, " \
	"attempts = 0, next_attempt = 0, created = excluded.created, " \
	"frontend = excluded.frontend"

/* Records the changes in changes, a JSON array of [client id, effective
 * settings as text, roaming (0 or 1; null: as it was)], in two
 * statements whatever their number; one client's by its key (every
 * enrollment's and every single change's): PostgreSQL guesses 100 rows
 * from JSON, and for that many read the whole table of a fleet of a few
 * thousand rather than look each up. */
static enum serr record_changes(struct store *st, const json_t *changes, int64_t *rev,
				char *errbuf, size_t errlen)
{
	const json_t *one = json_array_size(changes) == 1 ? json_array_get(changes, 0) : NULL;
	const json_t *roaming = json_array_get(one, 2);
	const char *rows = db_json_rows(st->db);
	enum serr err = take_rev(st, rev, errbuf, errlen);
	char sql[640], *text = NULL;
	const char *eff;
	int64_t id;

	if (err == SERR_OK && one) {
		id = (int64_t)json_integer_value(json_array_get(one, 0));
		eff = json_string_value(json_array_get(one, 1));
		if (json_is_integer(roaming))
			err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET eff_json = ?, "
					     "eff_version = ?, roaming = ? WHERE node = ?", "siii",
					     eff, *rev, (int64_t)json_integer_value(roaming), id);
		else
			err = store_sql_exec(st, errbuf, errlen, "UPDATE clients SET eff_json = ?, "
					     "eff_version = ? WHERE node = ?", "sii", eff, *rev,
					     id);
		if (err == SERR_OK)
			err = store_sql_exec(st, errbuf, errlen, "INSERT INTO deliveries (client, "
					     "version, created, frontend) SELECT node, ?, ?, "
					     "frontend FROM clients WHERE node = ? AND state != "
					     "'moved' " DELIVERY_UPSERT, "iii", *rev,
					     (int64_t)time(NULL), id);
		return err;
	}
	if (err == SERR_OK && !(text = json_dumps(changes, JSON_COMPACT)))
		err = SERR_NOMEM;
	if (err == SERR_OK) {
		snprintf(sql, sizeof(sql), "UPDATE clients SET eff_json = v.value ->> 1, "
			 "eff_version = ?, roaming = COALESCE(CAST(v.value ->> 2 AS BIGINT), "
			 "clients.roaming) FROM %s WHERE clients.node = CAST(v.value ->> 0 AS "
			 "BIGINT)", rows);
		err = store_sql_exec(st, errbuf, errlen, sql, "is", *rev, text);
	}
	if (err == SERR_OK) {
		snprintf(sql, sizeof(sql), "INSERT INTO deliveries (client, version, created, "
			 "frontend) SELECT c.node, ?, ?, c.frontend FROM clients c JOIN %s ON "
			 "c.node = CAST(v.value ->> 0 AS BIGINT) WHERE c.state != 'moved' "
			 DELIVERY_UPSERT, rows);
		err = store_sql_exec(st, errbuf, errlen, sql, "iis", *rev, (int64_t)time(NULL),
				     text);
	}
	free(text);
	return err;
}

enum serr store_record_change(struct store *st, int64_t id, const char *text, int roaming,
			      int64_t *rev, char *errbuf, size_t errlen)
{
	json_t *one = json_pack("[[I s o]]", (json_int_t)id, text,
				roaming < 0 ? json_null() : json_integer(roaming));
	enum serr err = one ? record_changes(st, one, rev, errbuf, errlen) : SERR_NOMEM;

	if (err == SERR_NOMEM)
		util_set_msg(errbuf, errlen, "out of memory");
	json_decref(one);
	return err;
}

/* Clients whose changes one statement records (store_refresh()). */
#define REFRESH_CHUNK 256

/* A node below the node store_refresh() refreshes. */
struct walk_node {
	int64_t id;
	int64_t parent;
	json_t *own;    /* its own settings (NULL: none) */
	json_t *eff;    /* a domain's effective settings, once computed */
	char *text;     /* and as canonical text */
};

/* The subtree's nodes, by id, and its top. */
struct walk {
	struct walk_node *node;
	size_t n;
	int64_t top;
	json_t *top_eff;     /* the top's effective settings, ancestors' included */
	char *top_text;
};

static int walk_cmp(const void *a, const void *b)
{
	const struct walk_node *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct walk_node *walk_find(const struct walk *w, int64_t id)
{
	struct walk_node key = { .id = id };

	return w->n ? bsearch(&key, w->node, w->n, sizeof(*w->node), walk_cmp) : NULL;
}

/* The effective settings of domain id (borrowed), from its parent's and
 * its own, in *text too; NULL when the tree as read has no path from id
 * to the top, or out of memory. */
static json_t *walk_domain(struct walk *w, int64_t id, const char **text, int depth)
{
	struct walk_node *n = id == w->top ? NULL : walk_find(w, id);
	const char *t;
	json_t *base;

	if (id == w->top) {
		*text = w->top_text;
		return w->top_eff;
	}
	if (!n || depth > STORE_MAX_DEPTH + 2)
		return NULL;
	if (!n->eff) {
		base = walk_domain(w, n->parent, &t, depth + 1);
		if (!base || !(n->eff = json_copy(base)) ||
		    (n->own && json_object_update(n->eff, n->own) != 0) ||
		    !(n->text = json_dumps(n->eff, JSON_COMPACT | JSON_SORT_KEYS))) {
			json_decref(n->eff);
			n->eff = NULL;
			return NULL;
		}
	}
	*text = n->text;
	return n->eff;
}

static void walk_free(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		json_decref(w->node[i].own);
		json_decref(w->node[i].eff);
		free(w->node[i].text);
	}
	free(w->node);
	json_decref(w->top_eff);
	free(w->top_text);
}

/* Reads the nodes below w->top and the settings placed on them (the
 * top's own are in w->top_eff already). */
static enum serr walk_read(struct store *st, struct walk *w, char *errbuf, size_t errlen)
{
	struct db_stmt *stmt = store_prepare(st, errbuf, errlen, SUBTREE_CTE "SELECT n.id, "
					     "n.parent FROM sub JOIN nodes n ON n.id = sub.id "
					     "WHERE n.id != ?1", "i", w->top);
	struct walk_node *grown, *n;
	enum serr err = stmt ? SERR_OK : SERR_DB;
	size_t cap = 0;
	json_t *v;

	while (err == SERR_OK && db_step(stmt, &err, errbuf, errlen)) {
		if (w->n == cap) {
			cap = cap ? 2 * cap : 256;
			grown = realloc(w->node, cap * sizeof(*w->node));
			if (!grown) {
				err = SERR_NOMEM;
				break;
			}
			w->node = grown;
		}
		w->node[w->n++] = (struct walk_node){ .id = db_column_int(stmt, 0),
						      .parent = db_column_int(stmt, 1) };
	}
	db_finalize(stmt);
	if (err != SERR_OK)
		return err;
	if (w->n)
		qsort(w->node, w->n, sizeof(*w->node), walk_cmp);
	stmt = store_prepare(st, errbuf, errlen, SUBTREE_CTE "SELECT s.node, s.key, s.value "
			     "FROM sub JOIN settings s ON s.node = sub.id WHERE s.node != ?1",
			     "i", w->top);
	err = stmt ? SERR_OK : SERR_DB;
	while (err == SERR_OK && db_step(stmt, &err, errbuf, errlen)) {
		n = walk_find(w, db_column_int(stmt, 0));
		v = json_loads(db_column_text(stmt, 2), JSON_DECODE_ANY, NULL);
		if (n && !n->own)
			n->own = json_object();
		if (!v || (n && json_object_set_new(n->own, db_column_text(stmt, 1), v) != 0)) {
			util_set_msg(errbuf, errlen, "database: a setting value of node %lld is "
				     "unreadable", (long long)db_column_int(stmt, 0));
			err = SERR_DB;
		} else if (!n) {
			json_decref(v);
		}
	}
	db_finalize(stmt);
	return err;
}

/* Client id's effective settings as [id, text, roaming] when they differ
 * from old (its stored text), else a new empty array; NULL when its
 * place is not in the tree read, or out of memory. */
static json_t *walk_client(struct walk *w, int64_t id, int64_t parent, const char *old)
{
	const struct walk_node *n = id == w->top ? NULL : walk_find(w, id);
	const char *text = w->top_text;
	json_t *eff = id == w->top ? w->top_eff : walk_domain(w, parent, &text, 1), *own = NULL;
	char *mine = NULL;
	json_t *out;

	if (!eff)
		return NULL;
	if (n && n->own) {
		own = json_copy(eff);
		if (!own || json_object_update(own, n->own) != 0 ||
		    !(mine = json_dumps(own, JSON_COMPACT | JSON_SORT_KEYS))) {
			json_decref(own);
			return NULL;
		}
		eff = own;
		text = mine;
	}
	out = old && strcmp(old, text) == 0 ? json_array() :
	      json_pack("[I s i]", (json_int_t)id, text,
			json_is_true(json_object_get(eff, "roaming")));
	free(mine);
	json_decref(own);
	return out;
}

/* Records changed, [id, text, roaming] each, REFRESH_CHUNK a statement. */
static enum serr refresh_record(struct store *st, const json_t *changed, int64_t *rev,
				char *errbuf, size_t errlen)
{
	json_t *chunk = json_array();
	enum serr err = chunk ? SERR_OK : SERR_NOMEM;
	size_t i, n = json_array_size(changed);

	for (i = 0; err == SERR_OK && i < n; i++) {
		if (json_array_append(chunk, json_array_get(changed, i)) != 0) {
			err = SERR_NOMEM;
			break;
		}
		if (json_array_size(chunk) < REFRESH_CHUNK && i + 1 < n)
			continue;
		err = record_changes(st, chunk, rev, errbuf, errlen);
		json_array_clear(chunk);
	}
	json_decref(chunk);
	return err;
}

/* Effective settings are computed in memory, each domain's from its
 * parent's and its own (the subtree read in three queries), and the
 * changes recorded REFRESH_CHUNK clients a statement: a root change at
 * 56,000 clients on PostgreSQL took three round trips per client. The
 * clients are listed first and updated after: a backend may leave
 * undefined what a query sees of rows changed while it runs. A client's
 * own refresh (every enrollment's) reads it by key: the subtree's query
 * made PostgreSQL, whose estimate of a recursive query's rows cannot know
 * a client has no children, read every node and client. */
enum serr store_refresh(struct store *st, int64_t node, size_t *changed, char *errbuf,
			size_t errlen)
{
	enum store_kind kind = STORE_KIND_DOMAIN;
	enum serr err = store_lock(st, STORE_LOCK_TREE, errbuf, errlen);
	struct walk w = { .top = node };
	json_t *list = json_array(), *one;
	struct db_stmt *stmt = NULL;
	int64_t rev = 0, id;

	/* (A node gone has nothing to refresh.) */
	if (err == SERR_OK)
		err = store_node_kind(st, node, &kind, NULL, 0);
	if (err == SERR_NOENT)
		err = SERR_OK;
	else if (err == SERR_OK)
		err = effective(st, node, &w.top_eff, errbuf, errlen);
	if (err == SERR_OK && w.top_eff &&
	    !(w.top_text = json_dumps(w.top_eff, JSON_COMPACT | JSON_SORT_KEYS)))
		err = SERR_NOMEM;
	if (err == SERR_OK && w.top_eff && kind != STORE_KIND_CLIENT)
		err = walk_read(st, &w, errbuf, errlen);
	if (err == SERR_OK && w.top_eff) {
		stmt = kind == STORE_KIND_CLIENT ?
			store_prepare(st, errbuf, errlen, "SELECT c.node, n.parent, c.eff_json "
				      "FROM clients c JOIN nodes n ON n.id = c.node WHERE "
				      "c.node = ?", "i", node) :
			store_prepare(st, errbuf, errlen, SUBTREE_CTE "SELECT c.node, n.parent, "
				      "c.eff_json FROM sub JOIN clients c ON c.node = sub.id JOIN "
				      "nodes n ON n.id = c.node", "i", node);
		err = stmt ? SERR_OK : SERR_DB;
	}
	if (!list)
		err = SERR_NOMEM;
	while (err == SERR_OK && stmt && db_step(stmt, &err, errbuf, errlen)) {
		id = db_column_int(stmt, 0);
		one = walk_client(&w, id, db_column_int(stmt, 1), db_column_text(stmt, 2));
		if (!one) {
			util_set_msg(errbuf, errlen, "refreshing client %lld's settings: out of "
				     "memory, or its domain is not in the tree", (long long)id);
			err = SERR_NOMEM;
		} else if (json_array_size(one) == 0) {
			json_decref(one);
		} else if (json_array_append_new(list, one) != 0) {
			err = SERR_NOMEM;
		}
	}
	db_finalize(stmt);
	if (err == SERR_OK)
		err = refresh_record(st, list, &rev, errbuf, errlen);
	if (changed)
		*changed = json_array_size(list);
	json_decref(list);
	walk_free(&w);
	return err;
}

/* Checks that a subtree of height levels (1: a domain alone) fits under
 * parent within STORE_MAX_DEPTH levels of domains. */
static enum serr check_depth(struct store *st, int64_t parent, int64_t height,
			     char *errbuf, size_t errlen)
{
	int64_t depth = 0;
	enum serr err = store_sql_int(st, &depth, errbuf, errlen,
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

/* A node id never used before, not even by a node removed since (the
 * event log keeps naming removed clients by theirs); servers sharing a
 * database take them one at a time. Inside the caller's transaction. */
static enum serr new_node_id(struct store *st, int64_t *id, char *errbuf, size_t errlen)
{
	enum serr err = store_lock(st, STORE_LOCK_TREE, errbuf, errlen);

	if (err == SERR_OK)
		err = store_sql_int(st, id, errbuf, errlen, "SELECT 1 + max(m) FROM ("
				    "SELECT max(id) AS m FROM nodes UNION ALL "
				    "SELECT max(client) FROM events UNION ALL "
				    "SELECT max(node) FROM removed_clients) t", "");
	return err;
}

enum serr store_domain_create(struct store *st, int64_t parent, const char *name,
			      int64_t *id, char *errbuf, size_t errlen)
{
	enum serr err;

	if (!valid_name(name, errbuf, errlen))
		return SERR_INVAL;
	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_lock(st, STORE_LOCK_TREE, errbuf, errlen);
	if (err == SERR_OK)
		err = store_expect_container(st, parent, errbuf, errlen);
	if (err == SERR_OK)
		err = check_depth(st, parent, 1, errbuf, errlen);
	if (err == SERR_OK)
		err = new_node_id(st, id, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO nodes (id, parent, kind, "
				     "name) VALUES (?, ?, 1, ?)", "iis", *id, parent, name);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "domain '%s' already exists there", name);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_domain_rename(struct store *st, int64_t id, const char *name,
			      char *errbuf, size_t errlen)
{
	enum serr err;

	if (!valid_name(name, errbuf, errlen))
		return SERR_INVAL;
	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE nodes SET name = ? WHERE id = ?",
				     "si", name, id);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "domain '%s' already exists there", name);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_domain_delete(struct store *st, int64_t id, char *errbuf, size_t errlen)
{
	enum serr err;
	int64_t children = 0;

	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_int(st, &children, errbuf, errlen, "SELECT count(*) FROM nodes "
				    "WHERE parent = ?", "i", id);
	if (err == SERR_OK && children > 0) {
		util_set_msg(errbuf, errlen, "domain %lld still holds %lld domains or clients",
			(long long)id, (long long)children);
		err = SERR_NOTEMPTY;
	}
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM nodes WHERE id = ?", "i", id);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_domain_move(struct store *st, int64_t id, int64_t parent,
			    char *errbuf, size_t errlen)
{
	enum serr err;
	int64_t inside = 0, height = 1;

	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_lock(st, STORE_LOCK_TREE, errbuf, errlen);
	if (err == SERR_OK)
		err = store_expect_kind(st, id, STORE_KIND_DOMAIN, errbuf, errlen);
	if (err == SERR_OK)
		err = store_expect_container(st, parent, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_int(st, &inside, errbuf, errlen, SUBTREE_CTE
				    "SELECT count(*) FROM sub WHERE id = ?2", "ii", id,
				    parent);
	if (err == SERR_OK && inside) {
		util_set_msg(errbuf, errlen, "cannot move domain %lld into itself or below itself",
			(long long)id);
		err = SERR_INVAL;
	}
	if (err == SERR_OK)
		err = store_sql_int(st, &height, errbuf, errlen, "WITH RECURSIVE sub(id, level) AS "
				    "(SELECT ?1, 1 UNION ALL SELECT n.id, sub.level + 1 FROM nodes "
				    "n JOIN sub ON n.parent = sub.id WHERE n.kind = 1) SELECT "
				    "max(level) FROM sub", "i", id);
	if (err == SERR_OK)
		err = check_depth(st, parent, height, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE nodes SET parent = ? WHERE id = ?",
				     "ii", parent, id);
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "a domain of that name already exists there");
	if (err == SERR_OK)
		err = store_refresh(st, id, NULL, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
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
		err = store_sql_int(st, &next, errbuf, errlen, "SELECT id FROM nodes WHERE "
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
	struct db_stmt *stmt = store_prepare(st, NULL, 0,
		"WITH RECURSIVE up(id, name, parent, depth) AS ("
		"SELECT id, name, parent, 0 FROM nodes WHERE id = ?1 AND kind != 2 UNION ALL "
		"SELECT n.id, n.name, n.parent, up.depth + 1 "
		"FROM nodes n JOIN up ON n.id = up.parent) "
		"SELECT name FROM up WHERE parent IS NOT NULL ORDER BY depth DESC", "i", id);
	enum serr err = SERR_OK;
	size_t used = 0;
	int rows = 0;

	if (!stmt)
		return SERR_DB;
	buf[0] = '\0';
	while (db_step(stmt, &err, NULL, 0)) {
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "/%s",
					 db_column_text(stmt, 0));
		rows++;
	}
	db_finalize(stmt);
	if (err != SERR_OK)
		return err;
	if (rows == 0 && id != STORE_ROOT)
		return SERR_NOENT;
	if (rows == 0)
		snprintf(buf, len, "/");
	return used < len ? SERR_OK : SERR_INVAL;
}

enum serr store_tree(struct store *st, json_t **out, char *errbuf, size_t errlen)
{
	struct db_stmt *stmt = store_prepare(st, errbuf, errlen,
		"SELECT n.id, n.parent, n.kind, n.name, c.uuid, CASE WHEN c.state = 'moved' "
		"THEN 1 ELSE 0 END FROM nodes n "
		"LEFT JOIN clients c ON c.node = n.id ORDER BY n.kind, n.name, n.id", "");
	json_t *byid = json_object(), *node, *parent, *root = NULL;
	enum serr err = stmt ? SERR_OK : SERR_DB;
	char key[24];

	if (!byid)
		err = SERR_NOMEM;
	/* Parents may have larger ids than children (domains move), so every
	 * node is made first and linked in a second pass. */
	while (err == SERR_OK && db_step(stmt, &err, errbuf, errlen)) {
		static const char *const kinds[] = { "root", "domain", "client" };
		int kind = (int)db_column_int(stmt, 2);
		const char *uuid = db_column_text(stmt, 4);

		node = json_pack("{sI sI ss ss}", "id", (json_int_t)db_column_int(stmt, 0),
				 "parent", (json_int_t)db_column_int(stmt, 1),
				 "kind", kinds[kind], "name", db_column_text(stmt, 3));
		if (node && kind == STORE_KIND_CLIENT) {
			json_object_set_new(node, "uuid", json_string(uuid));
			/* Moved to another server: shown apart, no action's target. */
			if (db_column_int(stmt, 5))
				json_object_set_new(node, "moved", json_true());
		}
		if (node && kind != STORE_KIND_CLIENT) {
			json_object_set_new(node, "domains", json_array());
			json_object_set_new(node, "clients", json_array());
		}
		snprintf(key, sizeof(key), "%lld", (long long)db_column_int(stmt, 0));
		if (!node || json_object_set_new(byid, key, node) != 0)
			err = SERR_NOMEM;
	}
	db_finalize(stmt);
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
	enum serr err = store_begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = store_expect_container(st, domain, errbuf, errlen);
	if (err == SERR_OK)
		err = new_node_id(st, id, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO nodes (id, parent, kind, "
				     "name) VALUES (?, ?, 2, ?)", "iis", *id, domain, hostname);
	if (err == SERR_OK) {
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO clients (node, uuid, "
				     "hostname, seen_observed, secret, last_seen) VALUES "
				     "(?, ?, ?, ?, ?, ?)", "issihi", *id, uuid, hostname,
				     store_observed(st), secret_hash, (int64_t)time(NULL));
		if (err == SERR_EXIST)
			util_set_msg(errbuf, errlen, "a client with uuid %s exists already", uuid);
	}
	if (err == SERR_OK)
		err = store_refresh(st, *id, NULL, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_client_move(struct store *st, int64_t client, int64_t domain,
			    char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = store_expect_kind(st, client, STORE_KIND_CLIENT, errbuf, errlen);
	if (err == SERR_OK)
		err = store_expect_container(st, domain, errbuf, errlen);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "UPDATE nodes SET parent = ? WHERE id = ?",
				     "ii", domain, client);
	if (err == SERR_OK)
		err = store_refresh(st, client, NULL, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
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
	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_node_kind(st, node, &kind, errbuf, errlen);
	if (err == SERR_OK && !settings_validate(def, value, level_of(kind), errbuf, errlen))
		err = SERR_INVAL;
	/* (A client has nothing below it: PostgreSQL would read every node
	 * to find that out.) */
	if (err == SERR_OK && mode == STORE_APPLY_ALL && kind != STORE_KIND_CLIENT)
		err = store_sql_exec(st, errbuf, errlen, SUBTREE_CTE "DELETE FROM settings WHERE "
				     "key = ?2 AND node IN (SELECT id FROM sub WHERE id != ?1)",
				     "is", node, key);
	if (err == SERR_OK) {
		text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		err = text ? store_sql_exec(st, errbuf, errlen, "INSERT INTO settings (node, key, "
					    "value) VALUES (?1, ?2, ?3) ON CONFLICT (node, key) DO "
					    "UPDATE SET value = ?3", "iss", node, key,
					    text) : SERR_NOMEM;
		free(text);
	}
	if (err == SERR_OK)
		err = store_refresh(st, node, changed, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
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
	err = store_begin(st, errbuf, errlen);
	if (err != SERR_OK)
		return err;
	err = store_sql_int(st, &had, errbuf, errlen, "SELECT count(*) FROM settings WHERE "
			    "node = ? AND key = ?", "is", node, key);
	if (err == SERR_OK && !had) {
		util_set_msg(errbuf, errlen, "%s: node %lld has no value of its own", key,
			(long long)node);
		err = SERR_NOENT;
	}
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM settings WHERE node = ? AND "
				     "key = ?", "is", node, key);
	if (err == SERR_OK)
		err = store_refresh(st, node, changed, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_settings_get(struct store *st, int64_t node, json_t **own,
			     json_t **effective_out, char *errbuf, size_t errlen)
{
	enum store_kind kind;
	enum serr err = store_node_kind(st, node, &kind, errbuf, errlen);

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

enum serr store_settings_inherited(struct store *st, int64_t node, json_t **out,
				   char *errbuf, size_t errlen)
{
	return settings_object(st,
		"WITH RECURSIVE up(id, depth) AS (SELECT parent, 1 FROM nodes WHERE id = ?1 "
		"AND parent IS NOT NULL UNION ALL "
		"SELECT n.parent, up.depth + 1 FROM nodes n JOIN up ON n.id = up.id "
		"WHERE n.parent IS NOT NULL) "
		"SELECT s.key, s.value FROM up JOIN settings s ON s.node = up.id "
		"ORDER BY up.depth DESC", node, out, errbuf, errlen);
}

enum serr store_settings_origin(struct store *st, int64_t node, json_t **out)
{
	struct db_stmt *stmt = store_prepare(st, NULL, 0,
		"WITH RECURSIVE up(id, depth) AS (SELECT ?1, 0 UNION ALL "
		"SELECT n.parent, up.depth + 1 FROM nodes n JOIN up ON n.id = up.id "
		"WHERE n.parent IS NOT NULL) "
		"SELECT s.key, up.id, n.kind FROM up JOIN settings s ON s.node = up.id "
		"JOIN nodes n ON n.id = up.id ORDER BY up.depth DESC", "i", node);
	json_t *origin = json_object();
	enum serr err = stmt ? SERR_OK : SERR_DB;
	char scope[1100], path[1024];
	int64_t id;

	if (!origin)
		err = SERR_NOMEM;
	/* Nearer nodes come last and replace what farther ones set. */
	while (err == SERR_OK && db_step(stmt, &err, NULL, 0)) {
		id = db_column_int(stmt, 1);
		switch (db_column_int(stmt, 2)) {
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
		    json_object_set_new(origin, db_column_text(stmt, 0),
					json_string(scope)) != 0)
			err = SERR_NOMEM;
	}
	db_finalize(stmt);
	if (err != SERR_OK) {
		json_decref(origin);
		return err;
	}
	*out = origin;
	return SERR_OK;
}

enum serr store_client_version(struct store *st, int64_t client, int64_t *version)
{
	return store_sql_int(st, version, NULL, 0, "SELECT eff_version FROM clients WHERE node = ?",
			     "i", client);
}

enum serr store_export(struct store *st, json_t **out)
{
	struct db_stmt *stmt = store_prepare(st, NULL, 0, "SELECT id FROM nodes WHERE kind != 2 "
				     "ORDER BY id", "");
	json_t *list = json_array(), *own;
	enum serr err = stmt ? SERR_OK : SERR_DB;
	char path[4096];
	int64_t *ids = NULL, *grown;
	size_t n = 0, i;

	if (!list)
		err = SERR_NOMEM;
	while (err == SERR_OK && db_step(stmt, &err, NULL, 0)) {
		grown = realloc(ids, (n + 1) * sizeof(*ids));
		if (!grown) {
			err = SERR_NOMEM;
			break;
		}
		ids = grown;
		ids[n++] = db_column_int(stmt, 0);
	}
	db_finalize(stmt);
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
