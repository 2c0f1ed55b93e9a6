/* posture.c -- the posture report for network access control (see
 * posture.h). */
#include "server/posture.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/http.h"
#include "common/util.h"
#include "server/api.h"
#include "server/api_clients.h"
#include "server/licenses.h"
#include "server/store.h"

/* A posture token is good for this many days at most (default: a year). */
#define TOKEN_MAX_DAYS 3650
#define TOKEN_DAYS 365
#define ID_HEX 16   /* as store_tokens_list() names a token */

/* What one evaluation needs, read once: the server's pattern versions and
 * the time. */
struct eval {
	struct api_ctx *ctx;
	json_t *versions;   /* store_package_versions() */
	int64_t now;
};

int64_t posture_outdated_since(const json_t *versions, const char *comp, int64_t have)
{
	const json_t *v;
	int64_t since = 0, created;
	size_t i;

	json_array_foreach(json_object_get(versions, comp), i, v) {
		created = json_integer_value(json_object_get(v, "created"));
		if (json_integer_value(json_object_get(v, "version")) > have &&
		    (!since || created < since))
			since = created;
	}
	return since;
}

const char *posture_pattern(const char *method)
{
	return method && strcmp(method, "smart") == 0 ? "smart-agent-pattern" : "virus-pattern";
}

