/* licenses.c -- the licenses a server holds and what they allow (see
 * licenses.h). */
#include "server/licenses.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/log.h"
#include "common/util.h"
#include "server/api_clients.h"
#include "server/doorbell.h"

#define DAY 86400
/* License files a server keeps at most. */
#define MAX_LICENSES 256
/* The evaluation license made at the first start. */
#define EVALUATION_DAYS 30
#define EVALUATION_SEATS 1000
/* How long what was loaded serves before the database is read again
 * (another wardd on it may have added or removed one). */
#define RELOAD_MS 10000
#define USE_MS 5000
/* Reminders before a service's coverage ends, in days, largest first. */
static const int64_t remind_days[] = { 60, 30, 7 };

#define KV_PREFIX "license:"
#define KV_EVALUATION "license.evaluation"
#define KV_TOLD "license.told:"

/* A license file kept in the database. */
struct held {
	struct license l;
	int64_t added;
	char by[128];
	bool trusted;
	char error[256];  /* why it is not trusted (or unreadable) */
};

struct licenses {
	struct api_ctx *ctx;
	struct held *list;
	size_t n;
	bool have_evaluation;
	char evaluation_id[LICENSE_ID_MAX + 1];
	unsigned char evaluation_key[LICENSE_PK_BYTES];
	int64_t loaded_ms;  /* util_clock_ms() of the last load; 0: load again */
	int64_t use[LICENSE_NSERVICES];  /* clients using each service, counted at use_ms */
	int64_t use_ms;
};

/* What a service's licenses give it at a moment. */
enum cover_state { COVER_NONE, COVER_PENDING, COVER_ACTIVE, COVER_GRACE, COVER_ENDED };

struct cover {
	enum cover_state state;
	int64_t seats;          /* of the active licenses (in grace: of those in grace) */
	int64_t until;          /* active: the end of coverage without a gap; else the
				 * last expiry */
	int64_t updates_until;  /* the end of the grace period that applies */
	int64_t starts;         /* pending: when the first starts */
	bool evaluation;        /* every license counted is an evaluation */
};

static const char *const cover_names[] = { "unlicensed", "pending", "active", "grace", "ended" };

/* ---- loading ------------------------------------------------------ */

static bool same_key(const unsigned char *a, const unsigned char *b)
{
	return sodium_memcmp(a, b, LICENSE_PK_BYTES) == 0;
}

/* Whether l's issuer is trusted: a configured issuer, or the server's own
 * evaluation key for the evaluation license it made. */
static bool trusted(const struct licenses *ls, const struct license *l, char *why, size_t len)
{
	char hex[2 * LICENSE_PK_BYTES + 1];
	size_t i;

	for (i = 0; i < ls->ctx->cfg->nissuers; i++)
		if (same_key(ls->ctx->cfg->issuers[i], l->key))
			return true;
	if (ls->have_evaluation && same_key(ls->evaluation_key, l->key)) {
		if (l->evaluation && strcmp(l->id, ls->evaluation_id) == 0)
			return true;
		snprintf(why, len, "signed by this server's evaluation key, which signs only its "
			 "evaluation license %s", ls->evaluation_id);
		return false;
	}
	sodium_bin2hex(hex, sizeof(hex), l->key, LICENSE_PK_BYTES);
	snprintf(why, len, "signed by the issuer key %s, which is not among license.issuers", hex);
	return false;
}

static void load_evaluation(struct licenses *ls)
{
	char *text = NULL;
	const char *key = NULL, *id = NULL;
	json_t *v = NULL;
	size_t got = 0;

	ls->have_evaluation = false;
	if (store_kv_get(ls->ctx->st, KV_EVALUATION, &text) != SERR_OK)
		return;
	v = json_loads(text, 0, NULL);
	if (json_unpack(v, "{s:s, s:s}", "key", &key, "id", &id) == 0 &&
	    strlen(id) <= LICENSE_ID_MAX && strlen(key) == 2 * LICENSE_PK_BYTES &&
	    sodium_hex2bin(ls->evaluation_key, LICENSE_PK_BYTES, key, strlen(key), NULL, &got,
			   NULL) == 0 && got == LICENSE_PK_BYTES) {
		snprintf(ls->evaluation_id, sizeof(ls->evaluation_id), "%s", id);
		ls->have_evaluation = true;
	} else {
		log_msg(LOG_LVL_ERROR, "licenses: %s in the database is malformed: the evaluation "
			"license is not trusted", KV_EVALUATION);
	}
	json_decref(v);
	free(text);
}

