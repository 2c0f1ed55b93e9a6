/* enroll.c -- enrollment tokens (see enroll.h). */
#include "server/enroll.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/store.h"

#define DEFAULT_DAYS 30
#define MAX_DAYS 3650
#define ID_BYTES 8   /* as store_tokens_list names a token */

json_t *enroll_token_new(struct store *st, const char *url, const char *ca,
			 const char *domain, int64_t expires, char *errbuf, size_t errlen)
{
	unsigned char hash[32];
	char token[65], id[2 * ID_BYTES + 1];
	json_t *out = NULL;

	api_new_token(token, hash);
	sodium_bin2hex(id, sizeof(id), hash, ID_BYTES);
	if (store_token_put(st, hash, STORE_TOKEN_ENROLL, domain, expires, 0, errbuf,
			    errlen) != STORE_OK)
		goto out;
	out = json_pack("{ss ss ss ss ss sI}", "server", url, "ca", ca, "token", token, "id", id,
			"domain", domain, "expires", (json_int_t)expires);
	if (!out)
		snprintf(errbuf, errlen, "out of memory");
out:
	sodium_memzero(token, sizeof(token));
	return out;
}

void enroll_get_tokens(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	json_t *list = NULL, *t;
	size_t i;

	(void)who;
	if (store_tokens_list(ctx->st, STORE_TOKEN_ENROLL, (int64_t)time(NULL), &list) !=
	    STORE_OK) {
		http_respond_error(req, 500, "database: reading the enrollment tokens failed");
		return;
	}
	/* The store's subject of an enrollment token is its domain. */
	json_array_foreach(list, i, t) {
		json_object_set(t, "domain", json_object_get(t, "subject"));
		json_object_del(t, "subject");
	}
	http_respond_json(req, 200, json_pack("{so}", "tokens", list));
}

void enroll_post_token(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	json_t *body = api_body_object(req), *made = NULL;
	const char *domain = NULL;
	json_int_t days = DEFAULT_DAYS;
	int64_t node, expires;
	char path[4096], msg[256];

	if (!body)
		return;
	if (json_unpack(body, "{s?s s?I !}", "domain", &domain, "days", &days) != 0) {
		http_respond_error(req, 400, "enroll token: expected {\"domain\"?: PATH, "
				   "\"days\"?: NUMBER}");
		goto out;
	}
	if (days < 1 || days > MAX_DAYS) {
		http_respond_error(req, 400, "days: expected 1 to %d, got %lld", MAX_DAYS,
				   (long long)days);
		goto out;
	}
	if (!domain)
		domain = ctx->cfg->default_domain;
	if (store_domain_lookup(ctx->st, domain, 0, &node, msg, sizeof(msg)) != STORE_OK ||
	    store_domain_path(ctx->st, node, path, sizeof(path)) != STORE_OK) {
		http_respond_error(req, 400, "domain: no domain %s", domain);
		goto out;
	}
	expires = (int64_t)time(NULL) + days * 86400;
	made = enroll_token_new(ctx->st, ctx->server_url, ctx->ca_pem, path, expires, msg,
				sizeof(msg));
	if (!made) {
		http_respond_error(req, 500, "enroll token: %s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s created enrollment token %s for %s, valid for "
		     "%lld days", who, json_string_value(json_object_get(made, "id")), path,
		     (long long)days);
	http_respond_json(req, 201, made);
out:
	json_decref(body);
}

void enroll_post_revoke(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	json_t *body = api_body_object(req);
	const char *id;
	int64_t n = 0;

	if (!body)
		return;
	if (json_unpack(body, "{s:s !}", "id", &id) != 0 || strlen(id) != 2 * ID_BYTES ||
	    strspn(id, "0123456789abcdef") != 2 * ID_BYTES) {
		http_respond_error(req, 400, "enroll revoke: expected {\"id\": 16 lowercase hex "
				   "digits}");
		goto out;
	}
	if (store_token_revoke(ctx->st, STORE_TOKEN_ENROLL, id, &n) != STORE_OK) {
		http_respond_error(req, 500, "database: revoking the token failed");
		goto out;
	}
	if (n == 0) {
		http_respond_error(req, 404, "no enrollment token %s", id);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s revoked enrollment token %s", who, id);
	http_respond_json(req, 200, json_pack("{ss}", "revoked", id));
out:
	json_decref(body);
}
