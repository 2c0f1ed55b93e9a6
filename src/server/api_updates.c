/* api_updates.c -- signature updates: status, imports, Update Now, the signing
 * key, the download cap; agents' updates and downloads; the dashboard. */
#include "server/api.h"

#include <string.h>
#include <time.h>

#include "common/comp.h"
#include "server/api_clients.h"
#include "server/licenses.h"
#include "server/rollout.h"

/* What the fleet runs: clients by connection state and by the scan method
 * they report, and for each component how many of the clients that use it
 * (the Virus Pattern in conventional scan, the Smart Scan Agent Pattern in
 * smart scan) have its newest version, an older one, or none. */
struct fleet {
	const struct api_ctx *ctx;
	int64_t now, total, moved;  /* moved: to other servers, not in total */
	json_t *states, *methods;
	json_t *components;  /* {name: {"latest", "current", "outdated", "missing"}} */
};

static void fleet_bump(json_t *obj, const char *key)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) +
						   1));
}

static int fleet_client(json_t *c, void *arg)
{
	struct fleet *f = arg;
	const char *state = api_clients_state(f->ctx, c, f->now);
	json_t *status = json_object_get(c, "status");
	const char *method = json_string_value(json_object_get(status, "scan_method")), *name;
	json_t *comp;
	int64_t have;

	if (strcmp(state, "moved") == 0) {
		f->moved++;
		return 0;
	}
	f->total++;
	fleet_bump(f->states, state);
	fleet_bump(f->methods, method ? method : "unknown");
	if (!method)
		return 0;
	name = comp_table()[strcmp(method, "smart") == 0 ? COMP_SMART_AGENT : COMP_VIRUS].name;
	comp = json_object_get(f->components, name);
	if (!comp || json_integer_value(json_object_get(comp, "latest")) == 0)
		return 0;
	have = json_integer_value(json_object_get(json_object_get(status, "components"), name));
	fleet_bump(comp, have == 0 ? "missing" :
		   have == json_integer_value(json_object_get(comp, "latest")) ? "current" :
		   "outdated");
	return 0;
}

/* Counts the fleet against the components of update status (as from
 * updates_status()), adding {"current", "outdated", "missing"} as "agents"
 * to each component there. Returns a new {"total", "states", "methods",
 * "moved"} (moved: clients moved to other servers, counted apart), or NULL
 * on failure. */
static json_t *count_fleet(struct api_ctx *ctx, json_t *status)
{
	struct fleet f = { .ctx = ctx, .now = (int64_t)time(NULL) };
	json_t *comp, *counts;
	const char *key;
	size_t i;

	f.states = json_pack("{si si si si}", "online", 0, "offline", 0, "roaming", 0,
			     "inactive", 0);
	f.methods = json_pack("{si si si}", "conventional", 0, "smart", 0, "unknown", 0);
	f.components = json_object();
	json_array_foreach(json_object_get(status, "components"), i, comp) {
		if (!json_string_value(json_object_get(comp, "name")))
			continue;
		counts = json_pack("{sO si si si}", "latest", json_object_get(comp, "version"),
				   "current", 0, "outdated", 0, "missing", 0);
		json_object_set_new(f.components, json_string_value(json_object_get(comp, "name")),
				    counts);
		json_object_set(comp, "agents", counts);
	}
	if (!f.states || !f.methods || !f.components ||
	    store_clients_each(ctx->st, 0, fleet_client, &f) != SERR_OK) {
		json_decref(f.states);
		json_decref(f.methods);
		json_decref(f.components);
		return NULL;
	}
	json_object_foreach(f.components, key, counts)
		json_object_del(counts, "latest");
	json_decref(f.components);
	return json_pack("{sI so so sI}", "total", (json_int_t)f.total, "states", f.states,
			 "methods", f.methods, "moved", (json_int_t)f.moved);
}

void api_updates_status(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *status = updates_status(ctx->updates), *fleet;

	(void)args;
	(void)who;
	fleet = status ? count_fleet(ctx, status) : NULL;
	if (!fleet) {
		json_decref(status);
		http_respond_error(req, 500, "database: the package or client table is unreadable");
		return;
	}
	json_decref(fleet);
	http_respond_json(req, 200, status);
}

void api_updates_settings(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, updates_settings(ctx->updates));
}

void api_updates_configure(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	json_t *given = api_args_object(args);
	char msg[512];

	if (!given)
		http_respond_error(req, 500, "out of memory");
	else if (!updates_configure(ctx->updates, given, who, msg, sizeof(msg)))
		http_respond_error(req, 400, "update settings: %s", msg);
	else
		http_respond_json(req, 200, updates_settings(ctx->updates));
	json_decref(given);
}