/* Reads the license files from the database again. */
static enum serr load(struct licenses *ls)
{
	json_t *rows = NULL, *row, *v;
	struct held *list = NULL, *h;
	const char *file, *by;
	json_int_t added;
	size_t i, n = 0;
	enum serr err;

	load_evaluation(ls);
	err = store_kv_list(ls->ctx->st, KV_PREFIX, &rows);
	if (err != SERR_OK)
		return err;
	list = calloc(json_array_size(rows) ? json_array_size(rows) : 1, sizeof(*list));
	if (!list) {
		json_decref(rows);
		return SERR_NOMEM;
	}
	json_array_foreach(rows, i, row) {
		h = &list[n++];
		v = json_loads(json_string_value(json_object_get(row, "value")), 0, NULL);
		if (json_unpack(v, "{s:s, s:I, s:s}", "file", &file, "added", &added, "by",
				&by) != 0)
			snprintf(h->error, sizeof(h->error), "its record in the database is "
				 "malformed");
		else if (license_open(file, strlen(file), &h->l, h->error,
				      sizeof(h->error)) == ERR_OK)
			h->trusted = trusted(ls, &h->l, h->error, sizeof(h->error));
		if (!h->trusted && !h->l.customer[0]) /* unreadable: named by its key */
			snprintf(h->l.id, sizeof(h->l.id), "%.64s", json_string_value(
					 json_object_get(row, "key")) + strlen(KV_PREFIX));
		if (h->l.customer[0]) {
			h->added = added;
			snprintf(h->by, sizeof(h->by), "%s", by);
		}
		json_decref(v);
	}
	json_decref(rows);
	free(ls->list);
	ls->list = list;
	ls->n = n;
	ls->loaded_ms = util_clock_ms();
	return SERR_OK;
}

/* What was loaded, read again when it is older than RELOAD_MS; on a
 * database failure what was loaded before serves. */
static void fresh(struct licenses *ls)
{
	enum serr err;

	/* What was read serves while the database is silent or cut off: a
	 * statement to it would hold the loop. */
	if (ls->loaded_ms && (util_clock_ms() - ls->loaded_ms < RELOAD_MS ||
			      !doorbell_answering(ls->ctx->bell)))
		return;
	err = load(ls);
	if (err != SERR_OK) {
		/* Tried again after RELOAD_MS, not at every question meanwhile. */
		ls->loaded_ms = util_clock_ms();
		log_msg(LOG_LVL_ERROR, "licenses: reading them from the database failed (%d): the "
			"ones read before apply", (int)err);
	}
}

/* ---- what they give ----------------------------------------------- */

