/* api_clients.c -- clients: their list and states, moves, removal and
 * restoring, connection verification, moves to another server. */
#include "server/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/api_clients.h"
#include "server/licenses.h"

/* A client's connection state: moved (to another server), online (event
 * channel open, or seen within agents.offline_after), inactive (not seen
 * for agents.inactive_after), roaming (away, with the roaming privilege)
 * or offline. */
const char *api_clients_state(const struct api_ctx *ctx, json_t *c, int64_t now)
{
	int64_t id = json_integer_value(json_object_get(c, "id"));
	int64_t seen = json_integer_value(json_object_get(c, "last_seen"));
	const char *verified = json_string_value(json_object_get(c, "verified_state"));

	if (verified && strcmp(verified, "moved") == 0)
		return "moved";
	if (notify_connected(ctx->notify, id) || now - seen <= ctx->cfg->offline_after)
		return "online";
	if (now - seen >= ctx->cfg->inactive_after)
		return "inactive";
	return json_is_true(json_object_get(c, "roaming")) ? "roaming" : "offline";
}

struct client_list {
	const struct api_ctx *ctx;
	json_t *list;      /* NULL: summary only */
	json_t *summary;
	int64_t now;
};

static int list_client(json_t *c, void *arg)
{
	struct client_list *l = arg;
	const char *state = api_clients_state(l->ctx, c, l->now);
	json_t *count = json_object_get(l->summary, state);

	json_object_set_new(l->summary, state, json_integer(json_integer_value(count) + 1));
	if (l->list) {
		json_object_set_new(c, "state", json_string(state));
		json_array_append(l->list, c);
	}
	return 0;
}

void api_clients_list(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct client_list l = { .ctx = ctx, .now = (int64_t)time(NULL) };
	int64_t summary_only = 0;

	(void)who;
	api_arg_int(args, "summary", &summary_only);
	l.summary = json_pack("{si si si si}", "online", 0, "offline", 0, "roaming", 0,
			      "inactive", 0);
	l.list = summary_only ? NULL : json_array();
	if (!l.summary || (!summary_only && !l.list) ||
	    store_clients_each(ctx->st, 0, list_client, &l) != SERR_OK) {
		json_decref(l.summary);
		json_decref(l.list);
		http_respond_error(req, 500, "database: listing clients failed");
		return;
	}
	if (l.list)
		http_respond_json(req, 200, json_pack("{so so}", "clients", l.list, "summary",
						      l.summary));
	else
		http_respond_json(req, 200, json_pack("{so}", "summary", l.summary));
}

struct one_client {
	const struct api_ctx *ctx;
	json_t *found;
};

static int take_client(json_t *c, void *arg)
{
	struct one_client *o = arg;

	json_object_set_new(c, "state", json_string(api_clients_state(o->ctx, c,
								  (int64_t)time(NULL))));
	o->found = json_incref(c);
	return 1;
}

void api_clients_show(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct one_client o = { .ctx = ctx };
	json_t *own = NULL, *eff = NULL, *rt;
	char msg[256];
	int64_t id = 0;

	(void)who;
	api_arg_int(args, "id", &id);
	if (id <= STORE_ROOT) {
		http_respond_error(req, 400, "id: expected a client id");
		return;
	}
	if (store_clients_each(ctx->st, id, take_client, &o) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the client failed");
		return;
	}
	if (!o.found) {
		http_respond_error(req, 404, "no client with id %lld", (long long)id);
		return;
	}
	/* Real-time scanning as the agent last reported it (null: never). */
	rt = json_object_get(json_object_get(o.found, "status"), "realtime");
	json_object_set_new(o.found, "realtime", rt ? json_incref(rt) : json_null());
	if (store_settings_get(ctx->st, id, &own, &eff, msg, sizeof(msg)) == SERR_OK) {
		json_object_set_new(o.found, "own_settings", own);
		json_object_set_new(o.found, "settings", eff);
	}
	http_respond_json(req, 200, o.found);
}

/* A bulk operation on clients: fn(ctx, id, arg, msg, len) for each id of
 * ids (one id, or a list), each result {"id", "ok", "error"?} appended to
 * results. Returns how many succeeded. */
int64_t api_clients_each(struct api_ctx *ctx, json_t *ids, json_t *results,
			 enum serr (*fn)(struct api_ctx *ctx, int64_t id, void *arg,
					 char *msg, size_t len),
			 void *arg)
{
	json_t *list = json_is_array(ids) ? json_incref(ids) : json_pack("[O]", ids), *v;
	enum serr err;
	int64_t done = 0;
	char msg[256];
	size_t i;

	json_array_foreach(list, i, v) {
		if (json_is_integer(v)) {
			err = fn(ctx, json_integer_value(v), arg, msg, sizeof(msg));
		} else {
			err = SERR_INVAL;
			snprintf(msg, sizeof(msg), "not a client id");
		}
		json_array_append_new(results, err == SERR_OK ?
				      json_pack("{sO sb}", "id", v, "ok", 1) :
				      json_pack("{sO sb ss}", "id", v, "ok", 0, "error", msg));
		done += err == SERR_OK;
	}
	json_decref(list);
	return done;
}

