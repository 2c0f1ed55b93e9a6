/* api.c -- wardd's REST API routes (see api.h). */
#include "server/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/comp.h"
#include "common/log.h"
#include "common/ops.h"
#include "common/settings.h"
#include "server/admins.h"
#include "server/grouping.h"
#include "server/enroll.h"
#include "server/logs.h"
#include "server/pki.h"
#include "server/session.h"
#include "server/sources.h"

/* A handler; who names the caller the credential identified: the
 * administrator, the enrollment token's domain path, or the agent's client
 * id. */
typedef void (*handler_fn)(struct api_ctx *ctx, struct http_req *req, const char *who);

/* Answers a store failure: 404 for a missing node, 409 for a taken name or
 * a domain that is not empty, 400 for an invalid value, 500 otherwise. */
static void store_error(struct http_req *req, enum store_err err, const char *msg)
{
	unsigned status = err == STORE_ENOENT ? 404 : err == STORE_EEXIST ? 409 :
			  err == STORE_EINVAL ? 400 : err == STORE_ENOTEMPTY ? 409 : 500;

	http_respond_error(req, status, "%s", msg);
}

void api_new_token(char out[65], unsigned char hash[32])
{
	unsigned char raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 65, raw, sizeof(raw));
	crypto_hash_sha256(hash, (const unsigned char *)out, 64);
	sodium_memzero(raw, sizeof(raw));
}

json_t *api_body_object(struct http_req *req)
{
	json_error_t jerr;
	size_t len;
	const char *body = http_req_body(req, &len);
	json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!obj) {
		http_respond_error(req, 400, "request body: invalid JSON at line %d column %d: %s",
				   jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		http_respond_error(req, 400, "request body: expected a JSON object");
		return NULL;
	}
	return obj;
}

void api_session_health(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	(void)ctx;
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{ss ss}", "status", "ok", "version",
					      WARD_VERSION));
}

void api_session_logout(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	unsigned char th[32];
	char token[65];
	bool cookie;

	(void)args;
	if (session_token(req, token, &cookie)) {
		crypto_hash_sha256(th, (const unsigned char *)token, 64);
		if (store_token_delete(ctx->st, th) != STORE_OK) {
			http_respond_error(req, 500, "logout: database failed");
			return;
		}
	}
	store_eventf(ctx->st, "system", 0, "%s signed out", who);
	http_respond_json(req, 200, json_pack("{sb}", "ok", 1));
	if (cookie)
		session_set_cookie(req, NULL, 0);
}

void api_session_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	char token[65], csrf[65], name[128], *role = NULL;
	unsigned char th[32];
	int64_t expires = 0;
	bool cookie;
	json_t *out;

	(void)args;
	if (session_token(req, token, &cookie)) {
		crypto_hash_sha256(th, (const unsigned char *)token, 64);
		store_token_check(ctx->st, th, cookie ? STORE_TOKEN_CONSOLE : STORE_TOKEN_SESSION,
				  (int64_t)time(NULL), 0, name, sizeof(name), &expires);
	}
	store_admin_role(ctx->st, who, &role);
	out = json_pack("{ss ss sI ss sI sI}", "user", who, "role", role ? role : "", "expires",
			(json_int_t)expires, "kind", cookie ? "console" : "bearer", "lifetime",
			(json_int_t)ctx->cfg->session_lifetime, "idle",
			(json_int_t)(cookie ? ctx->cfg->session_idle : 0));
	free(role);
	if (out && cookie) {
		session_csrf(token, csrf);
		json_object_set_new(out, "csrf", json_string(csrf));
	}
	http_respond_json(req, 200, out);
}

void api_tree_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		  const struct api_args *args)
{
	json_t *tree = NULL;
	char msg[256];

	(void)args;
	(void)who;
	if (store_tree(ctx->st, &tree, msg, sizeof(msg)) != STORE_OK) {
		http_respond_error(req, 500, "%s", msg);
		return;
	}
	http_respond_json(req, 200, tree);
}

/* Resolves a scope: "root", "domain:/PATH" or "client:ID". */
static enum store_err parse_scope(struct api_ctx *ctx, const char *scope, int64_t *node,
				  char *msg, size_t len)
{
	char *end;
	long long id;

	if (!scope) {
		snprintf(msg, len, "scope: missing (root, domain:/PATH or client:ID)");
		return STORE_EINVAL;
	}
	if (strcmp(scope, "root") == 0) {
		*node = STORE_ROOT;
		return STORE_OK;
	}
	if (strncmp(scope, "domain:", 7) == 0)
		return store_domain_lookup(ctx->st, scope + 7, 0, node, msg, len);
	if (strncmp(scope, "client:", 7) == 0) {
		id = strtoll(scope + 7, &end, 10);
		if (*end == '\0' && end != scope + 7 && id > STORE_ROOT) {
			*node = id;
			return STORE_OK;
		}
	}
	snprintf(msg, len, "scope: '%s' is not root, domain:/PATH or client:ID", scope);
	return STORE_EINVAL;
}

void api_settings_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *own = NULL, *eff = NULL, *origin = NULL;
	enum store_err err;
	char msg[256];
	int64_t node;

	(void)who;
	err = parse_scope(ctx, api_arg_string(args, "scope"), &node, msg, sizeof(msg));
	if (err == STORE_OK)
		err = store_settings_get(ctx->st, node, &own, &eff, msg, sizeof(msg));
	if (err == STORE_OK && store_settings_origin(ctx->st, node, &origin) != STORE_OK) {
		json_decref(own);
		json_decref(eff);
		snprintf(msg, sizeof(msg), "database: where the settings come from is unreadable");
		err = STORE_EDB;
	}
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	http_respond_json(req, 200, json_pack("{so so so}", "own", own, "effective", eff,
					      "origin", origin));
}

void api_settings_keys(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	static const char *const types[] = { "bool", "enum", "schedule", "int" };
	const struct settings_def *defs;
	json_t *list = json_array(), *e, *levels, *choices;
	size_t n, i, c;

	(void)args;
	(void)ctx;
	(void)who;
	defs = settings_table(&n);
	for (i = 0; list && i < n; i++) {
		levels = json_array();
		if (defs[i].levels & SETTINGS_AT_ROOT)
			json_array_append_new(levels, json_string("root"));
		if (defs[i].levels & SETTINGS_AT_DOMAIN)
			json_array_append_new(levels, json_string("domain"));
		if (defs[i].levels & SETTINGS_AT_CLIENT)
			json_array_append_new(levels, json_string("client"));
		e = json_pack("{ss ss so so ss}", "key", defs[i].key, "type", types[defs[i].type],
			      "levels", levels, "default",
			      json_loads(defs[i].default_json, JSON_DECODE_ANY, NULL),
			      "summary", defs[i].summary);
		if (e && defs[i].type == SETTINGS_ENUM) {
			choices = json_array();
			for (c = 0; defs[i].choices[c]; c++)
				json_array_append_new(choices, json_string(defs[i].choices[c]));
			json_object_set_new(e, "choices", choices);
		}
		if (e && defs[i].type == SETTINGS_INT) {
			json_object_set_new(e, "min", json_integer(defs[i].min));
			json_object_set_new(e, "max", json_integer(defs[i].max));
		}
		json_array_append_new(list, e);
	}
	http_respond_json(req, 200, json_pack("{so}", "settings", list));
}

void api_settings_set(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	const char *scope = api_arg_string(args, "scope"), *key = api_arg_string(args, "key");
	const char *apply = api_arg_string(args, "apply");
	enum store_apply mode;
	enum store_err err;
	size_t changed = 0;
	char msg[256];
	int64_t node;

	if (!apply)
		apply = "inherit";
	if (strcmp(apply, "all") != 0 && strcmp(apply, "inherit") != 0) {
		http_respond_error(req, 400, "apply: expected \"all\" or \"inherit\"");
		return;
	}
	mode = strcmp(apply, "all") == 0 ? STORE_APPLY_ALL : STORE_APPLY_INHERIT;
	err = parse_scope(ctx, scope, &node, msg, sizeof(msg));
	if (err == STORE_OK)
		err = store_setting_set(ctx->st, node, key, api_arg_json(args, "value"), mode,
					&changed, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s set %s on %s (%s): %zu clients changed", who, key,
		     scope, apply, changed);
	if (changed)
		notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI}", "changed", (json_int_t)changed));
}

