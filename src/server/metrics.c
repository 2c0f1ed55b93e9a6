/* metrics.c -- GET /metrics in the Prometheus text format (see
 * metrics.h, docs/api.md). */
#include "server/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ops.h"
#include "common/util.h"
#include "server/api.h"
#include "server/api_clients.h"
#include "server/backups.h"
#include "server/licenses.h"
#include "sps/service.h"

/* The statuses counted apart; any other is counted as "other". */
static const unsigned statuses[] = { 200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 409,
				     413, 429, 500, 503, 507 };
#define NSTATUS (sizeof(statuses) / sizeof(*statuses) + 1)
/* Routes: each operation, the smart protection server's, any other. */
#define NROUTES (OPS_COUNT + 2)
/* Upper bounds (seconds) of the delivery latency's buckets. */
static const double bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NBOUNDS (sizeof(bounds) / sizeof(*bounds))

struct metrics {
	int64_t requests[NROUTES][NSTATUS];
	int64_t delivered[NBOUNDS + 1];  /* per bucket, the last one +Inf */
	double delivered_sum;
	int64_t delivered_count;
	int64_t detections;
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	free(m);
}

void metrics_answered(struct http_req *req, unsigned status, void *arg)
{
	struct metrics *m = arg;
	int route = http_req_route(req);
	size_t r = route >= 0 && route < OPS_COUNT ? (size_t)route :
		   route == METRICS_ROUTE_SPS ? OPS_COUNT : OPS_COUNT + 1, s;

	for (s = 0; s < NSTATUS - 1 && statuses[s] != status; s++)
		;
	m->requests[r][s]++;
}

void metrics_delivered(struct metrics *m, double seconds)
{
	size_t i;

	for (i = 0; i < NBOUNDS && seconds > bounds[i]; i++)
		;
	m->delivered[i]++;
	m->delivered_sum += seconds;
	m->delivered_count++;
}

void metrics_detections(struct metrics *m, int64_t n)
{
	m->detections += n;
}