/* The dashboard's one request. */
void api_updates_overview(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	struct store_event_filter recent = { .kind = "detection", .limit = 10 };
	json_t *status = updates_status(ctx->updates), *fleet = NULL, *detections = NULL;
	json_t *servers = NULL, *e, *out = NULL;
	int64_t now = (int64_t)time(NULL), queued = 0;
	size_t i;

	(void)args;
	(void)who;
	if (status)
		fleet = count_fleet(ctx, status);
	if (!fleet || store_delivery_count(ctx->st, &queued) != SERR_OK ||
	    store_events(ctx->st, &recent, &detections) != SERR_OK ||
	    store_sps_list(ctx->st, &servers) != SERR_OK) {
		http_respond_error(req, 500, "database: the overview could not be read");
		goto out;
	}
	json_array_foreach(servers, i, e)
		json_object_set_new(e, "state", json_string(
			now - json_integer_value(json_object_get(e, "last_seen")) <=
			3 * ctx->cfg->heartbeat_interval ? "online" : "offline"));
	out = json_pack("{sO sO s{sO sO sO sO} sI sO s{ss sI sI sO} s{so sO}}", "agents", fleet,
			"components", json_object_get(status, "components"), "update",
			"last_import", json_object_get(status, "last_import"), "importing",
			json_object_get(status, "importing"), "downloads",
			json_object_get(status, "downloads"), "max_downloads",
			json_object_get(status, "max_downloads"), "queued", (json_int_t)queued,
			"detections", detections, "server", "version", WARD_VERSION, "started",
			(json_int_t)ctx->started, "uptime", (json_int_t)(now - ctx->started),
			"warnings", ctx->warnings, "sps", "integrated",
			ctx->sps ? sps_service_status(ctx->sps) : json_null(), "servers", servers);
	if (!out)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond_json(req, 200, out);
out:
	json_decref(status);
	json_decref(fleet);
	json_decref(detections);
	json_decref(servers);
}

void api_updates_now(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	(void)args;
	store_eventf(ctx->st, "system", 0, "%s asked for a signature import now", who);
	updates_import_now(ctx->updates, req);
}

void api_updates_rotate_key(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	(void)args;
	updates_rotate_key(ctx->updates, req, who);
}

struct update_agents {
	struct api_ctx *ctx;
	int64_t now;
	json_t *skipped;   /* {"offline": N, "roaming": N, ...} */
	json_t *ids;       /* clients to tell */
};

/* Picks the clients an Update Now reaches: online, without the roaming
 * privilege (roaming agents take updates at their scheduled update). */
static int pick_update(json_t *c, void *arg)
{
	struct update_agents *u = arg;
	const char *state = api_clients_state(u->ctx, c, u->now);
	json_t *count;

	if (strcmp(state, "online") == 0 && json_is_true(json_object_get(c, "roaming")))
		state = "roaming";
	if (strcmp(state, "online") == 0) {
		json_array_append(u->ids, json_object_get(c, "id"));
		return 0;
	}
	count = json_object_get(u->skipped, state);
	json_object_set_new(u->skipped, state, json_integer(json_integer_value(count) + 1));
	return 0;
}

static enum serr update_one(struct api_ctx *ctx, int64_t id, void *arg, char *msg,
			    size_t len)
{
	(void)arg;
	return store_client_update_now(ctx->st, id, msg, len);
}

void api_updates_agents(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *results = json_array();
	struct update_agents u = { .ctx = ctx, .now = (int64_t)time(NULL) };
	const char *scope = api_arg_string(args, "scope");
	int64_t node, told;
	char msg[256];
	enum serr err;

	u.skipped = json_object();
	u.ids = json_array();
	if (!results || !u.skipped || !u.ids) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	err = api_scope(ctx, scope, &node, msg, sizeof(msg));
	if (err == SERR_OK)
		err = api_refuse_moved(ctx, node, msg, sizeof(msg));
	if (err != SERR_OK) {
		api_store_error(req, err, msg);
		goto out;
	}
	if (store_clients_each(ctx->st, node, pick_update, &u) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the clients failed");
		goto out;
	}
	told = api_clients_each(ctx, u.ids, results, update_one, NULL);
	store_eventf(ctx->st, "system", 0, "%s told %lld agents in %s to update now", who,
		(long long)told, scope);
	notify_kick(ctx->notify);
	http_respond_json(req, 200, json_pack("{sI sO}", "notified", (json_int_t)told, "skipped",
					      u.skipped));
out:
	json_decref(u.skipped);
	json_decref(u.ids);
	json_decref(results);
}

/* Whether the licenses let component's updates out: the Virus Pattern's
 * are the antivirus service's, smart scan's patterns smart scan's. Answers
 * 403 saying why when not. */
static bool license_of(struct api_ctx *ctx, struct http_req *req, const char *component)
{
	int id = comp_find(component);
	char msg[512];

	if (id < 0 || licenses_updates(ctx->licenses, id == COMP_VIRUS ? LICENSE_ANTIVIRUS :
				       LICENSE_SMART_SCAN, msg, sizeof(msg)))
		return true;
	http_respond_error(req, 403, "%s", msg);
	return false;
}

void api_updates_agent_update(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	json_t *body = api_body_object(req);
	const char *component;
	json_int_t have;
	int full = 0;

	(void)args;
	(void)who;
	if (!body)
		return;
	if (json_unpack(body, "{s:s, s:I, s?b !}", "component", &component, "have", &have,
			"full", &full) != 0 || have < 0)
		http_respond_error(req, 400, "update: expected {\"component\", \"have\": N, "
				   "\"full\"?: BOOL}");
	else if (license_of(ctx, req, component))
		updates_plan(ctx->updates, req, component, have, full);
	json_decref(body);
}

void api_updates_agent_download(struct api_ctx *ctx, struct http_req *req, const char *who,
				const struct api_args *args)
{
	const char *file = http_req_query(req, "file");

	(void)args;
	if (!file)
		http_respond_error(req, 400, "download: the file parameter is missing");
	else if (!rollout_download(ctx->rollout, req, who, file))
		updates_download(ctx->updates, req, who, file);
}
