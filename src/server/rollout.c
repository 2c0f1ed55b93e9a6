/* rollout.c -- agent upgrades from the server (see rollout.h). */
#include "server/rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/log.h"
#include "common/util.h"
#include "server/api_clients.h"
#include "server/api_tasks.h"
#include "server/config.h"
#include "server/deploy.h"
#include "server/doorbell.h"
#include "server/updates.h"
#include "server/upgrade.h"

#define KV_ROLLOUT "agent_upgrade.rollout"
#define TICK_MS 2000
#define KIND "agent_upgrade"
/* Agents listed by state at most (the counts are whole). */
#define LIST_MAX 1000
/* Tasks of one rollout read at most. */
#define TASKS_MAX 1000000

struct rollout {
	struct api_ctx *ctx;
};

/* Where an agent stands against the packages and the rollout. */
enum stand {
	STAND_UPGRADED,     /* runs the rollout's version, or a newer one */
	STAND_IN_PROGRESS,  /* its offer is out */
	STAND_RESTART,      /* the new version waits for a restart (restart.postpone_updates) */
	STAND_FAILED,       /* its offer failed: its version came back */
	STAND_PENDING,      /* to be offered the rollout's package */
	STAND_OFFLINE,      /* would be, once online */
	STAND_PREVENTED,    /* agent.upgrade prevent */
	STAND_UNSUPPORTED,  /* no package for its platform */
	STAND_MANUAL,       /* installed from source: upgraded by hand */
	STAND_CURRENT,      /* no rollout, and nothing newer for it */
	STAND_BEHIND,       /* no rollout; a newer package for its platform */
	STAND_COUNT
};

static const char *const stand_names[STAND_COUNT] = {
	"upgraded", "in_progress", "restart_pending", "failed", "pending", "offline", "prevented",
	"unsupported", "manual", "current", "behind",
};

static const char *text_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- the rollout's record ------------------------------------------ */

/* The rollout kept in the database (a new object), or NULL: none. */
static json_t *load(struct rollout *r)
{
	char *text = NULL;
	json_t *v = NULL;

	if (store_kv_get(r->ctx->st, KV_ROLLOUT, &text) == SERR_OK)
		v = json_loads(text, 0, NULL);
	free(text);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static bool save(struct rollout *r, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS), msg[200];
	bool ok = text && store_kv_put(r->ctx->st, KV_ROLLOUT, text, msg, sizeof(msg)) == SERR_OK;

	if (!ok)
		log_msg(LOG_LVL_ERROR, "agent upgrade: the rollout could not be saved");
	free(text);
	return ok;
}

/* ---- packages ------------------------------------------------------ */

/* The agent packages that name their platform: a new list of {platform
 * ("debian-12/amd64"), version, file, size, sha256, restart}, newest
 * first within a platform. */
static json_t *packages(struct rollout *r)
{
	json_t *all = deploy_packages(r->ctx->deploy), *list = json_array(), *row, *p;
	size_t i, j;
	char platform[300];

	json_array_foreach(json_object_get(all, "packages"), i, row) {
		if (!json_object_get(row, "platform"))
			continue;
		snprintf(platform, sizeof(platform), "%s/%s", text_of(row, "platform"),
			 text_of(row, "arch"));
		p = json_pack("{ss sO sO sO sO sO}", "platform", platform, "version",
			      json_object_get(row, "version"), "file", json_object_get(row, "file"),
			      "size", json_object_get(row, "size"), "sha256",
			      json_object_get(row, "sha256"), "restart",
			      json_object_get(row, "restart"));
		/* Newest first within a platform: an insertion. */
		for (j = 0; j < json_array_size(list); j++) {
			row = json_array_get(list, j);
			if (strcmp(text_of(row, "platform"), platform) == 0 &&
			    util_deb_version_cmp(text_of(row, "version"),
						 text_of(p, "version")) < 0)
				break;
		}
		json_array_insert_new(list, j, p);
	}
	json_decref(all);
	return list;
}

/* The package of platform at version (version NULL: the newest), or NULL;
 * borrowed from list. */
static json_t *package_of(json_t *list, const char *platform, const char *version)
{
	json_t *p;
	size_t i;

	json_array_foreach(list, i, p)
		if (strcmp(text_of(p, "platform"), platform) == 0 &&
		    (!version || strcmp(text_of(p, "version"), version) == 0))
			return p;
	return NULL;
}