static const char *text(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void fail(json_t *reasons, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends {"check", "message"} to reasons. */
static void fail(json_t *reasons, const char *check, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(reasons, json_pack("{ss ss}", "check", check, "message", msg));
}

static void day_text(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

/* The component check: the pattern of the client's scan method. */
static void check_component(const struct eval *e, const json_t *status, const char *method,
			    int64_t hours, json_t *reasons)
{
	const char *comp = posture_pattern(method);
	json_t *have_v = json_object_get(json_object_get(status, "components"), comp);
	int64_t have = json_integer_value(have_v), since;

	if (!json_is_integer(have_v) || have <= 0) {
		fail(reasons, "component", "has no %s (scan method %s)", comp,
		     method ? method : "conventional");
		return;
	}
	since = posture_outdated_since(e->versions, comp, have);
	if (since && e->now - since > hours * 3600)
		fail(reasons, "component", "%s version %lld is out of date: a newer one came %lld "
		     "hours ago (the policy allows %lld)", comp, (long long)have,
		     (long long)((e->now - since) / 3600), (long long)hours);
}

/* The threats check: none left unresolved, as the agent reports them
 * (one that does not is not compliant: nothing says it left none). */
static void check_threats(const json_t *status, json_t *reasons)
{
	const json_t *threats = json_object_get(status, "unresolved");
	const json_t *list = json_object_get(threats, "newest");
	const json_t *newest = json_array_get(list, json_array_size(list) - 1);
	int64_t count = json_integer_value(json_object_get(threats, "count"));

	if (!json_is_object(threats))
		fail(reasons, "threats", "its agent does not report the threats it left (agent "
		     "%s)", text(status, "agent_version"));
	else if (count > 0)
		fail(reasons, "threats", "%lld detection%s left unresolved (the newest: %s in %s)",
		     (long long)count, count == 1 ? "" : "s", text(newest, "name"),
		     text(newest, "path"));
}

/* The license check: each service the client uses. */
static void check_license(const struct eval *e, const char *method, bool realtime,
			  json_t *reasons)
{
	char why[200];

	if (!e->ctx->licenses)
		return;
	if (!licenses_valid(e->ctx->licenses, LICENSE_ANTIVIRUS, why, sizeof(why)))
		fail(reasons, "license", "%s", why);
	if (method && strcmp(method, "smart") == 0 &&
	    !licenses_valid(e->ctx->licenses, LICENSE_SMART_SCAN, why, sizeof(why)))
		fail(reasons, "license", "%s", why);
	if (realtime && !licenses_valid(e->ctx->licenses, LICENSE_REALTIME, why, sizeof(why)))
		fail(reasons, "license", "%s", why);
}

/* The posture of client c (of store_clients_each_settings()): a new
 * object {id, uuid, hostname, domain, state, last_seen, scan_method,
 * compliant, reasons}. */
static json_t *evaluate(const struct eval *e, json_t *c)
{
	const json_t *status = json_object_get(c, "status"), *eff = json_object_get(c, "settings");
	const json_t *rt = json_object_get(status, "realtime"), *full;
	json_t *reasons = json_array();
	const char *method = json_string_value(json_object_get(status, "scan_method"));
	int64_t hours = json_integer_value(json_object_get(eff, "posture.component_max_age_hours"));
	int64_t days = json_integer_value(json_object_get(eff, "posture.full_scan_max_age_days"));
	int64_t finished;
	char when[32];

	if (!method)
		method = json_string_value(json_object_get(eff, "scan_method"));
	/* What cannot be read is not compliant: the policy, a report. */
	if (!json_is_object(eff))
		fail(reasons, "settings", "its settings cannot be read: the policy is unknown");
	if (!json_is_object(status)) {
		fail(reasons, "report", "has not reported its status yet");
	} else {
		if (hours > 0)
			check_component(e, status, method, hours, reasons);
		if (json_is_true(json_object_get(eff, "posture.realtime_required")) &&
		    strcmp(text(rt, "state"), "on") != 0)
			fail(reasons, "realtime", "real-time protection is %s%s%s",
			     json_is_object(rt) ? text(rt, "state") : "not reported",
			     *text(rt, "reason") ? ": " : "", text(rt, "reason"));
		full = json_object_get(status, "last_full_scan");
		finished = json_integer_value(json_object_get(full, "finished"));
		day_text(when, finished);
		if (days > 0 && e->now - finished > days * 86400)
			fail(reasons, "full_scan", "no full scan completed in the last %lld days "
			     "(the last: %s)", (long long)days, finished ? when : "never");
		if (json_is_true(json_object_get(eff, "posture.threats_resolved")))
			check_threats(status, reasons);
	}
	if (json_is_true(json_object_get(eff, "posture.license_required")))
		check_license(e, method, json_is_true(json_object_get(eff, "realtime.enabled")),
			      reasons);
	return json_pack("{sO sO sO sO ss sO ss sb so}", "id", json_object_get(c, "id"),
			 "uuid", json_object_get(c, "uuid"), "hostname",
			 json_object_get(c, "hostname"), "domain", json_object_get(c, "domain"),
			 "state", api_clients_state(e->ctx, c, e->now), "last_seen",
			 json_object_get(c, "last_seen"), "scan_method",
			 method ? method : "conventional", "compliant",
			 json_array_size(reasons) == 0, "reasons", reasons);
}

/* Reads what every evaluation needs; false when the database does not
 * answer. */
static bool eval_begin(struct eval *e, struct api_ctx *ctx)
{
	*e = (struct eval){ .ctx = ctx, .now = (int64_t)time(NULL) };
	return store_package_versions(ctx->st, &e->versions) == SERR_OK;
}

/* The listing: which clients, and what is answered. */
struct listing {
	struct eval e;
	int only;           /* 0: all; 1: compliant; -1: non-compliant */
	json_t *clients;
	int64_t compliant, noncompliant;
};

static int list_client(json_t *c, void *arg)
{
	struct listing *l = arg;
	json_t *p;
	bool ok;

	if (strcmp(api_clients_state(l->e.ctx, c, l->e.now), "moved") == 0)
		return 0;
	p = evaluate(&l->e, c);
	if (!p)
		return 1;
	ok = json_is_true(json_object_get(p, "compliant"));
	*(ok ? &l->compliant : &l->noncompliant) += 1;
	if (l->only == 0 || (l->only > 0) == ok)
		json_array_append(l->clients, p);
	json_decref(p);
	return 0;
}

void posture_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args)
{
	const char *scope = api_arg_string(args, "scope"), *only = api_arg_string(args, "only");
	struct listing l = { .clients = json_array() };
	int64_t node = 1;
	char msg[256];
	enum serr err;

	(void)who;
	if (only && strcmp(only, "compliant") != 0 && strcmp(only, "noncompliant") != 0) {
		http_respond_error(req, 400, "only: expected compliant or noncompliant, not "
				   "'%.64s'", only);
		goto out;
	}
	l.only = !only ? 0 : only[0] == 'c' ? 1 : -1;
	err = api_scope(ctx, scope ? scope : "root", &node, msg, sizeof(msg));
	if (err != SERR_OK) {
		api_store_error(req, err, msg);
		goto out;
	}
	if (!l.clients || !eval_begin(&l.e, ctx) ||
	    store_clients_each_settings(ctx->st, node, list_client, &l) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the clients failed");
		goto out;
	}
	http_respond_json(req, 200, json_pack("{sI sO s{sI sI}}", "checked", (json_int_t)l.e.now,
					      "clients", l.clients, "summary", "compliant",
					      (json_int_t)l.compliant, "noncompliant",
					      (json_int_t)l.noncompliant));
out:
	json_decref(l.clients);
	json_decref(l.e.versions);
}

/* ---- one host, for a policy server --------------------------------- */

/* The index of the hosts is built again when it is this old, and on a
 * miss when it is older than MISS_MS: a new host is found within a
 * second, and questions for unknown hosts, however many, read the clients
 * once a second at most. */
#define INDEX_MS 5000
#define MISS_MS 1000

struct posture {
	struct api_ctx *ctx;
	/* "n:NAME" (lower case, as enrolled and as the host calls itself),
	 * "s:LABEL" (a name's first label), "a:ADDRESS" (16 bytes in hex, IPv4
	 * mapped), "m:MAC", "u:UUID" -> [client ids] */
	json_t *index;
	int64_t built_ms;
};

struct posture *posture_new(struct api_ctx *ctx)
{
	struct posture *p = calloc(1, sizeof(*p));

	if (p)
		p->ctx = ctx;
	return p;
}

void posture_free(struct posture *p)
{
	if (!p)
		return;
	json_decref(p->index);
	free(p);
}

/* addr as 16 bytes (IPv4 as ::ffff:a.b.c.d); false when it is none. */
static bool address_of(const char *text, unsigned char out[16])
{
	unsigned char v4[4];

	if (!text)
		return false;
	if (inet_pton(AF_INET6, text, out) == 1)
		return true;
	if (inet_pton(AF_INET, text, v4) != 1)
		return false;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, v4, 4);
	return true;
}

/* Appends v to list unless it is there. */
static void append_once(json_t *list, json_t *v)
{
	json_t *w;
	size_t i;

	json_array_foreach(list, i, w)
		if (json_equal(v, w))
			return;
	json_array_append(list, v);
}

/* Adds id under kind:text (text lower-cased, at most 255 bytes) once. */
static void index_add(json_t *index, char kind, const char *text, json_t *id)
{
	char key[260];
	json_t *ids;
	size_t i, n;

	n = strlen(text);
	if (n == 0 || n > 255)
		return;
	key[0] = kind;
	key[1] = ':';
	for (i = 0; i <= n; i++)
		key[2 + i] = (char)tolower((unsigned char)text[i]);
	ids = json_object_get(index, key);
	if (!ids) {
		ids = json_array();
		if (!ids || json_object_set_new(index, key, ids) != 0)
			return;
	}
	append_once(ids, id);
}

/* Adds a host name and, when it has a domain, its first label. */
static void index_name(json_t *index, const char *name, json_t *id)
{
	char label[256];
	size_t n = strcspn(name, ".");

	index_add(index, 'n', name, id);
	if (name[n] == '.' && n > 0 && n < sizeof(label)) {
		memcpy(label, name, n);
		label[n] = '\0';
		index_add(index, 's', label, id);
	}
}

struct indexing {
	struct api_ctx *ctx;
	json_t *index;
	int64_t now;
};

static int index_client(json_t *c, void *arg)
{
	struct indexing *x = arg;
	const json_t *status = json_object_get(c, "status"), *v;
	json_t *id = json_object_get(c, "id");
	static const char *const lists[] = { "ipv4", "ipv6" };
	unsigned char a[16];
	char hex[33];
	size_t i, k;

	if (strcmp(api_clients_state(x->ctx, c, x->now), "moved") == 0)
		return 0;
	index_name(x->index, text(c, "hostname"), id);
	index_name(x->index, text(status, "hostname"), id);
	index_add(x->index, 'u', text(c, "uuid"), id);
	for (k = 0; k < 2; k++) {
		json_array_foreach(json_object_get(status, lists[k]), i, v) {
			if (!address_of(json_string_value(v), a))
				continue;
			index_add(x->index, 'a', sodium_bin2hex(hex, sizeof(hex), a, 16), id);
		}
	}
	json_array_foreach(json_object_get(status, "macs"), i, v)
		if (json_is_string(v))
			index_add(x->index, 'm', json_string_value(v), id);
	return 0;
}

/* Builds the index again; false when the clients cannot be read (the old
 * one stays). */
static bool index_build(struct posture *p)
{
	struct indexing x = { .ctx = p->ctx, .index = json_object(), .now = (int64_t)time(NULL) };

	if (!x.index || store_clients_each(p->ctx->st, 0, index_client, &x) != SERR_OK) {
		json_decref(x.index);
		return false;
	}
	json_decref(p->index);
	p->index = x.index;
	p->built_ms = util_clock_ms();
	return true;
}

/* The ids under key in index (a new array; empty when none). */
static json_t *index_find(const json_t *index, const char *key)
{
	json_t *ids = json_array(), *more, *v;
	char other[260];
	size_t i;

	json_array_extend(ids, json_object_get(index, key));
	/* A name asked for without a domain: hosts whose first label it is. */
	if (key[0] == 'n' && !strchr(key, '.')) {
		snprintf(other, sizeof(other), "s%s", key + 1);
		more = json_object_get(index, other);
		json_array_foreach(more, i, v)
			append_once(ids, v);
	}
	return ids;
}

/* The clients that are the host key names (see index_find()): a new
 * array, or NULL when the clients cannot be read. With stale (what the
 * index said was found out of date), the index is built again as on a
 * miss. */
static json_t *hosts(struct posture *p, const char *key, bool stale)
{
	int64_t age = util_clock_ms() - p->built_ms;
	json_t *ids;

	if ((!p->index || age >= INDEX_MS) && !index_build(p))
		return NULL;
	ids = index_find(p->index, key);
	if (ids && (stale || json_array_size(ids) == 0) &&
	    util_clock_ms() - p->built_ms >= MISS_MS && index_build(p)) {
		json_decref(ids);
		ids = index_find(p->index, key);
	}
	return ids;
}

/* A MAC address as policy servers write it (aa:bb:cc:dd:ee:ff, with '-'
 * or no separators, any case) in out as aa:bb:cc:dd:ee:ff; false when
 * it is none. */
static bool mac_of(const char *text, char out[18])
{
	char hex[13];
	size_t n = 0;

	for (; *text && n < 12; text++) {
		if (isxdigit((unsigned char)*text))
			hex[n++] = (char)tolower((unsigned char)*text);
		else if (*text != ':' && *text != '-' && *text != '.')
			return false;
	}
	if (n != 12 || *text)
		return false;
	snprintf(out, 18, "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s", hex, hex + 2, hex + 4, hex + 6,
		 hex + 8, hex + 10);
	return true;
}

/* The index key of the host args name (exactly one of name, address, mac,
 * uuid) in key; false after answering 400. */
static bool host_key(struct http_req *req, const struct api_args *args, char key[260])
{
	static const char *const names[] = { "name", "address", "mac", "uuid" };
	static const char *const what[] = { "host name", "IPv4 or IPv6 address",
					    "MAC address", "uuid" };
	const char *given = NULL, *v;
	unsigned char a[16];
	char mac[18], hex[33];
	size_t i, n = 0, by = 0;
	bool ok;

	for (i = 0; i < 4; i++) {
		if ((v = api_arg_string(args, names[i])) != NULL) {
			by = i;
			given = v;
			n++;
		}
	}
	if (n != 1) {
		http_respond_error(req, 400, "expected one of name, address, mac or uuid");
		return false;
	}
	ok = by == 0 ? given[0] && strlen(given) <= 255 :
	     by == 1 ? address_of(given, a) : by == 2 ? mac_of(given, mac) : strlen(given) == 36;
	if (!ok) {
		http_respond_error(req, 400, "%s: not a valid %s: '%.64s'", names[by], what[by],
				   given);
		return false;
	}
	snprintf(key, 260, "%c:", "namu"[by]);
	snprintf(key + 2, 258, "%s", by == 1 ? sodium_bin2hex(hex, sizeof(hex), a, 16) :
		 by == 2 ? mac : given);
	for (i = 2; key[i]; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	return true;
}

/* What a host's question takes of its client: its posture, when the
 * client still is the host asked for (its newest report), which the
 * index, up to 5 s old, may no longer know. */
struct one_host {
	struct eval e;
	const char *key;
	json_t *posture;
};

static int take_one(json_t *c, void *arg)
{
	struct one_host *o = arg;
	struct indexing x = { .ctx = o->e.ctx, .index = json_object(), .now = o->e.now };
	json_t *ids;

	if (x.index)
		index_client(c, &x);
	ids = index_find(x.index, o->key);
	if (json_array_size(ids) == 1)
		o->posture = evaluate(&o->e, c);
	json_decref(ids);
	json_decref(x.index);
	return 1;
}

void posture_get_host(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct one_host one = { 0 };
	json_t *ids = NULL;
	int64_t reject = 0;
	char key[260];
	int tries;

	(void)who;
	api_arg_int(args, "reject", &reject);
	if (reject != 0 && reject != 1) {
		http_respond_error(req, 400, "reject: expected 0 or 1");
		return;
	}
	if (!host_key(req, args, key))
		return;
	one.key = key;
	if (!eval_begin(&one.e, ctx)) {
		http_respond_error(req, 503, "database: reading the pattern versions failed");
		goto out;
	}
	/* Once more with the index built again when the client it named is no
	 * longer that host (another took its address, say). */
	for (tries = 0; tries < 2 && !one.posture; tries++) {
		json_decref(ids);
		ids = hosts(ctx->posture, key, tries > 0);
		if (!ids) {
			http_respond_error(req, 503, "database: reading the clients failed");
			goto out;
		}
		if (json_array_size(ids) > 1) {
			/* Two hosts by one name or address: which one asks is
			 * not known, and one's posture must not let the other
			 * in. */
			http_respond_json(req, 409, json_pack("{ss sO}", "error", "several clients "
							      "are that host: ask by uuid or MAC "
							      "address", "clients", ids));
			goto out;
		}
		if (json_array_size(ids) == 1 &&
		    store_clients_each_settings(ctx->st, json_integer_value(json_array_get(ids, 0)),
						take_one, &one) != SERR_OK) {
			http_respond_error(req, 503, "database: reading the client failed");
			goto out;
		}
	}
	if (!one.posture) {
		http_respond_error(req, 404, "no client is that host");
		goto out;
	}
	http_respond_json(req, reject && !json_is_true(json_object_get(one.posture, "compliant")) ?
			  403 : 200, one.posture);
	one.posture = NULL;
out:
	json_decref(one.posture);
	json_decref(one.e.versions);
	json_decref(ids);
}

void posture_post_token(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *name = api_arg_string(args, "name");
	int64_t days = TOKEN_DAYS, expires;
	unsigned char hash[32];
	char token[65], id[ID_HEX + 1], msg[256];
	size_t i;

	api_arg_int(args, "days", &days);
	if (days < 1 || days > TOKEN_MAX_DAYS) {
		http_respond_error(req, 400, "days: expected 1 to %d, got %lld", TOKEN_MAX_DAYS,
				   (long long)days);
		return;
	}
	for (i = 0; name && name[i] && (isalnum((unsigned char)name[i]) ||
					strchr("._-@", name[i])); i++)
		;
	if (!name || i == 0 || name[i] || i > 64) {
		http_respond_error(req, 400, "name: expected 1 to 64 letters, digits, '.', '_', "
				   "'-' or '@' (what the policy server is)");
		return;
	}
	expires = (int64_t)time(NULL) + days * 86400;
	api_new_token(token, hash);
	sodium_bin2hex(id, sizeof(id), hash, ID_HEX / 2);
	if (store_token_put(ctx->st, hash, STORE_TOKEN_POSTURE, name, expires, 0, msg,
			    sizeof(msg)) != SERR_OK) {
		sodium_memzero(token, sizeof(token));
		http_respond_error(req, 500, "posture token: %s", msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s created posture token %s for %s, valid for %lld "
		     "days", who, id, name, (long long)days);
	http_respond_json(req, 201, json_pack("{ss ss ss sI}", "token", token, "id", id, "name",
					      name, "expires", (json_int_t)expires));
	sodium_memzero(token, sizeof(token));
}

void posture_get_tokens(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *list = NULL, *out = json_array(), *t;
	size_t i;

	(void)who;
	(void)args;
	if (!out || store_tokens_list(ctx->st, STORE_TOKEN_POSTURE, (int64_t)time(NULL), &list) !=
	    SERR_OK) {
		json_decref(out);
		http_respond_error(req, 500, "database: reading the posture tokens failed");
		return;
	}
	json_array_foreach(list, i, t)
		json_array_append_new(out, json_pack("{sO sO sO}", "id", json_object_get(t, "id"),
						     "name", json_object_get(t, "subject"),
						     "expires", json_object_get(t, "expires")));
	json_decref(list);
	http_respond_json(req, 200, json_pack("{so}", "tokens", out));
}

void posture_post_revoke(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	const char *id = api_arg_string(args, "id");
	int64_t n = 0;

	if (strlen(id) != ID_HEX || strspn(id, "0123456789abcdef") != ID_HEX) {
		http_respond_error(req, 400, "id: expected %d lowercase hex digits", ID_HEX);
		return;
	}
	if (store_token_revoke(ctx->st, STORE_TOKEN_POSTURE, id, &n) != SERR_OK) {
		http_respond_error(req, 500, "database: revoking the token failed");
		return;
	}
	if (n == 0) {
		http_respond_error(req, 404, "no posture token %s", id);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s revoked posture token %s", who, id);
	http_respond_json(req, 200, json_pack("{ss}", "revoked", id));
}