static void cover(const struct licenses *ls, enum license_service s, int64_t now,
		  struct cover *c)
{
	const struct license *l;
	enum license_phase p;
	bool grew, any[LICENSE_ENDED + 1] = { false };
	bool eval_only[LICENSE_ENDED + 1] = { true, true, true, true };
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < ls->n; i++) {
		l = &ls->list[i].l;
		if (!ls->list[i].trusted || !(l->services & (1u << s)))
			continue;
		p = license_phase(l, now);
		any[p] = true;
		eval_only[p] = eval_only[p] && l->evaluation;
		if (p == LICENSE_ACTIVE && l->expires > c->until)
			c->until = l->expires;
		if (p == LICENSE_PENDING && (!c->starts || l->start < c->starts))
			c->starts = l->start;
	}
	if (any[LICENSE_ACTIVE]) {
		c->state = COVER_ACTIVE;
		c->evaluation = eval_only[LICENSE_ACTIVE];
		/* Renewals that start before the coverage ends extend it. */
		do {
			grew = false;
			for (i = 0; i < ls->n; i++) {
				l = &ls->list[i].l;
				if (ls->list[i].trusted && (l->services & (1u << s)) &&
				    l->start <= c->until && l->expires > c->until) {
					c->until = l->expires;
					grew = true;
				}
			}
		} while (grew);
	} else if (any[LICENSE_GRACE]) {
		c->state = COVER_GRACE;
		c->evaluation = eval_only[LICENSE_GRACE];
	} else if (any[LICENSE_PENDING]) {
		c->state = COVER_PENDING;
		c->evaluation = eval_only[LICENSE_PENDING];
	} else if (any[LICENSE_ENDED]) {
		c->state = COVER_ENDED;
		c->evaluation = eval_only[LICENSE_ENDED];
	}
	for (i = 0; i < ls->n; i++) {
		l = &ls->list[i].l;
		if (!ls->list[i].trusted || !(l->services & (1u << s)))
			continue;
		p = license_phase(l, now);
		if ((c->state == COVER_ACTIVE && p == LICENSE_ACTIVE) ||
		    (c->state == COVER_GRACE && p == LICENSE_GRACE))
			c->seats += l->seats;
		if (c->state != COVER_ACTIVE && p != LICENSE_PENDING && l->expires > c->until)
			c->until = l->expires;
		if (l->start <= (c->until > now ? c->until : now) &&
		    license_grace_end(l) > c->updates_until)
			c->updates_until = license_grace_end(l);
	}
}

