/* enroll.c -- enrollment tokens and smart protection server enrollment
 * (see enroll.h). */
#include "server/enroll.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/rate.h"
#include "common/util.h"
#include "server/pki.h"
#include "server/store.h"

#define DEFAULT_DAYS 30
#define MAX_DAYS 3650
#define SPS_MAX_DAYS 30
#define ID_BYTES 8   /* as store_tokens_list names a token */

/* How long a smart protection server's certificate is valid, in days: it
 * renews by enrolling again, with a new token. */
#define SPS_CERT_DAYS 825

/* Refused enrollments are logged once per offender and this interval. */
#define LOG_INTERVAL 300

json_t *enroll_token_new(struct store *st, const char *url, const char *ca, const char *subject,
			 int64_t expires, enum store_token kind, int64_t max_uses, char *errbuf,
			 size_t errlen)
{
	unsigned char hash[32];
	char token[65], id[2 * ID_BYTES + 1];
	json_t *out = NULL;

	api_new_token(token, hash);
	sodium_bin2hex(id, sizeof(id), hash, ID_BYTES);
	if (store_token_put(st, hash, kind, subject, expires, 0, errbuf, errlen) != SERR_OK)
		goto out;
	if (max_uses && store_token_use(st, hash, max_uses) != SERR_OK) {
		snprintf(errbuf, errlen, "database: capping the token's uses failed");
		goto out;
	}
	out = json_pack("{ss ss ss ss ss sI sI}", "server", url, "ca", ca, "token", token, "id", id,
			"kind", kind == STORE_TOKEN_SPS_ENROLL ? "sps" : "agent", "expires",
			(json_int_t)expires, "max_uses", (json_int_t)max_uses);
	if (out && kind == STORE_TOKEN_ENROLL)
		json_object_set_new(out, "domain", json_string(subject));
	if (!out)
		snprintf(errbuf, errlen, "out of memory");
out:
	sodium_memzero(token, sizeof(token));
	return out;
}

/* Appends the tokens of kind in force to list, each with its kind. */
static bool list_kind(struct api_ctx *ctx, enum store_token kind, json_t *list)
{
	json_t *part = NULL, *t;
	size_t i;

	if (store_tokens_list(ctx->st, kind, (int64_t)time(NULL), &part) != SERR_OK)
		return false;
	/* In the order the command line shows: what it is, then its limits. */
	json_array_foreach(part, i, t)
		json_array_append_new(list, json_pack("{sO ss sO sO sO sO}", "id",
				      json_object_get(t, "id"), "kind",
				      kind == STORE_TOKEN_ENROLL ? "agent" : "sps",
				      kind == STORE_TOKEN_ENROLL ? "domain" : "made_by",
				      json_object_get(t, "subject"), "expires",
				      json_object_get(t, "expires"), "uses",
				      json_object_get(t, "uses"), "max_uses",
				      json_object_get(t, "max_uses")));
	json_decref(part);
	return true;
}