void api_settings_unset(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *scope = api_arg_string(args, "scope"), *key = api_arg_string(args, "key");
	enum store_err err;
	size_t changed = 0;
	char msg[256];
	int64_t node;

	err = parse_scope(ctx, scope, &node, msg, sizeof(msg));
	if (err == STORE_OK)
		err = store_setting_unset(ctx->st, node, key, &changed, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s removed %s from %s (it inherits): %zu clients "
		     "changed", who, key, scope, changed);
	if (changed)
		notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI}", "changed", (json_int_t)changed));
}

void api_tree_domain_create(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	const char *path = api_arg_string(args, "path");
	enum store_err err;
	char msg[256];
	int64_t id;

	err = store_domain_lookup(ctx->st, path, 1, &id, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s created domain %s", who, path);
	http_respond_json(req, 201, json_pack("{sI ss}", "id", (json_int_t)id, "path", path));
}

void api_settings_queue(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *list = NULL;

	(void)args;
	(void)who;
	if (store_deliveries_json(ctx->st, &list) != STORE_OK) {
		http_respond_error(req, 500, "database: reading the queue failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so sI}", "queue", list, "in_flight",
					      (json_int_t)notify_in_flight(ctx->notify)));
}

void api_settings_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	int64_t id = -1, n = 0;

	if (api_arg_int(args, "client", &id) && id <= STORE_ROOT) {
		http_respond_error(req, 400, "client: '%lld' is not a client id", (long long)id);
		return;
	}
	if (store_deliveries_cancel(ctx->st, id, &n) != STORE_OK) {
		http_respond_error(req, 500, "database: cancelling failed");
		return;
	}
	store_eventf(ctx->st, "delivery", 0, "%s cancelled %lld queued deliveries", who,
		     (long long)n);
	http_respond_json(req, 200, json_pack("{sI}", "cancelled", (json_int_t)n));
}

static int64_t grouped_domain(struct api_ctx *ctx, const json_t *status);
static void regroup(struct api_ctx *ctx, int64_t id, const json_t *status);

/* Bounds of what an agent reports about itself (its status): the console
 * and the command line show it, the grouping rules match it. */
#define STATUS_DEPTH 4
#define STATUS_ITEMS 1024     /* values in all */
#define STATUS_WIDTH 64       /* members of an object, items of a list */
#define STATUS_STRING 256     /* bytes of a string or a member's name */

/* Returns whether text holds no control character and is at most
 * STATUS_STRING bytes: nothing that forges a log line or drives a
 * terminal. */
static bool status_text_ok(const char *text)
{
	size_t i, n = strlen(text);

	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return false;
	return n <= STATUS_STRING;
}

static bool status_ok(const json_t *v, int depth, size_t *items)
{
	const char *key;
	json_t *m;
	size_t i;

	if (++*items > STATUS_ITEMS || depth > STATUS_DEPTH)
		return false;
	if (json_is_string(v))
		return status_text_ok(json_string_value(v)) &&
		       strlen(json_string_value(v)) == json_string_length(v);
	if (json_is_object(v)) {
		if (json_object_size(v) > STATUS_WIDTH)
			return false;
		json_object_foreach((json_t *)v, key, m)
			if (!status_text_ok(key) || !status_ok(m, depth + 1, items))
				return false;
		return true;
	}
	if (json_is_array(v)) {
		if (json_array_size(v) > STATUS_WIDTH)
			return false;
		json_array_foreach(v, i, m)
			if (!status_ok(m, depth + 1, items))
				return false;
	}
	return true;
}

/* Checks an agent's status report (NULL: none); answers 400 when it is not
 * an object within the bounds above. */
static bool status_valid(struct http_req *req, const json_t *status)
{
	size_t items = 0;

	if (!status || (json_is_object(status) && status_ok(status, 1, &items)))
		return true;
	http_respond_error(req, 400, "status: expected an object at most %d levels deep, %d "
			   "values in all, %d members or items each, strings of at most %d bytes "
			   "without control characters", STATUS_DEPTH, STATUS_ITEMS, STATUS_WIDTH,
			   STATUS_STRING);
	return false;
}

/* Returns whether the domain path is token (a canonical path) or below it. */
static bool within(const char *token, const char *path)
{
	size_t n = strlen(token);

	return strcmp(token, "/") == 0 || (strncmp(path, token, n) == 0 &&
					   (path[n] == '\0' || path[n] == '/'));
}

/* The domain an agent enrolling with the token for domain_path lands in:
 * the domain it asks for (a client moving from another server keeps its
 * path) when that exists within the token's; else the one a grouping rule
 * gives, when within it; else the token's own. Nothing a token holder
 * sends creates a domain. */
static enum store_err enroll_domain(struct api_ctx *ctx, const char *domain_path,
				    const char *wanted, const json_t *status, int64_t *domain,
				    char *msg, size_t len)
{
	char path[4096];
	int64_t id = 0;

	if (wanted && store_domain_lookup(ctx->st, wanted, 0, &id, msg, len) == STORE_OK &&
	    store_domain_path(ctx->st, id, path, sizeof(path)) == STORE_OK &&
	    within(domain_path, path)) {
		*domain = id;
		return STORE_OK;
	}
	id = wanted ? 0 : grouped_domain(ctx, status);
	if (id && store_domain_path(ctx->st, id, path, sizeof(path)) == STORE_OK &&
	    within(domain_path, path)) {
		*domain = id;
		return STORE_OK;
	}
	return store_domain_lookup(ctx->st, domain_path, 0, domain, msg, len);
}

/* Agent enrollment: the agent names itself (uuid, host name, status) and
 * gets its credential, which the server keeps only as a SHA-256. */
void api_agent_enroll(struct api_ctx *ctx, struct http_req *req, const char *domain_path,
		      const struct api_args *args)
{
	json_t *body = api_body_object(req), *status = NULL;
	const char *uuid, *hostname, *wanted = NULL;
	unsigned char hash[32];
	char secret[65], msg[256];
	enum store_err err;
	int64_t domain, id;

	(void)args;
	secret[0] = '\0';
	if (!body || !enroll_admit(ctx, req))
		goto out;
	if (json_unpack(body, "{s:s, s:s, s?:o, s?:s}", "uuid", &uuid, "hostname", &hostname,
			"status", &status, "domain", &wanted) != 0 || strlen(uuid) != 36 ||
	    strspn(uuid, "0123456789abcdef-") != 36 || !enroll_valid_host(hostname)) {
		http_respond_error(req, 400, "enroll: expected {\"uuid\": 36 lowercase hex and "
				   "dashes, \"hostname\": 1 to 253 letters, digits, dots, dashes "
				   "and underscores}");
		goto out;
	}
	if (!status_valid(req, status))
		goto out;
	api_new_token(secret, hash);
	err = enroll_domain(ctx, domain_path, wanted, status, &domain, msg, sizeof(msg));
	if (err == STORE_OK)
		err = store_client_add(ctx->st, domain, uuid, hostname, hash, &id, msg,
				       sizeof(msg));
	if (err == STORE_OK && store_token_use(ctx->st, ctx->caller_token, -1) != STORE_OK) {
		snprintf(msg, sizeof(msg), "database: spending the token failed");
		err = STORE_EDB;
	}
	if (err != STORE_OK) {
		store_error(req, err, msg);
		goto out;
	}
	store_eventf(ctx->st, "system", id, "%s (%s) enrolled from %s as client %lld", hostname,
		     uuid, http_req_peer(req), (long long)id);
	notify_kick(ctx->notify);
	http_respond_json(req, 201, json_pack("{sI ss sI sI ss}", "client", (json_int_t)id,
					      "secret", secret, "heartbeat_interval",
					      (json_int_t)ctx->cfg->heartbeat_interval,
					      "long_poll", (json_int_t)ctx->cfg->long_poll,
					      "package_key", updates_key(ctx->updates)));
out:
	sodium_memzero(secret, sizeof(secret));
	json_decref(body);
}

