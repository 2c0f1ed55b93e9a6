/* api_session.c -- the session routes: health, sign-out, the session itself. */
#include "server/api.h"

#include <sodium.h>
#include <stdlib.h>
#include <time.h>

#include "server/session.h"

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
		if (store_token_delete(ctx->st, th) != SERR_OK) {
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