/* Where clients move, and who moves them. */
struct move_to {
	int64_t domain;
	const char *path, *who;
};

enum serr api_clients_move_licensed(struct api_ctx *ctx, int64_t id, int64_t domain,
				    char *msg, size_t len)
{
	static const char *const keys[] = { "scan_method", "realtime.enabled" };
	json_t *own = NULL, *eff = NULL, *there = NULL, *v;
	enum serr err = store_settings_get(ctx->st, id, &own, &eff, msg, len);
	int service;
	size_t i;

	if (err == SERR_OK)
		err = store_settings_get(ctx->st, domain, NULL, &there, msg, len);
	for (i = 0; err == SERR_OK && i < sizeof(keys) / sizeof(keys[0]); i++) {
		v = json_object_get(there, keys[i]);
		if (!json_object_get(own, keys[i]) && v &&
		    !json_equal(v, json_object_get(eff, keys[i])) &&
		    (service = licenses_setting_service(keys[i], v)) >= 0)
			err = licenses_switch(ctx->licenses, service, msg, len);
	}
	json_decref(own);
	json_decref(eff);
	json_decref(there);
	return err;
}

static enum serr move_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
			  size_t len)
{
	const struct move_to *m = arg;
	enum serr err = api_clients_move_licensed(ctx, id, m->domain, msg, len);
	char note[300];

	if (err == SERR_OK)
		err = store_client_move(ctx->st, id, m->domain, msg, len);
	if (err == SERR_OK) {
		snprintf(note, sizeof(note), "moved to %s by %s", m->path, m->who);
		store_event_add(ctx->st, "system", id, 0, note);
	}
	return err;
}

/* Does fn to each client ids (a client id or a list) names: *out is
 * {done_key: N, "results": [...]}, *done N. */
static enum serr bulk(struct api_ctx *ctx, json_t *ids, const char *done_key,
		      enum serr (*fn)(struct api_ctx *ctx, int64_t id, void *arg,
				      char *msg, size_t len),
		      void *arg, int64_t *done, json_t **out, char *msg, size_t len)
{
	json_t *results;

	if (!json_is_integer(ids) && !json_is_array(ids)) {
		snprintf(msg, len, "ids: expected a client id or a list of them");
		return SERR_INVAL;
	}
	results = json_array();
	*done = results ? api_clients_each(ctx, ids, results, fn, arg) : 0;
	*out = results ? json_pack("{sI so}", done_key, (json_int_t)*done, "results", results) :
	       NULL;
	return SERR_OK;
}

enum serr api_clients_move_to(struct api_ctx *ctx, const char *who, json_t *ids,
			      const char *to, json_t **out, char *msg, size_t len)
{
	struct move_to m = { .who = who, .path = to };
	enum serr err;
	int64_t moved;

	if (!json_is_integer(ids) && !json_is_array(ids)) {
		snprintf(msg, len, "ids: expected a client id or a list of them");
		return SERR_INVAL;
	}
	err = api_refuse_moved_ids(ctx, ids, msg, len);
	if (err == SERR_OK)
		err = store_domain_lookup(ctx->st, to, 0, &m.domain, msg, len);
	if (err == SERR_OK)
		err = bulk(ctx, ids, "moved", move_one, &m, &moved, out, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s moved %lld clients to %s", who, (long long)moved,
		     to);
	notify_kick(ctx->notify);
	return SERR_OK;
}

/* Moves one client or a list; answers each one's result. */
void api_clients_move(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_clients_move_to(ctx, who, api_arg_json(args, "ids"),
						 api_arg_string(args, "to"), &out, msg,
						 sizeof(msg)), &out, msg);
}

static enum serr remove_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
			    size_t len)
{
	enum serr err = store_client_remove(ctx->st, id, arg, msg, len);

	if (err == SERR_OK)
		api_quarantine_forget(ctx, id);
	return err;
}

enum serr api_clients_remove_ids(struct api_ctx *ctx, const char *who, json_t *ids,
				 json_t **out, char *msg, size_t len)
{
	enum serr err;
	char note[200];
	int64_t removed;

	snprintf(note, sizeof(note), "removed from the tree by %s", who);
	err = bulk(ctx, ids, "removed", remove_one, note, &removed, out, msg, len);
	if (err == SERR_OK)
		store_eventf(ctx->st, "system", 0, "%s removed %lld clients from the tree", who,
			     (long long)removed);
	return err;
}