/* A smart protection server's status: what its /sps/v1/status says. */
void api_sps_heartbeat(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	json_t *body = api_body_object(req);
	char msg[256], *status;

	(void)args;
	if (!body)
		return;
	status = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!status || store_sps_seen(ctx->st, strtoll(who + 4, NULL, 10), status,
				      (int64_t)time(NULL), msg, sizeof(msg)) != STORE_OK)
		http_respond_error(req, 500, "heartbeat: database failed");
	else
		http_respond_json(req, 200, json_pack("{sI}", "heartbeat_interval",
						      (json_int_t)ctx->cfg->heartbeat_interval));
	free(status);
	json_decref(body);
}

/* The enrolled smart protection servers, each online when it reported
 * within three heartbeat intervals. */
void api_sps_servers(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	int64_t now = (int64_t)time(NULL);
	json_t *list = NULL, *e;
	size_t i;

	(void)args;
	(void)who;
	if (store_sps_list(ctx->st, &list) != STORE_OK) {
		http_respond_error(req, 500, "sps servers: database failed");
		return;
	}
	json_array_foreach(list, i, e)
		json_object_set_new(e, "state", json_string(
			now - json_integer_value(json_object_get(e, "last_seen")) <=
			3 * ctx->cfg->heartbeat_interval ? "online" : "offline"));
	http_respond_json(req, 200, json_pack("{so}", "servers", list));
}

void api_agent_heartbeat(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	int64_t id = strtoll(who, NULL, 10), version = 0;
	json_t *body = api_body_object(req);
	char msg[256], *status = NULL, *json = NULL;

	(void)args;
	if (!body)
		return;
	if (!status_valid(req, body))
		goto out;
	regroup(ctx, id, body);
	status = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!status || store_agent_seen(ctx->st, id, status, (int64_t)time(NULL), msg,
					sizeof(msg)) != STORE_OK ||
	    store_agent_settings(ctx->st, id, &json, &version, msg, sizeof(msg)) != STORE_OK)
		http_respond_error(req, 500, "heartbeat: database failed");
	else
		http_respond_json(req, 200, json_pack("{sI sI}", "version", (json_int_t)version,
						      "heartbeat_interval",
						      (json_int_t)ctx->cfg->heartbeat_interval));
out:
	free(json);
	free(status);
	json_decref(body);
}

/* The event channel: {"version": N[, "status": {...}]}. The agent sends
 * its status (a heartbeat) with the poll when its interval has passed, so
 * one connection per agent carries both. */
void api_agent_events(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *body = api_body_object(req), *status = NULL;
	int64_t id = strtoll(who, NULL, 10);
	json_int_t version, wait = 0;
	char *text = NULL, msg[256];

	(void)args;
	if (!body)
		return;
	if (json_unpack(body, "{s:I, s?:o, s?:I !}", "version", &version, "status", &status,
			"wait", &wait) != 0 ||
	    version < 0 || (status && !json_is_object(status))) {
		http_respond_error(req, 400, "events: expected {\"version\": N (the settings "
				   "version the agent has)[, \"status\": {...}][, \"wait\": "
				   "SECONDS]}");
		goto out;
	}
	if (!status_valid(req, status))
		goto out;
	if (status) {
		regroup(ctx, id, status);
		text = json_dumps(status, JSON_COMPACT | JSON_SORT_KEYS);
	}
	if (store_agent_seen(ctx->st, id, text, (int64_t)time(NULL), msg, sizeof(msg)) !=
	    STORE_OK) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	notify_poll(ctx->notify, req, id, version, wait);
out:
	free(text);
	json_decref(body);
}

void api_agent_ack(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args)
{
	json_t *body = api_body_object(req);
	json_int_t version;

	(void)args;
	if (!body)
		return;
	if (json_unpack(body, "{s:I !}", "version", &version) != 0 || version < 0) {
		http_respond_error(req, 400, "ack: expected {\"version\": N}");
	} else {
		notify_ack(ctx->notify, strtoll(who, NULL, 10), version);
		http_respond_json(req, 200, json_pack("{sI}", "version", version));
	}
	json_decref(body);
}

/* A client's connection state: moved (to another server), online (event
 * channel open, or seen within agents.offline_after), inactive (not seen
 * for agents.inactive_after), roaming (away, with the roaming privilege)
 * or offline. */
static const char *client_state(const struct api_ctx *ctx, json_t *c, int64_t now)
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
	const char *state = client_state(l->ctx, c, l->now);
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
	    store_clients_each(ctx->st, 0, list_client, &l) != STORE_OK) {
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

/* Resolves a domain path given in the body (member name) or the query. */
static bool domain_arg(struct api_ctx *ctx, struct http_req *req, const char *path,
		       int64_t *id)
{
	enum store_err err;
	char msg[256];

	err = store_domain_lookup(ctx->st, path, 0, id, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return false;
	}
	return true;
}

void api_tree_domain_rename(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	const char *path = api_arg_string(args, "path"), *name = api_arg_string(args, "name");
	enum store_err err;
	char msg[256];
	int64_t id;

	if (!domain_arg(ctx, req, path, &id))
		return;
	err = store_domain_rename(ctx->st, id, name, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s renamed domain %s to %s", who, path, name);
	http_respond_json(req, 200, json_pack("{sI ss}", "id", (json_int_t)id, "name", name));
}

void api_tree_domain_move(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	const char *path = api_arg_string(args, "path"), *to = api_arg_string(args, "to");
	enum store_err err;
	int64_t id, parent;
	char msg[256];

	if (!domain_arg(ctx, req, path, &id) || !domain_arg(ctx, req, to, &parent))
		return;
	err = store_domain_move(ctx->st, id, parent, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s moved domain %s under %s", who, path, to);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI}", "id", (json_int_t)id));
}

void api_tree_domain_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	const char *path = api_arg_string(args, "path");
	enum store_err err;
	char msg[256];
	int64_t id;

	if (!domain_arg(ctx, req, path, &id))
		return;
	err = store_domain_delete(ctx->st, id, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s deleted domain %s", who, path);
	http_respond_json(req, 200, json_pack("{sI}", "deleted", (json_int_t)id));
}

struct one_client {
	const struct api_ctx *ctx;
	json_t *found;
};

static int take_client(json_t *c, void *arg)
{
	struct one_client *o = arg;

	json_object_set_new(c, "state", json_string(client_state(o->ctx, c,
								  (int64_t)time(NULL))));
	o->found = json_incref(c);
	return 1;
}

void api_clients_show(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct one_client o = { .ctx = ctx };
	json_t *own = NULL, *eff = NULL;
	char msg[256];
	int64_t id = 0;

	(void)who;
	api_arg_int(args, "id", &id);
	if (id <= STORE_ROOT) {
		http_respond_error(req, 400, "id: expected a client id");
		return;
	}
	if (store_clients_each(ctx->st, id, take_client, &o) != STORE_OK) {
		http_respond_error(req, 500, "database: reading the client failed");
		return;
	}
	if (!o.found) {
		http_respond_error(req, 404, "no client with id %lld", (long long)id);
		return;
	}
	if (store_settings_get(ctx->st, id, &own, &eff, msg, sizeof(msg)) == STORE_OK) {
		json_object_set_new(o.found, "own_settings", own);
		json_object_set_new(o.found, "settings", eff);
	}
	http_respond_json(req, 200, o.found);
}

/* Whether ids (an argument "ids") is a client id or a list; answers 400
 * when not. */
static bool ids_arg(struct http_req *req, const json_t *ids)
{
	if (json_is_integer(ids) || json_is_array(ids))
		return true;
	http_respond_error(req, 400, "ids: expected a client id or a list of them");
	return false;
}

/* A bulk operation on clients: fn(ctx, id, arg, msg, len) for each id of
 * ids (one id, or a list), each result {"id", "ok", "error"?} appended to
 * results. Returns how many succeeded. */
static int64_t each_client(struct api_ctx *ctx, json_t *ids, json_t *results,
			   enum store_err (*fn)(struct api_ctx *ctx, int64_t id, void *arg,
						char *msg, size_t len),
			   void *arg)
{
	json_t *list = json_is_array(ids) ? json_incref(ids) : json_pack("[O]", ids), *v;
	enum store_err err;
	int64_t done = 0;
	char msg[256];
	size_t i;

	json_array_foreach(list, i, v) {
		if (json_is_integer(v)) {
			err = fn(ctx, json_integer_value(v), arg, msg, sizeof(msg));
		} else {
			err = STORE_EINVAL;
			snprintf(msg, sizeof(msg), "not a client id");
		}
		json_array_append_new(results, err == STORE_OK ?
				      json_pack("{sO sb}", "id", v, "ok", 1) :
				      json_pack("{sO sb ss}", "id", v, "ok", 0, "error", msg));
		done += err == STORE_OK;
	}
	json_decref(list);
	return done;
}

/* Where clients move, and who moves them. */
struct move_to {
	int64_t domain;
	const char *path, *who;
};

static enum store_err move_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
			       size_t len)
{
	const struct move_to *m = arg;
	enum store_err err = store_client_move(ctx->st, id, m->domain, msg, len);
	char note[300];

	if (err == STORE_OK) {
		snprintf(note, sizeof(note), "moved to %s by %s", m->path, m->who);
		store_event_add(ctx->st, "system", id, 0, note);
	}
	return err;
}

