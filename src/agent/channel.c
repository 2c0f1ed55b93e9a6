/* channel.c -- the agent's channel to its server (see channel.h). */
#include "agent/channel.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "agent/upgrade.h"
#include "agent/vault.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/settings.h"
#include "common/state.h"
#include "common/util.h"

/* Requests waiting for the channel's thread at most. */
#define MAX_PENDING 32

/* Task reports waiting for the server at most (the oldest progress
 * reports go first past it), and task ids remembered as taken. */
#define MAX_REPORTS 256
#define MAX_SEEN 1024

struct request {
	enum channel_ask what;
	uint64_t id;
};

struct channel {
	struct agent *a;
	struct loop *loop;
	channel_answer_fn answer;
	void *answer_arg;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;          /* what follows */
	pthread_cond_t wake;           /* stop, or a request */
	bool stop;
	struct request pending[MAX_PENDING];
	size_t npending;
	json_t *reports;               /* task reports waiting for the server */
	/* Set to cut a transfer short (stop, a request); libcurl checks it. */
	atomic_bool abort;
	/* The tasks: the channel's thread's own. */
	struct vault *vault;
	channel_task_fn on_task;
	channel_settings_fn on_settings;
	void *hook_arg;
	json_t *upgrades;              /* agent_upgrade tasks to take between polls */
	bool connected;                /* the server answered a poll since the start */
	int64_t seen[MAX_SEEN];        /* ids of the tasks taken, a ring */
	size_t nseen;
	json_int_t tasks_seen;         /* the highest id of a task in an answer */
};

bool channel_enroll(struct agent *a, const char *server, const char *ca_file,
		    const char *token, const char *uuid, const char *domain,
		    const char *deployment)
{
	json_t *body, *answer = NULL, *cred = NULL;
	const char *secret;
	char host[256];
	bool ok = false;

	util_host_name(host);
	body = json_pack("{ss ss so}", "uuid", uuid, "hostname", host, "status",
			 reports_status(a));
	if (body && domain)
		json_object_set_new(body, "domain", json_string(domain));
	if (body && deployment)
		json_object_set_new(body, "deployment", json_string(deployment));
	answer = state_enroll(server, ca_file, token, "/api/v1/agent/enroll", body);
	if (!answer)
		goto out;
	if (json_unpack(answer, "{s:s}", "secret", &secret) != 0) {
		log_msg(LOG_LVL_ERROR, "enroll: the server's answer has no secret");
		goto out;
	}
	/* The package signing key is pinned here: every component package must
	 * be signed by it (or by a key it rotated to). */
	cred = json_pack("{ss ss ss sO sO sO sO so*}", "server", server, "uuid", uuid, "secret",
			 secret, "client", json_object_get(answer, "client"), "long_poll",
			 json_object_get(answer, "long_poll"), "heartbeat_interval",
			 json_object_get(answer, "heartbeat_interval"), "package_key",
			 json_object_get(answer, "package_key"), "servers",
			 astate_servers(json_object_get(answer, "frontends"), server));
	ok = cred && state_write_json(a->cred_path, cred);
out:
	json_decref(cred);
	json_decref(answer);
	json_decref(body);
	return ok;
}

/* Moves to the server the old one named: enroll there (same uuid, domain
 * of the same path) with the CA beside the current one, so that the old
 * server can still be told; the caller acknowledges and switches. The
 * instruction must be signed by the package key this agent pinned (or one
 * it rotated to) and name this agent: nothing else that reaches the event
 * channel can send it elsewhere. */
bool channel_move(struct agent *a, const json_t *move)
{
	const char *kind, *client, *server, *ca, *token, *domain;
	char next_ca[4096], msg[256];
	json_t *order = NULL;
	bool ok = false;

	if (updater_open_signed(&a->up, move, &order, msg, sizeof(msg)) != ERR_OK) {
		log_msg(LOG_LVL_ERROR, "move: refused an instruction not signed by this agent's "
			"server (%s)", msg);
		goto out;
	}
	if (a->up.rotated)
		updater_store_pin(&a->up, a->cred_path);
	if (json_unpack(order, "{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", &kind, "client", &client,
			"server", &server, "ca", &ca, "token", &token, "domain", &domain) != 0 ||
	    strcmp(kind, "move") != 0 || strcmp(client, a->uuid) != 0) {
		log_msg(LOG_LVL_ERROR, "move: refused a signed instruction that is no move of this "
			"agent");
		goto out;
	}
	snprintf(next_ca, sizeof(next_ca), "%s.next", a->ca_path);
	log_msg(LOG_LVL_INFO, "move: the server sends this agent to %s (domain %s)", server,
		domain);
	if (!state_write(next_ca, ca) ||
	    !channel_enroll(a, server, next_ca, token, a->uuid, domain, NULL))
		goto out;
	if (rename(next_ca, a->ca_path) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", a->ca_path, strerror(errno));
		goto out;
	}
	log_msg(LOG_LVL_INFO, "move: enrolled with %s", server);
	ok = true;
out:
	json_decref(order);
	return ok;
}

