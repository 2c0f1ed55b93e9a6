/* logs.c -- the event log's routes (see logs.h). */
#include "server/logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The events as CSV: a header, then a row per event, times in UTC ISO 8601. */
static int write_csv(struct util_buf *b, const json_t *events)
{
	const char *cols[] = { "hostname", "domain", "message" };
	char when[32], num[24];
	const json_t *e;
	time_t t;
	struct tm tm;
	size_t i, c;
	int rc = util_buf_printf(b, "time,kind,client,hostname,domain,message\r\n");

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
		rc |= util_buf_append(b, "\r\n", 2);
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
		http_respond_error(req, 400, "kind: '%s' is not system, verify, delivery or "
				   "detection", f.kind);
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

json_t *logs_parse_report(const char *text, size_t len, char *errbuf, size_t errlen)
{
	json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *list, *d;
	const char *path, *name, *method;
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
		if (json_unpack(d, "{s:I, s:s, s:s, s:s !}", "time", &when, "path", &path, "name",
				&name, "method", &method) != 0 || when <= 0 ||
		    (strcmp(method, "smart") != 0 && strcmp(method, "conventional") != 0)) {
			util_set_msg(errbuf, errlen, "detections[%zu]: expected {\"time\": "
				     "SECONDS, \"path\", \"name\", \"method\": \"smart\" or "
				     "\"conventional\"}", i);
			json_decref(body);
			return NULL;
		}
	}
	list = json_incref(list);
	json_decref(body);
	return list;
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
	const char *text = http_req_body(req, &len), *path, *name, *method;
	int64_t id = strtoll(who, NULL, 10), now = (int64_t)time(NULL);
	uint64_t now_ms = http_now_ms();
	struct quota_entry *e;
	int64_t when[LOGS_MAX_REPORT];
	char *messages[LOGS_MAX_REPORT] = { 0 };
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
		json_unpack(d, "{s:I, s:s, s:s, s:s}", "time", &t, "path", &path, "name", &name,
			    "method", &method);
		/* An agent whose clock runs ahead is not believed past now. */
		when[i] = t < now ? t : now;
		if (asprintf(&messages[i], "%s in %s (%s scan)", name, path, method) < 0) {
			messages[i] = NULL;
			http_respond_error(req, 500, "out of memory");
			goto out;
		}
	}
	err = store_events_add(ctx->st, "detection", id, when, (const char *const *)messages, n);
	if (err != SERR_OK) {
		http_respond_error(req, 500, "database: logging the detections failed");
		goto out;
	}
	e->hour += (int64_t)n;
	e->day += (int64_t)n;
	http_respond_json(req, 200, json_pack("{sI}", "logged", (json_int_t)n));
out:
	for (i = 0; i < n && i < LOGS_MAX_REPORT; i++)
		free(messages[i]);
	json_decref(list);
}