/* Moves one client or a list; answers each one's result. */
void api_clients_move(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *ids = api_arg_json(args, "ids"), *results;
	struct move_to m = { .who = who, .path = api_arg_string(args, "to") };
	int64_t moved;

	if (!ids_arg(req, ids) || !domain_arg(ctx, req, m.path, &m.domain))
		return;
	results = json_array();
	moved = results ? each_client(ctx, ids, results, move_one, &m) : 0;
	store_eventf(ctx->st, "system", 0, "%s moved %lld clients to %s", who, (long long)moved,
		     m.path);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI so*}", "moved", (json_int_t)moved, "results",
					      results));
}

static enum store_err remove_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
				 size_t len)
{
	return store_client_remove(ctx->st, id, arg, msg, len);
}

/* Does fn to each client ids names and answers {done_key: N, "results":
 * [...]}; returns N, or -1 after answering 400. */
static int64_t ids_action(struct api_ctx *ctx, struct http_req *req, json_t *ids,
			  const char *done_key,
			  enum store_err (*fn)(struct api_ctx *ctx, int64_t id, void *arg,
					       char *msg, size_t len), void *arg)
{
	json_t *results;
	int64_t done;

	if (!ids_arg(req, ids))
		return -1;
	results = json_array();
	done = results ? each_client(ctx, ids, results, fn, arg) : 0;
	http_respond_json(req, 200, json_pack("{sI so*}", done_key, (json_int_t)done, "results",
					      results));
	return done;
}

/* Removes clients from the tree: their credentials stop working at once;
 * they can be restored for agents.removed_keep. */
void api_clients_remove(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	char note[200];
	int64_t removed;

	snprintf(note, sizeof(note), "removed from the tree by %s", who);
	removed = ids_action(ctx, req, api_arg_json(args, "ids"), "removed", remove_one, note);
	if (removed >= 0)
		store_eventf(ctx->st, "system", 0, "%s removed %lld clients from the tree", who,
			     (long long)removed);
}

static enum store_err restore_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
				  size_t len)
{
	enum store_err err = store_client_restore(ctx->st, id, msg, len);

	if (err == STORE_OK)
		store_eventf(ctx->st, "system", id, "client %lld restored to the tree by %s",
			     (long long)id, (const char *)arg);
	return err;
}

/* Puts removed clients back (agents.removed_keep): their credentials work
 * again and their settings are delivered. */
void api_clients_restore(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	if (ids_action(ctx, req, api_arg_json(args, "ids"), "restored", restore_one,
		       (void *)who) > 0)
		notify_kick(ctx->notify);
}

void api_clients_removed(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *list = NULL;

	(void)args;
	(void)who;
	if (store_removed_list(ctx->st, &list) != STORE_OK)
		http_respond_error(req, 500, "database: reading the removed clients failed");
	else
		http_respond_json(req, 200, json_pack("{so sI}", "clients", list, "keep",
						      (json_int_t)ctx->cfg->removed_keep));
}

/* Reads a list kept under key in the store; [] when none was stored. */
static json_t *load_list(struct api_ctx *ctx, const char *key)
{
	char *text = NULL;
	enum store_err err = store_kv_get(ctx->st, key, &text);
	json_t *list = err == STORE_OK ? json_loads(text, 0, NULL) :
		       err == STORE_ENOENT ? json_array() : NULL;

	free(text);
	return list;
}

bool api_load_rules(struct api_ctx *ctx)
{
	json_decref(ctx->rules);
	json_decref(ctx->sources);
	json_decref(ctx->sps_lists);
	ctx->rules = load_list(ctx, "grouping_rules");
	ctx->sources = load_list(ctx, "update_sources");
	ctx->sps_lists = load_list(ctx, "sps_lists");
	return ctx->rules && ctx->sources && ctx->sps_lists;
}

void api_settings_grouping_get(struct api_ctx *ctx, struct http_req *req, const char *who,
			       const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO}", "rules", ctx->rules));
}

/* Replaces the list kept under key (the argument member) after validate;
 * what names it in the event log. */
static void put_list(struct api_ctx *ctx, struct http_req *req, const char *who,
		     json_t *list, const char *member, const char *key, const char *what,
		     bool (*validate)(const json_t *list, char *errbuf, size_t errlen))
{
	char msg[256], *text = NULL;

	if (!validate(list, msg, sizeof(msg))) {
		http_respond_error(req, 400, "%s", msg);
	} else if (!(text = json_dumps(list, JSON_COMPACT)) ||
		   store_kv_put(ctx->st, key, text, msg, sizeof(msg)) != STORE_OK ||
		   !api_load_rules(ctx)) {
		http_respond_error(req, 500, "%s: saving failed", member);
	} else {
		store_eventf(ctx->st, "system", 0, "%s replaced the %s (%zu entries)", who, what,
			     json_array_size(list));
		http_respond_json(req, 200, json_pack("{sO}", member, list));
	}
	free(text);
}

void api_settings_grouping_set(struct api_ctx *ctx, struct http_req *req, const char *who,
			       const struct api_args *args)
{
	put_list(ctx, req, who, api_arg_json(args, "rules"), "rules", "grouping_rules",
		 "grouping rules", grouping_validate);
}

void api_settings_sources_get(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO}", "sources", ctx->sources));
}

void api_settings_sources_set(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	put_list(ctx, req, who, api_arg_json(args, "sources"), "sources", "update_sources",
		 "update source table", sources_validate);
}

static int take_addresses(json_t *c, void *arg)
{
	json_t *list = arg, *status = json_object_get(c, "status");

	json_array_extend(list, json_object_get(status, "ipv4"));
	json_array_extend(list, json_object_get(status, "ipv6"));
	return 1;
}

/* Where an agent updates from: the first table entry holding the address
 * it connects from or one it reported; null means this server. */
