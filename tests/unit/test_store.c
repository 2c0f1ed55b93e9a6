/* test_store.c -- the client tree, settings inheritance and delivery queue
 * on a real database: SQLite in the test's directory, or the PostgreSQL
 * database WARD_TEST_DATABASE names (tests/lib/pg.py run makes one). */
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "common/settings.h"
#include "common/util.h"
#include "server/store.h"

static char msg[512];
static const unsigned char secret[32] = { 1, 2, 3 };

static bool is_postgres(const char *target)
{
	return strncmp(target, "postgresql://", 13) == 0;
}

/* Runs sql on the database at target behind the store's back, as a hand
 * or another program would: true when it succeeded. */
static bool raw_exec(const char *target, const char *sql)
{
	sqlite3 *db = NULL;
	PGconn *c;
	PGresult *res;
	bool ok;

	if (!is_postgres(target)) {
		ok = sqlite3_open(target, &db) == SQLITE_OK &&
		     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
		sqlite3_close(db);
		return ok;
	}
	c = PQconnectdb(target);
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	res = PQexec(c, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	PQfinish(c);
	return ok;
}

/* Returns client's effective value of key as compact JSON text, in static
 * storage ("" on failure). */
static const char *eff(struct store *st, int64_t node, const char *key)
{
	static char text[128];
	json_t *e = NULL;
	char *s;

	text[0] = '\0';
	if (store_settings_get(st, node, NULL, &e, msg, sizeof(msg)) != SERR_OK)
		return text;
	s = json_dumps(json_object_get(e, key), JSON_ENCODE_ANY);
	if (s)
		snprintf(text, sizeof(text), "%s", s);
	free(s);
	json_decref(e);
	return text;
}

static enum serr set(struct store *st, int64_t node, const char *key, const char *value,
		     enum store_apply mode, size_t *changed)
{
	json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
	enum serr err = store_setting_set(st, node, key, v, mode, changed, msg, sizeof(msg));

	json_decref(v);
	return err;
}

static void test_tree(struct store *st)
{
	int64_t a, b, c, id, moved;
	char path[256];

	CHECK(store_domain_create(st, STORE_ROOT, "Sales", &a, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_create(st, a, "Berlin", &b, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_create(st, STORE_ROOT, "Sales", &c, msg, sizeof(msg)) == SERR_EXIST);
	CHECK_STR_CONTAINS(msg, "already exists");
	/* The same name in another parent is fine. */
	CHECK(store_domain_create(st, STORE_ROOT, "Berlin", &c, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_create(st, a, "a/b", &id, msg, sizeof(msg)) == SERR_INVAL);
	CHECK(store_domain_create(st, a, "", &id, msg, sizeof(msg)) == SERR_INVAL);
	CHECK(store_domain_create(st, a, "\xc3\x28", &id, msg, sizeof(msg)) == SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "UTF-8");
	CHECK(store_domain_create(st, 9999, "x", &id, msg, sizeof(msg)) == SERR_NOENT);

	CHECK(store_domain_path(st, b, path, sizeof(path)) == SERR_OK);
	CHECK(strcmp(path, "/Sales/Berlin") == 0);
	CHECK(store_domain_path(st, STORE_ROOT, path, sizeof(path)) == SERR_OK);
	CHECK(strcmp(path, "/") == 0);
	CHECK(store_domain_lookup(st, "/Sales/Berlin", 0, &id, msg, sizeof(msg)) == SERR_OK);
	CHECK(id == b);
	CHECK(store_domain_lookup(st, "/Sales/Paris", 0, &id, msg, sizeof(msg)) == SERR_NOENT);
	CHECK_STR_CONTAINS(msg, "Paris");
	CHECK(store_domain_lookup(st, "/Ops/Lab/Rack1", 1, &id, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_path(st, id, path, sizeof(path)) == SERR_OK);
	CHECK(strcmp(path, "/Ops/Lab/Rack1") == 0);

	/* A domain cannot move below itself; it can move elsewhere, and
	 * names stay unique among siblings. */
	CHECK(store_domain_move(st, a, b, msg, sizeof(msg)) == SERR_INVAL);
	CHECK(store_domain_move(st, a, a, msg, sizeof(msg)) == SERR_INVAL);
	CHECK(store_domain_move(st, c, a, msg, sizeof(msg)) == SERR_EXIST);
	CHECK(store_domain_rename(st, c, "Munich", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_move(st, c, a, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_path(st, c, path, sizeof(path)) == SERR_OK);
	CHECK(strcmp(path, "/Sales/Munich") == 0);

	/* Only empty domains are deleted. */
	CHECK(store_client_add(st, c, "uuid-m", "host-m", secret, &moved, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_domain_delete(st, c, msg, sizeof(msg)) == SERR_NOTEMPTY);
	CHECK(store_client_move(st, moved, b, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_delete(st, c, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_delete(st, STORE_ROOT, msg, sizeof(msg)) == SERR_INVAL);
	CHECK(store_client_add(st, b, "uuid-m", "dup", secret, &id, msg, sizeof(msg)) ==
	      SERR_EXIST);
	CHECK(store_client_move(st, moved, moved, msg, sizeof(msg)) == SERR_INVAL);
}

static void test_inheritance(struct store *st)
{
	int64_t d, sub, c1, c2, c3, v1, v2, v3, n;
	size_t changed = 99;

	CHECK(store_domain_create(st, STORE_ROOT, "Eng", &d, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_create(st, d, "QA", &sub, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_client_add(st, d, "u1", "h1", secret, &c1, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_client_add(st, sub, "u2", "h2", secret, &c2, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_client_add(st, STORE_ROOT, "u3", "h3", secret, &c3, msg, sizeof(msg)) ==
	      SERR_OK);
	/* New clients start with the defaults and a queued delivery. */
	CHECK(strcmp(eff(st, c2, "scan_method"), "\"conventional\"") == 0);
	CHECK(store_client_version(st, c2, &v2) == SERR_OK && v2 > 0);

	/* A domain value reaches the clients below it, not the others. */
	CHECK(set(st, d, "scan_method", "\"smart\"", STORE_APPLY_INHERIT, &changed) == SERR_OK);
	CHECK(changed == 2);
	CHECK(strcmp(eff(st, c1, "scan_method"), "\"smart\"") == 0);
	CHECK(strcmp(eff(st, c2, "scan_method"), "\"smart\"") == 0);
	CHECK(strcmp(eff(st, c3, "scan_method"), "\"conventional\"") == 0);
	CHECK(store_client_version(st, c1, &v1) == SERR_OK && v1 > v2);
	{
		/* What a node takes from above, without its own. */
		json_t *above = NULL;

		CHECK(store_settings_inherited(st, sub, &above, msg, sizeof(msg)) == SERR_OK);
		CHECK(json_is_string(json_object_get(above, "scan_method")) &&
		      strcmp(json_string_value(json_object_get(above, "scan_method")),
			     "smart") == 0);
		json_decref(above);
		CHECK(store_settings_inherited(st, STORE_ROOT, &above, msg, sizeof(msg)) ==
		      SERR_OK && json_object_size(above) == 0);
		json_decref(above);
	}

	/* A client override survives an INHERIT change above it... */
	CHECK(set(st, c2, "scan_method", "\"conventional\"", STORE_APPLY_INHERIT, &changed) ==
	      SERR_OK && changed == 1);
	CHECK(set(st, STORE_ROOT, "scan_method", "\"smart\"", STORE_APPLY_INHERIT, &changed) ==
	      SERR_OK);
	CHECK(changed == 2); /* c3 and host-m; c1 is smart already, c2 keeps its own */
	CHECK(strcmp(eff(st, c2, "scan_method"), "\"conventional\"") == 0);
	/* ...and is cleared by an ALL change, as is the domain's. */
	CHECK(set(st, STORE_ROOT, "scan_method", "\"conventional\"", STORE_APPLY_ALL, &changed) ==
	      SERR_OK);
	CHECK(changed == 3); /* c1, c3, host-m; c2 was conventional already */
	CHECK(strcmp(eff(st, c1, "scan_method"), "\"conventional\"") == 0);
	CHECK(store_client_version(st, c2, &v3) == SERR_OK);
	{
		json_t *own = NULL;

		CHECK(store_settings_get(st, d, &own, NULL, msg, sizeof(msg)) == SERR_OK);
		CHECK(own && json_object_get(own, "scan_method") == NULL);
		json_decref(own);
	}

	/* Unset returns a node to inheriting. */
	CHECK(set(st, sub, "roaming", "true", STORE_APPLY_INHERIT, &changed) == SERR_OK);
	CHECK(strcmp(eff(st, c2, "roaming"), "true") == 0);
	CHECK(store_setting_unset(st, sub, "roaming", &changed, msg, sizeof(msg)) == SERR_OK);
	CHECK(changed == 1 && strcmp(eff(st, c2, "roaming"), "false") == 0);
	CHECK(store_setting_unset(st, sub, "roaming", &changed, msg, sizeof(msg)) == SERR_NOENT);
	CHECK(store_setting_unset(st, STORE_ROOT, "roaming", &changed, msg, sizeof(msg)) ==
	      SERR_INVAL);

	/* Moving a client to a domain with other values changes its settings. */
	CHECK(set(st, sub, "update.schedule", "\"weekly sun 04:30\"", STORE_APPLY_INHERIT,
		  &changed) == SERR_OK);
	CHECK(store_client_version(st, c1, &v1) == SERR_OK);
	CHECK(store_client_move(st, c1, sub, msg, sizeof(msg)) == SERR_OK);
	CHECK(strcmp(eff(st, c1, "update.schedule"), "\"weekly sun 04:30\"") == 0);
	CHECK(store_client_version(st, c1, &v2) == SERR_OK && v2 > v1);

	/* One queued delivery per client, whatever the number of changes. */
	CHECK(store_delivery_count(st, &n) == SERR_OK);
	CHECK(n == 4); /* host-m from test_tree, c1, c2, c3 */
}

/* Whether client id's stored settings (what its agent is sent) have key
 * at value (compact JSON). */
static bool sent(struct store *st, int64_t id, const char *key, const char *value)
{
	json_t *all = NULL;
	char *json = NULL, *v = NULL;
	int64_t version;
	bool same;

	if (store_agent_settings(st, id, &json, &version, msg, sizeof(msg)) != SERR_OK)
		return false;
	all = json_loads(json, 0, NULL);
	v = json_dumps(json_object_get(all, key), JSON_ENCODE_ANY | JSON_COMPACT);
	same = v && strcmp(v, value) == 0;
	free(v);
	free(json);
	json_decref(all);
	return same;
}

static int roaming_of(json_t *c, void *arg)
{
	*(int *)arg = json_is_true(json_object_get(c, "roaming"));
	return 1;
}

/* A refresh of more clients than one statement records (256): every
 * client's stored settings follow its domain's, a deeper domain's own
 * value and a client's own win, each changed client counted once, and
 * the roaming flag follows. */
static void test_refresh_many(struct store *st)
{
	int64_t top, deep, ids[600], own = 0;
	char uuid[32];
	size_t changed = 0, i;
	int roaming = -1;

	CHECK(store_domain_create(st, STORE_ROOT, "Many", &top, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_create(st, top, "Deep", &deep, msg, sizeof(msg)) == SERR_OK);
	for (i = 0; i < 600; i++) {
		snprintf(uuid, sizeof(uuid), "many-%zu", i);
		CHECK(store_client_add(st, i % 2 ? deep : top, uuid, uuid, secret, &ids[i], msg,
				       sizeof(msg)) == SERR_OK);
	}
	own = ids[5];
	CHECK(set(st, deep, "update.schedule", "\"daily 02:02\"", STORE_APPLY_INHERIT,
		  &changed) == SERR_OK && changed == 300);
	CHECK(set(st, own, "update.schedule", "\"daily 05:05\"", STORE_APPLY_INHERIT,
		  &changed) == SERR_OK && changed == 1);
	CHECK(set(st, top, "update.schedule", "\"daily 01:01\"", STORE_APPLY_INHERIT,
		  &changed) == SERR_OK && changed == 300);
	CHECK(set(st, top, "roaming", "true", STORE_APPLY_INHERIT, &changed) == SERR_OK &&
	      changed == 600);
	for (i = 0; i < 600; i++) {
		CHECK(sent(st, ids[i], "update.schedule", ids[i] == own ? "\"daily 05:05\"" :
			   i % 2 ? "\"daily 02:02\"" : "\"daily 01:01\""));
		CHECK(sent(st, ids[i], "roaming", "true"));
	}
	CHECK(store_clients_each(st, ids[599], roaming_of, &roaming) == SERR_OK && roaming == 1);
	CHECK(set(st, STORE_ROOT, "update.schedule", "\"daily 03:03\"", STORE_APPLY_ALL,
		  &changed) == SERR_OK);
	CHECK(changed >= 600);
	for (i = 0; i < 600; i++)
		CHECK(sent(st, ids[i], "update.schedule", "\"daily 03:03\""));
}

static void test_validation(struct store *st)
{
	int64_t d;

	CHECK(store_domain_lookup(st, "/Eng", 0, &d, msg, sizeof(msg)) == SERR_OK);
	CHECK(set(st, d, "scan_method", "\"fast\"", STORE_APPLY_ALL, NULL) == SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "scan_method: expected one of smart, conventional");
	CHECK(set(st, d, "roaming", "1", STORE_APPLY_ALL, NULL) == SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "roaming: expected true or false");
	CHECK(set(st, d, "update.schedule", "\"daily 24:00\"", STORE_APPLY_ALL, NULL) ==
	      SERR_INVAL);
	CHECK(set(st, d, "update.schedule", "\"weekly fun 01:00\"", STORE_APPLY_ALL, NULL) ==
	      SERR_INVAL);
	CHECK(set(st, d, "update.schedule", "\"daily 7:00\"", STORE_APPLY_ALL, NULL) ==
	      SERR_INVAL);
	CHECK(set(st, d, "update.schedule", "\"hourly\"", STORE_APPLY_ALL, NULL) == SERR_OK);
	/* Offered again since agents restart for updates; a boolean. */
	CHECK(set(st, STORE_ROOT, "restart.notify", "\"yes\"", STORE_APPLY_ALL, NULL) ==
	      SERR_INVAL);
	CHECK(set(st, STORE_ROOT, "restart.notify", "false", STORE_APPLY_ALL, NULL) == SERR_OK);
	CHECK(set(st, STORE_ROOT, "restart.never", "false", STORE_APPLY_ALL, NULL) == SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "restart.never: no such setting");
	CHECK(set(st, STORE_ROOT, "update.window", "45", STORE_APPLY_ALL, NULL) == SERR_OK);
	CHECK(set(st, d, "no.such", "true", STORE_APPLY_ALL, NULL) == SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "no.such: no such setting");
}

static void test_tree_json(struct store *st)
{
	json_t *tree = NULL, *doms;
	size_t i;
	int found = 0;

	CHECK(store_tree(st, &tree, msg, sizeof(msg)) == SERR_OK && tree);
	if (!tree)
		return;
	CHECK(strcmp(json_string_value(json_object_get(tree, "kind")), "root") == 0);
	doms = json_object_get(tree, "domains");
	for (i = 0; i < json_array_size(doms); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(doms, i), "name")),
			   "Sales") == 0)
			found = 1;
	CHECK(found);
	CHECK(json_array_size(json_object_get(tree, "clients")) == 1); /* u3 */
	json_decref(tree);
}

/* Agents authenticate by uuid and secret; acknowledging a version ends its
 * delivery, and only that version or an older one. */
static void test_agents(struct store *st)
{
	unsigned char wrong[32] = { 9 };
	int64_t id, c2, v, n0, n1;
	char *json = NULL;

	CHECK(store_agent_auth(st, "u2", secret, &id) == SERR_OK);
	CHECK(store_agent_auth(st, "u2", wrong, &c2) == SERR_NOENT);
	CHECK(store_agent_auth(st, "nobody", secret, &c2) == SERR_NOENT);
	CHECK(store_agent_seen(st, id, "{\"os\":\"Debian 12\"}", 1000, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_agent_settings(st, id, &json, &v, msg, sizeof(msg)) == SERR_OK);
	CHECK_STR_CONTAINS(json, "\"scan_method\":\"conventional\"");
	free(json);
	CHECK(store_delivery_count(st, &n0) == SERR_OK);
	CHECK(store_agent_ack(st, id, v - 1, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_delivery_count(st, &n1) == SERR_OK && n1 == n0);
	CHECK(store_agent_ack(st, id, v, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_delivery_count(st, &n1) == SERR_OK && n1 == n0 - 1);
}

static int take_client(json_t *c, void *arg)
{
	json_t **out = arg;

	*out = json_incref(c);
	return 1;
}

/* Client id as st's store_clients_each() shows it: its last_seen, and
 * its status's member os ("" without). */
static int64_t seen_at(struct store *st, int64_t id, const char **os)
{
	static char text[64];
	json_t *c = NULL;
	int64_t at;

	if (store_clients_each(st, id, take_client, &c) != SERR_OK || !c)
		return -1;
	at = json_integer_value(json_object_get(c, "last_seen"));
	snprintf(text, sizeof(text), "%s", json_string_value(json_object_get(
		json_object_get(c, "status"), "os")) ?: "");
	*os = text;
	json_decref(c);
	return at;
}

/* Counts the claimed deliveries of client arg[0] in arg[1]. */
static bool count_claim(const struct store_delivery *d, void *arg)
{
	int64_t *a = arg;

	a[1] += d->client == a[0];
	return true;
}

/* store_seen_flush(), its message printed on failure. */
static enum serr flush(struct store *st)
{
	enum serr err = store_seen_flush(st, msg, sizeof(msg));

	if (err != SERR_OK)
		fprintf(stderr, "store_seen_flush: %s\n", msg);
	return err;
}

/* Agents' reports are held and written once a second: this store shows
 * them at once, another once written; a report without status keeps the
 * last; a poll finds an agent that last polled another server, which is
 * then recorded as this one's; on PostgreSQL a row another
 * transaction holds makes the write give up at once, the reports kept
 * for the next. */
static void test_reports(struct store *st, const char *path)
{
	struct store *other = store_open(path, msg, sizeof(msg));
	const char *os = NULL;
	char sql[256];
	int64_t id = 0, claimed[2] = { 0, 0 };
	struct store_delivery d;
	bool queued, tasks, here;
	PGconn *c = NULL;
	PGresult *res;

	CHECK(other != NULL);
	if (!other)
		return;
	CHECK(store_agent_auth(st, "u2", secret, &id) == SERR_OK);
	CHECK(store_agent_seen(st, id, "{\"os\":\"A\"}", 5000, msg, sizeof(msg)) == SERR_OK);
	CHECK(seen_at(st, id, &os) == 5000 && strcmp(os, "A") == 0);
	CHECK(seen_at(other, id, &os) != 5000 && strcmp(os, "A") != 0);
	CHECK(flush(st) == SERR_OK);
	CHECK(seen_at(other, id, &os) == 5000 && strcmp(os, "A") == 0);
	CHECK(store_agent_seen(st, id, NULL, 5001, msg, sizeof(msg)) == SERR_OK);
	CHECK(flush(st) == SERR_OK);
	CHECK(seen_at(other, id, &os) == 5001 && strcmp(os, "A") == 0);

	/* Last seen at server 7, which its delivery waits at: a poll here
	 * finds it so; once recorded here, the changes come here. */
	snprintf(sql, sizeof(sql), "UPDATE clients SET frontend = 7 WHERE node = %lld; "
		 "DELETE FROM deliveries WHERE client = %lld; INSERT INTO deliveries (client, "
		 "version, created, next_attempt, frontend) VALUES (%lld, 1, 0, 0, 7)",
		 (long long)id, (long long)id, (long long)id);
	CHECK(raw_exec(path, sql));
	CHECK(store_poll_state(st, id, 0, &d, &queued, &tasks, &here) == SERR_OK && queued &&
	      d.version == 1 && !tasks && !here);
	claimed[0] = id;
	CHECK(store_deliveries_claim(st, time(NULL), 100, count_claim, claimed) == SERR_OK &&
	      claimed[1] == 0);
	CHECK(store_agent_here(st, id) == SERR_OK);
	CHECK(store_poll_state(st, id, 0, &d, &queued, &tasks, &here) == SERR_OK && here);
	CHECK(store_client_update_now(st, id, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_deliveries_claim(st, time(NULL), 100, count_claim, claimed) == SERR_OK &&
	      claimed[1] == 1);
	store_deliveries_cancel(st, id, &(int64_t){ 0 });
	CHECK(store_poll_state(st, 999999, 0, &d, &queued, &tasks, &here) == SERR_NOENT &&
	      !queued && !here);

	if (is_postgres(path)) {
		c = PQconnectdb(path);
		snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM clients WHERE node = %lld FOR "
			 "UPDATE", (long long)id);
		res = PQexec(c, sql);
		CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
		PQclear(res);
		CHECK(store_agent_seen(st, id, "{\"os\":\"B\"}", 5003, msg, sizeof(msg)) ==
		      SERR_OK);
		CHECK(flush(st) == SERR_BUSY);
		CHECK(seen_at(st, id, &os) == 5003 && strcmp(os, "B") == 0);
		PQclear(PQexec(c, "ROLLBACK"));
		PQfinish(c);
		CHECK(flush(st) == SERR_OK);
		CHECK(seen_at(other, id, &os) == 5003 && strcmp(os, "B") == 0);
	}
	store_close(other);
}

/* The event log keeps a client's host name and domain, filters by kind,
 * client, domain (and below), time and page, and prunes by age; settings
 * say where each value in effect comes from; a console token slides. */
static void test_events(struct store *st)
{
	struct store_event_filter f = { .limit = 100 };
	unsigned char tok[32] = { 7 };
	int64_t dom, sub, c, n, exp = 0, t = (int64_t)time(NULL);
	json_t *list = NULL, *origin = NULL;
	char who[64];

	CHECK(store_domain_lookup(st, "/Ev/Sub", 1, &sub, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_domain_lookup(st, "/Ev", 0, &dom, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_client_add(st, sub, "ev-uuid", "ev-host", secret, &c, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_event_add(st, "detection", c, 1000, "Eicar in /x") == SERR_OK);
	CHECK(store_event_add(st, "system", 0, 2000, "server started") == SERR_OK);
	CHECK(store_events(st, &f, &list) == SERR_OK);
	CHECK(json_array_size(list) >= 2);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "message")),
		     "server started");
	json_decref(list);
	f.domain = "/Ev";
	CHECK(store_events(st, &f, &list) == SERR_OK && json_array_size(list) == 1);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "domain")),
		     "/Ev/Sub");
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "hostname")),
		     "ev-host");
	json_decref(list);
	f.domain = "/E";   /* a prefix of a name is not a domain above it */
	CHECK(store_events(st, &f, &list) == SERR_OK && json_array_size(list) == 0);
	json_decref(list);
	f = (struct store_event_filter){ .kind = "detection", .client = c, .since = 1000,
					 .until = 1000, .limit = 10 };
	CHECK(store_events(st, &f, &list) == SERR_OK && json_array_size(list) == 1);
	json_decref(list);
	/* The client goes; its events stay, with its name. */
	CHECK(store_client_remove(st, c, "removed for the test", msg, sizeof(msg)) == SERR_OK);
	f = (struct store_event_filter){ .client = c, .limit = 10 };
	CHECK(store_events(st, &f, &list) == SERR_OK && json_array_size(list) == 2);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "message")),
		     "removed for the test");
	json_decref(list);
	/* Kept among the removed clients, restored with its id and its own
	 * settings, and removed again. */
	CHECK(store_removed_list(st, &list) == SERR_OK);
	CHECK(json_array_size(list) >= 1);
	CHECK(json_integer_value(json_object_get(json_array_get(list, 0), "id")) == c);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "domain")),
		     "/Ev/Sub");
	json_decref(list);
	CHECK(store_client_restore(st, c, msg, sizeof(msg)) == SERR_OK);
	CHECK(store_client_restore(st, c, msg, sizeof(msg)) == SERR_NOENT);
	CHECK(store_agent_auth(st, "ev-uuid", secret, &n) == SERR_OK && n == c);
	CHECK(store_client_remove(st, c, "removed for the test", msg, sizeof(msg)) == SERR_OK);
	/* Old by the clock alone is not old: this server has not run that long. */
	CHECK(store_events_prune(st, 500, 2000, &n) == SERR_OK && n == 0);
	CHECK(store_removed_purge(st, 500, (int64_t)time(NULL) + 100000, &n) == SERR_OK &&
	      n == 0);
	/* The removed client was the newest: its id is not given again. */
	CHECK(store_client_add(st, sub, "ev-uuid-2", "ev-host-2", secret, &n, msg, sizeof(msg)) ==
	      SERR_OK && n > c);

	CHECK(store_setting_set(st, dom, "roaming", json_true(), STORE_APPLY_INHERIT, NULL, msg,
				sizeof(msg)) == SERR_OK);
	CHECK(store_settings_origin(st, sub, &origin) == SERR_OK);
	CHECK_STR_EQ(json_string_value(json_object_get(origin, "roaming")), "domain:/Ev");
	CHECK_STR_EQ(json_string_value(json_object_get(origin, "scan_method")), "root");
	json_decref(origin);

	/* A sliding token: 60 s past each use, never past its end (times
	 * from now: a token also counts its life in the server's own time). */
	CHECK(store_token_put(st, tok, STORE_TOKEN_CONSOLE, "admin", t + 60, t + 100, msg,
			      sizeof(msg)) == SERR_OK);
	CHECK(store_token_check(st, tok, STORE_TOKEN_CONSOLE, t + 50, 60, who, sizeof(who),
				&exp) == SERR_OK && exp == t + 100);
	CHECK(store_token_check(st, tok, STORE_TOKEN_CONSOLE, t + 99, 60, who, sizeof(who),
				&exp) == SERR_OK && exp == t + 100);
	CHECK(store_token_check(st, tok, STORE_TOKEN_CONSOLE, t + 100, 60, who, sizeof(who),
				NULL) == SERR_NOENT);
	CHECK(store_token_check(st, tok, STORE_TOKEN_SESSION, t + 50, 0, who, sizeof(who),
				NULL) == SERR_NOENT);
	CHECK(store_token_delete(st, tok) == SERR_OK);
}

/* Enrollment tokens are listed by an id from their hash, and revoked by it. */
static void test_token_ids(struct store *st)
{
	unsigned char a[32] = { 0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7 }, b[32] = { 0x01 };
	char who[64];
	json_t *list = NULL;
	int64_t n = 0, before = 0, now = (int64_t)time(NULL);

	CHECK(store_token_count(st, STORE_TOKEN_ENROLL, now, &before) == SERR_OK);
	CHECK(store_token_put(st, a, STORE_TOKEN_ENROLL, "/Lab", now + 3000, 0, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_token_put(st, b, STORE_TOKEN_ENROLL, "/", now + 500, 0, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_tokens_list(st, STORE_TOKEN_ENROLL, now, &list) == SERR_OK);
	CHECK(json_array_size(list) == (size_t)before + 2);
	/* Soonest expiry first; only the id, the subject and the expiry. */
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, before), "id")),
		     "0100000000000000");
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, before + 1), "id")),
		     "abcd010203040506");
	CHECK(json_object_size(json_array_get(list, before + 1)) == 5);
	json_decref(list);
	/* An expired token is not listed (tokens expire in real time: the
	 * store deletes those past it). */
	CHECK(store_tokens_list(st, STORE_TOKEN_ENROLL, now + 1000, &list) == SERR_OK);
	CHECK(json_array_size(list) == 1);
	json_decref(list);
	/* Revoking needs the kind and the whole id. */
	CHECK(store_token_revoke(st, STORE_TOKEN_CONSOLE, "abcd010203040506", &n) == SERR_OK &&
	      n == 0);
	CHECK(store_token_revoke(st, STORE_TOKEN_ENROLL, "abcd0102", &n) == SERR_OK && n == 0);
	CHECK(store_token_revoke(st, STORE_TOKEN_ENROLL, "abcd010203040506", &n) == SERR_OK &&
	      n == 1);
	CHECK(store_token_check(st, a, STORE_TOKEN_ENROLL, now, 0, who, sizeof(who), NULL) ==
	      SERR_NOENT);
	CHECK(store_token_check(st, b, STORE_TOKEN_ENROLL, now, 0, who, sizeof(who), NULL) ==
	      SERR_OK);
}

