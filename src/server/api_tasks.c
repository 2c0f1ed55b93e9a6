/* api_tasks.c -- tasks for agents: Scan Now on a scope, the list of tasks,
 * one task, cancelling, and the agents' reports on their tasks (see
 * api_tasks.h). */
#include "server/api_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "server/api_clients.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 10000

/* Bytes of the error text an agent reports on a failed task. */
#define MAX_ERROR 1024

/* Seconds an agent's clock may run ahead of the server's in a report. */
#define CLOCK_SLACK 86400

enum serr api_tasks_queue(struct api_ctx *ctx, int64_t client, const char *kind,
			  const json_t *args, const char *who, int64_t *id, char *msg,
			  size_t len)
{
	char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	enum serr err;

	if (!text) {
		snprintf(msg, len, "out of memory");
		return SERR_NOMEM;
	}
	err = api_refuse_moved(ctx, client, msg, len);
	if (err == SERR_OK)
		err = store_task_add(ctx->st, client, kind, text, who,
				     ctx->cfg->tasks_max_per_client, id, msg, len);
	free(text);
	if (err == SERR_OK)
		notify_tasks(ctx->notify, client);
	return err;
}

/* Checks the paths of a Scan Now: a list of absolute paths as the
 * settings of type paths take. */
static bool paths_ok(const json_t *paths, char *msg, size_t len)
{
	const char *why;
	json_t *v;
	size_t i;

	if (!json_is_array(paths) || json_array_size(paths) == 0 ||
	    json_array_size(paths) > SETTINGS_MAX_PATHS) {
		snprintf(msg, len, "paths: expected a list of 1 to %d absolute paths",
			 SETTINGS_MAX_PATHS);
		return false;
	}
	json_array_foreach(paths, i, v)
		if (!json_is_string(v) ||
		    !settings_path_ok(json_string_value(v), json_string_length(v), &why)) {
			snprintf(msg, len, "paths[%zu]: %s (absolute, no . or .. components, no "
				 "trailing slash, at most %d bytes)", i,
				 json_is_string(v) ? why : "not a string", SETTINGS_MAX_PATH_LEN);
			return false;
		}
	return true;
}

struct scan_pick {
	struct api_ctx *ctx;
	int64_t now;
	json_t *ids, *skipped;
};

/* Picks the clients a Scan Now reaches: the online ones. */
static int pick_online(json_t *c, void *arg)
{
	struct scan_pick *p = arg;
	const char *state = api_clients_state(p->ctx, c, p->now);
	json_t *count;

	if (strcmp(state, "online") == 0)
		return json_array_append(p->ids, json_object_get(c, "id")) != 0;
	count = json_object_get(p->skipped, state);
	json_object_set_new(p->skipped, state, json_integer(json_integer_value(count) + 1));
	return 0;
}

enum serr api_tasks_scan(struct api_ctx *ctx, const char *who, const char *scope,
			 const json_t *paths, const char *cpu, json_t **out, char *msg,
			 size_t len)
{
	struct scan_pick p = { .ctx = ctx, .now = (int64_t)time(NULL) };
	json_t *args = json_object(), *tasks = json_array(), *refused = json_array(), *v;
	char note[256];
	int64_t node, id;
	enum serr err;
	size_t i;

	*out = NULL;
	p.ids = json_array();
	p.skipped = json_object();
	err = !args || !tasks || !refused || !p.ids || !p.skipped ? SERR_NOMEM : SERR_OK;
	if (err == SERR_OK && paths && !paths_ok(paths, msg, len))
		err = SERR_INVAL;
	if (err == SERR_OK && cpu && strcmp(cpu, "low") != 0 && strcmp(cpu, "normal") != 0) {
		snprintf(msg, len, "cpu: expected low or normal, not '%.64s'", cpu);
		err = SERR_INVAL;
	}
	if (err == SERR_OK)
		err = api_scope(ctx, scope, &node, msg, len);
	if (err == SERR_OK)
		err = api_refuse_moved(ctx, node, msg, len);
	if (err == SERR_OK && store_clients_each(ctx->st, node, pick_online, &p) != SERR_OK) {
		snprintf(msg, len, "database: reading the clients failed");
		err = SERR_DB;
	}
	if (err == SERR_OK && paths)
		json_object_set(args, "paths", (json_t *)paths);
	if (err == SERR_OK && cpu)
		json_object_set_new(args, "cpu", json_string(cpu));
	json_array_foreach(err == SERR_OK ? p.ids : NULL, i, v) {
		if (api_tasks_queue(ctx, json_integer_value(v), "scan", args, who, &id, note,
				    sizeof(note)) == SERR_OK)
			json_array_append_new(tasks, json_pack("{sO sI}", "client", v, "task",
							       (json_int_t)id));
		else
			json_array_append_new(refused, json_pack("{sO ss}", "client", v, "error",
								 note));
	}
	if (err == SERR_OK) {
		store_eventf(ctx->st, "system", 0, "%s started Scan Now on %zu agents in %s", who,
			     json_array_size(tasks), scope);
		*out = json_pack("{sO sO sO}", "tasks", tasks, "refused", refused, "skipped",
				 p.skipped);
	} else if (err == SERR_NOMEM) {
		snprintf(msg, len, "out of memory");
	}
	json_decref(args);
	json_decref(tasks);
	json_decref(refused);
	json_decref(p.ids);
	json_decref(p.skipped);
	return err;
}

