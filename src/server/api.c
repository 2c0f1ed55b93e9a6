/* api.c -- wardd's REST API: routing by the operations of ops.def, the
 * credentials, the arguments decoded from the table, and what the
 * resources' routes (api_*.c) share. See api.h. */
#include "server/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ops.h"
#include "server/admins.h"
#include "server/console.h"
#include "server/deploy.h"
#include "server/doorbell.h"
#include "server/enroll.h"
#include "server/logs.h"
#include "server/metrics.h"

void api_store_error(struct http_req *req, enum serr err, const char *msg)
{
	unsigned status = err == SERR_NOENT ? 404 : err == SERR_EXIST ? 409 :
			  err == SERR_INVAL ? 400 : err == SERR_NOTEMPTY ? 409 :
			  err == SERR_LICENSE ? 403 : 500;

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

enum serr api_scope(struct api_ctx *ctx, const char *scope, int64_t *node,
		    char *msg, size_t len)
{
	char *end;
	long long id;

	if (!scope) {
		snprintf(msg, len, "scope: missing (root, domain:/PATH or client:ID)");
		return SERR_INVAL;
	}
	if (strcmp(scope, "root") == 0) {
		*node = STORE_ROOT;
		return SERR_OK;
	}
	if (strncmp(scope, "domain:", 7) == 0)
		return store_domain_lookup(ctx->st, scope + 7, 0, node, msg, len);
	if (strncmp(scope, "client:", 7) == 0) {
		id = strtoll(scope + 7, &end, 10);
		if (*end == '\0' && end != scope + 7 && id > STORE_ROOT) {
			*node = id;
			return SERR_OK;
		}
	}
	snprintf(msg, len, "scope: '%s' is not root, domain:/PATH or client:ID", scope);
	return SERR_INVAL;
}

/* Clears *arg (a client id) when c is that client and moved. */
static int note_moved(json_t *c, void *arg)
{
	int64_t *id = arg;
	const char *state = json_string_value(json_object_get(c, "verified_state"));

	if (json_integer_value(json_object_get(c, "id")) == *id && state &&
	    strcmp(state, "moved") == 0)
		*id = 0;
	return 0;
}

enum serr api_refuse_moved(struct api_ctx *ctx, int64_t id, char *msg, size_t len)
{
	int64_t probe = id;

	if (id <= STORE_ROOT || store_clients_each(ctx->st, id, note_moved, &probe) != SERR_OK ||
	    probe != 0)
		return SERR_OK;
	snprintf(msg, len, "client %lld was moved to another server: it is managed there now "
		 "(here it can only be removed)", (long long)id);
	return SERR_EXIST;
}

enum serr api_refuse_moved_ids(struct api_ctx *ctx, json_t *ids, char *msg, size_t len)
{
	enum serr err = SERR_OK;
	json_t *v;
	size_t i;

	if (json_is_integer(ids))
		return api_refuse_moved(ctx, json_integer_value(ids), msg, len);
	json_array_foreach(ids, i, v)
		if (err == SERR_OK && json_is_integer(v))
			err = api_refuse_moved(ctx, json_integer_value(v), msg, len);
	return err;
}

void api_answer(struct http_req *req, unsigned status, enum serr err, json_t **out,
		const char *msg)
{
	if (err != SERR_OK)
		api_store_error(req, err, msg);
	else if (!*out)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond_json(req, status, *out);
}

/* Reads a list kept under key in the store; [] when none was stored. */
static json_t *load_list(struct api_ctx *ctx, const char *key)
{
	char *text = NULL;
	enum serr err = store_kv_get(ctx->st, key, &text);
	json_t *list = err == SERR_OK ? json_loads(text, 0, NULL) :
		       err == SERR_NOENT ? json_array() : NULL;

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
	json_t *v;

	if (a->type != OPS_INT && a->type != OPS_TIME) {
		v = json_string(text);
		if (!v)
			http_respond_error(req, 400, "%s: not valid UTF-8", a->name);
		return v;
	}
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
	case OPS_TIME:
		return json_is_integer(v);
	case OPS_IDS:
		return json_is_integer(v) || json_is_array(v);
	case OPS_JSON:
		return true;
	}
	return false;
}

