/* logs.c -- the event log's routes (see logs.h). */
#include "server/logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/alerts.h"
#include "server/metrics.h"
#include "server/store.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 100000

/* The windows of the detection limits, in milliseconds. */
#define HOUR_MS 3600000u
#define DAY_MS 86400000u

/* One agent's detections in its current hour and day; each window starts
 * at the agent's first report after the last one ended (monotonic time,
 * so clock steps change nothing). */
struct quota_entry {
	int64_t client;
	uint64_t hour_start, day_start;  /* ms, http_now_ms() */
	int64_t hour, day;               /* detections logged in them */
	uint64_t logged;                 /* when a refusal was last logged */
};

struct logs_quota {
	struct quota_entry *e;
	size_t n, cap;
};

/* What a spreadsheet takes a cell beginning with as a formula (OWASP's list). */
#define CSV_FORMULA "=+-@\t\r"

/* Reads the integer argument name into *out (left alone when absent);
 * false, answered 400, when it is below 0. */
static bool whole_arg(struct http_req *req, const struct api_args *args, const char *name,
		      int64_t *out)
{
	int64_t n;

	if (!api_arg_int(args, name, &n))
		return true;
	if (n >= 0) {
		*out = n;
		return true;
	}
	http_respond_error(req, 400, "%s: expected a whole number, not '%lld'", name,
			   (long long)n);
	return false;
}

int logs_csv_field(struct util_buf *b, const char *s)
{
	const char *p;
	int rc = 0;

	if (!s)
		return 0;
	if (!strpbrk(s, ",\"\r\n") && !strchr(CSV_FORMULA, *s ? *s : 'x'))
		return util_buf_append(b, s, strlen(s));
	rc |= util_buf_append(b, "\"", 1);
	if (strchr(CSV_FORMULA, *s) && *s)
		rc |= util_buf_append(b, "'", 1);
	for (p = s; *p && rc == 0; p++)
		rc |= *p == '"' ? util_buf_append(b, "\"\"", 2) : util_buf_append(b, p, 1);
	rc |= util_buf_append(b, "\"", 1);
	return rc;
}

/* The events as CSV: a header, then a row per event, times in UTC ISO 8601;
 * a detection's source, actions, quarantine item and task in columns of
 * their own. */
static int write_csv(struct util_buf *b, const json_t *events)
{
	const char *cols[] = { "hostname", "domain", "message" };
	const char *dcols[] = { "source", "action", "action_result", "second_action",
				"second_result", "quarantine" };
	char when[32], num[24];
	const json_t *e, *detail;
	time_t t;
	struct tm tm;
	size_t i, c;
	int rc = util_buf_printf(b, "time,kind,client,hostname,domain,message,source,action,"
				 "action_result,second_action,second_result,quarantine,task\r\n");

	json_array_foreach(events, i, e) {
		t = (time_t)json_integer_value(json_object_get(e, "time"));
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		num[0] = '\0';
		if (json_is_integer(json_object_get(e, "client")))
			snprintf(num, sizeof(num), "%lld",
				 (long long)json_integer_value(json_object_get(e, "client")));
		rc |= util_buf_printf(b, "%s,%s,%s,", when,
				      json_string_value(json_object_get(e, "kind")), num);
		for (c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
			if (c > 0)
				rc |= util_buf_append(b, ",", 1);
			rc |= logs_csv_field(b, json_string_value(json_object_get(e, cols[c])));
		}
		detail = json_object_get(e, "detail");
		for (c = 0; c < sizeof(dcols) / sizeof(dcols[0]); c++) {
			rc |= util_buf_append(b, ",", 1);
			rc |= logs_csv_field(b, json_string_value(json_object_get(detail,
										   dcols[c])));
		}
		num[0] = '\0';
		if (json_is_integer(json_object_get(detail, "task")))
			snprintf(num, sizeof(num), "%lld",
				 (long long)json_integer_value(json_object_get(detail, "task")));
		rc |= util_buf_printf(b, ",%s\r\n", num);
	}
	return rc;
}