void api_agent_source(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *addresses = json_pack("[s]", http_req_peer(req));
	const char *url;

	(void)args;
	if (!addresses) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	store_clients_each(ctx->st, strtoll(who, NULL, 10), take_addresses, addresses);
	url = json_string_value(json_object_get(sources_match(ctx->sources, addresses), "url"));
	http_respond_json(req, 200, json_pack("{so}", "source", url ? json_string(url) :
					      json_null()));
	json_decref(addresses);
}

/* Counts, per list, the agents that reach the network over one family only
 * and can reach none of the list's sources by it. */
struct reach {
	const json_t *lists;
	size_t *v4_only, *v6_only;  /* per list */
};

static int count_unreachable(json_t *c, void *arg)
{
	struct reach *r = arg;
	json_t *status = json_object_get(c, "status"), *addresses = json_array();
	const char *networks = json_string_value(json_object_get(status, "networks"));
	const json_t *list;
	size_t i;

	if (!addresses)
		return 1;
	take_addresses(c, addresses);
	list = sources_match(r->lists, addresses);
	json_decref(addresses);
	if (!list || !networks)
		return 0;
	i = (size_t)json_array_size(r->lists);
	while (i-- > 0 && json_array_get(r->lists, i) != list)
		;
	if (strcmp(networks, "ipv4") == 0 && !sources_sps_reachable(list, AF_INET))
		r->v4_only[i]++;
	if (strcmp(networks, "ipv6") == 0 && !sources_sps_reachable(list, AF_INET6))
		r->v6_only[i]++;
	return 0;
}

/* Warnings for the lists some agents cannot use (a new list of strings),
 * each also logged when log is set. */
static json_t *sps_warnings(struct api_ctx *ctx, bool log)
{
	size_t n = json_array_size(ctx->sps_lists), i, k;
	struct reach r = { ctx->sps_lists, calloc(n + 1, sizeof(size_t)),
			   calloc(n + 1, sizeof(size_t)) };
	json_t *out = json_array();
	char text[512];

	if (out && r.v4_only && r.v6_only)
		store_clients_each(ctx->st, 0, count_unreachable, &r);
	for (i = 0; out && r.v4_only && r.v6_only && i < n; i++)
		for (k = 0; k < 2; k++) {
			size_t count = k ? r.v6_only[i] : r.v4_only[i];

			if (!count)
				continue;
			snprintf(text, sizeof(text), "smart protection list %zu (%s): %zu agent%s "
				 "reach%s the network over %s only and can reach none of its "
				 "sources%s", i + 1, json_string_value(json_object_get(
				 json_array_get(ctx->sps_lists, i), "range")), count,
				 count == 1 ? "" : "s", count == 1 ? "es" : "",
				 k ? "IPv6" : "IPv4",
				 json_object_get(json_array_get(ctx->sps_lists, i), "proxy") ?
				 " (its proxy)" : "");
			json_array_append_new(out, json_string(text));
			if (log)
				log_msg(LOG_LVL_WARN, "%s", text);
		}
	free(r.v4_only);
	free(r.v6_only);
	return out;
}

void api_sps_lists_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO so}", "lists", ctx->sps_lists, "warnings",
					      sps_warnings(ctx, false)));
}

void api_sps_lists_set(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	put_list(ctx, req, who, api_arg_json(args, "lists"), "lists", "sps_lists",
		 "smart protection source lists", sources_sps_validate);
	json_decref(sps_warnings(ctx, true));
}

/* The smart protection sources of the agent: the first list holding an
 * address it connects from or reported; the integrated server when none
 * does. With them what it may trust: certificates of the smart protection
 * CA (wardd's own for the integrated server), and of those only the keys
 * pinned here: wardd's and the enabled servers'. */
void api_sps_agent_sources(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	json_t *addresses = json_pack("[s]", http_req_peer(req)), *pins = NULL, *out, *p;
	const json_t *list;
	size_t i = 0;

	(void)args;
	if (!addresses || store_sps_pins(ctx->st, &pins) != STORE_OK) {
		json_decref(addresses);
		http_respond_error(req, 500, "sps sources: database failed");
		return;
	}
	store_clients_each(ctx->st, strtoll(who, NULL, 10), take_addresses, addresses);
	list = sources_match(ctx->sps_lists, addresses);
	json_decref(addresses);
	while (list && json_array_get(ctx->sps_lists, i) != list)
		i++;
	if (list)
		out = json_pack("{sI sO sO sO*}", "list", (json_int_t)i + 1, "range",
				json_object_get(list, "range"), "sources",
				json_object_get(list, "sources"), "proxy",
				json_object_get(list, "proxy"));
	else
		out = json_pack("{sn sn s[s] sn}", "list", "range", "sources", SOURCES_INTEGRATED,
				"proxy");
	json_array_foreach(pins, i, p)
		json_array_set(pins, i, json_object_get(p, "pin"));
	json_array_append_new(pins, json_string(ctx->server_pin));
	if (out) {
		json_object_set_new(out, "ca", json_string(ctx->sps_ca_pem));
		json_object_set_new(out, "pins", pins);
	} else {
		json_decref(pins);
	}
	http_respond_json(req, 200, out);
}

/* The domain the grouping rules give an agent with this status, created
 * when missing; 0 when no rule matches. */
static int64_t grouped_domain(struct api_ctx *ctx, const json_t *status)
{
	const char *path = status ? grouping_match(ctx->rules, status) : NULL;
	char msg[256];
	int64_t id;

	if (!path || store_domain_lookup(ctx->st, path, 1, &id, msg, sizeof(msg)) != STORE_OK)
		return 0;
	return id;
}

static int take_status(json_t *c, void *arg)
{
	json_t **out = arg;

	*out = json_incref(json_object_get(c, "status"));
	if (!*out)
		*out = json_null();
	return 1;
}

/* When an agent reports addresses other than before, the grouping rules
 * are applied again: a matching rule moves it to its domain. */
static void regroup(struct api_ctx *ctx, int64_t id, const json_t *status)
{
	json_t *old = NULL;
	int64_t domain;
	char msg[256];

	if (json_array_size(ctx->rules) == 0 ||
	    store_clients_each(ctx->st, id, take_status, &old) != STORE_OK || !old)
		return;
	if (!json_equal(json_object_get(old, "ipv4"), json_object_get(status, "ipv4")) ||
	    !json_equal(json_object_get(old, "ipv6"), json_object_get(status, "ipv6")) ||
	    !json_equal(json_object_get(old, "hostname"), json_object_get(status, "hostname"))) {
		domain = grouped_domain(ctx, status);
		if (domain &&
		    store_client_move(ctx->st, id, domain, msg, sizeof(msg)) == STORE_OK) {
			log_msg(LOG_LVL_INFO, "grouping: client %lld regrouped after an address "
				"change", (long long)id);
			notify_kick(ctx->notify);
		}
	}
	json_decref(old);
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
	const char *state = client_state(v->ctx, c, v->now);
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

json_t *api_verify(struct api_ctx *ctx, bool remove)
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
	    store_clients_each(ctx->st, 0, verify_client, &v) != STORE_OK) {
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
		if (store_client_remove(ctx->st, id, why, msg, sizeof(msg)) == STORE_OK)
			log_msg(LOG_LVL_INFO, "verify: client %lld (%s) %s", (long long)id,
				json_string_value(json_object_get(item, "hostname")), why);
		else
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
	report = api_verify(ctx, true);
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

static enum store_err move_server_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
				      size_t len)
{
	const struct server_move *m = arg;
	enum store_err err;
	char path[4096], *text = NULL;
	json_t *move, *client = NULL;

	err = store_clients_each(ctx->st, id, keep_client, &client);
	if (err == STORE_OK && !client) {
		snprintf(msg, len, "no client with id %lld", (long long)id);
		return STORE_ENOENT;
	}
	if (err == STORE_OK)
		err = store_domain_path(ctx->st, json_integer_value(json_object_get(client,
				       "domain")), path, sizeof(path));
	/* The instruction names its client: signed, it moves that agent alone. */
	move = err != STORE_OK ? NULL :
	       json_pack("{ss sO ss ss ss ss}", "kind", "move", "client",
			 json_object_get(client, "uuid"), "server", m->server, "token", m->token,
			 "ca", m->ca, "domain", path);
	json_decref(client);
	text = move ? json_dumps(move, JSON_COMPACT) : NULL;
	json_decref(move);
	if (err == STORE_OK && !text) {
		snprintf(msg, len, "out of memory");
		err = STORE_ENOMEM;
	}
	if (err == STORE_OK)
		err = store_client_move_server(ctx->st, id, text, msg, len);
	free(text);
	return err;
}