static void day_text(char out[16], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* Days from now to t, a part counted whole. */
static int64_t days_left(int64_t now, int64_t t)
{
	return t <= now ? 0 : (t - now + DAY - 1) / DAY;
}

/* Says why service gives no updates, or no switch, into msg. */
static void why_not(const struct cover *c, enum license_service s, char *msg, size_t len)
{
	char until[16], stop[16];

	day_text(until, c->until);
	day_text(stop, c->updates_until);
	switch (c->state) {
	case COVER_NONE:
		snprintf(msg, len, "no license covers %s (ward license add FILE)",
			 license_service_name(s));
		break;
	case COVER_PENDING:
		day_text(until, c->starts);
		snprintf(msg, len, "the %s license starts on %s", license_service_name(s), until);
		break;
	case COVER_GRACE:
		snprintf(msg, len, "the %s license expired on %s (pattern updates go on until %s)",
			 license_service_name(s), until, stop);
		break;
	default:
		snprintf(msg, len, "the %s license expired on %s and its grace period ended on %s",
			 license_service_name(s), until, stop);
		break;
	}
}

bool licenses_valid(struct licenses *ls, enum license_service service, char *why,
		    size_t len)
{
	struct cover c;

	fresh(ls);
	cover(ls, service, (int64_t)time(NULL), &c);
	if (c.state == COVER_ACTIVE || c.state == COVER_GRACE)
		return true;
	why_not(&c, service, why, len);
	return false;
}

bool licenses_updates(struct licenses *ls, enum license_service service, char *msg,
		      size_t len)
{
	char why[200];

	if (licenses_valid(ls, service, why, sizeof(why)))
		return true;
	snprintf(msg, len, "%s: pattern updates for it stopped; protection goes on with the "
		 "patterns the agents have", why);
	return false;
}

enum serr licenses_switch(struct licenses *ls, enum license_service service, char *msg,
			  size_t len)
{
	struct cover c;
	char why[200];

	fresh(ls);
	cover(ls, service, (int64_t)time(NULL), &c);
	if (c.state == COVER_ACTIVE)
		return SERR_OK;
	why_not(&c, service, why, sizeof(why));
	snprintf(msg, len, "switching clients to %s needs an active %s license: %s",
		 service == LICENSE_SMART_SCAN ? "smart scan" : license_service_name(service),
		 license_service_name(service), why);
	return SERR_LICENSE;
}

int licenses_setting_service(const char *key, const json_t *value)
{
	if (strcmp(key, "scan_method") == 0 && json_is_string(value) &&
	    strcmp(json_string_value(value), "smart") == 0)
		return LICENSE_SMART_SCAN;
	if (strcmp(key, "realtime.enabled") == 0 && json_is_true(value))
		return LICENSE_REALTIME;
	return -1;
}

/* ---- seats -------------------------------------------------------- */

struct use {
	const struct api_ctx *ctx;
	int64_t now;
	int64_t n[LICENSE_NSERVICES];
};

void licenses_count(const struct api_ctx *ctx, const json_t *c, int64_t now,
		    int64_t n[LICENSE_NSERVICES])
{
	json_t *status = json_object_get(c, "status");
	const char *method = json_string_value(json_object_get(status, "scan_method"));
	const char *rt = json_string_value(json_object_get(json_object_get(status, "realtime"),
							   "state"));

	if (strcmp(api_clients_state(ctx, (json_t *)c, now), "moved") == 0)
		return;
	n[LICENSE_ANTIVIRUS]++;
	if (method && strcmp(method, "smart") == 0)
		n[LICENSE_SMART_SCAN]++;
	if (rt && (strcmp(rt, "on") == 0 || strcmp(rt, "degraded") == 0))
		n[LICENSE_REALTIME]++;
}

static int count_client(json_t *c, void *arg)
{
	struct use *u = arg;

	licenses_count(u->ctx, c, u->now, u->n);
	return 0;
}

/* The clients using each service, counted again when the last count is
 * USE_MS old: the console asks at every page, a fleet is large. */
static bool in_use(struct licenses *ls, int64_t now, int64_t n[LICENSE_NSERVICES])
{
	struct use u = { .ctx = ls->ctx, .now = now };

	if (!ls->use_ms || util_clock_ms() - ls->use_ms >= USE_MS) {
		if (store_clients_each(ls->ctx->st, 0, count_client, &u) != SERR_OK)
			return false;
		memcpy(ls->use, u.n, sizeof(u.n));
		ls->use_ms = util_clock_ms();
	}
	memcpy(n, ls->use, sizeof(ls->use));
	return true;
}

/* ---- reminders ---------------------------------------------------- */

/* What is to be told now of services whose coverage is at one stage with
 * the same dates (the evaluation's three services, say): told once, as
 * one sentence. */
struct stage {
	const char *name;    /* "60", "30", "7" days before the end, "expired", "stopped" */
	unsigned services;   /* 1 << enum license_service */
	struct cover c;
	char key[128];       /* services, stage and end: what is told once */
	char text[400];
};

/* The stage of a coverage now, or NULL when nothing is to be told. */
static const char *stage_name(const struct cover *c, int64_t now)
{
	int64_t left = days_left(now, c->until);
	size_t i;

	if (c->state == COVER_GRACE)
		return "expired";
	if (c->state == COVER_ENDED)
		return "stopped";
	if (c->state != COVER_ACTIVE)
		return NULL;
	for (i = sizeof(remind_days) / sizeof(remind_days[0]); i-- > 0;)
		if (left <= remind_days[i])
			return i == 0 ? "60" : i == 1 ? "30" : "7";
	return NULL;
}

/* "antivirus", "antivirus and realtime", "antivirus, smart-scan and
 * realtime" (sep ", ", last " and "), or joined by sep alone (last
 * NULL). */
static void service_list(unsigned services, const char *sep, const char *last, char *out,
			 size_t len)
{
	int s, n = 0, total = __builtin_popcount(services);
	size_t used = 0;

	out[0] = '\0';
	for (s = 0; s < LICENSE_NSERVICES; s++) {
		if (!(services & (1u << s)))
			continue;
		used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s",
					 n == 0 ? "" : (last && n == total - 1) ? last : sep,
					 license_service_name(s));
		n++;
	}
}

static void stage_text(struct stage *g, int64_t now)
{
	const char *eval = g->c.evaluation ? " (evaluation)" : "";
	bool many = __builtin_popcount(g->services) > 1;
	char names[64], until[16], stop[16];
	int64_t left = days_left(now, g->c.until);

	service_list(g->services, ", ", " and ", names, sizeof(names));
	day_text(until, g->c.until);
	day_text(stop, g->c.updates_until);
	if (g->c.state == COVER_ACTIVE)
		snprintf(g->text, sizeof(g->text), "the %s license%s%s expire%s on %s, in %lld "
			 "day%s", names, many ? "s" : "", eval, many ? "" : "s", until,
			 (long long)left, left == 1 ? "" : "s");
	else if (g->c.state == COVER_GRACE)
		snprintf(g->text, sizeof(g->text), "the %s license%s%s expired on %s: pattern "
			 "updates for %s stop on %s; protection goes on", names, many ? "s" : "",
			 eval, until, many ? "them" : "it", stop);
	else
		snprintf(g->text, sizeof(g->text), "the %s license%s%s expired on %s and %s grace "
			 "period ended on %s: pattern updates for %s stopped; protection goes on "
			 "with the patterns agents have", names, many ? "s" : "", eval, until,
			 many ? "their" : "its", stop, many ? "them" : "it");
	service_list(g->services, "+", NULL, names, sizeof(names));
	snprintf(g->key, sizeof(g->key), "%s:%s:%lld", names, g->name, (long long)g->c.until);
}