void logs_get(struct api_ctx *ctx, struct http_req *req, const char *who,
	      const struct api_args *args)
{
	struct store_event_filter f = { .limit = DEFAULT_LIMIT };
	const char *format = api_arg_string(args, "format");
	struct util_buf csv = { 0 };
	json_t *events = NULL;
	char domain[1024];
	size_t i;

	(void)who;
	f.kind = api_arg_string(args, "kind");
	/* "/A/B/" is "/A/B". */
	if (api_arg_string(args, "domain")) {
		snprintf(domain, sizeof(domain), "%s", api_arg_string(args, "domain"));
		for (i = strlen(domain); i > 1 && domain[i - 1] == '/'; i--)
			domain[i - 1] = '\0';
		f.domain = domain;
	}
	if (!whole_arg(req, args, "since", &f.since) || !whole_arg(req, args, "until", &f.until) ||
	    !whole_arg(req, args, "client", &f.client) ||
	    !whole_arg(req, args, "before", &f.before) || !whole_arg(req, args, "limit", &f.limit))
		return;
	for (i = 0; f.kind && store_event_kinds[i] && strcmp(store_event_kinds[i], f.kind); i++)
		;
	if (f.kind && !store_event_kinds[i]) {
		http_respond_error(req, 400, "kind: '%s' is not system, verify, delivery, "
				   "detection or task", f.kind);
		return;
	}
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
		http_respond_error(req, 400, "format: expected json or csv, not '%s'", format);
		return;
	}
	if (f.limit < 1 || f.limit > MAX_LIMIT) {
		http_respond_error(req, 400, "limit: expected 1 to %d", MAX_LIMIT);
		return;
	}
	if (store_events(ctx->st, &f, &events) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the event log failed");
		return;
	}
	if (format && strcmp(format, "csv") == 0) {
		if (write_csv(&csv, events) != 0) {
			util_buf_free(&csv);
			http_respond_error(req, 500, "out of memory");
		} else {
			http_respond_data(req, 200, "text/csv; charset=utf-8", &csv);
			http_add_header(req, "Content-Disposition",
					"attachment; filename=\"ward-events.csv\"");
		}
		json_decref(events);
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "events", events));
}

/* The values a detection's members take. */
static const char *const det_sources[] = { "realtime", "scheduled", "scan_now", "manual",
					   "clamd", NULL };
static const char *const det_actions[] = { "quarantine", "delete", "rename", "pass", "deny",
					   NULL };
static const char *const det_results[] = { "ok", "failed", NULL };