/* Sets key of the credential file to value (stolen), as the agent's
 * state is: the file replaced whole. */
static bool cred_set(struct agent *a, const char *key, json_t *value)
{
	char *token = NULL;
	json_t *cred = state_read_credential(a->cred_path, "ward-agent", &token);
	bool ok = cred && value && json_object_set_new(cred, key, value) == 0;

	if (!ok)
		json_decref(value);
	ok = ok && state_write_json(a->cred_path, cred);
	if (token)
		sodium_memzero(token, strlen(token));
	free(token);
	json_decref(cred);
	return ok;
}

/* Keeps the URLs of the server's frontends a delivery or an enrollment
 * gave, when they changed. */
static void keep_servers(struct agent *a, const json_t *urls)
{
	json_t *list;

	if (!urls)
		return;
	list = astate_servers(urls, a->server);
	if (!list || json_equal(list, a->servers) || !cred_set(a, "servers", json_incref(list))) {
		json_decref(list);
		return;
	}
	json_decref(a->servers);
	a->servers = list;
	log_msg(LOG_LVL_INFO, "the server's frontends: %zu", json_array_size(list));
}

/* Reloads the credential (after a move). */
static bool switch_server(struct agent *a)
{
	free(a->server);
	free(a->uuid);
	free(a->token);
	a->server = a->uuid = a->token = NULL;
	if (!astate_load(a))
		return false;
	a->version = 0;
	return true;
}

/* Sets the time of the next scheduled update from the settings in effect:
 * the schedule's next time plus a random part of update.window, so that
 * agents on the same schedule spread out. */
void channel_plan_update(struct agent *a)
{
	json_t *on = astate_setting(a, NULL, "update.scheduled"), *sched = astate_setting(a, NULL,
									  "update.schedule");
	json_t *window = astate_setting(a, NULL, "update.window");
	struct settings_schedule sc;
	time_t now = time(NULL);
	int64_t spread;

	a->next_update = 0;
	if (json_is_true(on) && json_is_string(sched) &&
	    settings_schedule_parse(json_string_value(sched), &sc)) {
		spread = json_integer_value(window) * 60;
		if (sc.every && spread > sc.every)
			spread = sc.every;
		a->next_update = settings_schedule_next(&sc, now) +
				 (spread > 0 ? (time_t)randombytes_uniform((uint32_t)spread) : 0);
	}
	json_decref(on);
	json_decref(sched);
	json_decref(window);
}

/* Handles a delivery of settings (and perhaps an update request): a change
 * of scan method, or a request, updates the components first; the
 * delivery is applied and acknowledged only once that is done, so the
 * server counts the agent done only when its download is installed. */
bool channel_take_delivery(struct agent *a, json_int_t version, json_t *settings,
			   bool update)
{
	const char *comp = components_needed(a, settings);

	if ((update || comp != components_needed(a, NULL) ||
	     !updater_installed(a->comp_dir, comp)) && !components_update(a, comp))
		return false;
	return astate_apply(a, version, settings);
}

/* An answer on its way to the loop's thread. */
struct reply {
	struct channel *ch;
	uint64_t id;
	json_t *answer;
};

static void deliver(void *arg)
{
	struct reply *r = arg;

	r->ch->answer(r->id, r->answer, r->ch->answer_arg);
	free(r);
}

/* Hands the answer to request id to the loop's thread. */
static void reply(struct channel *ch, uint64_t id, json_t *answer)
{
	struct reply *r = malloc(sizeof(*r));

	if (r) {
		r->ch = ch;
		r->id = id;
		r->answer = answer;
	}
	if (!r || loop_post(ch->loop, deliver, r) != 0) {
		free(r);
		json_decref(answer);
		log_msg(LOG_LVL_ERROR, "out of memory: an answer to a control request is lost");
	}
}