/* The stages to be told now into out (one per service at most): their
 * number. */
static size_t stages(struct licenses *ls, int64_t now, struct stage out[LICENSE_NSERVICES])
{
	const char *st;
	struct cover c;
	size_t n = 0, i;
	int s;

	fresh(ls);
	for (s = 0; s < LICENSE_NSERVICES; s++) {
		cover(ls, s, now, &c);
		st = stage_name(&c, now);
		if (!st)
			continue;
		for (i = 0; i < n; i++)
			if (out[i].name == st && out[i].c.state == c.state &&
			    out[i].c.until == c.until &&
			    out[i].c.updates_until == c.updates_until &&
			    out[i].c.evaluation == c.evaluation)
				break;
		if (i == n)
			out[n++] = (struct stage){ .name = st, .c = c };
		out[i].services |= 1u << s;
	}
	for (i = 0; i < n; i++)
		stage_text(&out[i], now);
	return n;
}

static json_t *services_json(unsigned services)
{
	json_t *list = json_array();
	int s;

	for (s = 0; list && s < LICENSE_NSERVICES; s++)
		if (services & (1u << s))
			json_array_append_new(list, json_string(license_service_name(s)));
	return list;
}

/* Logs each stage once (of every server on the database). */
static void tell(struct licenses *ls)
{
	struct stage g[LICENSE_NSERVICES];
	size_t i, n = stages(ls, (int64_t)time(NULL), g);
	char key[160];
	bool claimed;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), KV_TOLD "%s", g[i].key);
		if (store_kv_claim(ls->ctx->st, key, "1", NULL, NULL, &claimed, NULL, 0) ==
		    SERR_OK && claimed)
			store_eventf(ls->ctx->st, "system", 0, "license: %s", g[i].text);
	}
}

static void on_hour(void *arg)
{
	struct licenses *ls = arg;

	if (doorbell_answering(ls->ctx->bell))
		tell(ls);
}

/* Clients over the seats of service s, or using it unlicensed: the
 * sentence in text and true; false when neither. */
static bool over(const struct cover *c, enum license_service s, int64_t n, char *text,
		 size_t len)
{
	if (n == 0)
		return false;
	const char *many = n == 1 ? " uses" : "s use";

	if ((c->state == COVER_ACTIVE || c->state == COVER_GRACE) && n > c->seats)
		snprintf(text, len, "%lld client%s %s; the licenses cover %lld seat%s",
			 (long long)n, many, license_service_name(s), (long long)c->seats,
			 c->seats == 1 ? "" : "s");
	else if (c->state != COVER_ACTIVE && c->state != COVER_GRACE)
		snprintf(text, len, "%lld client%s %s, which no active license covers",
			 (long long)n, many, license_service_name(s));
	else
		return false;
	return true;
}