void enroll_get_tokens(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	json_t *list = json_array();

	(void)args;
	(void)who;
	if (!list || !list_kind(ctx, STORE_TOKEN_ENROLL, list) ||
	    !list_kind(ctx, STORE_TOKEN_SPS_ENROLL, list)) {
		json_decref(list);
		http_respond_error(req, 500, "database: reading the enrollment tokens failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "tokens", list));
}

json_t *enroll_new_agent_token(struct api_ctx *ctx, struct http_req *req, const char *who,
				const struct api_args *args)
{
	const char *domain = api_arg_string(args, "domain");
	int64_t days = DEFAULT_DAYS, max_uses = 0, node, expires;
	char path[4096], msg[256];
	json_t *made;

	api_arg_int(args, "days", &days);
	api_arg_int(args, "max_uses", &max_uses);
	if (days < 1 || days > MAX_DAYS) {
		http_respond_error(req, 400, "days: expected 1 to %d, got %lld", MAX_DAYS,
				   (long long)days);
		return NULL;
	}
	if (max_uses < 0 || max_uses > 1000000) {
		http_respond_error(req, 400, "max_uses: expected 0 (no cap) to 1000000, got %lld",
				   (long long)max_uses);
		return NULL;
	}
	if (!domain)
		domain = ctx->cfg->default_domain;
	if (store_domain_lookup(ctx->st, domain, 0, &node, msg, sizeof(msg)) != SERR_OK ||
	    store_domain_path(ctx->st, node, path, sizeof(path)) != SERR_OK) {
		http_respond_error(req, 400, "domain: no domain %s", domain);
		return NULL;
	}
	expires = (int64_t)time(NULL) + days * 86400;
	made = enroll_token_new(ctx->st, ctx->server_url, ctx->ca_pem, path, expires,
				STORE_TOKEN_ENROLL, max_uses, msg, sizeof(msg));
	if (!made) {
		http_respond_error(req, 500, "enroll token: %s", msg);
		return NULL;
	}
	store_eventf(ctx->st, "system", 0, "%s created enrollment token %s for %s, valid for "
		     "%lld days%s", who, json_string_value(json_object_get(made, "id")), path,
		     (long long)days, max_uses ? ", with a cap on its uses" : "");
	return made;
}

void enroll_post_token(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	json_t *made = enroll_new_agent_token(ctx, req, who, args);

	if (made)
		http_respond_json(req, 201, made);
}

void enroll_post_sps_token(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	int64_t days = 1;
	char msg[256];
	json_t *made;

	api_arg_int(args, "days", &days);
	if (days < 1 || days > SPS_MAX_DAYS) {
		http_respond_error(req, 400, "days: expected 1 to %d, got %lld", SPS_MAX_DAYS,
				   (long long)days);
		return;
	}
	made = enroll_token_new(ctx->st, ctx->server_url, ctx->ca_pem, who,
				(int64_t)time(NULL) + days * 86400, STORE_TOKEN_SPS_ENROLL, 1, msg,
				sizeof(msg));
	if (!made) {
		http_respond_error(req, 500, "sps token: %s", msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s created smart protection server enrollment token "
		     "%s, for one server, valid for %lld days", who,
		     json_string_value(json_object_get(made, "id")), (long long)days);
	http_respond_json(req, 201, made);
}

void enroll_post_revoke(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *id = api_arg_string(args, "id");
	int64_t n = 0, m = 0;

	if (strlen(id) != 2 * ID_BYTES || strspn(id, "0123456789abcdef") != 2 * ID_BYTES) {
		http_respond_error(req, 400, "id: expected 16 lowercase hex digits");
		return;
	}
	if (store_token_revoke(ctx->st, STORE_TOKEN_ENROLL, id, &n) != SERR_OK ||
	    store_token_revoke(ctx->st, STORE_TOKEN_SPS_ENROLL, id, &m) != SERR_OK) {
		http_respond_error(req, 500, "database: revoking the token failed");
		return;
	}
	if (n + m == 0) {
		http_respond_error(req, 404, "no enrollment token %s", id);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s revoked enrollment token %s", who, id);
	http_respond_json(req, 200, json_pack("{ss}", "revoked", id));
}

bool enroll_admit(struct api_ctx *ctx, struct http_req *req)
{
	char id[2 * ID_BYTES + 1], peer[RATE_KEY_MAX], after[16];
	int64_t now = util_clock_ms();
	unsigned wait = 0;
	bool first = false;
	enum serr err;

	sodium_bin2hex(id, sizeof(id), ctx->caller_token, ID_BYTES);
	rate_peer_key(http_req_peer(req), peer);
	/* Counted in the database: every server on it spends from one limit. */
	err = store_rate_take(ctx->st, STORE_LIMIT_ENROLL_TOKEN, id, ctx->cfg->enroll_per_token,
			      ctx->cfg->enroll_per_token, now, LOG_INTERVAL, &wait, &first, NULL,
			      0);
	if (wait) {
		if (first)
			log_msg(LOG_LVL_WARN, "enrollment: token %s is over enroll.per_token (%lld "
				"a minute); refusing it for now", id,
				(long long)ctx->cfg->enroll_per_token);
	} else if (err == SERR_OK) {
		err = store_rate_take(ctx->st, STORE_LIMIT_ENROLL_ADDRESS, peer,
				      ctx->cfg->enroll_per_address, ctx->cfg->enroll_per_address,
				      now, LOG_INTERVAL, &wait, &first, NULL, 0);
		if (wait && first)
			log_msg(LOG_LVL_WARN, "enrollment: address %s is over enroll.per_address "
				"(%lld a minute); refusing it for now", peer,
				(long long)ctx->cfg->enroll_per_address);
	}
	if (err != SERR_OK) {
		http_respond_busy(req, 5, "enroll: the database does not answer; try again later");
		return false;
	}
	if (!wait)
		return true;
	http_respond_json(req, 429, json_pack("{ss}", "error", "enroll: too many enrollments; "
					      "try again later"));
	snprintf(after, sizeof(after), "%u", wait);
	http_add_header(req, "Retry-After", after);
	return false;
}

bool enroll_valid_host(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 253 && strspn(name, "abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/* Returns whether name stands for a loopback address, which every host
 * has: a name of a smart protection server beside wardd, not of wardd. */
static bool loopback(const char *name)
{
	unsigned char a[16];

	if (strcasecmp(name, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, name, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, name, a) == 1 && memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
}

/* The first of names that wardd's certificate answers to, or NULL: a
 * smart protection server's certificate must carry none of wardd's names.
 * Loopback names are every host's, so they are refused only when they
 * are the name wardd is reached by. */
static const char *wardd_name(const struct api_ctx *ctx, const char *const *names, size_t n)
{
	const char *which = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (loopback(names[i]) && strcasecmp(names[i], ctx->server_name) != 0)
			continue;
		if (strcasecmp(names[i], ctx->server_name) == 0 ||
		    pki_names_overlap(ctx->server_crt, &names[i], 1, &which))
			return names[i];
	}
	return NULL;
}

void enroll_post_sps(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	json_t *body = api_body_object(req), *names = NULL, *n;
	const char *uuid, *hostname, *list[8], *taken;
	char secret[65], msg[512], *ca_key = NULL, *ca_cert = NULL, *key = NULL, *cert = NULL;
	char *names_text = NULL, pin[PKI_PIN_LEN];
	unsigned char hash[32];
	enum serr err;
	size_t i;

	(void)args;
	secret[0] = '\0';
	if (!body || !enroll_admit(ctx, req))
		goto out;
	if (json_unpack(body, "{s:s, s:s, s:o !}", "uuid", &uuid, "hostname", &hostname, "names",
			&names) != 0 || strlen(uuid) != 36 ||
	    strspn(uuid, "0123456789abcdef-") != 36 || !enroll_valid_host(hostname) ||
	    !json_is_array(names) || json_array_size(names) < 1 || json_array_size(names) > 8) {
		http_respond_error(req, 400, "sps enroll: expected {\"uuid\": 36 lowercase hex "
				   "and dashes, \"hostname\": 1 to 253 letters, digits, dots, "
				   "dashes and underscores, \"names\": 1 to 8 host names or "
				   "addresses}");
		goto out;
	}
	json_array_foreach(names, i, n) {
		list[i] = json_string_value(n);
		if (!list[i]) {
			http_respond_error(req, 400, "sps enroll: name %zu is not a string", i + 1);
			goto out;
		}
	}
	taken = wardd_name(ctx, list, json_array_size(names));
	if (taken) {
		log_msg(LOG_LVL_WARN, "sps enroll: refused a certificate for %s, a name of this "
			"server, to %s", taken, http_req_peer(req));
		http_respond_error(req, 400, "sps enroll: %s is a name of the management server "
				   "itself; a smart protection server needs names of its own",
				   taken);
		goto out;
	}
	ca_key = util_read_file(ctx->sps_ca_key_path, 1 << 16, NULL);
	ca_cert = util_read_file(ctx->sps_ca_crt_path, 1 << 16, NULL);
	if (!ca_key || !ca_cert) {
		http_respond_error(req, 500, "sps enroll: the smart protection CA is unreadable");
		goto out;
	}
	switch (pki_issue_server(ca_key, ca_cert, list, json_array_size(names), SPS_CERT_DAYS,
				 &key, &cert, msg, sizeof(msg))) {
	case SERR_OK:
		break;
	case SERR_INVAL:
		http_respond_error(req, 400, "sps enroll: %s", msg);
		goto out;
	default:
		http_respond_error(req, 500, "sps enroll: %s", msg);
		goto out;
	}
	if (pki_pin(cert, pin, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "sps enroll: %s", msg);
		goto out;
	}
	api_new_token(secret, hash);
	names_text = json_dumps(names, JSON_COMPACT);
	err = names_text ? store_sps_add(ctx->st, uuid, hash, hostname, names_text, pin,
					 (int64_t)time(NULL), msg, sizeof(msg)) : SERR_NOMEM;
	if (err == SERR_OK && store_token_use(ctx->st, ctx->caller_token, -1) != SERR_OK) {
		snprintf(msg, sizeof(msg), "database: spending the token failed");
		err = SERR_DB;
	}
	if (err != SERR_OK) {
		http_respond_error(req, err == SERR_EXIST ? 409 : 500, "%s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "smart protection server %s (%s) enrolled from %s "
		     "with a token made by %s, certificate for %s", hostname, uuid,
		     http_req_peer(req), who, names_text);
	/* ca: what it trusts wardd by; the certificate chains to the smart
	 * protection CA, which agents trust for smart protection alone. */
	http_respond_json(req, 201, json_pack("{ss ss ss ss ss sI}", "secret", secret,
					      "certificate", cert, "key", key, "ca", ctx->ca_pem,
					      "package_key", updates_key(ctx->updates),
					      "heartbeat_interval",
					      (json_int_t)ctx->cfg->heartbeat_interval));
out:
	sodium_memzero(secret, sizeof(secret));
	if (key)
		sodium_memzero(key, strlen(key));
	if (ca_key)
		sodium_memzero(ca_key, strlen(ca_key));
	free(key);
	free(cert);
	free(ca_key);
	free(ca_cert);
	free(names_text);
	json_decref(body);
}

/* Changes smart protection server "id"'s state; state "revoked" is for
 * good. */
static void set_sps_state(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args, const char *state)
{
	int64_t id = 0, n = 0;

	api_arg_int(args, "id", &id);
	if (store_sps_set_state(ctx->st, id, state, &n) != SERR_OK) {
		http_respond_error(req, 500, "database: changing the server's state failed");
	} else if (n == 0) {
		http_respond_error(req, 404, "no smart protection server %lld that is not revoked",
				   (long long)id);
	} else {
		store_eventf(ctx->st, "system", 0, "%s set smart protection server %lld %s", who,
			     (long long)id, state);
		http_respond_json(req, 200, json_pack("{sI ss}", "id", (json_int_t)id, "state",
						      state));
	}
}

void enroll_post_sps_disable(struct api_ctx *ctx, struct http_req *req, const char *who,
			     const struct api_args *args)
{
	set_sps_state(ctx, req, who, args, "disabled");
}

void enroll_post_sps_enable(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	set_sps_state(ctx, req, who, args, "enabled");
}

void enroll_post_sps_revoke(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	set_sps_state(ctx, req, who, args, "revoked");
}
