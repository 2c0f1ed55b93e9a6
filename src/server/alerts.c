/* alerts.c -- alert rules, what they raise, and the thread that sends
 * their messages (see alerts.h). */
#include "server/alerts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/log.h"
#include "common/util.h"
#include "server/backups.h"
#include "server/channels.h"
#include "server/config.h"
#include "server/licenses.h"
#include "server/posture.h"
#include "server/store.h"
#include "server/updates.h"

#define TICK_MS 1000
#define PRUNE_EVERY 3600
#define MAX_HELD 1000            /* items a rule holds until its next message */
#define MAX_LISTED 50            /* items one message lists */
#define MAX_ATTEMPTS 4
#define BATCH 16                 /* messages handed to the sender at once */
#define MAX_WAITING 16           /* channel tests waiting for their outcome */
#define MAX_NAME 64
#define DEFAULT_EVERY 300

/* The kinds of rule, and whether each looks at agents (its scope counts). */
static const struct {
	const char *name;
	bool agents;
} kinds[] = {
	{ "detection", true }, { "outbreak", true }, { "outdated", true }, { "sps", true },
	{ "realtime", true }, { "import", false }, { "backup", false }, { "license", false },
};

/* A channel test waiting for its message's outcome. */
struct waiter {
	int64_t id;
	struct http_req *req;
};

struct alerts {
	struct api_ctx *ctx;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	json_t *job;      /* messages handed to the sender; NULL: none */
	json_t *done;     /* their outcomes, once all are sent; NULL until then */
	struct waiter waiting[MAX_WAITING];
	int64_t evaluated, pruned;
};

/* ---- the sender thread -------------------------------------------- */

/* The text of a message: one line per item, then how many more. */
static char *message_text(const json_t *body)
{
	struct util_buf b = { 0 };
	const json_t *item;
	char when[32];
	struct tm tm;
	time_t t;
	size_t i;

	util_buf_printf(&b, "%s\n\n", json_string_value(json_object_get(body, "summary")));
	json_array_foreach(json_object_get(body, "items"), i, item) {
		t = (time_t)json_integer_value(json_object_get(item, "time"));
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		util_buf_printf(&b, "%s  %s\n", when,
				json_string_value(json_object_get(item, "subject")));
	}
	if (json_integer_value(json_object_get(body, "more")))
		util_buf_printf(&b, "... and %lld more\n",
				(long long)json_integer_value(json_object_get(body, "more")));
	util_buf_printf(&b, "\nRule %s (%s) of %s; the console's Alerts page, or ward alert "
			"log, lists every message.\n",
			json_string_value(json_object_get(body, "rule")),
			json_string_value(json_object_get(body, "kind")),
			json_string_value(json_object_get(body, "server")));
	return b.data;
}

/* Sends one message (a row of store_alert_pending()); its outcome. */
static json_t *send_one(const json_t *m, const char *server)
{
	const json_t *body = json_object_get(m, "body");
	const char *kind = json_string_value(json_object_get(m, "kind"));
	char err[600] = "", *text = message_text(body);
	struct channels_msg msg = {
		.rule = json_string_value(json_object_get(m, "rule")),
		.kind = json_string_value(json_object_get(body, "kind")),
		.subject = json_string_value(json_object_get(m, "subject")),
		.summary = json_string_value(json_object_get(body, "summary")),
		.text = text ? text : "",
		.alert = body,
		.server = server,
	};
	bool ok;

	if (!kind) /* its channel was removed */
		snprintf(err, sizeof(err), "channel %s: no longer configured",
			 json_string_value(json_object_get(m, "channel")));
	ok = kind && text && msg.kind && msg.subject && msg.summary &&
	     channels_send(kind, json_object_get(m, "config"), &msg, err, sizeof(err));
	free(text);
	return json_pack("{sO sb ss}", "id", json_object_get(m, "id"), "ok", ok, "error", err);
}

static void *sender(void *arg)
{
	struct alerts *al = arg;
	json_t *job, *done, *m;
	size_t i;

	pthread_mutex_lock(&al->lock);
	for (;;) {
		while (!al->stop && (!al->job || al->done))
			pthread_cond_wait(&al->cond, &al->lock);
		if (al->stop)
			break;
		job = json_incref(al->job);
		pthread_mutex_unlock(&al->lock);
		done = json_array();
		json_array_foreach(job, i, m)
			json_array_append_new(done, send_one(m, al->ctx->server_name));
		json_decref(job);
		pthread_mutex_lock(&al->lock);
		al->done = done;
	}
	pthread_mutex_unlock(&al->lock);
	return NULL;
}