/* The platform client c reports ("debian-12/amd64"), or false. */
static bool platform_of(const json_t *c, char *out, size_t len)
{
	const json_t *p = json_object_get(json_object_get(c, "status"), "platform");

	if (!json_is_string(json_object_get(p, "os")) ||
	    !json_is_string(json_object_get(p, "arch")))
		return false;
	snprintf(out, len, "%s/%s", text_of(p, "os"), text_of(p, "arch"));
	return true;
}

/* The package version client c runs: the one it reports, else its
 * program's. */
static const char *version_of(const json_t *c)
{
	const json_t *s = json_object_get(c, "status");
	const char *v = json_string_value(json_object_get(s, "package_version"));

	return v ? v : text_of(s, "agent_version");
}

/* ---- where each agent stands --------------------------------------- */

struct walk {
	struct rollout *r;
	json_t *rollout;     /* the rollout, or NULL */
	json_t *packages;
	json_t *tasks;       /* client id (text) -> its newest task of the rollout */
	int64_t now;
	int64_t counts[STAND_COUNT];
	json_t *agents;      /* listed: [{client, hostname, version, platform, state, reason}] */
	json_t *outdated;    /* older than ROLLOUT_MIN_AGENT */
	/* handing out: */
	bool offer;
	int64_t free;        /* batch slots left */
	int64_t queued;
};

/* Whether client c's effective agent.upgrade lets it be upgraded. */
static bool allowed(struct rollout *r, const json_t *c)
{
	char *text = NULL, msg[200];
	int64_t version;
	json_t *eff;
	bool ok = true;

	/* A listing read every client's settings with the clients. */
	if (json_is_object(json_object_get(c, "settings")))
		return strcmp(text_of(json_object_get(c, "settings"), "agent.upgrade"),
			      "prevent") != 0;
	if (store_agent_settings(r->ctx->st, json_integer_value(json_object_get(c, "id")), &text,
				 &version, msg, sizeof(msg)) != SERR_OK)
		return false;
	eff = json_loads(text, 0, NULL);
	ok = strcmp(text_of(eff, "agent.upgrade"), "prevent") != 0;
	json_decref(eff);
	free(text);
	return ok;
}

static enum stand stand_of(struct walk *w, json_t *c, const char *platform, const char **why)
{
	const char *target = w->rollout ? text_of(w->rollout, "version") : NULL;
	const char *install = text_of(json_object_get(c, "status"), "install"), *state;
	json_t *task, *newest, *pending;
	char key[32];

	*why = NULL;
	if (w->rollout) {
		snprintf(key, sizeof(key), "%lld",
			 (long long)json_integer_value(json_object_get(c, "id")));
		task = json_object_get(w->tasks, key);
		state = text_of(task, "state");
		if (util_deb_version_cmp(version_of(c), target) >= 0)
			return STAND_UPGRADED;
		if (task && (strcmp(state, "queued") == 0 || strcmp(state, "delivered") == 0 ||
			     strcmp(state, "running") == 0)) {
			pending = json_object_get(json_object_get(c, "status"), "restart_pending");
			if (strcmp(text_of(pending, "version"), target) != 0)
				return STAND_IN_PROGRESS;
			*why = strcmp(text_of(pending, "needs"), "host") == 0 ?
			       "it waits for the host's restart" :
			       "it waits for the agent's restart";
			return STAND_RESTART;
		}
		if (task && (strcmp(state, "failed") == 0 || strcmp(state, "completed") == 0)) {
			*why = json_string_value(json_object_get(task, "error"));
			if (!*why && strcmp(state, "completed") == 0)
				*why = "it reported the upgrade done, but runs another version";
			return STAND_FAILED;
		}
	}
	if (!platform[0]) {
		*why = "it reports no platform";
		return STAND_UNSUPPORTED;
	}
	newest = package_of(w->packages, platform, NULL);
	if (!newest || (w->rollout && !package_of(w->packages, platform, target))) {
		*why = "no package for its platform";
		return STAND_UNSUPPORTED;
	}
	if (strcmp(install, "source") == 0)
		return STAND_MANUAL;
	/* Nothing would bring its version back if the new one failed. */
	if (!json_is_true(json_object_get(json_object_get(c, "status"), "supervised"))) {
		*why = strcmp(install, "dpkg") == 0 ?
		       "installed by its Debian package, but not run by systemd as its service: "
		       "upgraded by the package manager" :
		       "not run by ward-agent supervise, which would bring its version back";
		return STAND_MANUAL;
	}
	if (!w->rollout)
		return util_deb_version_cmp(version_of(c), text_of(newest, "version")) < 0 ?
		       STAND_BEHIND : STAND_CURRENT;
	if (strcmp(api_clients_state(w->r->ctx, c, w->now), "online") != 0)
		return STAND_OFFLINE;
	/* Its settings are read only when it could be offered one now, or
	 * for a listing: a tick over a large fleet with no slot free reads
	 * none. */
	if ((!w->offer || w->free > 0) && !allowed(w->r, c))
		return STAND_PREVENTED;
	return STAND_PENDING;
}