static bool stopping(struct channel *ch)
{
	bool stop;

	pthread_mutex_lock(&ch->lock);
	stop = ch->stop;
	pthread_mutex_unlock(&ch->lock);
	return stop;
}

/* Waits a back-off of seconds, drawn between half and all of it (a fleet
 * that lost its server all at once then does not come back in step), or
 * less when stopped or asked something. */
static void pause_for(struct channel *ch, unsigned seconds)
{
	uint64_t ms = (uint64_t)seconds * 500 + randombytes_uniform(seconds * 500 + 1);
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ch->lock);
	while (!ch->stop && !ch->npending &&
	       pthread_cond_timedwait(&ch->wake, &ch->lock, &until) == 0)
		;
	pthread_mutex_unlock(&ch->lock);
}

/* Update Now: the answer. */
static json_t *update_now(struct agent *a)
{
	const char *comp;
	json_t *allowed, *answer;

	allowed = astate_setting(a, NULL, "update.allow_update_now");
	comp = components_needed(a, NULL);
	if (!json_is_true(allowed))
		answer = json_pack("{ss}", "error", "Update Now is switched off by the "
				   "administrator (update.allow_update_now)");
	else if (components_update(a, comp))
		answer = json_pack("{ss sI}", "component", comp, "version",
				   (json_int_t)updater_installed(a->comp_dir, comp));
	else
		answer = json_pack("{ss}", "error", a->update_error[0] ? a->update_error :
				   "the update failed");
	json_decref(allowed);
	return answer;
}

/* Answers the requests waiting: one update for all those that ask it, one
 * fetch of the source list for the others. */
static void serve_requests(struct channel *ch)
{
	struct request reqs[MAX_PENDING];
	json_t *answers[2] = { NULL, NULL };
	size_t i, n;

	pthread_mutex_lock(&ch->lock);
	n = ch->npending;
	memcpy(reqs, ch->pending, n * sizeof(*reqs));
	ch->npending = 0;
	if (!ch->stop)
		atomic_store(&ch->abort, false);
	pthread_mutex_unlock(&ch->lock);
	for (i = 0; i < n; i++) {
		if (answers[reqs[i].what])
			continue;
		if (reqs[i].what == CHANNEL_UPDATE) {
			answers[CHANNEL_UPDATE] = update_now(ch->a);
		} else {
			components_refresh_sources(ch->a);
			answers[CHANNEL_SOURCES] = json_pack("{sb}", "sources", 1);
		}
	}
	for (i = 0; i < n; i++)
		reply(ch, reqs[i].id, json_deep_copy(answers[reqs[i].what]));
	json_decref(answers[0]);
	json_decref(answers[1]);
}

/* The client for a's server (logged when it cannot be made). */
/* Sends the task reports waiting, oldest first, until one does not get
 * through (kept for the next time). A report the server refuses (400, or
 * 404/409: not this agent's, finished) would be refused again: dropped,
 * logged. */
static void send_task_reports(struct channel *ch)
{
	json_t *r, *answer;
	char msg[256];
	long status;

	for (;;) {
		pthread_mutex_lock(&ch->lock);
		r = json_incref(json_array_get(ch->reports, 0));
		pthread_mutex_unlock(&ch->lock);
		if (!r)
			return;
		answer = NULL;
		status = 0;
		if (rest_call(ch->a->up.rc, "POST", "/api/v1/agent/tasks", r, 30, &status, &answer,
			      msg, sizeof(msg)) != ERR_OK || (status != 200 && status != 400 &&
							       status != 404 && status != 409)) {
			if (!atomic_load(&ch->abort))
				log_msg(LOG_LVL_WARN, "tasks: the report of task %lld failed (%s); "
					"tried again later", (long long)json_integer_value(
					json_object_get(r, "id")), status ? "HTTP error" : msg);
			json_decref(answer);
			json_decref(r);
			return;
		}
		if (status != 200)
			log_msg(LOG_LVL_ERROR, "tasks: the server refused the report of task %lld "
				"(%s); dropped", (long long)json_integer_value(json_object_get(r,
				"id")), json_string_value(json_object_get(answer, "error")) ?
				json_string_value(json_object_get(answer, "error")) : "refused");
		json_decref(answer);
		pthread_mutex_lock(&ch->lock);
		if (json_array_get(ch->reports, 0) == r)
			json_array_remove(ch->reports, 0);
		pthread_mutex_unlock(&ch->lock);
		json_decref(r);
	}
}