void api_tasks_scan_now(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *out = NULL;
	char msg[512];

	api_answer(req, 200, api_tasks_scan(ctx, who, api_arg_string(args, "scope"),
					    api_arg_json(args, "paths"),
					    api_arg_string(args, "cpu"), &out, msg, sizeof(msg)),
		   &out, msg);
}

/* Reads the integer argument name into *out when given; false, answered
 * 400, when it is below min. */
static bool int_arg(struct http_req *req, const struct api_args *args, const char *name,
		    int64_t min, int64_t *out)
{
	int64_t n;

	if (!api_arg_int(args, name, &n))
		return true;
	if (n >= min) {
		*out = n;
		return true;
	}
	http_respond_error(req, 400, "%s: expected a whole number from %lld", name,
			   (long long)min);
	return false;
}

/* Whether s is one of the NULL-terminated list. */
static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

void api_tasks_list(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args)
{
	static const char *const kinds[] = { "scan", "cancel", "quarantine_restore",
					     "quarantine_delete", "agent_upgrade", NULL };
	struct store_task_filter f = { .limit = DEFAULT_LIMIT };
	const char *domain = api_arg_string(args, "domain");
	json_t *out = NULL;
	char msg[256];
	enum serr err;

	(void)who;
	f.state = api_arg_string(args, "state");
	f.kind = api_arg_string(args, "kind");
	if (!int_arg(req, args, "client", 2, &f.node) ||
	    !int_arg(req, args, "since", 0, &f.since) ||
	    !int_arg(req, args, "before", 1, &f.before) ||
	    !int_arg(req, args, "limit", 1, &f.limit))
		return;
	if (f.state && !one_of(f.state, store_task_states)) {
		http_respond_error(req, 400, "state: expected queued, delivered, running, "
				   "completed, cancelled or failed, not '%.64s'", f.state);
		return;
	}
	if (f.kind && !one_of(f.kind, kinds)) {
		http_respond_error(req, 400, "kind: expected scan, cancel, quarantine_restore, "
				   "quarantine_delete or agent_upgrade, not '%.64s'", f.kind);
		return;
	}
	if (f.limit > MAX_LIMIT) {
		http_respond_error(req, 400, "limit: expected 1 to %d", MAX_LIMIT);
		return;
	}
	if (domain && f.node) {
		http_respond_error(req, 400, "client and domain: give one or the other");
		return;
	}
	if (domain && (err = store_domain_lookup(ctx->st, domain, 0, &f.node, msg,
						 sizeof(msg))) != SERR_OK) {
		api_store_error(req, err, msg);
		return;
	}
	if (store_tasks_list(ctx->st, &f, &out) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the tasks failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "tasks", out));
}

void api_tasks_show(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args)
{
	struct store_task_filter f = { .limit = 1 };
	json_t *out = NULL;

	(void)who;
	api_arg_int(args, "id", &f.id);
	if (f.id <= 0) {
		http_respond_error(req, 400, "id: expected a task id");
		return;
	}
	if (store_tasks_list(ctx->st, &f, &out) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the task failed");
		return;
	}
	if (json_array_size(out) == 0)
		http_respond_error(req, 404, "no task %lld", (long long)f.id);
	else
		http_respond_json(req, 200, json_incref(json_array_get(out, 0)));
	json_decref(out);
}

void api_tasks_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	int64_t id = 0, client = 0, cancel = 0;
	char msg[256];
	enum serr err;

	api_arg_int(args, "id", &id);
	err = store_task_cancel(ctx->st, id, who, ctx->cfg->tasks_max_per_client, &client,
				&cancel, msg, sizeof(msg));
	if (err != SERR_OK) {
		api_store_error(req, err, msg);
		return;
	}
	if (cancel)
		notify_tasks(ctx->notify, client);
	http_respond_json(req, 200, cancel ?
			  json_pack("{sI ss sI}", "task", (json_int_t)id, "state", "cancelling",
				    "cancel_task", (json_int_t)cancel) :
			  json_pack("{sI ss}", "task", (json_int_t)id, "state", "cancelled"));
}