json_t *licenses_conditions(struct licenses *ls, int64_t now)
{
	json_t *set = json_object(), *detail;
	struct stage g[LICENSE_NSERVICES];
	int64_t n[LICENSE_NSERVICES];
	size_t i, count = stages(ls, now, g);
	char text[400], key[64];
	struct cover c;
	int s;

	for (i = 0; set && i < count; i++) {
		detail = json_pack("{so ss sI sI}", "services", services_json(g[i].services),
				   "state", cover_names[g[i].c.state], "expires",
				   (json_int_t)g[i].c.until, "updates_until",
				   (json_int_t)g[i].c.updates_until);
		json_object_set_new(set, g[i].key, json_pack("{ss so}", "subject", g[i].text,
							     "detail", detail));
	}
	if (!in_use(ls, now, n))
		return set;
	for (s = 0; set && s < LICENSE_NSERVICES; s++) {
		cover(ls, s, now, &c);
		if (!over(&c, s, n[s], text, sizeof(text)))
			continue;
		snprintf(key, sizeof(key), "%s:%s", license_service_name(s),
			 c.state == COVER_ACTIVE || c.state == COVER_GRACE ? "seats" :
			 "unlicensed");
		detail = json_pack("{so sI sI}", "services", services_json(1u << s), "in_use",
				   (json_int_t)n[s], "seats", (json_int_t)c.seats);
		json_object_set_new(set, key, json_pack("{ss so}", "subject", text, "detail",
							detail));
	}
	return set;
}

/* ---- the evaluation license --------------------------------------- */

/* A license file's record in the database: {file, added, by} as text. */
static char *record_text(const char *file, int64_t added, const char *by)
{
	json_t *r = json_pack("{ss sI ss}", "file", file, "added", (json_int_t)added, "by", by);
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;

	json_decref(r);
	return text;
}

/* Makes the evaluation license on a database that never had one: every
 * service for EVALUATION_DAYS, signed with a key made for it alone,
 * whose secret half is forgotten once it signed. */
static enum serr make_evaluation(struct licenses *ls, char *msg, size_t len)
{
	unsigned char pk[LICENSE_PK_BYTES], sk[LICENSE_SK_BYTES], rnd[8];
	char pkhex[2 * LICENSE_PK_BYTES + 1], rndhex[17], kv[LICENSE_ID_MAX + 16], day[16];
	char *file = NULL, *claim = NULL, *record = NULL;
	int64_t now = (int64_t)time(NULL);
	struct license l = { 0 };
	enum serr err = SERR_NOMEM;
	bool claimed = false;
	char *have = NULL;

	if (store_kv_get(ls->ctx->st, KV_EVALUATION, &have) == SERR_OK) {
		free(have);
		return SERR_OK;
	}
	crypto_sign_keypair(pk, sk);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(rndhex, sizeof(rndhex), rnd, sizeof(rnd));
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
	snprintf(l.id, sizeof(l.id), "evaluation-%s", rndhex);
	snprintf(l.customer, sizeof(l.customer), "Evaluation");
	l.services = (1u << LICENSE_NSERVICES) - 1;
	l.seats = EVALUATION_SEATS;
	l.issued = l.start = now;
	l.expires = now + EVALUATION_DAYS * DAY;
	l.evaluation = true;
	file = license_seal(&l, pk, sk);
	sodium_memzero(sk, sizeof(sk));
	claim = util_printf("{\"id\": \"%s\", \"key\": \"%s\"}", l.id, pkhex);
	record = file ? record_text(file, now, "wardd (first start)") : NULL;
	snprintf(kv, sizeof(kv), KV_PREFIX "%s", l.id);
	if (claim && record)
		err = store_kv_claim(ls->ctx->st, KV_EVALUATION, claim, kv, record, &claimed, msg,
				     len);
	if (err == SERR_OK && claimed) {
		day_text(day, l.expires);
		store_eventf(ls->ctx->st, "system", 0, "license: an evaluation license for every "
			     "service (%s), %d seats, until %s", l.id, EVALUATION_SEATS, day);
	}
	free(file);
	free(claim);
	free(record);
	return err;
}

struct licenses *licenses_new(struct api_ctx *ctx, struct http_server *http, char *msg,
			      size_t len)
{
	struct licenses *ls = calloc(1, sizeof(*ls));
	enum serr err;

	if (!ls) {
		snprintf(msg, len, "out of memory");
		return NULL;
	}
	ls->ctx = ctx;
	err = make_evaluation(ls, msg, len);
	if (err == SERR_OK && (err = load(ls)) != SERR_OK)
		snprintf(msg, len, "database: the licenses are unreadable");
	if (err == SERR_OK && http_every(http, 3600u * 1000, on_hour, ls) != 0) {
		snprintf(msg, len, "out of memory");
		err = SERR_NOMEM;
	}
	if (err != SERR_OK) {
		licenses_free(ls);
		return NULL;
	}
	tell(ls);
	return ls;
}