/* Whether members of t other than those named (NULL-terminated) exist:
 * the name of the first, else NULL. */
static const char *other_member(const json_t *t, const char *const *known)
{
	const char *key;
	const json_t *v;
	size_t i;

	json_object_foreach((json_t *)t, key, v) {
		for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (!known[i])
			return key;
	}
	return NULL;
}

/* Whether s is a quarantine item id: 1 to 64 letters, digits, - and _. */
static bool item_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t i, n = s ? strlen(s) : 0;

	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return n >= 1 && n <= 64;
}

/* Checks task against docs/protocol.md (its id known good): NULL, or what
 * is wrong, in why. */
static const char *task_invalid(const json_t *t, char *why, size_t len)
{
	static const char *const scan[] = { "id", "kind", "paths", "cpu", NULL };
	static const char *const cancel[] = { "id", "kind", "task", NULL };
	static const char *const restore[] = { "id", "kind", "item", "overwrite", "exclude",
					       NULL };
	static const char *const del[] = { "id", "kind", "item", NULL };
	const char *kind = json_string_value(json_object_get(t, "kind")), *other, *p, *bad;
	const json_t *v;
	size_t i;

	if (!kind) {
		snprintf(why, len, "kind: missing");
		return why;
	}
	if (strcmp(kind, "scan") == 0) {
		other = other_member(t, scan);
		v = json_object_get(t, "paths");
		if (v && (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > 256)) {
			snprintf(why, len, "paths: expected 1 to 256 absolute paths");
			return why;
		}
		for (i = 0; i < json_array_size(v); i++) {
			p = json_string_value(json_array_get(v, i));
			if (!p || !settings_path_ok(p, strlen(p), &bad)) {
				snprintf(why, len, "paths[%zu]: %s", i,
					 p ? bad : "expected a string");
				return why;
			}
		}
		v = json_object_get(t, "cpu");
		if (v && (!json_is_string(v) || (strcmp(json_string_value(v), "low") != 0 &&
						  strcmp(json_string_value(v), "normal") != 0))) {
			snprintf(why, len, "cpu: expected \"low\" or \"normal\"");
			return why;
		}
	} else if (strcmp(kind, "cancel") == 0) {
		other = other_member(t, cancel);
		if (!json_is_integer(json_object_get(t, "task")) ||
		    json_integer_value(json_object_get(t, "task")) <= 0) {
			snprintf(why, len, "task: expected a task id");
			return why;
		}
	} else if (strcmp(kind, "quarantine_restore") == 0 ||
		   strcmp(kind, "quarantine_delete") == 0) {
		other = other_member(t, kind[11] == 'r' ? restore : del);
		if (!item_ok(json_object_get(t, "item"))) {
			snprintf(why, len, "item: expected a quarantine item id");
			return why;
		}
		for (i = 0; i < 2; i++) {
			v = json_object_get(t, i ? "exclude" : "overwrite");
			if (v && !json_is_boolean(v)) {
				snprintf(why, len, "%s: expected true or false",
					 i ? "exclude" : "overwrite");
				return why;
			}
		}
	} else if (strcmp(kind, "agent_upgrade") == 0) {
		return upgrade_task_invalid(t, why, len);
	} else {
		snprintf(why, len, "kind: this agent does not know tasks of kind \"%.64s\"", kind);
		return why;
	}
	if (other) {
		snprintf(why, len, "%.64s: not a member of a %s task", other, kind);
		return why;
	}
	return NULL;
}

struct posted {
	struct channel *ch;
	json_t *obj;
	bool settings;
};

static void deliver_posted(void *arg)
{
	struct posted *p = arg;

	if (p->settings)
		p->ch->on_settings(p->obj, p->ch->hook_arg);
	else
		p->ch->on_task(p->obj, p->ch->hook_arg);
	free(p);
}

/* Posts obj (a reference taken) to the loop's receiver. */
static void post_to_loop(struct channel *ch, json_t *obj, bool settings)
{
	struct posted *p = malloc(sizeof(*p));

	if (p) {
		p->ch = ch;
		p->obj = obj;
		p->settings = settings;
	}
	if (!obj || !p || loop_post(ch->loop, deliver_posted, p) != 0) {
		free(p);
		json_decref(obj);
		log_msg(LOG_LVL_ERROR, "out of memory: %s is lost", settings ? "a settings change"
			: "a task");
	}
}