/* After the server has run long enough (its count, saved in the
 * database, set forward here as hours of running would): what is old by
 * the clock and by that count goes. */
static void test_observed(const char *path)
{
	struct store *st;
	int64_t n = 0;

	CHECK(raw_exec(path, "UPDATE meta SET value = value + 100000 WHERE key = 'observed'"));
	st = store_open(path, msg, sizeof(msg));
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(store_observed(st) >= 100000);
	CHECK(store_events_prune(st, 500, 2000, &n) == SERR_OK && n == 1);
	CHECK(store_removed_purge(st, 500, (int64_t)time(NULL) + 100000, &n) == SERR_OK &&
	      n >= 1);
	store_close(st);
}

/* Administrators: roles, the last one of role admin, their sessions
 * ended on removal, or all but one on a password change. */
static void test_admins(struct store *st)
{
	unsigned char a[32] = { 0xa1 }, b[32] = { 0xb2 }, c[32] = { 0xc3 };
	int64_t n = 0, now = (int64_t)time(NULL);
	char who[64], *role = NULL;
	json_t *list = NULL;

	CHECK(store_admin_put(st, "chief", "$argon2id$hash-1", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_admin_add(st, "reader", "$argon2id$hash-2", "read-only", msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(store_admin_add(st, "reader", "$argon2id$hash-3", "admin", msg, sizeof(msg)) ==
	      SERR_EXIST);
	CHECK(store_admin_add(st, "odd", "$argon2id$hash-3", "root", msg, sizeof(msg)) !=
	      SERR_OK);
	/* A password change keeps the role. */
	CHECK(store_admin_put(st, "reader", "$argon2id$hash-4", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_admin_role(st, "reader", &role) == SERR_OK);
	CHECK_STR_EQ(role, "read-only");
	free(role);
	CHECK(store_admin_role(st, "nobody", &role) == SERR_NOENT);
	CHECK(store_admin_count_role(st, "admin", &n) == SERR_OK && n == 1);
	CHECK(store_admin_set_role(st, "reader", "admin", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_admin_count_role(st, "admin", &n) == SERR_OK && n == 2);
	CHECK(store_admin_list(st, &list) == SERR_OK && json_array_size(list) == 2);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 1), "name")),
		     "reader");
	json_decref(list);

	CHECK(store_token_put(st, a, STORE_TOKEN_SESSION, "reader", now + 60, 0, msg,
			      sizeof(msg)) == SERR_OK);
	CHECK(store_token_put(st, b, STORE_TOKEN_CONSOLE, "reader", now + 60, now + 60, msg,
			      sizeof(msg)) == SERR_OK);
	CHECK(store_token_put(st, c, STORE_TOKEN_SESSION, "chief", now + 60, 0, msg,
			      sizeof(msg)) == SERR_OK);
	CHECK(store_admin_end_sessions(st, "reader", a) == SERR_OK);
	CHECK(store_token_check(st, a, STORE_TOKEN_SESSION, now, 0, who, sizeof(who), NULL) ==
	      SERR_OK);
	CHECK(store_token_check(st, b, STORE_TOKEN_CONSOLE, now, 0, who, sizeof(who), NULL) ==
	      SERR_NOENT);
	CHECK(store_admin_remove(st, "reader", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_token_check(st, a, STORE_TOKEN_SESSION, now, 0, who, sizeof(who), NULL) ==
	      SERR_NOENT);
	CHECK(store_token_check(st, c, STORE_TOKEN_SESSION, now, 0, who, sizeof(who), NULL) ==
	      SERR_OK);
	CHECK(store_admin_end_sessions(st, "chief", NULL) == SERR_OK);
	CHECK(store_token_check(st, c, STORE_TOKEN_SESSION, now, 0, who, sizeof(who), NULL) ==
	      SERR_NOENT);
}

/* The database survives reopening, and a newer schema is refused. */
static void test_reopen(const char *path)
{
	struct store *st = store_open(path, msg, sizeof(msg));
	int64_t d;

	CHECK(st != NULL);
	CHECK(store_domain_lookup(st, "/Sales/Berlin", 0, &d, msg, sizeof(msg)) == SERR_OK);
	CHECK(strcmp(eff(st, STORE_ROOT, "update.window"), "45") == 0);
	store_close(st);
}

/* The schema version of the database at path (-1 on failure). */
static int64_t schema_of(const char *path)
{
	int64_t v = -1;

	if (store_schema_of(path, &v, msg, sizeof(msg)) != SERR_OK)
		return -1;
	return v;
}

/* Each schema step is its own transaction: one that fails (here step 3,
 * whose table a hand made already) is undone alone, the database stays
 * at the step before with what the earlier steps made, the message names
 * the step and the version kept; once the cause is gone, the next open
 * goes on from there. */
static void test_migration_steps(const char *dir)
{
	char path[600];
	struct store *st;

	snprintf(path, sizeof(path), "%s/steps.db", dir);
	CHECK(raw_exec(path, "CREATE TABLE sps_servers (id INTEGER PRIMARY KEY, pin TEXT)"));
	st = store_open(path, msg, sizeof(msg));
	CHECK(st == NULL);
	CHECK(strstr(msg, "schema step 3 (smart protection servers) failed, the database "
		      "stays at version 2: database: table sps_servers already exists") != NULL);
	CHECK(schema_of(path) == 2);
	store_close(st);
	CHECK(raw_exec(path, "DROP TABLE sps_servers"));
	st = store_open(path, msg, sizeof(msg));
	CHECK(st != NULL);
	CHECK(schema_of(path) == store_schema_version());
	store_close(st);
}

/* PostgreSQL databases start at the schema of version 13 in one step,
 * undone whole when it fails (PostgreSQL's schema changes are
 * transactional); a version the backend never had, and a newer one, are
 * refused with the reason. Empties the database first. */
static void test_migration_postgres(const char *target)
{
	struct store *st;

	CHECK(raw_exec(target, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
		       "CREATE TABLE sps_servers (id BIGINT PRIMARY KEY)"));
	st = store_open(target, msg, sizeof(msg));
	CHECK(st == NULL);
	CHECK(strstr(msg, "schema step 13 (the schema of version 13, at once) failed, the "
		      "database stays at version 0: database: relation \"sps_servers\" "
		      "already exists") != NULL);
	CHECK(schema_of(target) == 0);
	CHECK(raw_exec(target, "SELECT 1 FROM sps_servers") &&
	      !raw_exec(target, "SELECT 1 FROM nodes"));
	CHECK(raw_exec(target, "DROP TABLE sps_servers"));
	st = store_open(target, msg, sizeof(msg));
	CHECK(st != NULL);
	store_close(st);
	CHECK(schema_of(target) == store_schema_version());
	CHECK(raw_exec(target, "UPDATE ward_schema SET version = 12"));
	CHECK(store_open(target, msg, sizeof(msg)) == NULL);
	CHECK_STR_EQ(msg, "database: schema version 12 is none this backend (postgresql) had: "
		     "restore a backup made for it");
	CHECK(raw_exec(target, "UPDATE ward_schema SET version = 99"));
	CHECK(store_open(target, msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "schema version 99 is newer than this wardd understands") != NULL);
}

static void test_utf8(void)
{
	CHECK(util_utf8_valid("abc", 3));
	CHECK(util_utf8_valid("M\xc3\xbcnchen", 8));
	CHECK(util_utf8_valid("\xf0\x9f\x98\x80", 4));
	CHECK(!util_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
	CHECK(!util_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	CHECK(!util_utf8_valid("\xf4\x90\x80\x80", 4));  /* above U+10FFFF */
	CHECK(!util_utf8_valid("\xe2\x82", 2));          /* truncated */
}

/* The limits servers on one database share: an address's wrong
 * passwords, the global brake and its turns, enrollment rates. */
static void test_limits(struct store *st)
{
	int64_t t = 1000000, turn = 0, until = 0;
	unsigned wait = 1;
	bool first = false, engaged = false;
	int i;

	for (i = 0; i < STORE_GUARD_FREE - 1; i++) {
		CHECK(store_guard_fail(st, "192.0.2.7", t, &wait) == SERR_OK);
		CHECK(wait == 0);
	}
	CHECK(store_guard_wait(st, "192.0.2.7", t, &wait) == SERR_OK && wait == 0);
	/* The fifth wrong password: 30 s, then doubling, at most 15 min. */
	CHECK(store_guard_fail(st, "192.0.2.7", t, &wait) == SERR_OK && wait == 30);
	CHECK(store_guard_wait(st, "192.0.2.7", t + 10, &wait) == SERR_OK && wait == 20);
	CHECK(store_guard_wait(st, "192.0.2.7", t + 30, &wait) == SERR_OK && wait == 0);
	CHECK(store_guard_fail(st, "192.0.2.7", t + 31, &wait) == SERR_OK && wait == 60);
	for (i = 0; i < 10; i++)
		store_guard_fail(st, "192.0.2.7", t + 100 + i, &wait);
	CHECK(store_guard_wait(st, "192.0.2.7", t + 109, &wait) == SERR_OK && wait == 900);
	CHECK(store_guard_wait(st, "192.0.2.8", t, &wait) == SERR_OK && wait == 0);
	/* Pruning keeps an address that must still wait. */
	CHECK(store_limits_prune(st, t + 200) == SERR_OK);
	CHECK(store_guard_wait(st, "192.0.2.7", t + 200, &wait) == SERR_OK && wait == 809);
	/* A success forgets; failures older than 15 minutes no longer count. */
	CHECK(store_guard_clear(st, "192.0.2.7") == SERR_OK);
	CHECK(store_guard_wait(st, "192.0.2.7", t + 109, &wait) == SERR_OK && wait == 0);
	for (i = 0; i < STORE_GUARD_FREE - 1; i++)
		store_guard_fail(st, "198.51.100.1", t, &wait);
	CHECK(store_guard_fail(st, "198.51.100.1", t + 901, &wait) == SERR_OK && wait == 0);

	/* The brake: 3 failures within 60 s engage it (once) for 60 s after
	 * the last; a failure after the window starts another. */
	CHECK(store_brake_until(st, &until) == SERR_OK && until == 0);
	CHECK(store_brake_fail(st, 3, 60, t, &engaged) == SERR_OK && !engaged);
	CHECK(store_brake_fail(st, 3, 60, t + 70, &engaged) == SERR_OK && !engaged);
	CHECK(store_brake_fail(st, 3, 60, t + 71, &engaged) == SERR_OK && !engaged);
	CHECK(store_brake_fail(st, 3, 60, t + 72, &engaged) == SERR_OK && engaged);
	CHECK(store_brake_fail(st, 3, 60, t + 73, &engaged) == SERR_OK && !engaged);
	CHECK(store_brake_until(st, &until) == SERR_OK && until == t + 133);
	/* Turns one per pace (2 s) from now; a turn beyond the cap (the clock
	 * stepped back) starts over. */
	CHECK(store_brake_turn(st, 2, 100, t + 80, &turn) == SERR_OK && turn == t + 80);
	CHECK(store_brake_turn(st, 2, 100, t + 80, &turn) == SERR_OK && turn == t + 82);
	CHECK(store_brake_turn(st, 2, 100, t + 81, &turn) == SERR_OK && turn == t + 84);
	CHECK(store_brake_turn(st, 2, 100, t + 90, &turn) == SERR_OK && turn == t + 90);
	CHECK(store_brake_turn(st, 2, 100, t - 500, &turn) == SERR_OK && turn == t - 500);

	/* Rates: 6 a minute, a burst of 3; per name; refusals say how long to
	 * wait and the first of each interval is to be logged. */
	for (i = 0; i < 3; i++) {
		CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 6, 3,
				      t * 1000, 300, &wait, &first, msg, sizeof(msg)) == SERR_OK);
		CHECK(wait == 0 && !first);
	}
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 6, 3, t * 1000, 300,
			      &wait, &first, msg, sizeof(msg)) == SERR_OK && wait == 10 && first);
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 6, 3, t * 1000 + 4000,
			      300, &wait, &first, msg, sizeof(msg)) == SERR_OK && wait == 6 &&
	      !first);
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_TOKEN, "192.0.2.1", 6, 3, t * 1000, 300,
			      &wait, &first, msg, sizeof(msg)) == SERR_OK && wait == 0);
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 6, 3,
			      t * 1000 + 10000, 300, &wait, &first, msg, sizeof(msg)) == SERR_OK &&
	      wait == 0);
	/* No limit, and a clock stepped back an hour. */
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 0, 0, t * 1000, 300,
			      &wait, &first, msg, sizeof(msg)) == SERR_OK && wait == 0);
	CHECK(store_rate_take(st, STORE_LIMIT_ENROLL_ADDRESS, "192.0.2.1", 6, 3,
			      (t - 3600) * 1000, 300, &wait, &first, msg, sizeof(msg)) == SERR_OK &&
	      wait == 0);
	/* Spent rates are forgotten once refilled. */
	CHECK(store_limits_prune(st, t + 3600) == SERR_OK);
}