static bool one_of(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* Whether v is text of 1 to max bytes. Any byte but NUL: an action's error
 * and a program's path may name a hostile file, whose name must not hide
 * the detection; every place that shows them escapes control characters. */
static bool plain(const json_t *v, size_t max)
{
	return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max;
}

/* Checks one detection's members of issue 16 (all optional: source,
 * action and its result, the second action, the quarantine item, the
 * task, the process); returns the first bad member's name, or NULL. */
static const char *detection_bad(const json_t *d)
{
	static const char *const known[] = { "time", "path", "name", "method", "source",
					     "action", "action_result", "action_error",
					     "second_action", "second_result", "quarantine", "task",
					     "process", NULL };
	const char *key;
	json_t *v, *p;

	json_object_foreach((json_t *)d, key, v)
		if (!one_of(key, known))
			return key;
	if ((v = json_object_get(d, "source")) && !one_of(json_string_value(v), det_sources))
		return "source";
	if ((v = json_object_get(d, "action")) && !one_of(json_string_value(v), det_actions))
		return "action";
	if ((v = json_object_get(d, "action_result")) &&
	    !one_of(json_string_value(v), det_results))
		return "action_result";
	if ((v = json_object_get(d, "action_error")) && !plain(v, LOGS_MAX_TEXT))
		return "action_error";
	if ((v = json_object_get(d, "second_action")) &&
	    !one_of(json_string_value(v), det_actions))
		return "second_action";
	if ((v = json_object_get(d, "second_result")) &&
	    !one_of(json_string_value(v), det_results))
		return "second_result";
	if ((v = json_object_get(d, "quarantine")) &&
	    (!plain(v, 64) || strspn(json_string_value(v), "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
	     json_string_length(v)))
		return "quarantine";
	if ((v = json_object_get(d, "task")) && (!json_is_integer(v) || json_integer_value(v) <= 0))
		return "task";
	/* Who: a local process (pid, uid, exe), or a clamd client by address. */
	if ((p = json_object_get(d, "process"))) {
		json_object_foreach(p, key, v)
			if (!one_of(key, (const char *const[]){ "pid", "uid", "exe", "address",
								NULL }))
				return "process";
		v = json_object_get(p, "uid");
		if (!json_is_object(p) ||
		    (json_object_get(p, "address") ?
		     !plain(json_object_get(p, "address"), 64) || json_object_get(p, "pid") :
		     !json_is_integer(json_object_get(p, "pid")) ||
		     json_integer_value(json_object_get(p, "pid")) <= 0) ||
		    (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
			   json_integer_value(v) > 4294967295LL)) ||
		    (json_object_get(p, "exe") && !plain(json_object_get(p, "exe"), 4096)))
			return "process";
	}
	return NULL;
}

json_t *logs_parse_report(const char *text, size_t len, char *errbuf, size_t errlen)
{
	json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *list, *d;
	const char *path, *name, *method, *bad;
	json_int_t when;
	size_t i;

	list = json_object_get(body, "detections");
	if (!json_is_array(list) || json_array_size(list) > LOGS_MAX_REPORT ||
	    json_object_size(body) != 1) {
		util_set_msg(errbuf, errlen, "detections: expected {\"detections\": [{\"time\", "
			     "\"path\", \"name\", \"method\"}, ...]} (at most %d)",
			     LOGS_MAX_REPORT);
		json_decref(body);
		return NULL;
	}
	json_array_foreach(list, i, d) {
		if (json_unpack(d, "{s:I, s:s, s:s, s:s}", "time", &when, "path", &path, "name",
				&name, "method", &method) != 0 || when <= 0 ||
		    (strcmp(method, "smart") != 0 && strcmp(method, "conventional") != 0)) {
			util_set_msg(errbuf, errlen, "detections[%zu]: expected {\"time\": "
				     "SECONDS, \"path\", \"name\", \"method\": \"smart\" or "
				     "\"conventional\"}", i);
			json_decref(body);
			return NULL;
		}
		if ((bad = detection_bad(d)) != NULL) {
			util_set_msg(errbuf, errlen, "detections[%zu].%.64s: %s", i, bad,
				     one_of(bad, (const char *const[]){ "source", "action",
					     "action_result", "action_error", "second_action",
					     "second_result", "quarantine", "task", "process",
					     NULL }) ?
				     "not as docs/protocol.md says (source: realtime, "
				     "scheduled, scan_now, manual, clamd; actions: quarantine, "
				     "delete, rename, pass, deny; results: ok, failed; "
				     "quarantine: an item id; task: an id; process: {pid, "
				     "uid, exe} or {address})" : "no such member");
			json_decref(body);
			return NULL;
		}
	}
	list = json_incref(list);
	json_decref(body);
	return list;
}

/* The event message of detection d: what, where, how found, what was done. */
static char *detection_message(const json_t *d)
{
	const char *src = json_string_value(json_object_get(d, "source"));
	const char *act = json_string_value(json_object_get(d, "action"));
	const char *res = json_string_value(json_object_get(d, "action_result"));
	const char *aerr = json_string_value(json_object_get(d, "action_error"));
	const char *act2 = json_string_value(json_object_get(d, "second_action"));
	const char *res2 = json_string_value(json_object_get(d, "second_result"));
	const char *q = json_string_value(json_object_get(d, "quarantine"));
	char *msg = NULL;

	if (asprintf(&msg, "%s in %s (%s scan%s%s)%s%s%s%s%s%s%s%s%s%s%s%s",
		     json_string_value(json_object_get(d, "name")),
		     json_string_value(json_object_get(d, "path")),
		     json_string_value(json_object_get(d, "method")), src ? ", " : "",
		     src ? src : "", act ? ": " : "", act ? act : "", act && res ? " " : "",
		     act && res ? res : "", aerr ? " (" : "", aerr ? aerr : "", aerr ? ")" : "",
		     act2 ? ", then " : "", act2 ? act2 : "", act2 && res2 ? " " : "",
		     act2 && res2 ? res2 : "", q ? "; quarantine item " : "") < 0)
		return NULL;
	if (q) {
		char *full = NULL;

		if (asprintf(&full, "%s%s", msg, q) < 0)
			full = NULL;
		free(msg);
		msg = full;
	}
	return msg;
}

struct logs_quota *logs_quota_new(void)
{
	return calloc(1, sizeof(struct logs_quota));
}

void logs_quota_free(struct logs_quota *q)
{
	if (!q)
		return;
	free(q->e);
	free(q);
}

/* Returns client's entry with its windows current at now (a new entry
 * when it has none), or NULL when out of memory. Entries whose day has
 * ended make room first: the record holds the agents of the last day. */
static struct quota_entry *quota_entry(struct logs_quota *q, int64_t client, uint64_t now)
{
	struct quota_entry *e = NULL, *grown;
	size_t i, kept;

	for (i = 0; i < q->n && !e; i++)
		if (q->e[i].client == client)
			e = &q->e[i];
	if (!e && q->n == q->cap) {
		for (i = kept = 0; i < q->n; i++)
			if (now - q->e[i].day_start < DAY_MS)
				q->e[kept++] = q->e[i];
		q->n = kept;
	}
	if (!e && q->n == q->cap) {
		grown = realloc(q->e, (q->cap ? 2 * q->cap : 64) * sizeof(*grown));
		if (!grown)
			return NULL;
		q->e = grown;
		q->cap = q->cap ? 2 * q->cap : 64;
	}
	if (!e) {
		e = &q->e[q->n++];
		*e = (struct quota_entry){ .client = client, .hour_start = now, .day_start = now };
	}
	if (now - e->hour_start >= HOUR_MS) {
		e->hour_start = now;
		e->hour = 0;
	}
	if (now - e->day_start >= DAY_MS) {
		e->day_start = now;
		e->day = 0;
	}
	return e;
}

/* Refuses n more detections of client when they do not fit its hour or
 * day (429, Retry-After: when they will), logging that once an hour;
 * returns whether it did. */
static bool quota_refuse(struct api_ctx *ctx, struct http_req *req, struct quota_entry *e,
			 int64_t n, uint64_t now)
{
	uint64_t wait = 0;
	char after[24];

	if (e->hour + n > ctx->cfg->detections_per_hour)
		wait = e->hour_start + HOUR_MS - now;
	if (e->day + n > ctx->cfg->detections_per_day && e->day_start + DAY_MS - now > wait)
		wait = e->day_start + DAY_MS - now;
	if (!wait)
		return false;
	if (!e->logged || now - e->logged >= HOUR_MS) {
		store_eventf(ctx->st, "system", e->client, "detection reports refused: the agent "
			     "reported %lld in the last hour and %lld in the last day "
			     "(logs.detections_per_hour %lld, logs.detections_per_day %lld); "
			     "it keeps the rest and sends them later", (long long)e->hour,
			     (long long)e->day, (long long)ctx->cfg->detections_per_hour,
			     (long long)ctx->cfg->detections_per_day);
		e->logged = now;
	}
	http_respond_json(req, 429, json_pack("{ss}", "error", "this agent's detections are "
					      "at logs.detections_per_hour or "
					      "logs.detections_per_day; keep them and send them "
					      "after Retry-After"));
	snprintf(after, sizeof(after), "%llu", (unsigned long long)(wait + 999) / 1000);
	http_add_header(req, "Retry-After", after);
	return true;
}

void logs_post_detections(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	size_t len, i, n;
	const char *text = http_req_body(req, &len);
	int64_t id = strtoll(who, NULL, 10), now = (int64_t)time(NULL);
	uint64_t now_ms = http_now_ms();
	struct quota_entry *e;
	int64_t when[LOGS_MAX_REPORT];
	char *messages[LOGS_MAX_REPORT] = { 0 }, *details[LOGS_MAX_REPORT] = { 0 };
	json_t *list, *d;
	json_int_t t;
	char msg[1200];
	enum serr err;

	(void)args;
	/* Checked in full first: a malformed report logs nothing. */
	list = logs_parse_report(text, len, msg, sizeof(msg));
	if (!list) {
		http_respond_error(req, 400, "%s", msg);
		return;
	}
	n = json_array_size(list);
	e = quota_entry(ctx->quota, id, now_ms);
	if (!e) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	if (quota_refuse(ctx, req, e, (int64_t)n, now_ms))
		goto out;
	json_array_foreach(list, i, d) {
		t = json_integer_value(json_object_get(d, "time"));
		/* An agent whose clock runs ahead is not believed past now. */
		when[i] = t < now ? t : now;
		messages[i] = detection_message(d);
		details[i] = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		if (!messages[i] || !details[i]) {
			http_respond_error(req, 500, "out of memory");
			goto out;
		}
	}
	err = store_events_add(ctx->st, "detection", id, when, (const char *const *)messages,
			       (const char *const *)details, n);
	if (err != SERR_OK) {
		http_respond_error(req, 500, "database: logging the detections failed");
		goto out;
	}
	e->hour += (int64_t)n;
	e->day += (int64_t)n;
	if (ctx->metrics)
		metrics_detections(ctx->metrics, (int64_t)n);
	alerts_detections(ctx->alerts, id, list, messages);
	http_respond_json(req, 200, json_pack("{sI}", "logged", (json_int_t)n));
out:
	for (i = 0; i < n && i < LOGS_MAX_REPORT; i++) {
		free(messages[i]);
		free(details[i]);
	}
	json_decref(list);
}