/* ---- rules -------------------------------------------------------- */

static bool kind_agents(const char *kind, bool *agents)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, kind) == 0) {
			*agents = kinds[i].agents;
			return true;
		}
	return false;
}

/* Whether the domain path domain lies in scope (a domain path). */
static bool in_scope(const char *scope, const char *domain)
{
	size_t n = strlen(scope);

	return strcmp(scope, "/") == 0 || strcmp(scope, domain) == 0 ||
	       (strncmp(scope, domain, n) == 0 && domain[n] == '/');
}

/* The string member key of obj, or def. */
static const char *text_of(const json_t *obj, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : def;
}

static int64_t param(const json_t *rule, const char *name, int64_t def)
{
	const json_t *v = json_object_get(json_object_get(rule, "params"), name);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

static const char *rule_name(const json_t *rule)
{
	return json_string_value(json_object_get(rule, "name"));
}

/* Raises an item of rule: subject (one line) and its detail (a new
 * object, taken). */
static void raise_item(struct alerts *al, const json_t *rule, int64_t now, const char *subject,
		       json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (!text || store_alert_raise(al->ctx->st, rule_name(rule), now, subject, text,
				       MAX_HELD) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "alerts: rule %s: could not record \"%s\"", rule_name(rule),
			subject);
	free(text);
	json_decref(detail);
}

/* Records which conditions of rule hold now (subject -> {"subject",
 * "detail"}), raising those that did not before. */
static void conditions(struct alerts *al, const json_t *rule, json_t *now_true, int64_t now)
{
	json_t *fresh = NULL, *s, *c;
	size_t i;

	if (store_alert_open(al->ctx->st, rule_name(rule), now_true, now, &fresh) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "alerts: rule %s: the database failed", rule_name(rule));
		return;
	}
	json_array_foreach(fresh, i, s) {
		c = json_object_get(now_true, json_string_value(s));
		raise_item(al, rule, now, json_string_value(json_object_get(c, "subject")),
			   json_incref(json_object_get(c, "detail")));
	}
	json_decref(fresh);
}