/* One metric's HELP and TYPE lines. */
static void head(struct util_buf *b, const char *name, const char *type, const char *help)
{
	util_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Counts clients by their state and the scan method they reported. */
struct census {
	const struct api_ctx *ctx;
	int64_t now;
	json_t *counts;           /* {"STATE METHOD": n} */
	int64_t *use;             /* the clients using each licensed service */
};

static int census_add(json_t *c, void *arg)
{
	struct census *k = arg;
	const char *method = json_string_value(json_object_get(json_object_get(c, "status"),
							      "scan_method"));
	char key[96];

	snprintf(key, sizeof(key), "%s %s", api_clients_state(k->ctx, c, k->now),
		 method && (!strcmp(method, "smart") || !strcmp(method, "conventional")) ?
		 method : "unknown");
	json_object_set_new(k->counts, key, json_integer(json_integer_value(
		json_object_get(k->counts, key)) + 1));
	licenses_count(k->ctx, c, k->now, k->use);
	return 0;
}

/* The agents by state and method; use gets the clients using each
 * licensed service, counted in the same walk (one per scrape, whatever
 * the licenses' own count last was). False when the clients could not be
 * read. */
static bool agents(struct util_buf *b, const struct api_ctx *ctx,
		   int64_t use[LICENSE_NSERVICES])
{
	struct census k = { ctx, (int64_t)time(NULL), json_object(), use };
	const char *key;
	json_t *n;
	char state[48];
	int64_t queued = 0;
	bool counted;

	head(b, "ward_agents", "gauge", "Clients by their verified state and the scan method "
	     "they report.");
	counted = k.counts && store_clients_each(ctx->st, 0, census_add, &k) == SERR_OK;
	if (counted)
		json_object_foreach(k.counts, key, n) {
			snprintf(state, sizeof(state), "%.*s", (int)strcspn(key, " "), key);
			util_buf_printf(b, "ward_agents{state=\"%s\",method=\"%s\"} %lld\n", state,
					key + strcspn(key, " ") + 1,
					(long long)json_integer_value(n));
		}
	json_decref(k.counts);
	store_delivery_count(ctx->st, &queued);
	head(b, "ward_deliveries_queued", "gauge", "Deliveries of settings waiting.");
	util_buf_printf(b, "ward_deliveries_queued %lld\n", (long long)queued);
	head(b, "ward_deliveries_in_flight", "gauge", "Deliveries sent, not yet acknowledged.");
	util_buf_printf(b, "ward_deliveries_in_flight %lld\n",
			(long long)notify_in_flight(ctx->notify));
	head(b, "ward_deliveries_paused", "gauge", "1 while deliveries are held.");
	util_buf_printf(b, "ward_deliveries_paused %d\n", notify_paused(ctx->notify) ? 1 : 0);
	return counted;
}

static void deliveries(struct util_buf *b, const struct metrics *m)
{
	int64_t below = 0;
	size_t i;

	head(b, "ward_delivery_seconds", "histogram", "From sending a delivery of settings to "
	     "its acknowledgement.");
	for (i = 0; i < NBOUNDS; i++) {
		below += m->delivered[i];
		util_buf_printf(b, "ward_delivery_seconds_bucket{le=\"%g\"} %lld\n", bounds[i],
				(long long)below);
	}
	util_buf_printf(b, "ward_delivery_seconds_bucket{le=\"+Inf\"} %lld\n"
			"ward_delivery_seconds_sum %.3f\nward_delivery_seconds_count %lld\n",
			(long long)m->delivered_count, m->delivered_sum,
			(long long)m->delivered_count);
}

static void updates(struct util_buf *b, const struct api_ctx *ctx)
{
	json_t *u = updates_counts(ctx->updates), *last = json_object_get(u, "last_import");

	head(b, "ward_imports_total", "counter", "Signature imports since wardd started.");
	util_buf_printf(b, "ward_imports_total{result=\"ok\"} %lld\n"
			"ward_imports_total{result=\"failed\"} %lld\n",
			(long long)json_integer_value(json_object_get(u, "imports_ok")),
			(long long)json_integer_value(json_object_get(u, "imports_failed")));
	head(b, "ward_import_running", "gauge", "1 while an import runs.");
	util_buf_printf(b, "ward_import_running %d\n",
			json_is_true(json_object_get(u, "importing")) ? 1 : 0);
	if (last) {
		head(b, "ward_import_last_timestamp_seconds", "gauge", "When the last import "
		     "ended, and whether it succeeded (label ok).");
		util_buf_printf(b, "ward_import_last_timestamp_seconds{ok=\"%s\"} %lld\n",
				json_is_true(json_object_get(last, "ok")) ? "true" : "false",
				(long long)json_integer_value(json_object_get(last, "time")));
	}
	head(b, "ward_downloads", "gauge", "Package downloads being sent.");
	util_buf_printf(b, "ward_downloads %lld\n",
			(long long)json_integer_value(json_object_get(u, "downloads")));
	head(b, "ward_downloads_peak", "gauge", "The most downloads at once since start.");
	util_buf_printf(b, "ward_downloads_peak %lld\n",
			(long long)json_integer_value(json_object_get(u, "downloads_peak")));
	head(b, "ward_downloads_max", "gauge", "The cap on downloads at once.");
	util_buf_printf(b, "ward_downloads_max %lld\n",
			(long long)json_integer_value(json_object_get(u, "max_downloads")));
	json_decref(u);
}

static void sps(struct util_buf *b, const struct api_ctx *ctx)
{
	json_t *s = ctx->sps ? sps_service_status(ctx->sps) : NULL;
	const json_t *lat = json_object_get(s, "latency_us");
	static const char *const counters[] = { "requests", "queries", "hits", "errors" };
	char name[64];
	size_t i;

	if (!s)
		return;
	for (i = 0; i < sizeof(counters) / sizeof(*counters); i++) {
		snprintf(name, sizeof(name), "ward_sps_%s_total", counters[i]);
		head(b, name, "counter", "Smart protection lookups of the integrated server.");
		util_buf_printf(b, "%s %lld\n", name,
				(long long)json_integer_value(json_object_get(s, counters[i])));
	}
	head(b, "ward_sps_lookup_seconds", "summary", "Time to answer a smart protection "
	     "lookup (recent lookups).");
	util_buf_printf(b, "ward_sps_lookup_seconds{quantile=\"0.5\"} %.6f\n"
			"ward_sps_lookup_seconds{quantile=\"0.99\"} %.6f\n",
			(double)json_integer_value(json_object_get(lat, "p50")) / 1e6,
			(double)json_integer_value(json_object_get(lat, "p99")) / 1e6);
	json_decref(s);
}

static void backups(struct util_buf *b, const struct api_ctx *ctx)
{
	json_t *s = backups_status(ctx->backups), *newest;
	json_int_t when;

	if (!s)
		return;
	newest = json_array_get(json_object_get(s, "archives"), 0);
	when = json_integer_value(json_object_get(newest, "time"));
	head(b, "ward_backup_archives", "gauge", "Archives in backup.dir.");
	util_buf_printf(b, "ward_backup_archives %zu\n",
			json_array_size(json_object_get(s, "archives")));
	if (when) {
		head(b, "ward_backup_last_timestamp_seconds", "gauge", "When the newest archive "
		     "in backup.dir was written.");
		util_buf_printf(b, "ward_backup_last_timestamp_seconds %lld\n", (long long)when);
		head(b, "ward_backup_age_seconds", "gauge", "How old the newest archive is.");
		util_buf_printf(b, "ward_backup_age_seconds %lld\n",
				(long long)((json_int_t)time(NULL) - when));
	}
	head(b, "ward_backup_last_failed", "gauge", "1 when the last backup wardd made "
	     "failed.");
	util_buf_printf(b, "ward_backup_last_failed %d\n", json_object_get(s, "last") &&
			!json_is_true(json_object_get(json_object_get(s, "last"), "ok")) ? 1 : 0);
	json_decref(s);
}

/* Each service's licenses: their state, seats, the clients using it and
 * their dates. */
static void licenses(struct util_buf *b, const struct api_ctx *ctx,
		     const int64_t use[LICENSE_NSERVICES])
{
	json_t *list = licenses_services_counted(ctx->licenses, (int64_t)time(NULL), use), *s;
	static const char *const states[] = { "active", "grace", "ended", "pending",
					      "unlicensed" };
	const char *name, *state;
	json_int_t until;
	size_t i, j;

	if (!list)
		return;
	head(b, "ward_license_state", "gauge", "1 for the state of each service's licenses "
	     "(active; grace: expired, updates go on; ended: updates stopped; pending; "
	     "unlicensed).");
	json_array_foreach(list, i, s) {
		name = json_string_value(json_object_get(s, "service"));
		state = json_string_value(json_object_get(s, "state"));
		for (j = 0; j < sizeof(states) / sizeof(states[0]); j++)
			util_buf_printf(b, "ward_license_state{service=\"%s\",state=\"%s\"} %d\n",
					name, states[j], strcmp(state, states[j]) == 0);
	}
	head(b, "ward_license_seats", "gauge", "Seats the licenses of each service cover.");
	json_array_foreach(list, i, s)
		util_buf_printf(b, "ward_license_seats{service=\"%s\"} %lld\n",
				json_string_value(json_object_get(s, "service")),
				(long long)json_integer_value(json_object_get(s, "seats")));
	head(b, "ward_license_in_use", "gauge", "Clients using each service.");
	json_array_foreach(list, i, s)
		util_buf_printf(b, "ward_license_in_use{service=\"%s\"} %lld\n",
				json_string_value(json_object_get(s, "service")),
				(long long)json_integer_value(json_object_get(s, "in_use")));
	head(b, "ward_license_expiry_timestamp_seconds", "gauge", "When each service's "
	     "coverage ends (its licenses' expiry).");
	json_array_foreach(list, i, s) {
		name = json_string_value(json_object_get(s, "service"));
		until = json_integer_value(json_object_get(s, "expires"));
		if (until)
			util_buf_printf(b, "ward_license_expiry_timestamp_seconds{service=\"%s\"} "
					"%lld\n", name, (long long)until);
	}
	json_decref(list);
}

/* A gauge by state: one sample for each of states (NULL-terminated),
 * counted from counts ([{state, n}], taken; NULL: the store failed, no
 * samples). */
static void by_state(struct util_buf *b, const char *name, const char *help,
		     const char *const *states, json_t *counts)
{
	const json_t *c;
	json_int_t n;
	size_t i;

	if (!counts)
		return;
	head(b, name, "gauge", help);
	for (; *states; states++) {
		n = 0;
		json_array_foreach(counts, i, c)
			if (strcmp(json_string_value(json_object_get(c, "state")), *states) == 0)
				n = json_integer_value(json_object_get(c, "n"));
		util_buf_printf(b, "%s{state=\"%s\"} %lld\n", name, *states, (long long)n);
	}
	json_decref(counts);
}

static void deployments_alerts(struct util_buf *b, const struct api_ctx *ctx)
{
	static const char *const alert_states[] = { "pending", "sent", "failed", NULL };
	json_t *counts = NULL;

	if (store_deploy_count(ctx->st, (int64_t)time(NULL), &counts) != SERR_OK)
		counts = NULL;
	by_state(b, "ward_deployments", "Agent deployments by state (script and package: in "
		 "progress; the others ended, and listed for deploy.keep).", store_deploy_states,
		 counts);
	if (store_alert_counts(ctx->st, &counts) != SERR_OK)
		counts = NULL;
	by_state(b, "ward_alert_messages", "Alert messages by state (pending: not sent yet, "
		 "or to be tried again; failed: given up), kept for logs.keep.", alert_states,
		 counts);
	head(b, "ward_store_work_total", "counter", "Work the database did for wardd (SQLite: "
	     "virtual machine steps), to compare what operations cost.");
	util_buf_printf(b, "ward_store_work_total %lld\n", (long long)store_work(ctx->st));
}

static void requests(struct util_buf *b, const struct metrics *m)
{
	const struct ops_op *ops = ops_table();
	char code[8];
	size_t r, s;

	head(b, "ward_http_requests_total", "counter", "Requests answered, by route and "
	     "status.");
	for (r = 0; r < NROUTES; r++)
		for (s = 0; s < NSTATUS; s++) {
			if (!m->requests[r][s])
				continue;
			snprintf(code, sizeof(code), s < NSTATUS - 1 ? "%u" : "other",
				 s < NSTATUS - 1 ? statuses[s] : 0);
			util_buf_printf(b, "ward_http_requests_total{method=\"%s\",route=\"%s\","
					"status=\"%s\"} %lld\n", r < OPS_COUNT ? ops[r].method : "",
					r < OPS_COUNT ? ops[r].path : r == OPS_COUNT ? "/sps/v1" :
					"other", code, (long long)m->requests[r][s]);
		}
	head(b, "ward_detections_total", "counter", "Detections agents reported since wardd "
	     "started.");
	util_buf_printf(b, "ward_detections_total %lld\n", (long long)m->detections);
}

void metrics_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args)
{
	struct util_buf b = { 0 };
	int64_t use[LICENSE_NSERVICES] = { 0 };
	bool counted;

	(void)who;
	(void)args;
	counted = agents(&b, ctx, use);
	deliveries(&b, ctx->metrics);
	updates(&b, ctx);
	sps(&b, ctx);
	backups(&b, ctx);
	if (counted)
		licenses(&b, ctx, use);
	deployments_alerts(&b, ctx);
	requests(&b, ctx->metrics);
	http_respond_data(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