/* Removes clients from the tree: their credentials stop working at once;
 * they can be restored for agents.removed_keep. */
void api_clients_remove(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_clients_remove_ids(ctx, who, api_arg_json(args, "ids"), &out,
						    msg, sizeof(msg)), &out, msg);
}

static enum serr restore_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
			     size_t len)
{
	enum serr err = store_client_restore(ctx->st, id, msg, len);

	if (err == SERR_OK)
		store_eventf(ctx->st, "system", id, "client %lld restored to the tree by %s",
			     (long long)id, (const char *)arg);
	return err;
}

enum serr api_clients_restore_ids(struct api_ctx *ctx, const char *who, json_t *ids,
				  json_t **out, char *msg, size_t len)
{
	enum serr err;
	int64_t restored;

	err = bulk(ctx, ids, "restored", restore_one, (void *)who, &restored, out, msg, len);
	if (err == SERR_OK && restored > 0)
		notify_kick(ctx->notify);
	return err;
}

/* Puts removed clients back (agents.removed_keep): their credentials work
 * again and their settings are delivered. */
void api_clients_restore(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_clients_restore_ids(ctx, who, api_arg_json(args, "ids"), &out,
						     msg, sizeof(msg)), &out, msg);
}

void api_clients_removed(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *list = NULL;

	(void)args;
	(void)who;
	if (store_removed_list(ctx->st, &list) != SERR_OK)
		http_respond_error(req, 500, "database: reading the removed clients failed");
	else
		http_respond_json(req, 200, json_pack("{so sI}", "clients", list, "keep",
						      (json_int_t)ctx->cfg->removed_keep));
}

int api_clients_addresses(json_t *c, void *arg)
{
	json_t *list = arg, *status = json_object_get(c, "status");

	json_array_extend(list, json_object_get(status, "ipv4"));
	json_array_extend(list, json_object_get(status, "ipv6"));
	return 1;
}

struct verify_pass {
	struct api_ctx *ctx;
	int64_t now, observed;
	bool remove;
	json_t *summary, *changed, *removed, *changes;  /* changes: {id: new state} */
};

static int verify_client(json_t *c, void *arg)
{
	struct verify_pass *v = arg;
	const char *state = api_clients_state(v->ctx, c, v->now);
	const char *was = json_string_value(json_object_get(c, "verified_state"));
	int64_t seen = json_integer_value(json_object_get(c, "last_seen"));
	json_t *count = json_object_get(v->summary, state);
	char key[24];

	json_object_set_new(v->summary, state, json_integer(json_integer_value(count) + 1));
	snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(c, "id")));
	/* Unseen that long by the clock and by this server's own running time:
	 * a clock set forward removes no one. */
	if (v->remove && strcmp(state, "inactive") == 0 &&
	    v->now - seen >= v->ctx->cfg->remove_after &&
	    v->observed - json_integer_value(json_object_get(c, "seen_observed")) >=
	    v->ctx->cfg->remove_after) {
		json_array_append_new(v->removed, json_pack("{sO sO}", "id",
							     json_object_get(c, "id"), "hostname",
							     json_object_get(c, "hostname")));
	} else if (strcmp(state, "moved") != 0 && (!was || strcmp(was, state) != 0)) {
		json_array_append_new(v->changed, json_pack("{sO sO ss ss}", "id",
				      json_object_get(c, "id"), "hostname",
				      json_object_get(c, "hostname"), "from", was ? was : "",
				      "to", state));
		json_object_set_new(v->changes, key, json_string(state));
	}
	return 0;
}

