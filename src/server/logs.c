/* logs.c -- the event log's routes (see logs.h). */
#include "server/logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 100000

/* What a spreadsheet takes a cell beginning with as a formula (OWASP's list). */
#define CSV_FORMULA "=+-@\t\r"

/* Reads query argument name as a whole number >= 0 into *out (left alone
 * when absent); false, answered 400, when it is not one. */
static bool query_int(struct http_req *req, const char *name, int64_t *out)
{
	const char *v = http_req_query(req, name);
	char *end;
	long long n;

	if (!v)
		return true;
	n = strtoll(v, &end, 10);
	if (*v && !*end && n >= 0) {
		*out = n;
		return true;
	}
	http_respond_error(req, 400, "%s: expected a whole number, not '%s'", name, v);
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

void logs_get(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	struct store_event_filter f = { .limit = DEFAULT_LIMIT };
	const char *format = http_req_query(req, "format");
	struct util_buf csv = { 0 };
	json_t *events = NULL;
	char domain[1024];
	size_t i;

	(void)who;
	f.kind = http_req_query(req, "kind");
	/* "/A/B/" is "/A/B". */
	if (http_req_query(req, "domain")) {
		snprintf(domain, sizeof(domain), "%s", http_req_query(req, "domain"));
		for (i = strlen(domain); i > 1 && domain[i - 1] == '/'; i--)
			domain[i - 1] = '\0';
		f.domain = domain;
	}
	if (!query_int(req, "since", &f.since) || !query_int(req, "until", &f.until) ||
	    !query_int(req, "client", &f.client) || !query_int(req, "before", &f.before) ||
	    !query_int(req, "limit", &f.limit))
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
	if (store_events(ctx->st, &f, &events) != STORE_OK) {
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

void logs_post_detections(struct api_ctx *ctx, struct http_req *req, const char *who)
{
	size_t len, i;
	const char *text = http_req_body(req, &len), *path, *name, *method;
	int64_t id = strtoll(who, NULL, 10), now = (int64_t)time(NULL);
	json_t *list, *d;
	json_int_t when;
	char msg[1200];

	/* Checked in full first: a malformed report logs nothing. */
	list = logs_parse_report(text, len, msg, sizeof(msg));
	if (!list) {
		http_respond_error(req, 400, "%s", msg);
		return;
	}
	json_array_foreach(list, i, d) {
		json_unpack(d, "{s:I, s:s, s:s, s:s}", "time", &when, "path", &path, "name", &name,
			    "method", &method);
		snprintf(msg, sizeof(msg), "%s in %s (%s scan)", name, path, method);
		/* An agent whose clock runs ahead is not believed past now. */
		if (store_event_add(ctx->st, "detection", id, when < now ? when : now, msg) !=
		    STORE_OK) {
			http_respond_error(req, 500, "database: logging a detection failed");
			goto out;
		}
	}
	http_respond_json(req, 200, json_pack("{sI}", "logged", (json_int_t)json_array_size(list)));
out:
	json_decref(list);
}
