/* api.c -- wardd's REST API routes (see api.h). */
#include "server/api.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

/* How long an administrator's session token lasts. */
#define SESSION_SECONDS (12 * 3600)

enum api_auth {
	AUTH_NONE,
	AUTH_ADMIN,
};

struct route {
	const char *method;
	const char *path;
	enum api_auth auth;
	void (*fn)(struct api_ctx *ctx, struct http_req *req, const char *who);
};

void api_new_token(char out[65], unsigned char hash[32])
{
	unsigned char raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 65, raw, sizeof(raw));
	crypto_hash_sha256(hash, (const unsigned char *)out, 64);
	sodium_memzero(raw, sizeof(raw));
}

/* Parses the body as a JSON object; answers 400 and returns NULL if it is
 * not one. */
static json_t *body_object(struct http_req *req)
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

static void get_health(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	(void)ctx;
	(void)who;
	http_respond_json(req, 200, json_pack("{ss ss}", "status", "ok", "version",
					      WARD_VERSION));
}

static void post_login(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	json_t *body = body_object(req);
	const char *user, *password;
	char *hash = NULL, token[65], msg[256];
	unsigned char th[32];
	int64_t expires = (int64_t)time(NULL) + SESSION_SECONDS;
	enum store_err err;

	(void)who;
	if (!body)
		return;
	if (json_unpack(body, "{s:s, s:s !}", "user", &user, "password", &password) != 0) {
		http_respond_error(req, 400, "login: expected {\"user\": ..., \"password\": ...}");
		goto out;
	}
	err = store_admin_get(ctx->st, user, &hash, msg, sizeof(msg));
	if (err != STORE_OK && err != STORE_ENOENT) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	/* The same answer for an unknown user and a wrong password. */
	if (err == STORE_ENOENT ||
	    crypto_pwhash_str_verify(hash, password, strlen(password)) != 0) {
		log_msg(LOG_LVL_WARN, "login: refused for user '%s' from %s", user,
			http_req_peer(req));
		http_respond_error(req, 401, "login: wrong user name or password");
		goto out;
	}
	api_new_token(token, th);
	if (store_token_put(ctx->st, th, STORE_TOKEN_SESSION, user, expires, msg,
			    sizeof(msg)) != STORE_OK) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	log_msg(LOG_LVL_INFO, "login: %s from %s", user, http_req_peer(req));
	http_respond_json(req, 200, json_pack("{ss sI}", "token", token, "expires",
					      (json_int_t)expires));
	sodium_memzero(token, sizeof(token));
out:
	free(hash);
	json_decref(body);
}

static void get_tree(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	json_t *tree = NULL;
	char msg[256];

	(void)who;
	if (store_tree(ctx->st, &tree, msg, sizeof(msg)) != STORE_OK) {
		http_respond_error(req, 500, "%s", msg);
		return;
	}
	http_respond_json(req, 200, tree);
}

/* Every route of the API, once. */
static const struct route routes[] = {
	{ "GET", "/api/v1/health", AUTH_NONE, get_health },
	{ "POST", "/api/v1/login", AUTH_NONE, post_login },
	{ "GET", "/api/v1/tree", AUTH_ADMIN, get_tree },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Checks "Authorization: Bearer TOKEN" for a session; copies the admin's
 * name to who. */
static bool authorized(struct api_ctx *ctx, struct http_req *req, char *who, size_t len)
{
	const char *h = http_req_header(req, "Authorization");
	unsigned char hash[32];

	if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != 64)
		return false;
	crypto_hash_sha256(hash, (const unsigned char *)h + 7, 64);
	return store_token_check(ctx->st, hash, STORE_TOKEN_SESSION, (int64_t)time(NULL), who,
				 len) == STORE_OK;
}

void api_handle(struct http_req *req, void *arg)
{
	struct api_ctx *ctx = arg;
	const char *method = http_req_method(req), *path = http_req_path(req);
	bool path_known = false;
	char who[128] = "";
	size_t i;

	for (i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		path_known = true;
		if (strcmp(routes[i].method, method) != 0)
			continue;
		if (routes[i].auth == AUTH_ADMIN && !authorized(ctx, req, who, sizeof(who))) {
			http_respond_error(req, 401, "missing, expired or unknown bearer token");
			return;
		}
		routes[i].fn(ctx, req, who);
		return;
	}
	if (path_known)
		http_respond_error(req, 405, "%s is not allowed on %s", method, path);
	else
		http_respond_error(req, 404, "no such resource: %s", path);
}