json_t *api_clients_verify_all(struct api_ctx *ctx, bool remove)
{
	struct verify_pass v = { .ctx = ctx, .now = (int64_t)time(NULL),
				 .observed = store_observed(ctx->st), .remove = remove };
	json_t *item, *state;
	const char *key;
	char msg[256], why[160];
	int64_t id;
	size_t i;

	v.summary = json_pack("{si si si si}", "online", 0, "offline", 0, "roaming", 0,
			      "inactive", 0);
	v.changed = json_array();
	v.removed = json_array();
	v.changes = json_object();
	if (!v.summary || !v.changed || !v.removed || !v.changes ||
	    store_clients_each(ctx->st, 0, verify_client, &v) != SERR_OK) {
		json_decref(v.summary);
		json_decref(v.changed);
		json_decref(v.removed);
		json_decref(v.changes);
		return NULL;
	}
	/* The store is written after the walk over it. */
	json_object_foreach(v.changes, key, state)
		store_client_set_state(ctx->st, strtoll(key, NULL, 10), json_string_value(state));
	json_array_foreach(v.changed, i, item)
		store_eventf(ctx->st, "verify", json_integer_value(json_object_get(item, "id")),
			     "client %lld (%s) is %s (was %s)",
			     (long long)json_integer_value(json_object_get(item, "id")),
			     json_string_value(json_object_get(item, "hostname")),
			     json_string_value(json_object_get(item, "to")),
			     *json_string_value(json_object_get(item, "from")) ?
			     json_string_value(json_object_get(item, "from")) : "new");
	json_array_foreach(v.removed, i, item) {
		id = json_integer_value(json_object_get(item, "id"));
		snprintf(why, sizeof(why), "removed from the tree: inactive for more than %llds "
			 "(the endpoint is not touched)", (long long)ctx->cfg->remove_after);
		if (store_client_remove(ctx->st, id, why, msg, sizeof(msg)) == SERR_OK) {
			api_quarantine_forget(ctx, id);
			log_msg(LOG_LVL_INFO, "verify: client %lld (%s) %s", (long long)id,
				json_string_value(json_object_get(item, "hostname")), why);
		} else
			log_msg(LOG_LVL_ERROR, "verify: removing client %lld: %s", (long long)id,
				msg);
	}
	log_msg(LOG_LVL_INFO, "verify: %lld online, %lld offline, %lld roaming, %lld inactive; "
		"%zu changed, %zu removed",
		(long long)json_integer_value(json_object_get(v.summary, "online")),
		(long long)json_integer_value(json_object_get(v.summary, "offline")),
		(long long)json_integer_value(json_object_get(v.summary, "roaming")),
		(long long)json_integer_value(json_object_get(v.summary, "inactive")),
		json_array_size(v.changed), json_array_size(v.removed));
	json_decref(v.changes);
	return json_pack("{so so so}", "summary", v.summary, "changed", v.changed, "removed",
			 v.removed);
}

void api_clients_verify(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *report;

	(void)args;
	store_eventf(ctx->st, "verify", 0, "connection verification requested by %s", who);
	report = api_clients_verify_all(ctx, true);
	if (!report)
		http_respond_error(req, 500, "verify: failed");
	else
		http_respond_json(req, 200, report);
}

static int keep_client(json_t *c, void *arg)
{
	json_t **out = arg;

	*out = json_incref(c);
	return 1;
}

struct server_move {
	const char *server, *token, *ca;
};

static enum serr move_server_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
				 size_t len)
{
	const struct server_move *m = arg;
	enum serr err;
	char path[4096], *text = NULL;
	json_t *move, *client = NULL;

	err = store_clients_each(ctx->st, id, keep_client, &client);
	if (err == SERR_OK && !client) {
		snprintf(msg, len, "no client with id %lld", (long long)id);
		return SERR_NOENT;
	}
	if (err == SERR_OK)
		err = store_domain_path(ctx->st, json_integer_value(json_object_get(client,
				       "domain")), path, sizeof(path));
	/* The instruction names its client: signed, it moves that agent alone. */
	move = err != SERR_OK ? NULL :
	       json_pack("{ss sO ss ss ss ss}", "kind", "move", "client",
			 json_object_get(client, "uuid"), "server", m->server, "token", m->token,
			 "ca", m->ca, "domain", path);
	json_decref(client);
	text = move ? json_dumps(move, JSON_COMPACT) : NULL;
	json_decref(move);
	if (err == SERR_OK && !text) {
		snprintf(msg, len, "out of memory");
		err = SERR_NOMEM;
	}
	if (err == SERR_OK)
		err = store_client_move_server(ctx->st, id, text, msg, len);
	free(text);
	return err;
}

/* Tells clients to move to another server: each re-enrolls there with the
 * token given, into the domain of the path it has here. */
enum serr api_clients_send(struct api_ctx *ctx, const char *who, json_t *ids,
			   const char *server, const char *token, const char *ca,
			   json_t **out, char *msg, size_t len)
{
	struct server_move m = { server, token, ca };
	enum serr err;
	int64_t moving;

	if (strncmp(server, "https://", 8) != 0 || strlen(token) != 64 ||
	    !strstr(ca, "-----BEGIN CERTIFICATE-----")) {
		snprintf(msg, len, "move-server: server must be https://HOST:PORT, token 64 hex "
			 "digits, ca a PEM certificate");
		return SERR_INVAL;
	}
	err = api_refuse_moved_ids(ctx, ids, msg, len);
	if (err == SERR_OK)
		err = bulk(ctx, ids, "moving", move_server_one, &m, &moving, out, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s sent %lld clients to the server %s", who,
		     (long long)moving, server);
	notify_kick(ctx->notify);
	return SERR_OK;
}

void api_clients_move_server(struct api_ctx *ctx, struct http_req *req, const char *who,
			     const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_clients_send(ctx, who, api_arg_json(args, "ids"),
					      api_arg_string(args, "server"),
					      api_arg_string(args, "token"),
					      api_arg_string(args, "ca"), &out, msg, sizeof(msg)),
		   &out, msg);
}