/* Tells clients to move to another server: each re-enrolls there with the
 * token given, into the domain of the path it has here. */
void api_clients_move_server(struct api_ctx *ctx, struct http_req *req, const char *who,
			     const struct api_args *args)
{
	json_t *ids = api_arg_json(args, "ids"), *results;
	struct server_move m = { api_arg_string(args, "server"), api_arg_string(args, "token"),
				 api_arg_string(args, "ca") };
	int64_t moving;

	if (!ids_arg(req, ids))
		return;
	if (strncmp(m.server, "https://", 8) != 0 || strlen(m.token) != 64 ||
	    !strstr(m.ca, "-----BEGIN CERTIFICATE-----")) {
		http_respond_error(req, 400, "move-server: server must be https://HOST:PORT, token "
				   "64 hex digits, ca a PEM certificate");
		return;
	}
	results = json_array();
	moving = results ? each_client(ctx, ids, results, move_server_one, &m) : 0;
	store_eventf(ctx->st, "system", 0, "%s sent %lld clients to the server %s", who,
		     (long long)moving, m.server);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI so*}", "moving", (json_int_t)moving, "results",
					      results));
}

void api_tree_export(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	json_t *domains = NULL;

	(void)args;
	(void)who;
	if (store_export(ctx->st, &domains) != STORE_OK) {
		http_respond_error(req, 500, "export: reading the tree failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{si so sO}", "format", 1, "domains", domains,
					      "grouping", ctx->rules));
}

/* Makes one node's own settings those of an export entry. */
static enum store_err import_node(struct api_ctx *ctx, int64_t node, json_t *want,
				  char *msg, size_t len)
{
	json_t *own = NULL, *v;
	enum store_err err = store_settings_get(ctx->st, node, &own, NULL, msg, len);
	const char *key;

	json_object_foreach(want, key, v) {
		if (err != STORE_OK)
			break;
		if (!json_equal(json_object_get(own, key), v))
			err = store_setting_set(ctx->st, node, key, v, STORE_APPLY_INHERIT,
						NULL, msg, len);
	}
	json_object_foreach(own, key, v) {
		if (err == STORE_OK && node != STORE_ROOT && !json_object_get(want, key))
			err = store_setting_unset(ctx->st, node, key, NULL, msg, len);
	}
	json_decref(own);
	return err;
}

void api_tree_import(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	json_t *ex = api_arg_json(args, "export"), *domains, *rules, *d, *results = json_array();
	const char *path;
	char msg[256], *text = NULL;
	enum store_err err;
	int64_t node, done = 0;
	size_t i;

	if (!results)
		goto out;
	domains = json_object_get(ex, "domains");
	rules = json_object_get(ex, "grouping");
	if (!json_is_array(domains) || json_integer_value(json_object_get(ex, "format")) != 1 ||
	    (rules && !grouping_validate(rules, msg, sizeof(msg)))) {
		http_respond_error(req, 400, "import: expected {\"export\": the output of GET "
				   "/api/v1/export (format 1)}");
		goto out;
	}
	json_array_foreach(domains, i, d) {
		path = json_string_value(json_object_get(d, "path"));
		err = path ? store_domain_lookup(ctx->st, path, 1, &node, msg, sizeof(msg)) :
		      STORE_EINVAL;
		if (!path)
			snprintf(msg, sizeof(msg), "entry %zu has no path", i + 1);
		if (err == STORE_OK)
			err = import_node(ctx, node, json_object_get(d, "settings"), msg,
					  sizeof(msg));
		json_array_append_new(results, err == STORE_OK ?
				      json_pack("{ss sb}", "path", path, "ok", 1) :
				      json_pack("{ss sb ss}", "path", path ? path : "", "ok", 0,
						"error", msg));
		done += err == STORE_OK;
	}
	if (rules && ((text = json_dumps(rules, JSON_COMPACT)) == NULL ||
		      store_kv_put(ctx->st, "grouping_rules", text, msg, sizeof(msg)) != STORE_OK ||
		      !api_load_rules(ctx)))
		log_msg(LOG_LVL_ERROR, "import: saving the grouping rules failed");
	store_eventf(ctx->st, "system", 0, "%s imported %lld domains", who, (long long)done);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI sO}", "imported", (json_int_t)done, "results",
					      results));
out:
	free(text);
	json_decref(results);
}

/* What the fleet runs: clients by connection state and by the scan method
 * they report, and for each component how many of the clients that use it
 * (the Virus Pattern in conventional scan, the Smart Scan Agent Pattern in
 * smart scan) have its newest version, an older one, or none. */
struct fleet {
	const struct api_ctx *ctx;
	int64_t now, total;
	json_t *states, *methods;
	json_t *components;  /* {name: {"latest", "current", "outdated", "missing"}} */
};

static void fleet_bump(json_t *obj, const char *key)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) +
						   1));
}

static int fleet_client(json_t *c, void *arg)
{
	struct fleet *f = arg;
	const char *state = client_state(f->ctx, c, f->now);
	json_t *status = json_object_get(c, "status");
	const char *method = json_string_value(json_object_get(status, "scan_method")), *name;
	json_t *comp;
	int64_t have;

	if (strcmp(state, "moved") == 0)
		return 0;
	f->total++;
	fleet_bump(f->states, state);
	fleet_bump(f->methods, method ? method : "unknown");
	if (!method)
		return 0;
	name = comp_table()[strcmp(method, "smart") == 0 ? COMP_SMART_AGENT : COMP_VIRUS].name;
	comp = json_object_get(f->components, name);
	if (!comp || json_integer_value(json_object_get(comp, "latest")) == 0)
		return 0;
	have = json_integer_value(json_object_get(json_object_get(status, "components"), name));
	fleet_bump(comp, have == 0 ? "missing" :
		   have == json_integer_value(json_object_get(comp, "latest")) ? "current" :
		   "outdated");
	return 0;
}

/* Counts the fleet against the components of update status (as from
 * updates_status()), adding {"current", "outdated", "missing"} as "agents"
 * to each component there. Returns a new {"total", "states", "methods"},
 * or NULL on failure. */
static json_t *count_fleet(struct api_ctx *ctx, json_t *status)
{
	struct fleet f = { .ctx = ctx, .now = (int64_t)time(NULL) };
	json_t *comp, *counts;
	const char *key;
	size_t i;

	f.states = json_pack("{si si si si}", "online", 0, "offline", 0, "roaming", 0,
			     "inactive", 0);
	f.methods = json_pack("{si si si}", "conventional", 0, "smart", 0, "unknown", 0);
	f.components = json_object();
	json_array_foreach(json_object_get(status, "components"), i, comp) {
		if (!json_string_value(json_object_get(comp, "name")))
			continue;
		counts = json_pack("{sO si si si}", "latest", json_object_get(comp, "version"),
				   "current", 0, "outdated", 0, "missing", 0);
		json_object_set_new(f.components, json_string_value(json_object_get(comp, "name")),
				    counts);
		json_object_set(comp, "agents", counts);
	}
	if (!f.states || !f.methods || !f.components ||
	    store_clients_each(ctx->st, 0, fleet_client, &f) != STORE_OK) {
		json_decref(f.states);
		json_decref(f.methods);
		json_decref(f.components);
		return NULL;
	}
	json_object_foreach(f.components, key, counts)
		json_object_del(counts, "latest");
	json_decref(f.components);
	return json_pack("{sI so so}", "total", (json_int_t)f.total, "states", f.states, "methods",
			 f.methods);
}