/* The description of package p (of platform) that agents check before
 * they install anything, signed: a new reference, or NULL (out of memory). */
static json_t *signed_package(struct api_ctx *ctx, const json_t *p, const char *platform)
{
	const char *slash = strchr(platform, '/');
	char *text = NULL, os[300];
	json_t *desc, *signed_desc = NULL;

	snprintf(os, sizeof(os), "%.*s", (int)(slash - platform), platform);
	desc = json_pack("{ss ss ss ss ss sO sO sO sO}", "kind", "agent-package", "package",
			 "ward-agent", "version", text_of(p, "version"), "os", os, "arch",
			 slash + 1, "file", json_object_get(p, "file"), "size",
			 json_object_get(p, "size"),
			 "sha256", json_object_get(p, "sha256"), "restart",
			 json_object_get(p, "restart"));
	text = desc ? json_dumps(desc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	signed_desc = text ? updates_sign(ctx->updates, text) : NULL;
	json_decref(desc);
	free(text);
	return signed_desc;
}

/* Offers the rollout's package to client c; true when queued. An agent
 * installed by its Debian package is also given the package of the
 * version it runs, when there is one: it goes back to that one through
 * dpkg if the new one fails. */
static bool offer(struct walk *w, json_t *c, const char *platform)
{
	struct api_ctx *ctx = w->r->ctx;
	json_t *p = package_of(w->packages, platform, text_of(w->rollout, "version"));
	json_t *prev = NULL, *args = NULL, *signed_offer = signed_package(ctx, p, platform);
	const char *install = text_of(json_object_get(c, "status"), "install");
	const json_t *running = package_of(w->packages, platform, version_of(c));
	char msg[300];
	int64_t id = 0;
	bool ok = false;
	enum serr err;

	/* (Not offered without it when it could not be signed.) */
	if (strcmp(install, "dpkg") == 0 && running &&
	    !(prev = signed_package(ctx, running, platform))) {
		json_decref(signed_offer);
		signed_offer = NULL;
	}
	args = signed_offer ? json_pack("{sO sO sO}", "version", json_object_get(w->rollout,
					"version"), "window", json_object_get(w->rollout, "window"),
					"offer", signed_offer) : NULL;
	if (args && prev && json_object_set(args, "previous", prev) != 0) {
		json_decref(args);
		args = NULL;
	}
	err = args ? api_tasks_queue(ctx, json_integer_value(json_object_get(c, "id")), KIND,
				     args, text_of(w->rollout, "by"), &id, msg, sizeof(msg)) :
		     SERR_NOMEM;
	/* SERR_EXIST: an offer of an earlier rollout is still under way there. */
	if (err == SERR_OK || err == SERR_EXIST)
		ok = true;
	else
		log_msg(LOG_LVL_WARN, "agent upgrade: offering %s to client %lld failed: %s",
			text_of(p, "version"),
			(long long)json_integer_value(json_object_get(c, "id")),
			args ? msg : "out of memory");
	json_decref(args);
	json_decref(prev);
	json_decref(signed_offer);
	return ok;
}

static void list_agent(struct walk *w, json_t *c, const char *platform, enum stand s,
		       const char *why)
{
	json_t *o;

	if (json_array_size(w->agents) >= LIST_MAX)
		return;
	o = json_pack("{sO sO ss ss ss}", "client", json_object_get(c, "id"), "hostname",
		      json_object_get(c, "hostname"), "version", version_of(c), "platform",
		      platform[0] ? platform : "unknown", "state", stand_names[s]);
	if (o && why)
		json_object_set_new(o, "reason", json_string(why));
	json_array_append_new(w->agents, o);
}

static int walk_client(json_t *c, void *arg)
{
	struct walk *w = arg;
	const char *why, *program;
	char platform[300] = "";
	enum stand s;

	if (strcmp(api_clients_state(w->r->ctx, c, w->now), "moved") == 0)
		return 0;
	platform_of(c, platform, sizeof(platform));
	program = text_of(json_object_get(c, "status"), "agent_version");
	if (program[0] && util_version_cmp(program, UPGRADE_MIN_AGENT) < 0 &&
	    json_array_size(w->outdated) < LIST_MAX)
		json_array_append_new(w->outdated, json_pack("{sO sO ss}", "client",
							     json_object_get(c, "id"), "hostname",
							     json_object_get(c, "hostname"),
							     "version", program));
	s = stand_of(w, c, platform, &why);
	/* Waiting for a restart holds no slot of the batch. */
	if (s == STAND_RESTART)
		w->free++;
	if (s == STAND_PENDING && w->offer && w->free > 0 && offer(w, c, platform)) {
		s = STAND_IN_PROGRESS;
		w->free--;
		w->queued++;
	}
	w->counts[s]++;
	if (!w->offer && s != STAND_UPGRADED && s != STAND_PENDING && s != STAND_CURRENT)
		list_agent(w, c, platform, s, why);
	return 0;
}

/* The newest task of the rollout of each client: {client id: task}. */
static json_t *rollout_tasks(struct rollout *r, const json_t *rollout)
{
	struct store_task_filter f = { .kind = KIND, .limit = TASKS_MAX,
				       .since = json_integer_value(json_object_get(rollout,
										  "started")) };
	json_t *list = NULL, *by = json_object(), *t;
	char key[32];
	size_t i;

	if (store_tasks_list(r->ctx->st, &f, &list) != SERR_OK) {
		json_decref(by);
		return NULL;
	}
	/* Newest first: the first of each client is its newest. */
	json_array_foreach(list, i, t) {
		snprintf(key, sizeof(key), "%lld",
			 (long long)json_integer_value(json_object_get(t, "client")));
		if (!json_object_get(by, key))
			json_object_set(by, key, t);
	}
	json_decref(list);
	return by;
}

/* Walks the agents of the scope (everyone without a rollout), counting
 * where they stand; with offer, hands out the rollout's free slots. */
static bool walk(struct rollout *r, struct walk *w, json_t *rollout, bool hand_out)
{
	int64_t node = 0;
	char msg[200];

	memset(w, 0, sizeof(*w));
	w->r = r;
	w->rollout = rollout;
	w->now = (int64_t)time(NULL);
	w->packages = packages(r);
	w->agents = json_array();
	w->outdated = json_array();
	w->tasks = rollout ? rollout_tasks(r, rollout) : json_object();
	if (!w->packages || !w->agents || !w->outdated || !w->tasks)
		return false;
	if (rollout && store_domain_lookup(r->ctx->st, text_of(rollout, "scope"), 0, &node, msg,
					   sizeof(msg)) != SERR_OK)
		return false;
	if (hand_out) {
		int64_t busy = 0;
		const char *key, *state;
		json_t *t;

		json_object_foreach(w->tasks, key, t) {
			state = text_of(t, "state");
			busy += strcmp(state, "queued") == 0 || strcmp(state, "delivered") == 0 ||
				strcmp(state, "running") == 0;
		}
		w->offer = true;
		w->free = json_integer_value(json_object_get(rollout, "batch")) - busy;
	}
	/* A listing reads the settings of every client with them, in one
	 * statement; a tick those of the few it may offer to, one by one. */
	return (hand_out ? store_clients_each(r->ctx->st, node, walk_client, w) :
		store_clients_each_settings(r->ctx->st, node, walk_client, w)) == SERR_OK;
}

static void walk_free(struct walk *w)
{
	json_decref(w->packages);
	json_decref(w->agents);
	json_decref(w->outdated);
	json_decref(w->tasks);
}

static json_t *counts_json(const struct walk *w)
{
	json_t *o = json_object();
	int s;

	for (s = 0; o && s < STAND_COUNT; s++)
		json_object_set_new(o, stand_names[s], json_integer(w->counts[s]));
	return o;
}

/* ---- the timer ------------------------------------------------------ */

static void end(struct rollout *r, json_t *rollout, const char *state, const char *reason)
{
	json_object_set_new(rollout, "state", json_string(state));
	json_object_set_new(rollout, "ended", json_integer((json_int_t)time(NULL)));
	if (reason)
		json_object_set_new(rollout, "reason", json_string(reason));
	if (save(r, rollout))
		store_eventf(r->ctx->st, "system", 0, "agent upgrade to %s %s%s%s",
			     text_of(rollout, "version"), state, reason ? ": " : "",
			     reason ? reason : "");
}

static void tick(void *arg)
{
	struct rollout *r = arg;
	json_t *rollout;
	int64_t failures, max;
	struct walk w;
	char why[300];

	/* It can wait: a statement to a database cut off without a word
	 * would hold the loop until the store gives up on it. */
	if (!doorbell_answering(r->ctx->bell))
		return;
	rollout = load(r);
	if (!rollout || strcmp(text_of(rollout, "state"), "running") != 0) {
		json_decref(rollout);
		return;
	}
	if (!walk(r, &w, rollout, true)) {
		log_msg(LOG_LVL_ERROR, "agent upgrade: reading the clients or tasks failed");
		goto out;
	}
	failures = w.counts[STAND_FAILED];
	max = json_integer_value(json_object_get(rollout, "max_failures"));
	/* Counted from the last resume: a resumed rollout gets max again. */
	if (max > 0 && failures - json_integer_value(json_object_get(rollout, "failed_before")) >=
	    max) {
		snprintf(why, sizeof(why), "%lld agents failed to run it and went back to their "
			 "version (max_failures %lld)", (long long)failures, (long long)max);
		json_object_set_new(rollout, "state", json_string("paused"));
		json_object_set_new(rollout, "reason", json_string(why));
		if (save(r, rollout))
			store_eventf(r->ctx->st, "system", 0, "agent upgrade to %s paused: %s",
				     text_of(rollout, "version"), why);
	} else if (w.counts[STAND_PENDING] == 0 && w.counts[STAND_IN_PROGRESS] == 0 &&
		   w.counts[STAND_OFFLINE] == 0 && w.counts[STAND_RESTART] == 0) {
		snprintf(why, sizeof(why), "%lld upgraded, %lld failed", (long long)
			 w.counts[STAND_UPGRADED], (long long)failures);
		end(r, rollout, "done", why);
	}
out:
	walk_free(&w);
	json_decref(rollout);
}

struct rollout *rollout_new(struct api_ctx *ctx, struct http_server *http)
{
	struct rollout *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ctx = ctx;
	if (http_every(http, TICK_MS, tick, r) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

void rollout_free(struct rollout *r)
{
	free(r);
}

bool rollout_download(struct rollout *r, struct http_req *req, const char *who,
		      const char *file)
{
	json_t *list, *p;
	const char *dir = r->ctx->cfg->deploy_package_dir;
	char *path = NULL;
	bool found = false;
	size_t i, n = strlen(file);

	/* Component downloads (the many) never read the package directory. */
	if (strncmp(file, "ward-agent_", 11) != 0 || n < 5 || strcmp(file + n - 4, ".deb") != 0)
		return false;
	list = packages(r);

	json_array_foreach(list, i, p)
		if (strcmp(text_of(p, "file"), file) == 0) {
			found = true;
			path = util_path_join(dir, file);
			if (!path)
				http_respond_error(req, 500, "out of memory");
			else
				updates_send(r->ctx->updates, req, who, path, file,
					     json_integer_value(json_object_get(p, "size")));
			break;
		}
	free(path);
	json_decref(list);
	return found;
}

/* ---- the operations ------------------------------------------------- */

void rollout_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args)
{
	struct rollout *r = ctx->rollout;
	json_t *rollout = load(r), *out;
	struct walk w;

	(void)who;
	(void)args;
	if (!walk(r, &w, rollout, false)) {
		walk_free(&w);
		json_decref(rollout);
		http_respond_error(req, 500, "database: reading the clients or tasks failed");
		return;
	}
	if (rollout)
		json_object_set_new(rollout, "counts", counts_json(&w));
	out = json_pack("{sO so* sO sO ss}", "packages", w.packages, "rollout", rollout, "agents",
			w.agents, "outdated", w.outdated, "min_version", UPGRADE_MIN_AGENT);
	if (out && !rollout)
		json_object_set_new(out, "counts", counts_json(&w));
	walk_free(&w);
	http_respond_json(req, 200, out);
}

void rollout_post(struct api_ctx *ctx, struct http_req *req, const char *who,
		  const struct api_args *args)
{
	struct rollout *r = ctx->rollout;
	const char *version = api_arg_string(args, "version"), *scope = api_arg_string(args,
										      "scope");
	int64_t batch = 50, max_failures = 10, window = 60, node;
	json_t *have = load(r), *list = NULL, *p, *rollout = NULL;
	char msg[300];
	bool any = false;
	size_t i;

	api_arg_int(args, "batch", &batch);
	api_arg_int(args, "max_failures", &max_failures);
	api_arg_int(args, "window", &window);
	if (!scope)
		scope = "/";
	if (have && (strcmp(text_of(have, "state"), "running") == 0 ||
		     strcmp(text_of(have, "state"), "paused") == 0)) {
		http_respond_error(req, 409, "a rollout of %s is %s: cancel it first (ward "
				   "agent-upgrade cancel)", text_of(have, "version"),
				   text_of(have, "state"));
		goto out;
	}
	if (batch < 1 || batch > 10000 || max_failures < 0 || max_failures > 1000000 ||
	    window < 10 || window > 3600) {
		http_respond_error(req, 400, "batch: 1 to 10000; max_failures: 0 to 1000000; "
				   "window: 10 to 3600 seconds");
		goto out;
	}
	if (store_domain_lookup(ctx->st, scope, 0, &node, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 404, "scope: %s", msg);
		goto out;
	}
	list = packages(r);
	json_array_foreach(list, i, p)
		any = any || strcmp(text_of(p, "version"), version) == 0;
	if (!any) {
		http_respond_error(req, 404, "no agent package of version %.64s for any platform "
				   "in %s (ward agent-upgrade status lists them)", version,
				   ctx->cfg->deploy_package_dir);
		goto out;
	}
	rollout = json_pack("{ss ss sI sI sI ss sI ss}", "version", version, "scope", scope,
			    "batch", (json_int_t)batch, "max_failures", (json_int_t)max_failures,
			    "window", (json_int_t)window, "state", "running", "started",
			    (json_int_t)time(NULL), "by", who);
	if (!rollout || !save(r, rollout)) {
		http_respond_error(req, 500, "database: the rollout could not be saved");
		goto out;
	}
	store_eventf(ctx->st, "system", 0, "%s started rolling agent %s out to %s, %lld at a time",
		     who, version, scope, (long long)batch);
	tick(r);
	http_respond_json(req, 201, json_incref(rollout));
out:
	json_decref(rollout);
	json_decref(list);
	json_decref(have);
}

/* Moves the running (or paused) rollout from one of from to state to. */
static void change(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const char *const from[2], const char *to)
{
	struct rollout *r = ctx->rollout;
	json_t *rollout = load(r);
	const char *state = text_of(rollout, "state");
	struct walk w;

	if (!rollout || (strcmp(state, from[0]) != 0 && (!from[1] || strcmp(state,
									      from[1]) != 0))) {
		http_respond_error(req, 409, "no rollout is %s%s%s", from[0], from[1] ? " or " : "",
				   from[1] ? from[1] : "");
		json_decref(rollout);
		return;
	}
	json_object_del(rollout, "reason");
	if (strcmp(to, "running") == 0) {
		/* The failures so far paused it: max_failures counts anew. */
		if (walk(r, &w, rollout, false))
			json_object_set_new(rollout, "failed_before",
					    json_integer(w.counts[STAND_FAILED]));
		walk_free(&w);
	}
	if (strcmp(to, "cancelled") == 0)
		end(r, rollout, to, NULL);
	else if (json_object_set_new(rollout, "state", json_string(to)) == 0 && save(r, rollout))
		store_eventf(ctx->st, "system", 0, "%s %s the agent upgrade to %s", who,
			     strcmp(to, "paused") == 0 ? "paused" : "resumed",
			     text_of(rollout, "version"));
	if (strcmp(to, "running") == 0)
		tick(r);
	http_respond_json(req, 200, rollout);
}

void rollout_pause(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args)
{
	(void)args;
	change(ctx, req, who, (const char *const[2]){ "running", NULL }, "paused");
}

void rollout_resume(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args)
{
	(void)args;
	change(ctx, req, who, (const char *const[2]){ "paused", NULL }, "running");
}

void rollout_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args)
{
	(void)args;
	change(ctx, req, who, (const char *const[2]){ "running", "paused" }, "cancelled");
}
