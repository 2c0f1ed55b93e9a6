/* admins.c -- sign-in, administrators, roles and passwords (see admins.h). */
#include "server/admins.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rate.h"
#include "server/session.h"
#include "server/signin.h"

#define ROLE_ADMIN "admin"
#define ROLE_READ "read-only"

/* Longest administrator name. */
#define NAME_MAX_LEN 64

/* A request waiting for its password work: what its answer needs. */
struct pending {
	struct api_ctx *ctx;
	char user[NAME_MAX_LEN + 1];    /* who signs in; or the caller */
	char target[NAME_MAX_LEN + 1];  /* whose password changes / who is added */
	char role[16];                  /* the new administrator's */
	unsigned char keep[32];         /* the caller's session, kept on a change */
	bool cookie, own;
};

unsigned admins_authorize(struct api_ctx *ctx, struct http_req *req, enum ops_auth auth,
			  char *who, size_t len)
{
	enum serr err;
	unsigned char hash[32];
	char token[65], csrf[65], *role = NULL;
	const char *sent;
	int64_t idle;
	bool cookie, admin;

	if (!session_token(req, token, &cookie))
		return 401;
	if (cookie && strcmp(http_req_method(req), "GET") != 0) {
		session_csrf(token, csrf);
		sent = http_req_header(req, SESSION_CSRF_HEADER);
		if (!sent || strlen(sent) != 64 || sodium_memcmp(sent, csrf, 64) != 0)
			return 401;
	}
	/* A page refreshing itself is no sign of someone at the console:
	 * only the administrator's own requests keep a session alive. */
	idle = cookie && !http_req_header(req, SESSION_BACKGROUND_HEADER) ?
	       ctx->cfg->session_idle : 0;
	crypto_hash_sha256(hash, (const unsigned char *)token, 64);
	err = store_token_check(ctx->st, hash, cookie ? STORE_TOKEN_CONSOLE : STORE_TOKEN_SESSION,
				(int64_t)time(NULL), idle, who, len, NULL);
	/* The session's administrator as they are now, not at sign-in. */
	if (err == SERR_OK)
		err = store_admin_role(ctx->st, who, &role);
	if (err != SERR_OK)
		return err == SERR_NOENT ? 401 : 503;
	admin = strcmp(role, ROLE_ADMIN) == 0;
	free(role);
	return auth == OPS_AUTH_ADMIN && !admin ? 403 : 0;
}

/* Whether name may name an administrator: 1 to NAME_MAX_LEN letters,
 * digits, '.', '_', '-' or '@' (shown in logs and tables as it is). */
static bool valid_name(const char *name)
{
	size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			  "._-@");

	return n > 0 && n <= NAME_MAX_LEN && name[n] == '\0';
}

/* Answers 400 and returns false when a new password is too short or too
 * long. */
static bool check_new_password(struct api_ctx *ctx, struct http_req *req, const char *what,
			       const char *password)
{
	size_t n = strlen(password);

	if (n < (size_t)ctx->cfg->password_min_length || n > SIGNIN_MAX_PASSWORD) {
		http_respond_error(req, 400, "%s: a password must be %lld to %d bytes long", what,
				   (long long)ctx->cfg->password_min_length, SIGNIN_MAX_PASSWORD);
		return false;
	}
	return true;
}

/* Answers a request the database could not count a password for. */
static void unanswered(struct http_req *req, const char *what)
{
	http_respond_busy(req, 5, "%s: the database does not answer; try again later", what);
}

/* Hands req's password work to the workers (see signin_submit()); while
 * the global brake is engaged, a password is verified at the turn the
 * database gives it, shared by every server on it. Answers 503 and returns
 * false when there is no room or the database does not answer. */
