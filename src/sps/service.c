/* service.c -- the smart protection service (see service.h). */
#include "sps/service.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Handler latency in buckets of powers of two microseconds. */
#define BUCKETS 32

/* A query may be this many bits shorter than the pattern's width: an
 * agent whose pattern is older (its set up to 4 times smaller) still gets
 * answers, and such a query draws about 1 entry in 200 by chance. */
#define WIDTH_SLACK 2

/* The longest query line with its count: "sha256:PPPPPPPP/BB NNN\n". */
#define QUERY_LINE_MAX 32

/* Refusals of one kind are logged at most once a minute. */
#define LOG_INTERVAL_MS 60000

/* Seconds a lookup refused while answers wait for slow readers is told
 * to wait. */
#define BUSY_RETRY 5

enum refusal { REFUSE_WIDTH, REFUSE_SIZE, REFUSE_HELD, REFUSE_KINDS };

struct sps_service {
	struct sps_pattern *pattern;
	struct sps_limits lim;
	uint64_t requests, queries, hits, errors, refused;
	uint64_t latency[BUCKETS];
	uint64_t logged_ms[REFUSE_KINDS];   /* when each kind was last logged */
	uint64_t unlogged[REFUSE_KINDS];    /* refusals since */
};

struct sps_service *sps_service_new(const struct sps_limits *lim)
{
	struct sps_service *s = calloc(1, sizeof(*s));

	if (s)
		s->lim = *lim;
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
	return json_pack("{sI sI sI sI sI sI sI s{sI sI}}", "version",
			 (json_int_t)(s->pattern ? sps_pattern_version(s->pattern) : 0), "entries",
			 (json_int_t)(s->pattern ? sps_pattern_entries(s->pattern) : 0), "requests",
			 (json_int_t)s->requests, "queries", (json_int_t)s->queries, "hits",
			 (json_int_t)s->hits, "errors", (json_int_t)s->errors, "refused",
			 (json_int_t)s->refused, "latency_us", "p50",
			 (json_int_t)percentile(s, 0.5), "p99", (json_int_t)percentile(s, 0.99));
}

/* Answers req status with {"error": what} (503 with a Retry-After), and
 * logs the refusal unless one of its kind was logged in the last minute;
 * the next message counts those left out. */
static void refuse(struct sps_service *s, struct http_req *req, enum refusal kind,
		   unsigned status, const char *what)
{
	static const char *const limits[REFUSE_KINDS] = {
		"prefixes shorter than the pattern's width",
		"sps.max_answer_entries or sps.max_answer_bytes",
		"sps.max_held_answers",
	};
	uint64_t now = http_now_ms();
	char after[16];

	if (status == 400)
		s->errors++;
	else
		s->refused++;
	if (!s->logged_ms[kind] || now - s->logged_ms[kind] >= LOG_INTERVAL_MS) {
		log_msg(LOG_LVL_WARN, "smart protection: lookup from %s refused (%s): %s; "
			"%llu more refused for it since the last message", http_req_peer(req),
			limits[kind], what, (unsigned long long)s->unlogged[kind]);
		s->logged_ms[kind] = now;
		s->unlogged[kind] = 0;
	} else {
		s->unlogged[kind]++;
	}
	http_respond_json(req, status, json_pack("{ss}", "error", what));
	if (status == 503) {
		snprintf(after, sizeof(after), "%u", BUSY_RETRY);
		http_add_header(req, "Retry-After", after);
	}
}

/* Returns the index of the first query shorter than the pattern allows
 * (n when none is), with the width it needs in *need. */
static size_t too_short(const struct sps_pattern *p, const struct spsq_query *q, size_t n,
			unsigned *need)
{
	size_t i;

	for (i = 0; i < n; i++) {
		*need = sps_pattern_bits(p, q[i].type);
		*need = *need > 8 + WIDTH_SLACK ? *need - WIDTH_SLACK : 8;
		if (q[i].bits < *need)
			return i;
	}
	return n;
}

static void lookup(struct sps_service *s, struct http_req *req)
{
	static const char *const type_names[] = { NULL, "md5", "sha1", "sha256" };
	struct spsq_query q[SPSQ_MAX_QUERIES];
	struct util_buf out = { 0 }, ents = { 0 };
	size_t len, n, i, entries = 0;
	const char *body = http_req_body(req, &len);
	char msg[256];
	unsigned need;
	int count;

	if (!s->pattern) {
		http_respond_busy(req, 5, "no Smart Scan Pattern loaded yet");
		return;
	}
	/* Answers wait in memory for their readers: past the budget, none
	 * is made until some are taken. */
	if (http_held(req) >= s->lim.max_held) {
		snprintf(msg, sizeof(msg), "lookup: %zu bytes of answers wait for their readers; "
			 "try again later", http_held(req));
		refuse(s, req, REFUSE_HELD, 503, msg);
		return;
	}
	if (spsq_parse_request(body, len, q, SPSQ_MAX_QUERIES, &n, msg, sizeof(msg)) !=
	    ERR_OK) {
		s->errors++;
		http_respond_error(req, 400, "lookup: %s", msg);
		return;
	}
	i = too_short(s->pattern, q, n, &need);
	if (i < n) {
		snprintf(msg, sizeof(msg), "lookup: line %zu: a prefix of %u bits; this server "
			 "answers %s prefixes of %u bits or more", i + 1, q[i].bits,
			 type_names[q[i].type], need);
		refuse(s, req, REFUSE_WIDTH, 400, msg);
		return;
	}
	if (util_buf_printf(&out, "ward-sps 1 %lld %lld\n",
			    (long long)sps_pattern_version(s->pattern), (long long)s->lim.ttl) != 0)
		goto nomem;
	for (i = 0; i < n; i++) {
		/* The query line, its count, then its entries. */
		ents.len = 0;
		count = sps_pattern_lookup(s->pattern, &q[i], s->lim.max_entries - entries,
					   s->lim.max_bytes - out.len, &ents);
		if (count == -2 || out.len + QUERY_LINE_MAX + ents.len > s->lim.max_bytes) {
			util_buf_free(&ents);
			util_buf_free(&out);
			snprintf(msg, sizeof(msg), "lookup: the answer would hold more than %zu "
				 "entries or %zu bytes; ask for fewer prefixes at once",
				 s->lim.max_entries, s->lim.max_bytes);
			refuse(s, req, REFUSE_SIZE, 413, msg);
			return;
		}
		if (count < 0 || spsq_format_query(&q[i], &out) != 0)
			goto nomem;
		out.len--;
		if (util_buf_printf(&out, " %d\n", count) != 0 ||
		    util_buf_append(&out, ents.data, ents.len) != 0)
			goto nomem;
		entries += (size_t)count;
		s->hits += count > 0;
	}
	s->queries += n;
	util_buf_free(&ents);
	http_respond_text(req, 200, &out);
	return;
nomem:
	util_buf_free(&ents);
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