/* Takes the tasks of a poll's answer: each id once (a task is delivered
 * again until reported on); a task this agent cannot run is reported
 * failed. */
static void take_tasks(struct channel *ch, const json_t *tasks)
{
	const json_t *t;
	json_int_t id;
	char why[512];
	size_t i, j;

	if (tasks && !json_is_array(tasks)) {
		log_msg(LOG_LVL_WARN, "events: \"tasks\" is not a list; ignored");
		return;
	}
	json_array_foreach(tasks, i, t) {
		id = json_integer_value(json_object_get(t, "id"));
		if (!json_is_object(t) || id <= 0) {
			log_msg(LOG_LVL_WARN, "events: tasks[%zu]: no task id; ignored", i);
			continue;
		}
		if (id > ch->tasks_seen)
			ch->tasks_seen = id;
		for (j = 0; j < MAX_SEEN && j < ch->nseen && ch->seen[j] != id; j++)
			;
		if (j < MAX_SEEN && j < ch->nseen)
			continue;
		ch->seen[ch->nseen++ % MAX_SEEN] = id;
		if (task_invalid(t, why, sizeof(why)) || !ch->on_task) {
			log_msg(LOG_LVL_WARN, "task %lld refused: %s", (long long)id,
				ch->on_task ? why : "no task runs here");
			channel_report_task(ch, json_pack("{sI ss ss sI sI}", "id", id, "state",
							  "failed", "error", ch->on_task ? why :
							  "this agent runs no tasks", "started",
							  (json_int_t)time(NULL), "finished",
							  (json_int_t)time(NULL)));
			continue;
		}
		log_msg(LOG_LVL_INFO, "task %lld: %s", (long long)id,
			json_string_value(json_object_get(t, "kind")));
		/* An offer of a new version is this thread's: it downloads with
		 * the updater, as component updates do. */
		if (strcmp(json_string_value(json_object_get(t, "kind")), "agent_upgrade") == 0)
			json_array_append(ch->upgrades, (json_t *)t);
		else
			post_to_loop(ch, json_deep_copy(t), false);
	}
}

/* A report from this thread: queued, without cutting short the download
 * that follows (a stop or a request still does). */
static void report_upgrade(void *arg, json_t *report)
{
	struct channel *ch = arg;

	channel_report_task(ch, report);
	pthread_mutex_lock(&ch->lock);
	if (!ch->stop && !ch->npending)
		atomic_store(&ch->abort, false);
	pthread_mutex_unlock(&ch->lock);
}

/* Reports the status now (a heartbeat, answered at once); once the server
 * took it, an upgrade waiting for that is told. */
static void hello(struct channel *ch)
{
	json_t *status = reports_status(ch->a), *answer = NULL;
	char msg[512];
	long code = 0;

	if (status && rest_call(ch->a->up.rc, "POST", "/api/v1/agent/heartbeat", status, 30,
				&code, &answer, msg, sizeof(msg)) == ERR_OK && code == 200) {
		ch->connected = true;
		upgrade_connected(ch->a, report_upgrade, ch);
		send_task_reports(ch);
	} else {
		log_msg(LOG_LVL_WARN, "events: the first status was not taken (%s); the poll "
			"carries it", code ? "an error answer" : msg);
	}
	json_decref(status);
	json_decref(answer);
}

/* Takes the offers of new versions that came: one that puts a new
 * version in place stops the agent, for its supervisor to start it.
 * Returns whether any came (the status may have changed: a restart
 * pending). */
static bool take_upgrades(struct channel *ch)
{
	bool any = json_array_size(ch->upgrades) > 0;
	json_t *t, *r;
	json_int_t now;
	size_t i;

	json_array_foreach(ch->upgrades, i, t) {
		now = (json_int_t)time(NULL);
		if (atomic_load(&ch->a->restart)) {
			r = json_pack("{sO ss ss sI sI}", "id", json_object_get(t, "id"), "state",
				      "failed", "error", "superseded: another version is being "
				      "put in place", "started", now, "finished", now);
			report_upgrade(ch, r);
		} else if (upgrade_take(ch->a, t, report_upgrade, ch)) {
			atomic_store(&ch->a->restart, true);
			/* The running report goes first, as far as it can. */
			send_task_reports(ch);
			loop_stop(ch->loop);
		}
	}
	json_array_clear(ch->upgrades);
	return any;
}