static bool submit(struct api_ctx *ctx, struct http_req *req, const char *what,
		   const char *hash, const char *password, const char *new_password,
		   signin_done_fn done, struct pending *p)
{
	int64_t now = (int64_t)time(NULL), until = 0, turn = 0, pace = ctx->cfg->signin_brake_pace;
	/* Turns further ahead than every server's queue could hold were left
	 * by a clock stepped back. */
	int64_t cap = ctx->cfg->signin_queue * pace * CONFIG_MAX_FRONTENDS;
	unsigned wait;

	if (password && signin_room(ctx->signin)) {
		if (store_brake_until(ctx->st, &until) != SERR_OK ||
		    (until > now && store_brake_turn(ctx->st, pace, cap, now, &turn) != SERR_OK)) {
			unanswered(req, what);
			return false;
		}
	}
	if (signin_submit(ctx->signin, req, hash, password, new_password, turn, done, p))
		return true;
	wait = signin_retry_after(ctx->signin, until > now ? pace : 0);
	http_respond_busy(req, wait, "%s: too many sign-ins at once; try again in %u seconds",
			  what, wait);
	return false;
}

/* Answers 429 (or 503) and returns true when req's address must wait
 * before it may try a password. */
static bool must_wait(struct api_ctx *ctx, struct http_req *req, const char *what)
{
	char address[RATE_KEY_MAX], after[16];
	unsigned wait = 0;

	rate_peer_key(http_req_peer(req), address);
	if (store_guard_wait(ctx->st, address, (int64_t)time(NULL), &wait) != SERR_OK) {
		unanswered(req, what);
		return true;
	}
	if (!wait)
		return false;
	http_respond_error(req, 429, "%s: too many wrong passwords from %s; try again in %u "
			   "seconds", what, address, wait);
	snprintf(after, sizeof(after), "%u", wait);
	http_add_header(req, "Retry-After", after);
	return true;
}

/* Counts a wrong password from req's address, for the address and for the
 * global brake. Returns whether the address must now wait. */
static bool count_failure(struct api_ctx *ctx, struct http_req *req)
{
	char address[RATE_KEY_MAX];
	int64_t now = (int64_t)time(NULL);
	unsigned wait = 0;
	bool engaged = false;

	rate_peer_key(http_req_peer(req), address);
	if (store_guard_fail(ctx->st, address, now, &wait) != SERR_OK ||
	    store_brake_fail(ctx->st, ctx->cfg->signin_brake_failures,
			     ctx->cfg->signin_brake_window, now, &engaged) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "sign-in: a wrong password from %s could not be counted: "
			"the database does not answer", address);
	if (engaged) {
		log_msg(LOG_LVL_WARN, "sign-in: %lld wrong passwords from all addresses within "
			"%llds; sign-ins are verified one per %llds until %llds pass without as "
			"many",
			(long long)ctx->cfg->signin_brake_failures,
			(long long)ctx->cfg->signin_brake_window,
			(long long)ctx->cfg->signin_brake_pace,
			(long long)ctx->cfg->signin_brake_window);
		store_eventf(ctx->st, "system", 0, "sign-in brake engaged: %lld wrong passwords "
			     "from all addresses within %llds; sign-ins are verified one per %llds",
			     (long long)ctx->cfg->signin_brake_failures,
			     (long long)ctx->cfg->signin_brake_window,
			     (long long)ctx->cfg->signin_brake_pace);
	}
	return wait > 0;
}

/* Forgets the wrong passwords of req's address. */
static void clear_failures(struct api_ctx *ctx, struct http_req *req)
{
	char address[RATE_KEY_MAX];

	rate_peer_key(http_req_peer(req), address);
	store_guard_clear(ctx->st, address);
}

/* Removes the first start's password file once the password it holds no
 * longer opens anything. */
static void forget_initial_password(struct api_ctx *ctx)
{
	if (unlink(ctx->password_file) == 0)
		store_eventf(ctx->st, "system", 0, "the initial password file %s was removed",
			     ctx->password_file);
	else if (errno != ENOENT)
		store_eventf(ctx->st, "system", 0, "the initial password file %s could not be "
			     "removed: %s", ctx->password_file, strerror(errno));
}