void api_updates_status(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *status = updates_status(ctx->updates), *fleet;

	(void)args;
	(void)who;
	fleet = status ? count_fleet(ctx, status) : NULL;
	if (!fleet) {
		json_decref(status);
		http_respond_error(req, 500, "database: the package or client table is unreadable");
		return;
	}
	json_decref(fleet);
	http_respond_json(req, 200, status);
}

void api_updates_settings(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, updates_settings(ctx->updates));
}

void api_updates_configure(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	json_t *given = api_args_object(args);
	char msg[512];

	if (!given)
		http_respond_error(req, 500, "out of memory");
	else if (!updates_configure(ctx->updates, given, who, msg, sizeof(msg)))
		http_respond_error(req, 400, "update settings: %s", msg);
	else
		http_respond_json(req, 200, updates_settings(ctx->updates));
	json_decref(given);
}

/* The dashboard's one request. */
void api_updates_overview(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	struct store_event_filter recent = { .kind = "detection", .limit = 10 };
	json_t *status = updates_status(ctx->updates), *fleet = NULL, *detections = NULL;
	json_t *servers = NULL, *e, *out = NULL;
	int64_t now = (int64_t)time(NULL), queued = 0;
	size_t i;

	(void)args;
	(void)who;
	if (status)
		fleet = count_fleet(ctx, status);
	if (!fleet || store_delivery_count(ctx->st, &queued) != STORE_OK ||
	    store_events(ctx->st, &recent, &detections) != STORE_OK ||
	    store_sps_list(ctx->st, &servers) != STORE_OK) {
		http_respond_error(req, 500, "database: the overview could not be read");
		goto out;
	}
	json_array_foreach(servers, i, e)
		json_object_set_new(e, "state", json_string(
			now - json_integer_value(json_object_get(e, "last_seen")) <=
			3 * ctx->cfg->heartbeat_interval ? "online" : "offline"));
	out = json_pack("{sO sO s{sO sO sO sO} sI sO s{ss sI sI} s{so sO}}", "agents", fleet,
			"components", json_object_get(status, "components"), "update",
			"last_import", json_object_get(status, "last_import"), "importing",
			json_object_get(status, "importing"), "downloads",
			json_object_get(status, "downloads"), "max_downloads",
			json_object_get(status, "max_downloads"), "queued", (json_int_t)queued,
			"detections", detections, "server", "version", WARD_VERSION, "started",
			(json_int_t)ctx->started, "uptime", (json_int_t)(now - ctx->started), "sps",
			"integrated", ctx->sps ? sps_service_status(ctx->sps) : json_null(),
			"servers", servers);
	if (!out)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond_json(req, 200, out);
out:
	json_decref(status);
	json_decref(fleet);
	json_decref(detections);
	json_decref(servers);
}

void api_updates_now(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	(void)args;
	store_eventf(ctx->st, "system", 0, "%s asked for a signature import now", who);
	updates_import_now(ctx->updates, req);
}

void api_updates_rotate_key(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	(void)args;
	updates_rotate_key(ctx->updates, req, who);
}

struct update_agents {
	struct api_ctx *ctx;
	int64_t now;
	json_t *skipped;   /* {"offline": N, "roaming": N, ...} */
	json_t *ids;       /* clients to tell */
};

/* Picks the clients an Update Now reaches: online, without the roaming
 * privilege (roaming agents take updates at their scheduled update). */
static int pick_update(json_t *c, void *arg)
{
	struct update_agents *u = arg;
	const char *state = client_state(u->ctx, c, u->now);
	json_t *count;

	if (strcmp(state, "online") == 0 && json_is_true(json_object_get(c, "roaming")))
		state = "roaming";
	if (strcmp(state, "online") == 0) {
		json_array_append(u->ids, json_object_get(c, "id"));
		return 0;
	}
	count = json_object_get(u->skipped, state);
	json_object_set_new(u->skipped, state, json_integer(json_integer_value(count) + 1));
	return 0;
}

static enum store_err update_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
				 size_t len)
{
	(void)arg;
	return store_client_update_now(ctx->st, id, msg, len);
}

void api_updates_agents(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *results = json_array();
	struct update_agents u = { .ctx = ctx, .now = (int64_t)time(NULL) };
	const char *scope = api_arg_string(args, "scope");
	int64_t node, told;
	char msg[256];
	enum store_err err;

	u.skipped = json_object();
	u.ids = json_array();
	if (!results || !u.skipped || !u.ids) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	err = parse_scope(ctx, scope, &node, msg, sizeof(msg));
	if (err != STORE_OK) {
		store_error(req, err, msg);
		goto out;
	}
	if (store_clients_each(ctx->st, node, pick_update, &u) != STORE_OK) {
		http_respond_error(req, 500, "database: reading the clients failed");
		goto out;
	}
	told = each_client(ctx, u.ids, results, update_one, NULL);
	store_eventf(ctx->st, "system", 0, "%s told %lld agents in %s to update now", who,
		(long long)told, scope);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI sO}", "notified", (json_int_t)told, "skipped",
					      u.skipped));
out:
	json_decref(u.skipped);
	json_decref(u.ids);
	json_decref(results);
}

void api_updates_agent_update(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	json_t *body = api_body_object(req);
	const char *component;
	json_int_t have;
	int full = 0;

	(void)args;
	(void)who;
	if (!body)
		return;
	if (json_unpack(body, "{s:s, s:I, s?b !}", "component", &component, "have", &have,
			"full", &full) != 0 || have < 0)
		http_respond_error(req, 400, "update: expected {\"component\", \"have\": N, "
				   "\"full\"?: BOOL}");
	else
		updates_plan(ctx->updates, req, component, have, full);
	json_decref(body);
}

void api_updates_agent_download(struct api_ctx *ctx, struct http_req *req, const char *who,
				const struct api_args *args)
{
	const char *file = http_req_query(req, "file");

	(void)args;
	if (!file)
		http_respond_error(req, 400, "download: the file parameter is missing");
	else
		updates_download(ctx->updates, req, who, file);
}

/* The index of op's argument name of place in, or -1. */
static int arg_index(const struct ops_op *op, const char *name, int in)
{
	int i;

	for (i = 0; op->args[i].name; i++)
		if (strcmp(op->args[i].name, name) == 0 && (in < 0 || (int)op->args[i].in == in))
			return i;
	return -1;
}

const char *api_arg_string(const struct api_args *args, const char *name)
{
	int i = arg_index(args->op, name, -1);

	return i < 0 ? NULL : json_string_value(args->value[i]);
}

bool api_arg_int(const struct api_args *args, const char *name, int64_t *out)
{
	int i = arg_index(args->op, name, -1);

	if (i < 0 || !json_is_integer(args->value[i]))
		return false;
	*out = json_integer_value(args->value[i]);
	return true;
}

json_t *api_arg_json(const struct api_args *args, const char *name)
{
	int i = arg_index(args->op, name, -1);

	return i < 0 ? NULL : args->value[i];
}

json_t *api_args_object(const struct api_args *args)
{
	json_t *obj = json_object();
	size_t i;

	for (i = 0; obj && args->op->args[i].name; i++)
		if (args->value[i] && json_object_set(obj, args->op->args[i].name,
						      args->value[i]) != 0) {
			json_decref(obj);
			return NULL;
		}
	return obj;
}

static void args_free(struct api_args *args)
{
	size_t i;

	for (i = 0; i < OPS_MAX_ARGS; i++)
		json_decref(args->value[i]);
}