/* Gives the loop a copy of the settings in effect. */
static void settings_to_loop(struct channel *ch)
{
	if (ch->on_settings)
		post_to_loop(ch, ch->a->settings ? json_deep_copy(ch->a->settings) :
			     json_object(), true);
}

static struct rest_client *connect_server(struct channel *ch)
{
	struct agent *a = ch->a;
	struct rest_client *rc = rest_new(a->server, a->ca_path);

	if (!rc || rest_set_token(rc, a->token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		rest_free(rc);
		return NULL;
	}
	rest_set_abort(rc, &ch->abort);
	a->up.abort = &ch->abort;
	return rc;
}

/* Turns to another of the server's frontends, drawn at random (agents of
 * a frontend gone spread over the others), kept in the credential for
 * the next start too: false when it has no other. */
static bool fail_over(struct channel *ch)
{
	struct agent *a = ch->a;
	size_t i, n = json_array_size(a->servers);
	char *next;

	if (n < 2)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(json_string_value(json_array_get(a->servers, i)), a->server) == 0)
			break;
	next = strdup(json_string_value(json_array_get(a->servers, (i + 1 +
						 randombytes_uniform((uint32_t)(n - 1))) % n)));
	if (!next)
		return false;
	log_msg(LOG_LVL_WARN, "events: %s does not answer; turning to %s", a->server, next);
	free(a->server);
	a->server = next;
	cred_set(a, "server", json_string(next));
	rest_free(a->up.rc);
	a->up.rc = connect_server(ch);
	return a->up.rc != NULL;
}

/* One long poll after another over one connection, carrying the agent's
 * status whenever the heartbeat interval has passed, applying and
 * acknowledging what comes, taking scheduled updates between polls, and
 * backing off (1 s doubling to 60 s) while the server cannot be reached or
 * an update fails. */