static void condition(json_t *set, const char *key, json_t *detail, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Adds condition key to set, with its subject and detail (taken). */
static void condition(json_t *set, const char *key, json_t *detail, const char *fmt, ...)
{
	char subject[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	json_object_set_new(set, key, json_pack("{ss so*}", "subject", subject, "detail", detail));
}

/* What the per-client conditions of one rule need. */
struct walk {
	struct alerts *al;
	const json_t *rule;
	const char *kind;
	json_t *set;
	json_t *latest;    /* component -> [{version, created}] (outdated) */
	int64_t now;
};

static int walk_client(json_t *c, void *arg)
{
	struct walk *w = arg;
	const json_t *status = json_object_get(c, "status"), *rt, *smart;
	const char *host = json_string_value(json_object_get(c, "hostname"));
	const char *method, *comp, *state;
	json_int_t id = json_integer_value(json_object_get(c, "id"));
	int64_t since, have, unscanned;
	char key[40];

	if (!json_is_object(status))
		return 0;
	snprintf(key, sizeof(key), "client:%lld", (long long)id);
	if (strcmp(w->kind, "realtime") == 0) {
		rt = json_object_get(status, "realtime");
		state = text_of(rt, "state", "");
		unscanned = json_integer_value(json_object_get(rt, "unscanned_recent"));
		if (strcmp(state, "unavailable") == 0 || strcmp(state, "degraded") == 0)
			condition(w->set, key, json_pack("{sI ss ss sO*}", "client", id, "hostname",
							 host, "state", state, "reason",
							 json_object_get(rt, "reason")),
				  "real-time protection %s on %s (client %lld): %s",
				  state[0] == 'u' ? "unavailable" : "not on the settings asked",
				  host, (long long)id, text_of(rt, "reason", "no reason given"));
		else if (strcmp(state, "on") == 0 && unscanned >= param(w->rule, "unscanned", 1))
			condition(w->set, key, json_pack("{sI ss ss sI}", "client", id, "hostname",
							 host, "state", "failing", "unscanned",
							 (json_int_t)unscanned),
				  "real-time protection failing on %s (client %lld): %lld accesses "
				  "let through unscanned in the last 5 to 10 minutes (deadlines, a "
				  "full backlog, the kernel's queue, scan errors)", host,
				  (long long)id, (long long)unscanned);
	} else if (strcmp(w->kind, "sps") == 0) {
		smart = json_object_get(status, "smart");
		if (json_is_false(json_object_get(smart, "answering")))
			condition(w->set, key, json_pack("{sI ss}", "client", id, "hostname", host),
				  "no smart protection source answers %s (client %lld)", host,
				  (long long)id);
	} else if (strcmp(w->kind, "outdated") == 0) {
		method = json_string_value(json_object_get(status, "scan_method"));
		if (!method)
			return 0;
		comp = posture_pattern(method);
		have = json_integer_value(json_object_get(json_object_get(status, "components"),
							  comp));
		since = posture_outdated_since(w->latest, comp, have);
		if (!since || w->now - since <= param(w->rule, "hours", 24) * 3600)
			return 0;
		condition(w->set, key, json_pack("{sI ss ss sI sI}", "client", id, "hostname", host,
						 "component", comp, "version", (json_int_t)have,
						 "since", (json_int_t)since),
			  "%s (client %lld) has %s version %lld, out of date for %lld hours", host,
			  (long long)id, comp, (long long)have,
			  (long long)((w->now - since) / 3600));
	}
	return 0;
}

/* The conditions of an outbreak rule: at most one, "outbreak". */
static void outbreak(struct alerts *al, const json_t *rule, json_t *set, int64_t now)
{
	const char *scope = json_string_value(json_object_get(rule, "scope"));
	int64_t minutes = param(rule, "minutes", 60), want = param(rule, "detections", 10);
	int64_t clients_want = param(rule, "clients", 1), n = 0, clients = 0;

	if (store_detections_count(al->ctx->st, scope, now - minutes * 60, &n, &clients) !=
	    SERR_OK)
		return;
	if (n >= want && clients >= clients_want)
		condition(set, "outbreak", json_pack("{ss sI sI sI}", "scope", scope, "detections",
						     (json_int_t)n, "clients", (json_int_t)clients,
						     "minutes", (json_int_t)minutes),
			  "outbreak in %s: %lld detections on %lld agents within %lld minutes",
			  scope, (long long)n, (long long)clients, (long long)minutes);
}

/* The smart protection servers that stopped reporting. */
static void sps_servers(struct alerts *al, json_t *set, int64_t now)
{
	json_t *list = NULL, *s;
	char key[40];
	size_t i;

	if (store_sps_list(al->ctx->st, &list) != SERR_OK)
		return;
	json_array_foreach(list, i, s) {
		json_int_t id = json_integer_value(json_object_get(s, "id"));
		int64_t seen = json_integer_value(json_object_get(s, "last_seen"));
		int64_t enrolled = json_integer_value(json_object_get(s, "enrolled"));

		/* One that has not reported yet is judged from its enrollment:
		 * it has had no time to be silent. */
		if (seen < enrolled)
			seen = enrolled;

		if (strcmp(text_of(s, "trust", ""), "enabled") != 0 ||
		    now - seen <= 3 * al->ctx->cfg->heartbeat_interval)
			continue;
		snprintf(key, sizeof(key), "sps:%lld", (long long)id);
		condition(set, key, json_pack("{sI sO}", "sps", id, "hostname",
					      json_object_get(s, "hostname")),
			  "smart protection server %s (%lld) has not reported for %lld s",
			  json_string_value(json_object_get(s, "hostname")), (long long)id,
			  (long long)(now - seen));
	}
	json_decref(list);
}

/* A failed import (each), and a failed or missing backup. */
static void server_conditions(struct alerts *al, const json_t *rule, json_t *set, int64_t now)
{
	const char *kind = json_string_value(json_object_get(rule, "kind"));
	json_t *st, *last, *newest;
	char key[48];
	int64_t t, hours = param(rule, "hours", 26);

	if (strcmp(kind, "import") == 0) {
		st = updates_status(al->ctx->updates);
		last = json_object_get(st, "last_import");
		t = json_integer_value(json_object_get(last, "time"));
		if (json_is_false(json_object_get(last, "ok"))) {
			snprintf(key, sizeof(key), "import:%lld", (long long)t);
			condition(set, key, json_deep_copy(last), "the signature import failed: %s",
				  text_of(last, "message", "no reason given"));
		}
		json_decref(st);
		return;
	}
	st = backups_status(al->ctx->backups);
	last = json_object_get(st, "last");
	if (last && json_is_false(json_object_get(last, "ok"))) {
		t = json_integer_value(json_object_get(last, "time"));
		snprintf(key, sizeof(key), "failed:%lld", (long long)t);
		condition(set, key, json_deep_copy(last), "a backup by %s failed: %s",
			  text_of(last, "by", "wardd"), text_of(last, "error", "no reason given"));
	}
	newest = json_array_get(json_object_get(st, "archives"), 0);
	t = json_integer_value(json_object_get(newest, "time"));
	/* Missing: none for hours while a schedule should make them (a
	 * server just started has had no chance yet). */
	if (al->ctx->cfg->backup_schedule[0] && now - t > hours * 3600 &&
	    now - al->ctx->started > hours * 3600)
		condition(set, "missing", json_pack("{sO* sI}", "newest", newest, "hours",
						    (json_int_t)hours),
			  "no backup in %s for more than %lld hours", al->ctx->cfg->backup_dir,
			  (long long)hours);
	json_decref(st);
}

/* Looks at the conditions of every enabled rule that has them. */
static void evaluate(struct alerts *al, int64_t now)
{
	json_t *rules = NULL, *rule, *set;
	struct walk w = { .al = al, .now = now };
	int64_t node;
	char msg[256];
	size_t i;

	if (store_alert_rules(al->ctx->st, &rules) != SERR_OK)
		return;
	json_array_foreach(rules, i, rule) {
		w.kind = json_string_value(json_object_get(rule, "kind"));
		if (!json_integer_value(json_object_get(rule, "enabled")) ||
		    strcmp(w.kind, "detection") == 0)
			continue;
		set = json_object();
		w.rule = rule;
		w.set = set;
		if (strcmp(w.kind, "outbreak") == 0) {
			outbreak(al, rule, set, now);
		} else if (strcmp(w.kind, "import") == 0 || strcmp(w.kind, "backup") == 0) {
			server_conditions(al, rule, set, now);
		} else if (strcmp(w.kind, "license") == 0) {
			json_decref(set);
			set = licenses_conditions(al->ctx->licenses, now);
			if (!set)
				continue;
		} else {
			if (strcmp(w.kind, "sps") == 0)
				sps_servers(al, set, now);
			if (strcmp(w.kind, "outdated") == 0 && !w.latest &&
			    store_package_versions(al->ctx->st, &w.latest) != SERR_OK)
				w.latest = NULL;
			if (store_domain_lookup(al->ctx->st, json_string_value(json_object_get(rule,
						"scope")), 0, &node, msg, sizeof(msg)) == SERR_OK)
				store_clients_each(al->ctx->st, node, walk_client, &w);
		}
		conditions(al, rule, set, now);
		json_decref(set);
	}
	json_decref(w.latest);
	json_decref(rules);
}

void alerts_detections(struct alerts *al, int64_t client, const json_t *detections,
		       char *const *messages)
{
	json_t *rules = NULL, *rule, *set, *d;
	int64_t now = (int64_t)time(NULL);
	char domain[4096] = "", host[256] = "", subject[700];
	const char *kind;
	size_t i, j;

	if (!al || store_client_place(al->ctx->st, client, host, sizeof(host), domain,
				      sizeof(domain)) != SERR_OK ||
	    store_alert_rules(al->ctx->st, &rules) != SERR_OK)
		return;
	json_array_foreach(rules, i, rule) {
		kind = json_string_value(json_object_get(rule, "kind"));
		if (!json_integer_value(json_object_get(rule, "enabled")) ||
		    !in_scope(json_string_value(json_object_get(rule, "scope")), domain))
			continue;
		if (strcmp(kind, "outbreak") == 0) {
			set = json_object();
			outbreak(al, rule, set, now);
			conditions(al, rule, set, now);
			json_decref(set);
		} else if (strcmp(kind, "detection") == 0) {
			json_array_foreach(detections, j, d) {
				snprintf(subject, sizeof(subject), "%s: %.600s", host,
					 messages[j]);
				raise_item(al, rule, now, subject, json_pack("{sI ss ss sO}",
					   "client", (json_int_t)client, "hostname", host,
					   "domain", domain, "detection", d));
			}
		}
	}
	json_decref(rules);
}

/* Sends what each rule holds once its rate limit lets it: one message
 * for each of its channels. */
static void flush(struct alerts *al, int64_t now)
{
	json_t *rules = NULL, *rule, *items = NULL, *listed, *body;
	int64_t held, dropped, upto;
	char subject[400], *text;
	const char *name;
	size_t i, n;

	if (store_alert_rules(al->ctx->st, &rules) != SERR_OK)
		return;
	json_array_foreach(rules, i, rule) {
		name = rule_name(rule);
		held = json_integer_value(json_object_get(rule, "held"));
		dropped = json_integer_value(json_object_get(rule, "dropped"));
		if ((!held && !dropped) || now < json_integer_value(json_object_get(rule,
				"last_sent")) + json_integer_value(json_object_get(rule, "every")))
			continue;
		if (store_alert_items(al->ctx->st, name, MAX_HELD, &items) != SERR_OK)
			continue;
		n = json_array_size(items);
		upto = n ? json_integer_value(json_object_get(json_array_get(items, n - 1), "id")) :
		       0;
		listed = json_array();
		while (json_array_size(listed) < MAX_LISTED && json_array_size(listed) < n)
			json_array_append(listed, json_array_get(items, json_array_size(listed)));
		if (n == 1 && !dropped)
			snprintf(subject, sizeof(subject), "[Ward] %s: %s", name,
				 json_string_value(json_object_get(json_array_get(items, 0),
								   "subject")));
		else
			snprintf(subject, sizeof(subject), "[Ward] %s: %lld alerts", name,
				 (long long)(n + (size_t)dropped));
		body = json_pack("{ss sO sO ss ss so sI}", "rule", name, "kind",
				 json_object_get(rule, "kind"), "scope",
				 json_object_get(rule, "scope"), "summary", subject + 7, "server",
				 al->ctx->server_url, "items", listed, "more",
				 (json_int_t)(n - json_array_size(listed) + (size_t)dropped));
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		if (!text || store_alert_flush(al->ctx->st, name, upto, now,
					       json_object_get(rule, "channels"), subject, text) !=
		    SERR_OK)
			log_msg(LOG_LVL_ERROR, "alerts: rule %s: queueing its message failed",
				name);
		free(text);
		json_decref(body);
		json_decref(items);
		items = NULL;
	}
	json_decref(rules);
}

/* Answers the channel test waiting for message id, if any. */
static void answer_test(struct alerts *al, int64_t id, bool ok, const char *error)
{
	size_t i;

	for (i = 0; i < MAX_WAITING; i++)
		if (al->waiting[i].req && al->waiting[i].id == id) {
			if (ok)
				http_respond_json(al->waiting[i].req, 200, json_pack("{sI ss}",
						  "id", (json_int_t)id, "state", "sent"));
			else
				http_respond_error(al->waiting[i].req, 502, "%s", error);
			al->waiting[i].req = NULL;
		}
}

/* Records the outcomes (done) of the messages of job. */
static void collect(struct alerts *al, const json_t *job, const json_t *done, int64_t now)
{
	const json_t *r, *m;
	int64_t id, attempts;
	const char *error;
	size_t i;
	bool ok, test;

	json_array_foreach(done, i, r) {
		/* The sender answers for each message of its job, in order. */
		m = json_array_get(job, i);
		id = json_integer_value(json_object_get(r, "id"));
		if (!m || json_integer_value(json_object_get(m, "id")) != id)
			continue;
		ok = json_is_true(json_object_get(r, "ok"));
		error = json_string_value(json_object_get(r, "error"));
		attempts = json_integer_value(json_object_get(m, "attempts")) + 1;
		test = strcmp(json_string_value(json_object_get(m, "rule")), "(test)") == 0;
		/* A test is tried once, while its administrator waits. */
		if (!ok && !test && attempts < MAX_ATTEMPTS) {
			store_alert_result(al->ctx->st, id, "pending", attempts,
					   now + 60 * (1 << (2 * (attempts - 1))), error, now);
			log_msg(LOG_LVL_WARN, "alerts: message %lld of rule %s by channel %s "
				"failed (attempt %lld of %d, tried again later): %s", (long long)id,
				json_string_value(json_object_get(m, "rule")),
				json_string_value(json_object_get(m, "channel")),
				(long long)attempts, MAX_ATTEMPTS, error);
			continue;
		}
		store_alert_result(al->ctx->st, id, ok ? "sent" : "failed", attempts, now,
				   ok ? NULL : error, now);
		store_eventf(al->ctx->st, "system", 0, "alert %lld of rule %s %s by channel %s: "
			     "%s%s%s", (long long)id, json_string_value(json_object_get(m, "rule")),
			     ok ? "sent" : "not sent", json_string_value(json_object_get(m,
			     "channel")), json_string_value(json_object_get(m, "subject")),
			     ok ? "" : "; ", ok ? "" : error);
		answer_test(al, id, ok, error);
	}
}

static void tick(void *arg)
{
	struct alerts *al = arg;
	int64_t now = (int64_t)time(NULL);
	json_t *done, *job = NULL, *pending = NULL;

	/* The job and its outcomes are taken together: the sender, woken for
	 * any reason, never sees the job again without them. */
	pthread_mutex_lock(&al->lock);
	done = al->done;
	if (done) {
		job = al->job;
		al->job = NULL;
		al->done = NULL;
	}
	pthread_mutex_unlock(&al->lock);
	if (done) {
		collect(al, job, done, now);
		json_decref(done);
		json_decref(job);
	}
	if (now - al->evaluated >= al->ctx->cfg->alerts_check_interval || now < al->evaluated) {
		al->evaluated = now;
		evaluate(al, now);
	}
	if (now - al->pruned >= PRUNE_EVERY) {
		al->pruned = now;
		store_alert_prune(al->ctx->st, now - al->ctx->cfg->logs_keep);
	}
	flush(al, now);
	if (al->job || store_alert_pending(al->ctx->st, now, BATCH, &pending) != SERR_OK ||
	    json_array_size(pending) == 0) {
		json_decref(pending);
		return;
	}
	pthread_mutex_lock(&al->lock);
	al->job = pending;
	pthread_cond_signal(&al->cond);
	pthread_mutex_unlock(&al->lock);
}

struct alerts *alerts_new(struct api_ctx *ctx, struct http_server *http)
{
	struct alerts *al = calloc(1, sizeof(*al));

	if (!al)
		return NULL;
	al->ctx = ctx;
	al->evaluated = (int64_t)time(NULL);
	pthread_mutex_init(&al->lock, NULL);
	pthread_cond_init(&al->cond, NULL);
	if (pthread_create(&al->thread, NULL, sender, al) != 0 ||
	    !(al->started = true) || http_every(http, TICK_MS, tick, al) != 0) {
		alerts_free(al);
		return NULL;
	}
	return al;
}

void alerts_free(struct alerts *al)
{
	if (!al)
		return;
	pthread_mutex_lock(&al->lock);
	al->stop = true;
	pthread_cond_signal(&al->cond);
	pthread_mutex_unlock(&al->lock);
	if (al->started)
		pthread_join(al->thread, NULL);
	json_decref(al->job);
	json_decref(al->done);
	pthread_mutex_destroy(&al->lock);
	pthread_cond_destroy(&al->cond);
	free(al);
}

/* ---- the operations ----------------------------------------------- */

/* Whether name is a channel's or a rule's: 1 to 64 letters, digits, '-',
 * '_' and '.'. */
static bool name_ok(struct http_req *req, const char *name)
{
	size_t n = strlen(name);

	if (n >= 1 && n <= MAX_NAME && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
					     "RSTUVWXYZ0123456789-_.") == n)
		return true;
	http_respond_error(req, 400, "name: expected 1 to %d letters, digits, '-', '_' and '.'",
			   MAX_NAME);
	return false;
}

void alerts_get_channels(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *rows = NULL, *c;
	size_t i;

	(void)who;
	(void)args;
	if (store_alert_channels(ctx->st, &rows) != SERR_OK) {
		http_respond_error(req, 500, "alert channels: the database failed");
		return;
	}
	json_array_foreach(rows, i, c)
		json_object_set_new(c, "config", channels_public(json_object_get(c, "config")));
	http_respond_json(req, 200, json_pack("{so}", "channels", rows));
}

void alerts_put_channel(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *name = api_arg_string(args, "name"), *kind = api_arg_string(args, "kind");
	json_t *config = api_arg_json(args, "config");
	char msg[300], *text;

	if (!name_ok(req, name))
		return;
	if (!channels_check(kind, config, msg, sizeof(msg))) {
		http_respond_error(req, 400, "%s", msg);
		return;
	}
	text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || store_alert_channel_put(ctx->st, name, kind, text, (int64_t)time(NULL), msg,
					     sizeof(msg)) != SERR_OK) {
		free(text);
		http_respond_error(req, 500, "alert channel: %s", msg);
		return;
	}
	free(text);
	store_eventf(ctx->st, "system", 0, "%s set alert channel %s (%s)", who, name, kind);
	http_respond_json(req, 200, json_pack("{ss ss so}", "name", name, "kind", kind, "config",
					      channels_public(config)));
}