/* What an argument of type t must be, for the 400 that says it is not. */
static const char *type_name(enum ops_type t)
{
	switch (t) {
	case OPS_INT:
		return "an integer";
	case OPS_TIME:
		return "an integer (seconds since the epoch)";
	case OPS_IDS:
		return "a client id or a list of them";
	case OPS_STRING:
	case OPS_SECRET:
	case OPS_JSON:
		break;
	}
	return "a string";
}

/* Whether a request body of len bytes holds nothing but white space. */
static bool body_blank(const char *body, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
			return false;
	return true;
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
	const char *key, *text, *raw;
	bool ok = false, empty = false;
	size_t i, len;

	memset(args, 0, sizeof(*args));
	args->op = op;
	for (i = 0; op->args[i].name && !body; i++) {
		if (op->args[i].in != OPS_IN_BODY)
			continue;
		raw = http_req_body(req, &len);
		empty = !raw || body_blank(raw, len);
		body = empty ? json_object() : api_body_object(req);
		if (!body) {
			if (empty)
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
			http_respond_error(req, 400, "%s: missing (%s)%s", a->name, a->help,
					   a->in == OPS_IN_BODY && empty ?
					   ": the request body is empty" : "");
			goto out;
		}
		if (v && !type_ok(a, v)) {
			http_respond_error(req, 400, "%s: expected %s", a->name,
					   type_name(a->type));
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


static unsigned token_valid(struct api_ctx *ctx, const char *tok, enum ops_auth auth,
			    char *who, size_t len);

/* Checks the request's credential for auth (any but an administrator's
 * session: admins_authorize()) and names the caller in who: 0 when it
 * is good, 401 when it is none, 503 when the database could not tell
 * (cut off from it: the caller is no stranger, and may try another
 * server). */
static unsigned authorized(struct api_ctx *ctx, struct http_req *req, const struct ops_op *op,
			   char *who, size_t len)
{
	const char *h = http_req_header(req, "Authorization"), *tok;
	enum ops_auth auth = op->auth;
	unsigned char hash[32];
	char uuid[37], param[OPS_MAX_PARAM];
	enum serr err = SERR_NOENT;
	int64_t id;

	if (auth == OPS_AUTH_DEPLOY) {
		/* The token is in the path: /deploy/TOKEN/... */
		if (!ops_path_param(op, http_req_path(req), param, sizeof(param)) ||
		    strlen(param) != 64)
			return 401;
		return token_valid(ctx, param, OPS_AUTH_ENROLL, who, len);
	}
	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return 401;
	tok = h + 7;
	if (auth == OPS_AUTH_AGENT || auth == OPS_AUTH_SPS || auth == OPS_AUTH_COMPONENTS) {
		if (strlen(tok) != 36 + 1 + 64 || tok[36] != ':')
			return 401;
		memcpy(uuid, tok, 36);
		uuid[36] = '\0';
		crypto_hash_sha256(hash, (const unsigned char *)tok + 37, 64);
		/* An agent's id alone; a smart protection server's "sps:ID". */
		if (auth != OPS_AUTH_SPS &&
		    (err = store_agent_auth(ctx->st, uuid, hash, &id)) == SERR_OK) {
			snprintf(who, len, "%lld", (long long)id);
			return 0;
		}
		if (err == SERR_NOENT && auth != OPS_AUTH_AGENT &&
		    (err = store_sps_auth(ctx->st, uuid, hash, &id)) == SERR_OK) {
			snprintf(who, len, "sps:%lld", (long long)id);
			return 0;
		}
		return err == SERR_NOENT ? 401 : 503;
	}
	if (strlen(tok) != 64)
		return 401;
	return token_valid(ctx, tok, auth, who, len);
}

/* Checks tok (64 characters) as a token of auth's kind (an enrollment or
 * a posture token), and
 * holds its hash in ctx->caller_token: as authorized() answers. */
static unsigned token_valid(struct api_ctx *ctx, const char *tok, enum ops_auth auth,
			    char *who, size_t len)
{
	unsigned char hash[32];
	int64_t now = (int64_t)time(NULL);
	enum serr err;

	crypto_hash_sha256(hash, (const unsigned char *)tok, 64);
	/* Each kind of token opens its own routes alone. */
	err = store_token_check(ctx->st, hash, auth == OPS_AUTH_SPS_ENROLL ?
				STORE_TOKEN_SPS_ENROLL : auth == OPS_AUTH_POSTURE ?
				STORE_TOKEN_POSTURE : STORE_TOKEN_ENROLL, now, 0, who, len,
				NULL);
	if (err != SERR_OK)
		return err == SERR_NOENT ? 401 : 503;
	memcpy(ctx->caller_token, hash, sizeof(hash));
	return 0;
}

/* Whether req carries metrics.token_file's token (the scraper's
 * credential, good for GET /metrics only). */
static bool metrics_scraper(const struct api_ctx *ctx, struct http_req *req)
{
	const char *auth = http_req_header(req, "Authorization");
	unsigned char hash[32];

	if (!ctx->metrics_token || !auth || strncmp(auth, "Bearer ", 7) != 0)
		return false;
	crypto_hash_sha256(hash, (const unsigned char *)auth + 7, strlen(auth + 7));
	return sodium_memcmp(hash, ctx->metrics_token_hash, sizeof(hash)) == 0;
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

	http_req_set_route(req, op ? (int)op->id : strncmp(path, "/sps/", 5) == 0 ?
			   METRICS_ROUTE_SPS : -1);
	deploy_redact(req);
	/* The integrated smart protection server's own routes. */
	if (ctx->sps && sps_service_handle(ctx->sps, req))
		return;
	if (console_handle(ctx->console, req))
		return;
	/* Cut off from its database, it answers nothing from what it may no
	 * longer know: agents turn to another server. */
	if (doorbell_cut_off(ctx->bell)) {
		http_respond_busy(req, 5, "this server cannot reach its database; try another");
		return;
	}
	if (!op) {
		/* A deployment's path holds a token: not said back. */
		if (strncmp(path, "/deploy/", 8) == 0)
			path = "that /deploy/ path";
		if (path_known)
			http_respond_error(req, 405, "%s is not allowed on %s", method, path);
		else
			http_respond_error(req, 404, "no such resource: %s", path);
		return;
	}
	if (op->id == OPS_METRICS && metrics_scraper(ctx, req))
		snprintf(who, sizeof(who), "metrics");
	else if (op->auth == OPS_AUTH_ADMIN || op->auth == OPS_AUTH_READ)
		status = admins_authorize(ctx, req, op->auth, who, sizeof(who));
	/* A policy server's token, else an administrator's session. */
	else if (op->auth == OPS_AUTH_POSTURE &&
		 (status = authorized(ctx, req, op, who, sizeof(who))) == 401)
		status = admins_authorize(ctx, req, OPS_AUTH_READ, who, sizeof(who));
	else if (op->auth != OPS_AUTH_NONE)
		status = authorized(ctx, req, op, who, sizeof(who));
	if (status == 503) {
		http_respond_error(req, 503, "the database does not answer: try again, or another "
				   "server");
		return;
	}
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

bool api_headers(struct http_req *req, void *arg, size_t *max_body)
{
	struct api_ctx *ctx = arg;
	bool path_known;
	const struct ops_op *op = ops_route(http_req_method(req), http_req_path(req),
					    &path_known);
	char who[128];

	if (!op || op->id != OPS_AGENT_QUARANTINE_FILE)
		return true;
	if (authorized(ctx, req, op, who, sizeof(who)) != 0) {
		http_respond_error(req, 401, "missing, expired or unknown bearer token");
		return false;
	}
	return api_quarantine_admit(ctx, req, strtoll(who, NULL, 10), max_body);
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