void licenses_free(struct licenses *ls)
{
	if (!ls)
		return;
	free(ls->list);
	free(ls);
}

/* ---- the operations ----------------------------------------------- */

static json_t *license_json(const struct held *h, int64_t now)
{
	char hex[2 * LICENSE_PK_BYTES + 1];
	json_t *services = json_array(), *o;
	int s;

	if (!h->l.customer[0])
		return json_pack("{ss ss sb}", "id", h->l.id, "error", h->error, "trusted", 0);
	for (s = 0; services && s < LICENSE_NSERVICES; s++)
		if (h->l.services & (1u << s))
			json_array_append_new(services, json_string(license_service_name(s)));
	sodium_bin2hex(hex, sizeof(hex), h->l.key, LICENSE_PK_BYTES);
	o = json_pack("{ss ss so sI sI sI sI sI sI sb ss ss sI ss sb}", "id", h->l.id, "customer",
		      h->l.customer, "services", services, "seats", (json_int_t)h->l.seats,
		      "issued", (json_int_t)h->l.issued, "start", (json_int_t)h->l.start,
		      "expires", (json_int_t)h->l.expires, "grace_days",
		      (json_int_t)h->l.grace_days, "updates_until",
		      (json_int_t)license_grace_end(&h->l), "evaluation", h->l.evaluation,
		      "phase", license_phase_name(license_phase(&h->l, now)), "issuer", hex,
		      "added", (json_int_t)h->added, "added_by", h->by, "trusted", h->trusted);
	if (o && !h->trusted)
		json_object_set_new(o, "error", json_string(h->error));
	return o;
}

/* What the console shows on every page: a new {service, kind, text}. */
static json_t *notice(unsigned services, const char *kind, const char *text)
{
	return json_pack("{so ss ss}", "services", services_json(services), "kind", kind, "text",
			 text);
}

json_t *licenses_services(struct licenses *ls, int64_t now)
{
	int64_t n[LICENSE_NSERVICES];

	return in_use(ls, now, n) ? licenses_services_counted(ls, now, n) : NULL;
}

json_t *licenses_services_counted(struct licenses *ls, int64_t now,
				  const int64_t n[LICENSE_NSERVICES])
{
	json_t *services = json_array(), *o;
	struct cover c;
	int s;

	fresh(ls);
	if (!services)
		return NULL;
	for (s = 0; s < LICENSE_NSERVICES; s++) {
		cover(ls, s, now, &c);
		o = json_pack("{ss ss sI sI sb sb}", "service", license_service_name(s), "state",
			      cover_names[c.state], "seats", (json_int_t)c.seats, "in_use",
			      (json_int_t)n[s], "evaluation", c.evaluation, "updates",
			      c.state == COVER_ACTIVE || c.state == COVER_GRACE);
		if (o && c.until)
			json_object_set_new(o, "expires", json_integer(c.until));
		if (o && c.updates_until)
			json_object_set_new(o, "updates_until", json_integer(c.updates_until));
		if (o && c.state == COVER_PENDING)
			json_object_set_new(o, "starts", json_integer(c.starts));
		if (o && c.state == COVER_ACTIVE)
			json_object_set_new(o, "days_left", json_integer(days_left(now, c.until)));
		json_array_append_new(services, o);
	}
	return services;
}

void licenses_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		  const struct api_args *args)
{
	struct licenses *ls = ctx->licenses;
	int64_t now = (int64_t)time(NULL), n[LICENSE_NSERVICES];
	json_t *services = licenses_services(ls, now), *list = json_array();
	json_t *notices = json_array();
	struct stage g[LICENSE_NSERVICES];
	char text[400];
	struct cover c;
	size_t i, count;
	int s;

	(void)who;
	(void)args;
	if (!services || !in_use(ls, now, n)) {
		json_decref(services);
		json_decref(list);
		json_decref(notices);
		http_respond_error(req, 500, "database: reading the clients failed");
		return;
	}
	count = stages(ls, now, g);
	for (i = 0; i < count; i++)
		json_array_append_new(notices, notice(g[i].services, g[i].c.state == COVER_ENDED ?
						      "error" : "warning", g[i].text));
	for (s = 0; s < LICENSE_NSERVICES; s++) {
		cover(ls, s, now, &c);
		if (over(&c, s, n[s], text, sizeof(text)))
			json_array_append_new(notices, notice(1u << s, "warning", text));
	}
	for (i = 0; i < ls->n; i++)
		json_array_append_new(list, license_json(&ls->list[i], now));
	http_respond_json(req, 200, json_pack("{so so so sI}", "services", services, "licenses",
					      list, "notices", notices, "issuers",
					      (json_int_t)ctx->cfg->nissuers));
}