/* The rules that send by channel name, as a new list of names. */
static json_t *rules_using(struct api_ctx *ctx, const char *name)
{
	json_t *rules = NULL, *r, *c, *out = json_array();
	size_t i, j;

	if (store_alert_rules(ctx->st, &rules) != SERR_OK) {
		json_decref(out);
		return NULL;
	}
	json_array_foreach(rules, i, r)
		json_array_foreach(json_object_get(r, "channels"), j, c)
			if (strcmp(json_string_value(c), name) == 0)
				json_array_append(out, json_object_get(r, "name"));
	json_decref(rules);
	return out;
}

void alerts_delete_channel(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	const char *name = api_arg_string(args, "name");
	json_t *users = rules_using(ctx, name);
	enum serr err;

	if (!users) {
		http_respond_error(req, 500, "alert channel: the database failed");
		return;
	}
	if (json_array_size(users)) {
		http_respond_error(req, 409, "channel %s: rule %s sends by it (change or remove "
				   "the rule first)", name,
				   json_string_value(json_array_get(users, 0)));
		json_decref(users);
		return;
	}
	json_decref(users);
	err = store_alert_channel_delete(ctx->st, name);
	if (err == SERR_NOENT) {
		http_respond_error(req, 404, "no alert channel %s", name);
		return;
	}
	if (err != SERR_OK) {
		http_respond_error(req, 500, "alert channel: the database failed");
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s removed alert channel %s", who, name);
	http_respond_json(req, 200, json_pack("{ss}", "removed", name));
}

/* A parked test dropped as the server stops: forgotten. */
static void drop_test(struct http_req *req, void *arg)
{
	struct alerts *al = arg;
	size_t i;

	for (i = 0; i < MAX_WAITING; i++)
		if (al->waiting[i].req == req)
			al->waiting[i].req = NULL;
}

void alerts_post_test(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct alerts *al = ctx->alerts;
	const char *name = api_arg_string(args, "name");
	json_t *channels = NULL, *c, *body = NULL, *item, *log = NULL;
	int64_t now = (int64_t)time(NULL);
	char subject[200], *text = NULL;
	size_t i, slot;
	bool found = false;

	for (slot = 0; slot < MAX_WAITING && al->waiting[slot].req; slot++)
		;
	if (slot == MAX_WAITING) {
		http_respond_busy(req, 30, "%d channel tests are waiting already", MAX_WAITING);
		return;
	}
	if (store_alert_channels(ctx->st, &channels) != SERR_OK)
		goto fail;
	json_array_foreach(channels, i, c)
		if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
			found = true;
	json_decref(channels);
	if (!found) {
		http_respond_error(req, 404, "no alert channel %s", name);
		return;
	}
	snprintf(subject, sizeof(subject), "[Ward] test of channel %s by %s", name, who);
	item = json_pack("{sI ss s{}}", "time", (json_int_t)now, "subject", subject + 7,
			 "detail");
	body = json_pack("{ss ss ss ss ss s[o] si}", "rule", "(test)", "kind", "test", "scope",
			 "/", "summary", subject + 7, "server", ctx->server_url, "items", item,
			 "more", 0);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	c = json_pack("[s]", name);
	if (!text || !c || store_alert_flush(ctx->st, "(test)", 0, now, c, subject, text) !=
	    SERR_OK) {
		json_decref(c);
		goto fail;
	}
	json_decref(c);
	/* The message just queued: answered once the sender has tried it. */
	if (store_alert_log(ctx->st, "(test)", 1, &log) != SERR_OK || !json_array_size(log))
		goto fail;
	al->waiting[slot].id = json_integer_value(json_object_get(json_array_get(log, 0), "id"));
	al->waiting[slot].req = req;
	http_park(req, drop_test, al);
	json_decref(log);
	json_decref(body);
	free(text);
	return;
fail:
	json_decref(log);
	json_decref(body);
	free(text);
	http_respond_error(req, 500, "alert test: the database failed");
}

void alerts_get_rules(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *rows = NULL;

	(void)who;
	(void)args;
	if (store_alert_rules(ctx->st, &rows) != SERR_OK) {
		http_respond_error(req, 500, "alert rules: the database failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "rules", rows));
}

/* Checks a rule's parameters for its kind: known, integers in range. */
static bool params_ok(struct http_req *req, const char *kind, const json_t *params)
{
	static const struct {
		const char *kind, *name;
		int64_t min, max;
	} known[] = {
		{ "outbreak", "detections", 1, 1000000 }, { "outbreak", "minutes", 1, 10080 },
		{ "outbreak", "clients", 1, 100000 }, { "outdated", "hours", 0, 8760 },
		{ "backup", "hours", 1, 8760 }, { "realtime", "unscanned", 1, 100000000 },
	};
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(params)) {
		http_respond_error(req, 400, "params: expected an object");
		return false;
	}
	json_object_foreach((json_t *)params, key, v) {
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(known[i].kind, kind) == 0 && strcmp(known[i].name, key) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			http_respond_error(req, 400, "params: %.64s: not a parameter of a %s rule",
					   key, kind);
			return false;
		}
		if (!json_is_integer(v) || json_integer_value(v) < known[i].min ||
		    json_integer_value(v) > known[i].max) {
			http_respond_error(req, 400, "params: %s: expected %lld to %lld", key,
					   (long long)known[i].min, (long long)known[i].max);
			return false;
		}
	}
	return true;
}

void alerts_put_rule(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	const char *name = api_arg_string(args, "name"), *kind = api_arg_string(args, "kind");
	const char *scope = api_arg_string(args, "scope");
	json_t *channels = api_arg_json(args, "channels"), *params = api_arg_json(args, "params");
	json_t *enabled = api_arg_json(args, "enabled"), *known = NULL, *c, *k, *empty = NULL;
	int64_t every = DEFAULT_EVERY, node;
	char path[4096], msg[256], *ptext = NULL, *ctext = NULL;
	bool agents, found;
	size_t i, j;

	api_arg_int(args, "every", &every);
	if (!name_ok(req, name))
		return;
	if (!kind_agents(kind, &agents)) {
		http_respond_error(req, 400, "kind: expected detection, outbreak, outdated, sps, "
				   "realtime, import, backup or license");
		return;
	}
	if (every < 0 || every > 7 * 86400) {
		http_respond_error(req, 400, "every: expected 0 to 604800 seconds");
		return;
	}
	if (enabled && !json_is_boolean(enabled)) {
		http_respond_error(req, 400, "enabled: expected true or false");
		return;
	}
	if (!params)
		params = empty = json_object();
	if (!params_ok(req, kind, params))
		goto out;
	/* The scope, canonical; server-wide kinds have the root alone. */
	if (!scope)
		scope = "/";
	if (store_domain_lookup(ctx->st, scope, 0, &node, msg, sizeof(msg)) != SERR_OK ||
	    store_domain_path(ctx->st, node, path, sizeof(path)) != SERR_OK) {
		http_respond_error(req, 400, "scope: no domain %.200s", scope);
		goto out;
	}
	if (!agents && strcmp(path, "/") != 0) {
		http_respond_error(req, 400, "scope: a %s rule is about the server: its scope is /",
				   kind);
		goto out;
	}
	if (!json_is_array(channels) || json_array_size(channels) == 0 ||
	    json_array_size(channels) > 8 || store_alert_channels(ctx->st, &known) != SERR_OK) {
		http_respond_error(req, 400, "channels: expected a list of 1 to 8 channel names");
		goto out;
	}
	json_array_foreach(channels, i, c) {
		found = false;
		json_array_foreach(known, j, k)
			if (json_is_string(c) && strcmp(json_string_value(c), json_string_value(
					json_object_get(k, "name"))) == 0)
				found = true;
		if (!found) {
			http_respond_error(req, 400, "channels: no alert channel %.64s (ward alert "
					   "set-channel)", json_is_string(c) ?
					   json_string_value(c) : "(not a name)");
			goto out;
		}
	}
	ptext = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	ctext = json_dumps(channels, JSON_COMPACT);
	if (!ptext || !ctext || store_alert_rule_put(ctx->st, name, kind, path, ptext, ctext,
						     every, !enabled || json_is_true(enabled),
						     (int64_t)time(NULL), msg, sizeof(msg)) !=
	    SERR_OK) {
		http_respond_error(req, 500, "alert rule: %s", msg);
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s set alert rule %s (%s in %s, by %s)", who, name,
		     kind, path, ctext);
	http_respond_json(req, 200, json_pack("{ss ss ss sO sO sI sb}", "name", name, "kind",
					      kind, "scope", path, "params", params, "channels",
					      channels, "every", (json_int_t)every, "enabled",
					      !enabled || json_is_true(enabled)));
out:
	json_decref(known);
	json_decref(empty);
	free(ptext);
	free(ctext);
}

void alerts_delete_rule(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *name = api_arg_string(args, "name");
	enum serr err = store_alert_rule_delete(ctx->st, name);

	if (err == SERR_NOENT) {
		http_respond_error(req, 404, "no alert rule %s", name);
		return;
	}
	if (err != SERR_OK) {
		http_respond_error(req, 500, "alert rule: the database failed");
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s removed alert rule %s", who, name);
	http_respond_json(req, 200, json_pack("{ss}", "removed", name));
}

void alerts_get_log(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args)
{
	int64_t limit = 100;
	json_t *rows = NULL;

	(void)who;
	api_arg_int(args, "limit", &limit);
	if (limit < 1 || limit > 10000) {
		http_respond_error(req, 400, "limit: expected 1 to 10000");
		return;
	}
	if (store_alert_log(ctx->st, api_arg_string(args, "rule"), limit, &rows) != SERR_OK) {
		http_respond_error(req, 500, "alert log: the database failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "messages", rows));
}