/* Answers 400 for a body member op does not declare, naming those it does. */
static void unknown_member(struct http_req *req, const struct ops_op *op, const char *key)
{
	char names[256] = "";
	size_t i, n;

	for (i = 0; op->args[i].name; i++) {
		if (op->args[i].in != OPS_IN_BODY)
			continue;
		n = strlen(names);
		snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", op->args[i].name);
	}
	http_respond_error(req, 400, "%s: no such option of %s %s (it takes %s)", key,
			   op->method, op->path, names);
}

/* The value of a query-string argument as JSON of its type; NULL after
 * answering 400 when it is not of that type. */
static json_t *query_value(struct http_req *req, const struct ops_arg *a, const char *text)
{
	long long n;
	char *end;

	if (a->type != OPS_INT)
		return json_string(text);
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end || end == text || errno) {
		http_respond_error(req, 400, "%s: '%s' is not a number", a->name, text);
		return NULL;
	}
	return json_integer(n);
}

/* Whether v is of a's type; null stands for an optional argument left out. */
static bool type_ok(const struct ops_arg *a, const json_t *v)
{
	switch (a->type) {
	case OPS_STRING:
	case OPS_SECRET:
		return json_is_string(v);
	case OPS_INT:
		return json_is_integer(v);
	case OPS_JSON:
		return true;
	}
	return false;
}

/* Decodes req's arguments by op's row of ops.def into args: the body (an
 * object; empty stands for {}) when op declares body arguments, members it
 * does not declare refused; query-string parameters it declares; each of
 * its type, the required ones present. Returns false after answering 400
 * naming the argument (or 500 when out of memory). */
static bool decode_args(struct http_req *req, const struct ops_op *op, struct api_args *args)
{
	const struct ops_arg *a;
	json_t *body = NULL, *v;
	const char *key, *text;
	bool ok = false;
	size_t i, len;

	memset(args, 0, sizeof(*args));
	args->op = op;
	for (i = 0; op->args[i].name && !body; i++) {
		if (op->args[i].in != OPS_IN_BODY)
			continue;
		http_req_body(req, &len);
		body = len ? api_body_object(req) : json_object();
		if (!body) {
			if (!len)
				http_respond_error(req, 500, "out of memory");
			return false;
		}
		json_object_foreach(body, key, v)
			if (arg_index(op, key, OPS_IN_BODY) < 0) {
				unknown_member(req, op, key);
				goto out;
			}
	}
	for (i = 0; op->args[i].name; i++) {
		a = &op->args[i];
		if (a->in == OPS_IN_BODY) {
			v = json_incref(json_object_get(body, a->name));
		} else {
			text = http_req_query(req, a->name);
			v = NULL;
			if (text && !(v = query_value(req, a, text)))
				goto out;
		}
		if (json_is_null(v) && a->type != OPS_JSON) {
			json_decref(v);
			v = NULL;
		}
		args->value[i] = v;
		if (!v && a->required) {
			http_respond_error(req, 400, "%s: missing (%s)", a->name, a->help);
			goto out;
		}
		if (v && !type_ok(a, v)) {
			http_respond_error(req, 400, "%s: expected %s", a->name,
					   a->type == OPS_INT ? "an integer" : "a string");
			goto out;
		}
	}
	ok = true;
out:
	json_decref(body);
	if (!ok)
		args_free(args);
	return ok;
}

/* The handler of every operation, made from ops.def. */
static void (*const handlers[OPS_COUNT])(struct api_ctx *, struct http_req *, const char *,
					const struct api_args *) = {
#define OP(id, cli, method, path, auth, handler, summary) [OPS_##id] = handler,
#define ARG(name, in, type, positional, required, help)
#define END_OP
#include "common/ops.def"
#undef OP
#undef ARG
#undef END_OP
};


/* Checks the request's "Authorization: Bearer ..." for the route's kind of
 * credential; copies who it names to who. */
/* Checks the request's credential for auth (any but an administrator's
 * session: admins_authorize()) and names the caller in who. */
static bool authorized(struct api_ctx *ctx, struct http_req *req, enum ops_auth auth,
		       char *who, size_t len)
{
	const char *h = http_req_header(req, "Authorization"), *tok;
	unsigned char hash[32];
	char uuid[37];
	int64_t id, now = (int64_t)time(NULL);

	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	tok = h + 7;
	if (auth == OPS_AUTH_AGENT || auth == OPS_AUTH_SPS || auth == OPS_AUTH_COMPONENTS) {
		if (strlen(tok) != 36 + 1 + 64 || tok[36] != ':')
			return false;
		memcpy(uuid, tok, 36);
		uuid[36] = '\0';
		crypto_hash_sha256(hash, (const unsigned char *)tok + 37, 64);
		/* An agent's id alone; a smart protection server's "sps:ID". */
		if (auth != OPS_AUTH_SPS &&
		    store_agent_auth(ctx->st, uuid, hash, &id) == STORE_OK) {
			snprintf(who, len, "%lld", (long long)id);
			return true;
		}
		if (auth != OPS_AUTH_AGENT &&
		    store_sps_auth(ctx->st, uuid, hash, &id) == STORE_OK) {
			snprintf(who, len, "sps:%lld", (long long)id);
			return true;
		}
		return false;
	}
	if (strlen(tok) != 64)
		return false;
	crypto_hash_sha256(hash, (const unsigned char *)tok, 64);
	/* Each kind of enrollment token opens its own route alone. */
	if (store_token_check(ctx->st, hash, auth == OPS_AUTH_SPS_ENROLL ?
			      STORE_TOKEN_SPS_ENROLL : STORE_TOKEN_ENROLL, now, 0, who, len,
			      NULL) != STORE_OK)
		return false;
	memcpy(ctx->caller_token, hash, sizeof(hash));
	return true;
}

void api_handle(struct http_req *req, void *arg)
{
	struct api_ctx *ctx = arg;
	const char *method = http_req_method(req), *path = http_req_path(req);
	bool path_known;
	const struct ops_op *op = ops_route(method, path, &path_known);
	char who[128] = "";
	unsigned status = 0;
	struct api_args args;

	/* The integrated smart protection server's own routes. */
	if (ctx->sps && sps_service_handle(ctx->sps, req))
		return;
	if (console_handle(ctx->console, req))
		return;
	if (!op) {
		if (path_known)
			http_respond_error(req, 405, "%s is not allowed on %s", method, path);
		else
			http_respond_error(req, 404, "no such resource: %s", path);
		return;
	}
	if (op->auth == OPS_AUTH_ADMIN || op->auth == OPS_AUTH_READ)
		status = admins_authorize(ctx, req, op->auth, who, sizeof(who));
	else if (op->auth != OPS_AUTH_NONE && !authorized(ctx, req, op->auth, who, sizeof(who)))
		status = 401;
	if (status == 401) {
		http_respond_error(req, 401, "missing, expired or unknown bearer token or session "
				   "(or, from the console, a missing CSRF token)");
		return;
	}
	if (status == 403) {
		http_respond_error(req, 403, "%s is a read-only administrator: %s %s needs the "
				   "role \"admin\"", who, method, path);
		return;
	}
	if (!decode_args(req, op, &args))
		return;
	handlers[op->id](ctx, req, who, &args);
	args_free(&args);
}

bool api_privileged(struct http_req *req, void *arg)
{
	struct api_ctx *ctx = arg;
	const char *path = http_req_path(req);
	bool path_known;
	const struct ops_op *op = ops_route(http_req_method(req), path, &path_known);
	char who[128];

	if (strcmp(path, "/api/v1/login") == 0 || strncmp(path, "/console/", 9) == 0)
		return true;
	return op && (op->auth == OPS_AUTH_ADMIN || op->auth == OPS_AUTH_READ) &&
	       admins_authorize(ctx, req, op->auth, who, sizeof(who)) == 0;
}