static void *run(void *arg)
{
	struct channel *ch = arg;
	struct agent *a = ch->a;
	json_t *answer, *settings, *ack, *poll, *move;
	char msg[512];
	json_int_t version;
	bool moved;
	unsigned backoff = 1;
	size_t tried = 0;              /* frontends failed over to since the last answer */
	uint64_t last_status = 0, now;
	char *last_scan = astate_file(a, "last_scan.json");
	struct timespec scan_seen = { 0, 0 };
	struct stat st;
	time_t wall;
	int64_t wait;
	long status;

	/* A version on trial tells the server it runs at once, not after its
	 * components load or a long poll: its supervisor waits for that. */
	if (upgrade_waiting(a))
		hello(ch);
	/* A new agent gets its pattern at once; others load what they have. */
	if (!updater_installed(a->comp_dir, components_needed(a, NULL)) ||
	    !components_use_installed(a, components_needed(a, NULL)))
		components_update(a, components_needed(a, NULL));
	channel_plan_update(a);
	settings_to_loop(ch);
	while (!stopping(ch)) {
		serve_requests(ch);
		send_task_reports(ch);
		if (ch->vault)
			vault_report(ch->vault);
		now = util_now_ns() / 1000000000u;
		/* Schedules are in wall-clock time; heartbeats in monotonic. */
		wall = time(NULL);
		if (a->next_update && wall >= a->next_update) {
			log_msg(LOG_LVL_INFO, "update: scheduled update");
			components_update(a, components_needed(a, NULL));
			channel_plan_update(a);
		}
		components_use_installed(a, components_needed(a, NULL));
		reports_rescan_unverified(a, ch->vault, &ch->abort);
		reports_send_detections(a);
		if (stopping(ch))
			break;
		/* The last scan changed (started, progressed, ended): the status goes
		 * with the next poll. */
		if (last_scan && stat(last_scan, &st) == 0 &&
		    (st.st_mtim.tv_sec != scan_seen.tv_sec ||
		     st.st_mtim.tv_nsec != scan_seen.tv_nsec)) {
			scan_seen = st.st_mtim;
			last_status = 0;
		}
		poll = json_pack("{sI}", "version", (json_int_t)a->version);
		/* An answer lost (a poll cut short as it came) shows: its
		 * tasks come again with this poll. */
		if (poll && ch->tasks_seen)
			json_object_set_new(poll, "tasks_seen", json_integer(ch->tasks_seen));
		/* Status goes with the poll once 90% of the interval has passed:
		 * polls end every http.long_poll, a little less than it. */
		if (poll && (!last_status ||
			     (now - last_status) * 10 >= (uint64_t)a->heartbeat_interval * 9)) {
			json_object_set_new(poll, "status", reports_status(a));
			last_status = now;
		}
		/* The poll ends in time for the next scheduled update. */
		wait = a->next_update ? (int64_t)(a->next_update - time(NULL)) : a->long_poll;
		/* Unverified files are retried every 10 s, between polls. */
		if (a->unverified && wait > 10)
			wait = 10;
		if (poll && wait < a->long_poll)
			json_object_set_new(poll, "wait", json_integer(wait > 1 ? wait : 1));
		answer = NULL;
		status = 0;
		if (rest_call(a->up.rc, "POST", "/api/v1/agent/events", poll, a->long_poll + 30,
			      &status, &answer, msg, sizeof(msg)) != ERR_OK ||
		    (status != 200 && status != 204)) {
			json_decref(answer);
			json_decref(poll);
			/* The status may not have got through: with the next poll. */
			last_status = 0;
			if (atomic_load(&ch->abort))
				continue; /* cut short: stop, or a request */
			if (status == 401)
				log_msg(LOG_LVL_ERROR, "events: the server does not know "
					"this agent (removed, or moved to another server)");
			else
				log_msg(LOG_LVL_WARN, "events: %s",
					status ? "unexpected answer" : msg);
			/* A frontend gone, or one that cannot serve (cut off from
			 * the database): the next of the server's at once; a pause
			 * once each was tried. */
			if ((status == 0 || status == 502 || status == 503 || status == 504) &&
			    fail_over(ch) && ++tried < json_array_size(a->servers))
				continue;
			if (!a->up.rc) {
				log_msg(LOG_LVL_ERROR, "out of memory");
				loop_stop(ch->loop);
				break;
			}
			tried = 0;
			pause_for(ch, backoff);
			backoff = backoff >= 60 ? 60 : backoff * 2;
			continue;
		}
		json_decref(poll);
		tried = 0;
		if (!ch->connected) {
			ch->connected = true;
			upgrade_connected(a, report_upgrade, ch);
		}
		if (status == 204) {
			backoff = 1;
			json_decref(answer);
			continue;
		}
		take_tasks(ch, json_object_get(answer, "tasks"));
		if (take_upgrades(ch))
			last_status = 0; /* with the next poll */
		keep_servers(a, json_object_get(answer, "frontends"));
		if (!json_object_get(answer, "version")) {
			backoff = 1;
			json_decref(answer);
			continue;
		}
		if (json_unpack(answer, "{s:I, s:o}", "version", &version, "settings",
				&settings) != 0 || !json_is_object(settings)) {
			log_msg(LOG_LVL_WARN, "events: malformed settings ignored");
			json_decref(answer);
			continue;
		}
		if (!channel_take_delivery(a, version, settings,
					   json_is_true(json_object_get(answer, "update")))) {
			/* Not acknowledged: the server delivers it again. */
			json_decref(answer);
			last_status = 0;
			pause_for(ch, backoff);
			backoff = backoff >= 60 ? 60 : backoff * 2;
			continue;
		}
		backoff = 1;
		channel_plan_update(a);
		settings_to_loop(ch);
		/* A move is acknowledged only once this agent is enrolled with
		 * the new server; until then the old one keeps it. */
		move = json_object_get(answer, "move");
		moved = move && channel_move(a, move);
		if (move && !moved) {
			json_decref(answer);
			pause_for(ch, backoff);
			continue;
		}
		ack = json_pack("{sI}", "version", version);
		json_decref(answer);
		answer = NULL;
		if (rest_call(a->up.rc, "POST", "/api/v1/agent/ack", ack, 30, &status, &answer,
			      msg, sizeof(msg)) != ERR_OK || status != 200)
			log_msg(LOG_LVL_WARN, "ack of settings %lld failed; the next event "
				"poll reports the version instead", (long long)version);
		json_decref(ack);
		json_decref(answer);
		if (moved) {
			rest_free(a->up.rc);
			a->up.rc = NULL;
			a->version = 0; /* the new server's settings come next */
			if (!switch_server(a) || !(a->up.rc = connect_server(ch))) {
				log_msg(LOG_LVL_ERROR, "move: cannot go on with the new server; "
					"stopping");
				loop_stop(ch->loop);
				break;
			}
			log_msg(LOG_LVL_INFO, "now served by %s", a->server);
			/* The new server's components at once: what this agent
			 * holds is another server's sequence (updater.h). */
			components_update(a, components_needed(a, NULL));
			last_status = 0; /* the new server hears the status at once */
		}
	}
	free(last_scan);
	/* Requests still waiting hear that the agent stops. */
	pthread_mutex_lock(&ch->lock);
	while (ch->npending)
		reply(ch, ch->pending[--ch->npending].id,
		      json_pack("{ss}", "error", "the agent is stopping"));
	pthread_mutex_unlock(&ch->lock);
	return NULL;
}