/* Checks a report's time member name (absent: 0): a time not past the
 * server's clock by more than CLOCK_SLACK. */
static bool time_member(const json_t *body, const char *name, int64_t now, int64_t *out,
			char *msg, size_t len)
{
	json_t *v = json_object_get(body, name);

	*out = 0;
	if (!v)
		return true;
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= now + CLOCK_SLACK) {
		*out = json_integer_value(v);
		return true;
	}
	snprintf(msg, len, "%s: expected a time in seconds since the epoch (not later than a "
		 "day from now)", name);
	return false;
}

/* Checks an agent's task report strictly (every member of its type, no
 * other member) into r, progress as canonical text in *progress (caller
 * frees); false with msg naming the member. */
static bool report_valid(const json_t *body, struct store_task_report *r, char **progress,
			 char *msg, size_t len)
{
	static const char *const states[] = { "running", "completed", "cancelled", "failed",
					      NULL };
	static const char *const counts[] = { "files", "bytes", "detections", NULL };
	int64_t now = (int64_t)time(NULL);
	const char *key;
	json_t *v, *p;

	json_object_foreach((json_t *)body, key, v)
		if (!one_of(key, (const char *const[]){ "id", "state", "progress", "error",
						       "started", "finished", NULL })) {
			snprintf(msg, len, "%.64s: no such member of a task report (it takes id, "
				 "state, progress, error, started, finished)", key);
			return false;
		}
	v = json_object_get(body, "id");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		snprintf(msg, len, "id: expected a task id");
		return false;
	}
	r->id = json_integer_value(v);
	v = json_object_get(body, "state");
	if (!json_is_string(v) || !one_of(json_string_value(v), states)) {
		snprintf(msg, len, "state: expected running, completed, cancelled or failed");
		return false;
	}
	r->state = json_string_value(v);
	p = json_object_get(body, "progress");
	if (p) {
		if (!json_is_object(p)) {
			snprintf(msg, len, "progress: expected {\"files\": N, \"bytes\": N, "
				 "\"detections\": N}");
			return false;
		}
		json_object_foreach(p, key, v)
			if (!one_of(key, counts) || !json_is_integer(v) ||
			    json_integer_value(v) < 0) {
				snprintf(msg, len, "progress.%.64s: expected files, bytes and "
					 "detections, each a whole number", key);
				return false;
			}
		*progress = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	}
	v = json_object_get(body, "error");
	/* Any text (it may name a hostile file): every place that shows it
	 * escapes its control characters. */
	if (v && (!json_is_string(v) || json_string_length(v) == 0 ||
		  json_string_length(v) > MAX_ERROR)) {
		snprintf(msg, len, "error: expected text of 1 to %d bytes", MAX_ERROR);
		return false;
	}
	if (v && strcmp(r->state, "failed") != 0) {
		snprintf(msg, len, "error: only a failed task has one");
		return false;
	}
	r->error = json_string_value(v);
	if (!time_member(body, "started", now, &r->started, msg, len) ||
	    !time_member(body, "finished", now, &r->finished, msg, len))
		return false;
	if (r->finished && strcmp(r->state, "running") == 0) {
		snprintf(msg, len, "finished: a running task has not finished");
		return false;
	}
	if (r->finished && r->started > r->finished) {
		snprintf(msg, len, "finished: before started");
		return false;
	}
	return true;
}

void api_tasks_report(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	struct store_task_report r = { 0 };
	json_t *body = api_body_object(req);
	char msg[1400], *progress = NULL;
	enum serr err;

	(void)args;
	if (!body)
		return;
	if (!report_valid(body, &r, &progress, msg, sizeof(msg))) {
		http_respond_error(req, 400, "task report: %s", msg);
		goto out;
	}
	r.progress = progress;
	err = store_task_report(ctx->st, strtoll(who, NULL, 10), &r, msg, sizeof(msg));
	if (err != SERR_OK)
		api_store_error(req, err, msg);
	else
		http_respond_json(req, 200, json_pack("{sI ss}", "id", (json_int_t)r.id, "state",
						      r.state));
out:
	free(progress);
	json_decref(body);
}

int64_t api_tasks_expire(struct api_ctx *ctx)
{
	int64_t n = 0;

	if (store_tasks_expire(ctx->st, ctx->cfg->tasks_expire, ctx->cfg->offline_after,
			       (int64_t)time(NULL), &n) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "tasks: expiring unreported tasks failed");
	return n;
}