/* The doorbell's question asked behind a backlog of notifications (as a
 * loop held for seconds finds them): the database that sends them is not
 * silent, and one read takes what waits. */
/* Server-wide values: a prefix lists only its keys, byte for byte
 * whatever the collation; a claim takes a key once, and with it a second
 * key in the same transaction. */
static void test_kv(struct store *st)
{
	json_t *rows = NULL;
	bool claimed = true;
	char *v = NULL;

	CHECK(store_kv_put(st, "license:a", "1", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_put(st, "license:b", "2", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_put(st, "license.evaluation", "3", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_put(st, "LICENSE:c", "4", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_put(st, "licenseXd", "5", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_list(st, "license:", &rows) == SERR_OK);
	CHECK(json_array_size(rows) == 2);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(rows, 0), "key")),
		     "license:a");
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(rows, 1), "value")), "2");
	json_decref(rows);
	CHECK(store_kv_list(st, "a%", &rows) == SERR_INVAL);
	CHECK(store_kv_claim(st, "told:x", "1", "also", "y", &claimed, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(claimed);
	CHECK(store_kv_get(st, "also", &v) == SERR_OK && v && strcmp(v, "y") == 0);
	free(v);
	CHECK(store_kv_put(st, "also", "z", msg, sizeof(msg)) == SERR_OK);
	CHECK(store_kv_claim(st, "told:x", "1", "also", "w", &claimed, msg, sizeof(msg)) ==
	      SERR_OK);
	CHECK(!claimed);
	v = NULL;
	CHECK(store_kv_get(st, "also", &v) == SERR_OK && v && strcmp(v, "z") == 0);
	free(v);
}

static void test_bell(const char *path)
{
	struct store_bell *b = store_bell_open(path, 99, msg, sizeof(msg));
	PGconn *c = PQconnectdb(path);
	PGresult *res;

	CHECK(b != NULL && PQstatus(c) == CONNECTION_OK);
	if (!b || PQstatus(c) != CONNECTION_OK) {
		store_bell_close(b);
		PQfinish(c);
		return;
	}
	res = PQexec(c, "SELECT pg_notify('ward_deliveries', i::text) FROM "
		     "generate_series(1, 100000) i");
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
	CHECK(store_bell_ask(b) == 0);
	usleep(1600 * 1000);
	CHECK(store_bell_waited(b) >= 1600);
	CHECK(store_bell_read(b) == 1);
	CHECK(store_bell_waited(b) < 1000);
	store_bell_close(b);
	PQfinish(c);
}

int main(void)
{
	const char *pg = getenv("WARD_TEST_DATABASE");
	char path[600];
	struct store *st;

	if (pg && *pg)
		snprintf(path, sizeof(path), "%s", pg);
	else
		snprintf(path, sizeof(path), "%s/ward.db", test_tmpdir());
	st = store_open(path, msg, sizeof(msg));
	CHECK(st != NULL);
	if (!st) {
		fprintf(stderr, "%s\n", msg);
		return check_finish();
	}
	test_tree(st);
	test_inheritance(st);
	test_validation(st);
	test_tree_json(st);
	test_agents(st);
	test_reports(st, path);
	test_events(st);
	test_token_ids(st);
	test_admins(st);
	test_limits(st);
	test_kv(st);
	test_refresh_many(st);
	store_close(st);
	test_reopen(path);
	test_observed(path);
	if (is_postgres(path)) {
		test_migration_postgres(path);
		test_bell(path);
	}
	else
		test_migration_steps(test_tmpdir());
	test_utf8();
	return check_finish();
}