struct channel *channel_new(struct agent *a, struct loop *loop, channel_answer_fn answer,
			    void *answer_arg)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->a = a;
	ch->loop = loop;
	ch->answer = answer;
	ch->answer_arg = answer_arg;
	ch->reports = json_array();
	ch->upgrades = json_array();
	if (!ch->reports || !ch->upgrades) {
		json_decref(ch->reports);
		json_decref(ch->upgrades);
		free(ch);
		return NULL;
	}
	pthread_mutex_init(&ch->lock, NULL);
	pthread_cond_init(&ch->wake, NULL);
	return ch;
}

void channel_attach(struct channel *ch, struct vault *v, channel_task_fn on_task,
		    channel_settings_fn on_settings, void *arg)
{
	ch->vault = v;
	ch->on_task = on_task;
	ch->on_settings = on_settings;
	ch->hook_arg = arg;
}

void channel_wake(struct channel *ch)
{
	pthread_mutex_lock(&ch->lock);
	atomic_store(&ch->abort, true);
	pthread_cond_signal(&ch->wake);
	pthread_mutex_unlock(&ch->lock);
}

void channel_report_task(struct channel *ch, json_t *report)
{
	json_t *id = json_object_get(report, "id"), *r;
	size_t i;

	if (!report)
		return;
	pthread_mutex_lock(&ch->lock);
	for (i = 0; i < json_array_size(ch->reports); i++) {
		r = json_array_get(ch->reports, i);
		if (json_equal(json_object_get(r, "id"), id) &&
		    strcmp(json_string_value(json_object_get(r, "state")), "running") == 0) {
			json_array_remove(ch->reports, i);
			break;
		}
	}
	for (i = 0; json_array_size(ch->reports) >= MAX_REPORTS &&
		    i < json_array_size(ch->reports); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(ch->reports, i),
							     "state")), "running") == 0)
			json_array_remove(ch->reports, i--);
	if (json_array_size(ch->reports) < MAX_REPORTS)
		json_array_append(ch->reports, report);
	else
		log_msg(LOG_LVL_ERROR, "tasks: %d reports wait for the server already; one is "
			"dropped", MAX_REPORTS);
	atomic_store(&ch->abort, true);
	pthread_cond_signal(&ch->wake);
	pthread_mutex_unlock(&ch->lock);
	json_decref(report);
}

bool channel_start(struct channel *ch)
{
	rest_free(ch->a->up.rc);
	ch->a->up.rc = connect_server(ch);
	if (!ch->a->up.rc)
		return false;
	if (pthread_create(&ch->thread, NULL, run, ch) != 0) {
		log_msg(LOG_LVL_ERROR, "cannot start the channel's thread: %s", strerror(errno));
		return false;
	}
	ch->started = true;
	return true;
}

void channel_ask(struct channel *ch, enum channel_ask what, uint64_t id)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->npending == MAX_PENDING || ch->stop) {
		pthread_mutex_unlock(&ch->lock);
		ch->answer(id, json_pack("{ss}", "error", ch->stop ? "the agent is stopping" :
					 "too many requests waiting for the server"),
			   ch->answer_arg);
		return;
	}
	ch->pending[ch->npending].what = what;
	ch->pending[ch->npending++].id = id;
	atomic_store(&ch->abort, true);
	pthread_cond_signal(&ch->wake);
	pthread_mutex_unlock(&ch->lock);
}

void channel_stop(struct channel *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->stop = true;
	atomic_store(&ch->abort, true);
	pthread_cond_signal(&ch->wake);
	pthread_mutex_unlock(&ch->lock);
	if (ch->started)
		pthread_join(ch->thread, NULL);
	ch->started = false;
}

void channel_free(struct channel *ch)
{
	if (!ch)
		return;
	pthread_cond_destroy(&ch->wake);
	pthread_mutex_destroy(&ch->lock);
	json_decref(ch->reports);
	json_decref(ch->upgrades);
	free(ch);
}