/* The license file text of the argument: the file as a string, or its
 * JSON object (the signature covers the claims' text inside it, so the
 * object's own spacing does not matter). A new string, or NULL. */
static char *file_text(const json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return json_is_object(v) ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

void licenses_post(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args)
{
	struct licenses *ls = ctx->licenses;
	char *text = file_text(api_arg_json(args, "license")), *record = NULL;
	char msg[400], key[LICENSE_ID_MAX + 16], day[16], stop[16];
	int64_t now = (int64_t)time(NULL);
	struct held h = { 0 };
	char *have = NULL;
	size_t i;

	if (!text) {
		http_respond_error(req, 400, "license: expected the license file (its JSON object "
				   "or text)");
		return;
	}
	if (license_open(text, strlen(text), &h.l, msg, sizeof(msg)) != ERR_OK) {
		http_respond_error(req, 400, "%s", msg);
		goto out;
	}
	fresh(ls);
	if (!trusted(ls, &h.l, msg, sizeof(msg))) {
		http_respond_error(req, 400, "license %s: %s", h.l.id, msg);
		goto out;
	}
	if (license_phase(&h.l, now) == LICENSE_ENDED) {
		day_text(day, h.l.expires);
		day_text(stop, license_grace_end(&h.l));
		http_respond_error(req, 400, "license %s expired on %s and its grace period ended "
				   "on %s: it would license nothing", h.l.id, day, stop);
		goto out;
	}
	snprintf(key, sizeof(key), KV_PREFIX "%s", h.l.id);
	if (store_kv_get(ctx->st, key, &have) == SERR_OK) {
		http_respond_error(req, 409, "license %s: this server has it already", h.l.id);
		goto out;
	}
	if (ls->n >= MAX_LICENSES) {
		http_respond_error(req, 409, "this server holds %d licenses, the most it keeps: "
				   "remove one first", MAX_LICENSES);
		goto out;
	}
	record = record_text(text, now, who);
	if (!record || store_kv_put(ctx->st, key, record, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "database: the license could not be stored");
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "license: %s added %s of %s (%lld seats)", who,
		     h.l.id, h.l.customer, (long long)h.l.seats);
	ls->loaded_ms = 0;
	fresh(ls);
	tell(ls);
	for (i = 0; i < ls->n; i++)
		if (strcmp(ls->list[i].l.id, h.l.id) == 0) {
			http_respond_json(req, 201, license_json(&ls->list[i], now));
			goto out;
		}
	http_respond_error(req, 500, "database: the license stored could not be read back");
out:
	free(have);
	free(record);
	free(text);
}

void licenses_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	const char *id = api_arg_string(args, "id");
	char key[LICENSE_ID_MAX + 16], *have = NULL;

	if (strlen(id) > LICENSE_ID_MAX) {
		http_respond_error(req, 404, "license: no license has that id");
		return;
	}
	snprintf(key, sizeof(key), KV_PREFIX "%s", id);
	if (store_kv_get(ctx->st, key, &have) != SERR_OK) {
		http_respond_error(req, 404, "license %s: no license has that id", id);
		return;
	}
	free(have);
	if (store_kv_delete(ctx->st, key) != SERR_OK) {
		http_respond_error(req, 500, "database: the license could not be removed");
		return;
	}
	store_eventf(ctx->st, "system", 0, "license: %s removed %s", who, id);
	ctx->licenses->loaded_ms = 0;
	fresh(ctx->licenses);
	http_respond_json(req, 200, json_pack("{ss}", "removed", id));
}