static void login_done(struct http_req *req, void *arg, enum signin_outcome outcome,
		       const char *new_hash)
{
	struct pending *p = arg;
	struct api_ctx *ctx = p->ctx;
	const char *peer;
	char token[65], csrf[65], msg[256], *role = NULL;
	unsigned char th[32];
	int64_t now = (int64_t)time(NULL), ends = now + ctx->cfg->session_lifetime, until;
	bool wait;

	(void)new_hash;
	if (!req)
		goto out;
	peer = http_req_peer(req);
	if (outcome == SIGNIN_ENOMEM) {
		http_respond_error(req, 500, "login: out of memory verifying the password");
		goto out;
	}
	if (outcome == SIGNIN_MISMATCH) {
		wait = count_failure(ctx, req);
		/* An unknown name may be a password typed in the wrong field. */
		store_eventf(ctx->st, "system", 0, "sign-in refused for %s%s%s from %s%s",
			     p->own ? "user '" : "an unknown user name", p->own ? p->user : "",
			     p->own ? "'" : "", peer,
			     wait ? "; the address must wait before trying again" : "");
		http_respond_error(req, 401, "login: wrong user name or password");
		goto out;
	}
	clear_failures(ctx, req);
	/* Removed while the password was verified? Then no session. */
	if (store_admin_role(ctx->st, p->user, &role) != SERR_OK) {
		http_respond_error(req, 401, "login: wrong user name or password");
		goto out;
	}
	api_new_token(token, th);
	until = p->cookie && now + ctx->cfg->session_idle < ends ? now + ctx->cfg->session_idle :
		ends;
	if (store_token_put(ctx->st, th, p->cookie ? STORE_TOKEN_CONSOLE : STORE_TOKEN_SESSION,
			    p->user, until, p->cookie ? ends : 0, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s signed in from %s (%s)", p->user, peer,
		     p->cookie ? "console" : "API");
	if (p->cookie) {
		session_csrf(token, csrf);
		http_respond_json(req, 200, json_pack("{ss ss ss sI}", "user", p->user, "role",
						      role, "csrf", csrf, "expires",
						      (json_int_t)until));
		session_set_cookie(req, token, ctx->cfg->session_lifetime);
	} else {
		http_respond_json(req, 200, json_pack("{ss ss sI}", "token", token, "role", role,
						      "expires", (json_int_t)ends));
	}
	sodium_memzero(token, sizeof(token));
out:
	free(role);
	free(p);
}

/* Signs an administrator in. With {"cookie": true} (the console) the
 * session travels in a cookie and the answer carries its CSRF token;
 * otherwise the answer carries a bearer token. */
void admins_post_login(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	const char *ctype = http_req_header(req, "Content-Type");
	json_t *body = NULL;
	const char *user, *password;
	char *hash = NULL, msg[256];
	struct pending *p = NULL;
	int cookie = 0;
	enum serr err;

	(void)args;
	(void)who;
	/* JSON only: a form on another site cannot post one without CORS,
	 * so no page the administrator visits can spend their tries. */
	if (!ctype || strncmp(ctype, "application/json", 16) != 0) {
		http_respond_error(req, 415, "login: expected Content-Type: application/json");
		return;
	}
	body = api_body_object(req);
	if (!body)
		return;
	if (json_unpack(body, "{s:s, s:s, s?b !}", "user", &user, "password", &password,
			"cookie", &cookie) != 0) {
		http_respond_error(req, 400, "login: expected {\"user\": ..., \"password\": ...[, "
				   "\"cookie\": true]}");
		goto out;
	}
	if (strlen(password) > SIGNIN_MAX_PASSWORD) {
		http_respond_error(req, 400, "login: a password has at most %d bytes",
				   SIGNIN_MAX_PASSWORD);
		goto out;
	}
	if (must_wait(ctx, req, "login"))
		goto out;
	/* A name that is no administrator's is verified all the same (against
	 * the dummy), so that the time taken does not tell. */
	err = valid_name(user) ? store_admin_get(ctx->st, user, &hash, msg, sizeof(msg)) :
	      SERR_NOENT;
	if (err != SERR_OK && err != SERR_NOENT) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	p->ctx = ctx;
	p->cookie = cookie;
	p->own = err == SERR_OK;
	if (p->own)
		snprintf(p->user, sizeof(p->user), "%s", user);
	if (!submit(ctx, req, "login", hash, password, NULL, login_done, p))
		free(p);
out:
	free(hash);
	json_decref(body);
}

static void passwd_done(struct http_req *req, void *arg, enum signin_outcome outcome,
			const char *new_hash)
{
	struct pending *p = arg;
	struct api_ctx *ctx = p->ctx;
	char msg[256], *role = NULL;

	if (!req)
		goto out;
	if (outcome == SIGNIN_ENOMEM) {
		http_respond_error(req, 500, "passwd: out of memory hashing the password");
		goto out;
	}
	if (outcome == SIGNIN_MISMATCH) {
		count_failure(ctx, req);
		store_eventf(ctx->st, "system", 0, "%s gave a wrong current password to change the "
			     "password of '%s'", p->user, p->target);
		http_respond_error(req, 403, "passwd: wrong current password");
		goto out;
	}
	clear_failures(ctx, req);
	/* Removed while the hash was made? Then there is nothing to change. */
	if (store_admin_role(ctx->st, p->target, &role) != SERR_OK) {
		http_respond_error(req, 404, "passwd: no administrator '%s'", p->target);
		goto out;
	}
	if (store_admin_put(ctx->st, p->target, new_hash, msg, sizeof(msg)) != SERR_OK ||
	    store_admin_end_sessions(ctx->st, p->target, p->own ? p->keep : NULL) != SERR_OK) {
		http_respond_error(req, 500, "passwd: %s", msg);
		goto out;
	}
	if (p->own)
		store_eventf(ctx->st, "system", 0, "%s changed their password; their other "
			     "sessions ended", p->user);
	else
		store_eventf(ctx->st, "system", 0, "%s set the password of '%s'; their sessions "
			     "ended", p->user, p->target);
	if (strcmp(p->target, ADMINS_FIRST) == 0)
		forget_initial_password(ctx);
	http_respond_json(req, 200, json_pack("{ss}", "user", p->target));
out:
	free(role);
	free(p);
}

void admins_post_passwd(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *password = api_arg_string(args, "password");
	const char *new_password = api_arg_string(args, "new_password");
	const char *user = api_arg_string(args, "user");
	char *hash = NULL, *role = NULL, token[65];
	struct pending *p = NULL;
	bool cookie;

	if (!user)
		user = who;
	if (strlen(password) > SIGNIN_MAX_PASSWORD) {
		http_respond_error(req, 400, "passwd: a password has at most %d bytes",
				   SIGNIN_MAX_PASSWORD);
		goto out;
	}
	if (!check_new_password(ctx, req, "passwd", new_password) ||
	    must_wait(ctx, req, "passwd"))
		goto out;
	if (store_admin_role(ctx->st, who, &role) != SERR_OK ||
	    store_admin_get(ctx->st, who, &hash, NULL, 0) != SERR_OK) {
		http_respond_error(req, 500, "passwd: the administrators are unreadable");
		goto out;
	}
	if (strcmp(user, who) != 0) {
		if (strcmp(role, ROLE_ADMIN) != 0) {
			http_respond_error(req, 403, "passwd: a read-only administrator may change "
					   "only their own password");
			goto out;
		}
		free(role);
		role = NULL;
		if (!valid_name(user) || store_admin_role(ctx->st, user, &role) != SERR_OK) {
			http_respond_error(req, 404, "passwd: no administrator '%s'", user);
			goto out;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	p->ctx = ctx;
	p->own = strcmp(user, who) == 0;
	snprintf(p->user, sizeof(p->user), "%s", who);
	snprintf(p->target, sizeof(p->target), "%s", user);
	if (session_token(req, token, &cookie))
		crypto_hash_sha256(p->keep, (const unsigned char *)token, 64);
	/* The caller's own current password, whoever's changes: a session
	 * left open is not enough to take an account over. */
	if (!submit(ctx, req, "passwd", hash, password, new_password, passwd_done, p))
		free(p);
out:
	free(hash);
	free(role);
}

void admins_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		const struct api_args *args)
{
	json_t *list = NULL;

	(void)args;
	(void)who;
	if (store_admin_list(ctx->st, &list) != SERR_OK)
		http_respond_error(req, 500, "admins: the administrators are unreadable");
	else
		http_respond_json(req, 200, json_pack("{so}", "admins", list));
}

/* Whether role names a role; answers 400 when not. */
static bool check_role(struct http_req *req, const char *role)
{
	if (strcmp(role, ROLE_ADMIN) == 0 || strcmp(role, ROLE_READ) == 0)
		return true;
	http_respond_error(req, 400, "admins: role '%s' is neither \"" ROLE_ADMIN "\" nor \""
			   ROLE_READ "\"", role);
	return false;
}

static void add_done(struct http_req *req, void *arg, enum signin_outcome outcome,
		     const char *new_hash)
{
	struct pending *p = arg;
	struct api_ctx *ctx = p->ctx;
	enum serr err;
	char msg[256];

	if (!req)
		goto out;
	if (outcome != SIGNIN_MATCH) {
		http_respond_error(req, 500, "admins: out of memory hashing the password");
		goto out;
	}
	err = store_admin_add(ctx->st, p->target, new_hash, p->role, msg, sizeof(msg));
	if (err != SERR_OK) {
		http_respond_error(req, err == SERR_EXIST ? 409 : 500, "admins: %s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s added administrator '%s' (%s)", p->user, p->target,
		     p->role);
	http_respond_json(req, 201, json_pack("{ss ss}", "name", p->target, "role", p->role));
out:
	free(p);
}

void admins_post(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args)
{
	const char *name = api_arg_string(args, "name");
	const char *new_password = api_arg_string(args, "new_password");
	const char *role = api_arg_string(args, "role");
	char *taken = NULL;
	struct pending *p;

	if (!role)
		role = ROLE_ADMIN;
	if (!valid_name(name)) {
		http_respond_error(req, 400, "admins: a name is 1 to %d letters, digits, '.', '_', "
				   "'-' or '@'", NAME_MAX_LEN);
		goto out;
	}
	if (!check_role(req, role) || !check_new_password(ctx, req, "admins", new_password))
		goto out;
	if (store_admin_role(ctx->st, name, &taken) == SERR_OK) {
		http_respond_error(req, 409, "admins: administrator '%s' exists already", name);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	p->ctx = ctx;
	snprintf(p->user, sizeof(p->user), "%s", who);
	snprintf(p->target, sizeof(p->target), "%s", name);
	snprintf(p->role, sizeof(p->role), "%s", role);
	if (!submit(ctx, req, "admins", NULL, NULL, new_password, add_done, p))
		free(p);
out:
	free(taken);
}

/* Answers 409 and returns false when taking name's administrator role away
 * would leave no administrator of that role. */
static bool keeps_an_admin(struct api_ctx *ctx, struct http_req *req, const char *name,
			   const char *role)
{
	int64_t n = 0;

	if (strcmp(role, ROLE_ADMIN) != 0)
		return true;
	if (store_admin_count_role(ctx->st, ROLE_ADMIN, &n) != SERR_OK) {
		http_respond_error(req, 500, "admins: the administrators are unreadable");
		return false;
	}
	if (n > 1)
		return true;
	http_respond_error(req, 409, "admins: '%s' is the last administrator of role \""
			   ROLE_ADMIN "\"", name);
	return false;
}

void admins_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args)
{
	const char *name = api_arg_string(args, "name");
	char *role = NULL, msg[256];

	if (!valid_name(name) || store_admin_role(ctx->st, name, &role) != SERR_OK) {
		http_respond_error(req, 404, "admins: no administrator '%s'", name);
		return;
	}
	if (!keeps_an_admin(ctx, req, name, role))
		goto out;
	if (store_admin_remove(ctx->st, name, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "admins: %s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s removed administrator '%s'; their sessions ended",
		     who, name);
	if (strcmp(name, ADMINS_FIRST) == 0)
		forget_initial_password(ctx);
	http_respond_json(req, 200, json_pack("{sb}", "ok", 1));
out:
	free(role);
}

void admins_put_role(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	const char *name = api_arg_string(args, "name"), *role = api_arg_string(args, "role");
	char *old = NULL, msg[256];

	if (!check_role(req, role))
		goto out;
	if (!valid_name(name) || store_admin_role(ctx->st, name, &old) != SERR_OK) {
		http_respond_error(req, 404, "admins: no administrator '%s'", name);
		goto out;
	}
	if (strcmp(old, role) != 0 && !keeps_an_admin(ctx, req, name, old))
		goto out;
	if (store_admin_set_role(ctx->st, name, role, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "admins: %s", msg);
		goto out;
	}
	if (strcmp(old, role) != 0)
		store_eventf(ctx->st, "system", 0, "%s made administrator '%s' %s (was %s)", who,
			     name, role, old);
	http_respond_json(req, 200, json_pack("{ss ss}", "name", name, "role", role));
out:
	free(old);
}
