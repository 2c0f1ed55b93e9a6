/* service.c -- the smart protection service (see service.h). */
#include "sps/service.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Handler latency in buckets of powers of two microseconds. */
#define BUCKETS 32

struct sps_service {
	struct sps_pattern *pattern;
	int64_t ttl;
	uint64_t requests, queries, hits, errors;
	uint64_t latency[BUCKETS];
};

struct sps_service *sps_service_new(int64_t ttl)
{
	struct sps_service *s = calloc(1, sizeof(*s));

	if (s)
		s->ttl = ttl;
	return s;
}

void sps_service_set(struct sps_service *s, struct sps_pattern *p)
{
	sps_pattern_free(s->pattern);
	s->pattern = p;
}

const struct sps_pattern *sps_service_pattern(const struct sps_service *s)
{
	return s->pattern;
}

/* The upper bound, in microseconds, under which fraction of the requests
 * were answered. */
static uint64_t percentile(const struct sps_service *s, double fraction)
{
	uint64_t total = 0, seen = 0;
	int b;

	for (b = 0; b < BUCKETS; b++)
		total += s->latency[b];
	for (b = 0; b < BUCKETS && total; b++) {
		seen += s->latency[b];
		if ((double)seen >= fraction * (double)total)
			return (uint64_t)1 << b;
	}
	return 0;
}

json_t *sps_service_status(const struct sps_service *s)
{
	return json_pack("{sI sI sI sI sI sI s{sI sI}}", "version",
			 (json_int_t)(s->pattern ? sps_pattern_version(s->pattern) : 0), "entries",
			 (json_int_t)(s->pattern ? sps_pattern_entries(s->pattern) : 0), "requests",
			 (json_int_t)s->requests, "queries", (json_int_t)s->queries, "hits",
			 (json_int_t)s->hits, "errors", (json_int_t)s->errors, "latency_us", "p50",
			 (json_int_t)percentile(s, 0.5), "p99", (json_int_t)percentile(s, 0.99));
}

static void lookup(struct sps_service *s, struct http_req *req)
{
	struct spsq_query q[SPSQ_MAX_QUERIES];
	struct util_buf out = { 0 }, entries = { 0 };
	size_t len, n, i;
	const char *body = http_req_body(req, &len);
	char msg[256];
	int count;

	if (!s->pattern) {
		http_respond_busy(req, 5, "no Smart Scan Pattern loaded yet");
		return;
	}
	if (spsq_parse_request(body, len, q, SPSQ_MAX_QUERIES, &n, msg, sizeof(msg)) !=
	    SPSQ_OK) {
		s->errors++;
		http_respond_error(req, 400, "lookup: %s", msg);
		return;
	}
	if (util_buf_printf(&out, "ward-sps 1 %lld %lld\n",
			    (long long)sps_pattern_version(s->pattern), (long long)s->ttl) != 0)
		goto nomem;
	for (i = 0; i < n; i++) {
		entries.len = 0;
		count = sps_pattern_lookup(s->pattern, &q[i], &entries);
		/* The query line, its count, then its entries. */
		if (count < 0 || spsq_format_query(&q[i], &out) != 0)
			goto nomem;
		out.len--;
		if (util_buf_printf(&out, " %d\n", count) != 0 ||
		    util_buf_append(&out, entries.data, entries.len) != 0)
			goto nomem;
		s->hits += count > 0;
	}
	s->queries += n;
	util_buf_free(&entries);
	http_respond_text(req, 200, &out);
	return;
nomem:
	util_buf_free(&entries);
	util_buf_free(&out);
	http_respond_error(req, 500, "out of memory");
}

bool sps_service_handle(struct sps_service *s, struct http_req *req)
{
	const char *path = http_req_path(req), *method = http_req_method(req);
	uint64_t start = util_now_ns(), us;
	int b;

	if (strncmp(path, "/sps/v1/", 8) != 0)
		return false;
	s->requests++;
	if (strcmp(path + 8, "lookup") == 0 && strcmp(method, "POST") == 0) {
		lookup(s, req);
	} else if (strcmp(path + 8, "status") == 0 && strcmp(method, "GET") == 0) {
		http_respond_json(req, 200, sps_service_status(s));
	} else if (strcmp(path + 8, "health") == 0 && strcmp(method, "GET") == 0) {
		if (s->pattern)
			http_respond_json(req, 200, json_pack("{ss sI}", "status", "ok", "version",
							      (json_int_t)sps_pattern_version(
								      s->pattern)));
		else
			http_respond_busy(req, 5, "no Smart Scan Pattern loaded yet");
	} else {
		s->errors++;
		http_respond_error(req, 404, "no route %s %s", method, path);
	}
	us = (util_now_ns() - start) / 1000;
	for (b = 0; b < BUCKETS - 1 && ((uint64_t)1 << b) < us; b++)
		;
	s->latency[b]++;
	return true;
}

void sps_service_free(struct sps_service *s)
{
	if (!s)
		return;
	sps_pattern_free(s->pattern);
	free(s);
}
