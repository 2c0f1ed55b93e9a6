/* api_agent.c -- the agents' routes: enrollment, event channel, acknowledgements,
 * heartbeats, update source; and the grouping of what they report. */
#include "server/api.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/api_clients.h"
#include "server/deploy.h"
#include "server/enroll.h"
#include "server/grouping.h"
#include "server/sources.h"

static int64_t grouped_domain(struct api_ctx *ctx, const json_t *status);
static void regroup(struct api_ctx *ctx, int64_t id, const json_t *status);

/* Bounds of what an agent reports about itself (its status): the console
 * and the command line show it, the grouping rules match it. */
#define STATUS_DEPTH 6
#define STATUS_ITEMS 1024     /* values in all */
#define STATUS_WIDTH 64       /* members of an object, items of a list */
#define STATUS_STRING 256     /* bytes of a string or a member's name */

/* Returns whether text holds no control character and is at most
 * STATUS_STRING bytes: nothing that forges a log line or drives a
 * terminal. */
static bool status_text_ok(const char *text)
{
	size_t i, n = strlen(text);

	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return false;
	return n <= STATUS_STRING;
}

static bool status_ok(const json_t *v, int depth, size_t *items)
{
	const char *key;
	json_t *m;
	size_t i;

	if (++*items > STATUS_ITEMS || depth > STATUS_DEPTH)
		return false;
	if (json_is_string(v))
		return status_text_ok(json_string_value(v)) &&
		       strlen(json_string_value(v)) == json_string_length(v);
	if (json_is_object(v)) {
		if (json_object_size(v) > STATUS_WIDTH)
			return false;
		json_object_foreach((json_t *)v, key, m)
			if (!status_text_ok(key) || !status_ok(m, depth + 1, items))
				return false;
		return true;
	}
	if (json_is_array(v)) {
		if (json_array_size(v) > STATUS_WIDTH)
			return false;
		json_array_foreach(v, i, m)
			if (!status_ok(m, depth + 1, items))
				return false;
	}
	return true;
}

static bool one_of(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* Checks the members of obj against names (NULL-terminated) and their
 * types: 's' a string of choices[i] (NULL: any), 'n' a whole number, 'N'
 * a whole number or null, 'o' an object, 'a' an array. Returns the first bad member's
 * name, or NULL when all are good. */
static const char *members_bad(const json_t *obj, const char *const *names, const char *types,
			       const char *const *const *choices)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)obj, key, v) {
		for (i = 0; names[i] && strcmp(names[i], key) != 0; i++)
			;
		if (!names[i])
			return key;
		if ((types[i] == 's' &&
		     (!json_is_string(v) ||
		      (choices[i] && !one_of(json_string_value(v), choices[i])))) ||
		    ((types[i] == 'n' || types[i] == 'N') &&
		     !(json_is_integer(v) && json_integer_value(v) >= 0) &&
		     !(types[i] == 'N' && json_is_null(v))) ||
		    (types[i] == 'o' && !json_is_object(v)) ||
		    (types[i] == 'a' && !json_is_array(v)))
			return key;
	}
	return NULL;
}

/* Checks the protection parts of a status (issue 16): "realtime" {state,
 * mode, reason, counters}, "last_scan" {task, source, started, finished,
 * state, files, bytes, detections} and "clamd" {state, requests, found,
 * errors, unverified, cached}; false with msg naming the member. */
static bool protection_ok(const json_t *status, char *msg, size_t len)
{
	static const char *const rt_names[] = { "state", "mode", "reason", "counters",
						"unscanned_recent", NULL };
	static const char *const rt_states[] = { "on", "off", "unavailable", "degraded",
						 NULL };
	static const char *const modes[] = { "detect", "block", NULL };
	static const char *const *const rt_choices[] = { rt_states, modes, NULL, NULL, NULL };
	static const char *const ls_names[] = { "task", "source", "started", "finished", "state",
						"files", "bytes", "detections", NULL };
	static const char *const sources[] = { "realtime", "scheduled", "scan_now", "manual",
					       "clamd", NULL };
	static const char *const ls_states[] = { "running", "completed", "cancelled", "failed",
						 NULL };
	static const char *const *const ls_choices[] = { NULL, sources, NULL, NULL, ls_states,
							 NULL, NULL, NULL };
	static const char *const cd_names[] = { "state", "requests", "found", "errors",
						"unverified", "cached", NULL };
	static const char *const cd_states[] = { "on", "stopped", NULL };
	static const char *const *const cd_choices[] = { cd_states, NULL, NULL, NULL, NULL,
							 NULL };
	json_t *rt = json_object_get(status, "realtime"), *ls = json_object_get(status,
										   "last_scan");
	json_t *cd = json_object_get(status, "clamd");
	const char *bad;

	if (rt && !json_is_null(rt)) {
		bad = json_is_object(rt) ? members_bad(rt, rt_names, "ssson", rt_choices) : "";
		if (bad || !json_is_string(json_object_get(rt, "state"))) {
			snprintf(msg, len, "status.realtime%s%.64s: expected {\"state\": \"on\"|"
				 "\"off\"|\"unavailable\"|\"degraded\", \"mode\": "
				 "\"detect\"|\"block\", \"reason\": TEXT, \"counters\": {...}, "
				 "\"unscanned_recent\": N}", bad && *bad ? "." : "",
				 bad ? bad : "");
			return false;
		}
	}
	if (ls && !json_is_null(ls)) {
		bad = json_is_object(ls) ? members_bad(ls, ls_names, "Nsnnsnnn", ls_choices) : "";
		if (bad || !json_is_string(json_object_get(ls, "state")) ||
		    !json_is_integer(json_object_get(ls, "started"))) {
			snprintf(msg, len, "status.last_scan%s%.64s: expected {\"task\": ID|null, "
				 "\"source\", \"started\", \"finished\", \"state\", \"files\", "
				 "\"bytes\", \"detections\"}", bad && *bad ? "." : "",
				 bad ? bad : "");
			return false;
		}
	}
	if (cd && !json_is_null(cd)) {
		bad = json_is_object(cd) ? members_bad(cd, cd_names, "snnnnn", cd_choices) : "";
		if (bad || !json_is_string(json_object_get(cd, "state"))) {
			snprintf(msg, len, "status.clamd%s%.64s: expected {\"state\": \"on\"|"
				 "\"stopped\", \"requests\": N, \"found\": N, \"errors\": N, "
				 "\"unverified\": N, \"cached\": N}", bad && *bad ? "." : "",
				 bad ? bad : "");
			return false;
		}
	}
	return true;
}

/* Whether s is 1 to max bytes of set. */
static bool word_ok(const json_t *s, size_t max, const char *set)
{
	const char *t = json_string_value(s);

	return t && t[0] && strlen(t) <= max && strspn(t, set) == strlen(t);
}

#define RELEASE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789.-"
#define VERSION_CHARS "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~:-"

/* Checks how an agent says it is installed (agent upgrades): "platform"
 * {os, arch}, "install", "package_version" and "restart_pending" {version,
 * needs, since}; false with msg naming the member. */
static bool install_ok(const json_t *status, char *msg, size_t len)
{
	static const char *const p_names[] = { "os", "arch", NULL };
	static const char *const installs[] = { "dir", "dpkg", "source", NULL };
	static const char *const r_names[] = { "version", "needs", "since", NULL };
	static const char *const needs[] = { "service", "host", NULL };
	static const char *const *const p_choices[] = { NULL, NULL };
	static const char *const *const r_choices[] = { NULL, needs, NULL };
	json_t *p = json_object_get(status, "platform"), *r = json_object_get(status,
									 "restart_pending");
	json_t *i = json_object_get(status, "install"), *v = json_object_get(status,
								      "package_version");
	const char *bad;

	if (p) {
		bad = json_is_object(p) ? members_bad(p, p_names, "ss", p_choices) : "";
		if (bad || !word_ok(json_object_get(p, "os"), 64, RELEASE_CHARS) ||
		    !word_ok(json_object_get(p, "arch"), 32, RELEASE_CHARS)) {
			snprintf(msg, len, "status.platform: expected {\"os\": RELEASE, \"arch\": "
				 "ARCH} (lower case letters, digits, '.', '-')");
			return false;
		}
	}
	if (i && !one_of(json_string_value(i), installs)) {
		snprintf(msg, len, "status.install: expected \"dir\", \"dpkg\" or \"source\"");
		return false;
	}
	if (json_object_get(status, "supervised") &&
	    !json_is_boolean(json_object_get(status, "supervised"))) {
		snprintf(msg, len, "status.supervised: expected true or false");
		return false;
	}
	if (v && !word_ok(v, 63, VERSION_CHARS)) {
		snprintf(msg, len, "status.package_version: expected a package version");
		return false;
	}
	if (r && !json_is_null(r)) {
		bad = json_is_object(r) ? members_bad(r, r_names, "ssn", r_choices) : "";
		if (bad || !word_ok(json_object_get(r, "version"), 63, VERSION_CHARS)) {
			snprintf(msg, len, "status.restart_pending%s%.64s: expected {\"version\", "
				 "\"needs\": \"service\"|\"host\", \"since\": TIME}",
				 bad && *bad ? "." : "", bad ? bad : "");
			return false;
		}
	}
	return true;
}

/* Threats a status names at most ("unresolved"; the count covers all). */
#define STATUS_THREATS 5

/* MAC addresses a status names at most (the agent's ASTATE_MAX_MACS). */
#define STATUS_MACS 16

/* Checks what a status tells the posture report (docs/protocol.md,
 * "Posture"): "macs" [MAC, ...], "last_full_scan" {finished, source, task}
 * and "unresolved" {count, newest: [{time, path, name}]}; false with msg
 * naming the member. */
static bool posture_ok(const json_t *status, char *msg, size_t len)
{
	static const char *const f_names[] = { "finished", "source", "task", NULL };
	static const char *const sources[] = { "scheduled", "scan_now", NULL };
	static const char *const *const f_choices[] = { NULL, sources, NULL };
	static const char *const u_names[] = { "count", "newest", NULL };
	static const char *const *const u_choices[] = { NULL, NULL };
	static const char *const t_names[] = { "time", "path", "name", NULL };
	static const char *const *const t_choices[] = { NULL, NULL, NULL };
	json_t *f = json_object_get(status, "last_full_scan"), *u = json_object_get(status,
										   "unresolved");
	json_t *newest = json_object_get(u, "newest"), *t, *macs = json_object_get(status, "macs");
	const char *bad, *m;
	size_t i, k;

	json_array_foreach(macs, i, t) {
		m = json_string_value(t);
		for (k = 0; m && k < 17 && (k % 3 == 2 ? m[k] == ':' :
					   strchr("0123456789abcdef", m[k]) && m[k]); k++)
			;
		if (!m || k != 17 || m[17])
			macs = NULL;
	}
	if (json_object_get(status, "macs") && (!json_is_array(macs) ||
						json_array_size(macs) > STATUS_MACS)) {
		snprintf(msg, len, "status.macs: expected at most %d MAC addresses as "
			 "\"aa:bb:cc:dd:ee:ff\"", STATUS_MACS);
		return false;
	}
	if (f && !json_is_null(f)) {
		bad = json_is_object(f) ? members_bad(f, f_names, "nsN", f_choices) : "";
		if (bad || !json_is_integer(json_object_get(f, "finished"))) {
			snprintf(msg, len, "status.last_full_scan%s%.64s: expected {\"finished\": "
				 "TIME, \"source\": \"scheduled\"|\"scan_now\", \"task\": ID|null}",
				 bad && *bad ? "." : "", bad ? bad : "");
			return false;
		}
	}
	if (!u || json_is_null(u))
		return true;
	bad = json_is_object(u) ? members_bad(u, u_names, "na", u_choices) : "";
	if (!bad && (!json_is_integer(json_object_get(u, "count")) || !json_is_array(newest) ||
		     json_array_size(newest) > STATUS_THREATS))
		bad = "";
	json_array_foreach(bad ? NULL : newest, i, t)
		if (!json_is_object(t) || members_bad(t, t_names, "nss", t_choices) ||
		    !json_is_string(json_object_get(t, "path")))
			bad = "newest";
	if (bad) {
		snprintf(msg, len, "status.unresolved%s%.64s: expected {\"count\": N, \"newest\": "
			 "[{\"time\", \"path\", \"name\"}, ...] (at most %d)}", *bad ? "." : "",
			 bad, STATUS_THREATS);
		return false;
	}
	return true;
}

/* Checks an agent's status report (NULL: none); answers 400 when it is not
 * an object within the bounds above, or its protection parts are not as
 * docs/protocol.md says. */
static bool status_valid(struct http_req *req, const json_t *status)
{
	size_t items = 0;
	char msg[512];

	if (status && !(json_is_object(status) && status_ok(status, 1, &items))) {
		http_respond_error(req, 400, "status: expected an object at most %d levels deep, "
				   "%d values in all, %d members or items each, strings of at most "
				   "%d bytes without control characters", STATUS_DEPTH,
				   STATUS_ITEMS, STATUS_WIDTH, STATUS_STRING);
		return false;
	}
	if (status && (!protection_ok(status, msg, sizeof(msg)) ||
		       !install_ok(status, msg, sizeof(msg)) ||
		       !posture_ok(status, msg, sizeof(msg)))) {
		http_respond_error(req, 400, "%s", msg);
		return false;
	}
	return true;
}

/* Keeps the last scan a status reports as the client's (when later than
 * the one it has). */
static void note_last_scan(struct api_ctx *ctx, int64_t id, const json_t *status)
{
	json_t *ls = json_object_get(status, "last_scan");
	char *text;

	if (!json_is_object(ls))
		return;
	text = json_dumps(ls, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || store_client_last_scan(ctx->st, id, text) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "client %lld: storing its last scan failed", (long long)id);
	free(text);
}

/* Returns whether the domain path is token (a canonical path) or below it. */
static bool within(const char *token, const char *path)
{
	size_t n = strlen(token);

	return strcmp(token, "/") == 0 || (strncmp(path, token, n) == 0 &&
					   (path[n] == '\0' || path[n] == '/'));
}

/* The domain an agent enrolling with the token for domain_path lands in:
 * the domain it asks for (a client moving from another server keeps its
 * path) when that exists within the token's; else the one a grouping rule
 * gives, when within it; else the token's own. Nothing a token holder
 * sends creates a domain. */
static enum serr enroll_domain(struct api_ctx *ctx, const char *domain_path,
			       const char *wanted, const json_t *status, int64_t *domain,
			       char *msg, size_t len)
{
	char path[4096];
	int64_t id = 0;

	if (wanted && store_domain_lookup(ctx->st, wanted, 0, &id, msg, len) == SERR_OK &&
	    store_domain_path(ctx->st, id, path, sizeof(path)) == SERR_OK &&
	    within(domain_path, path)) {
		*domain = id;
		return SERR_OK;
	}
	id = wanted ? 0 : grouped_domain(ctx, status);
	if (id && store_domain_path(ctx->st, id, path, sizeof(path)) == SERR_OK &&
	    within(domain_path, path)) {
		*domain = id;
		return SERR_OK;
	}
	return store_domain_lookup(ctx->st, domain_path, 0, domain, msg, len);
}

/* Agent enrollment: the agent names itself (uuid, host name, status) and
 * gets its credential, which the server keeps only as a SHA-256. */
void api_agent_enroll(struct api_ctx *ctx, struct http_req *req, const char *domain_path,
		      const struct api_args *args)
{
	json_t *body = api_body_object(req), *status = NULL;
	const char *uuid, *hostname, *wanted = NULL, *deployment = NULL;
	unsigned char hash[32];
	char secret[65], msg[256];
	enum serr err;
	int64_t domain, id;

	(void)args;
	secret[0] = '\0';
	if (!body || !enroll_admit(ctx, req))
		goto out;
	if (json_unpack(body, "{s:s, s:s, s?:o, s?:s, s?:s}", "uuid", &uuid, "hostname",
			&hostname, "status", &status, "domain", &wanted, "deployment",
			&deployment) != 0 || strlen(uuid) != 36 ||
	    strspn(uuid, "0123456789abcdef-") != 36 || !enroll_valid_host(hostname) ||
	    (deployment && !deploy_id_valid(deployment))) {
		http_respond_error(req, 400, "enroll: expected {\"uuid\": 36 lowercase hex and "
				   "dashes, \"hostname\": 1 to 253 letters, digits, dots, dashes "
				   "and underscores[, \"deployment\": 32 lowercase hex digits]}");
		goto out;
	}
	if (!status_valid(req, status))
		goto out;
	api_new_token(secret, hash);
	err = enroll_domain(ctx, domain_path, wanted, status, &domain, msg, sizeof(msg));
	if (err == SERR_OK)
		err = store_client_add(ctx->st, domain, uuid, hostname, hash, &id, msg,
				       sizeof(msg));
	if (err == SERR_OK && store_token_use(ctx->st, ctx->caller_token, -1) != SERR_OK) {
		snprintf(msg, sizeof(msg), "database: spending the token failed");
		err = SERR_DB;
	}
	if (err != SERR_OK) {
		api_store_error(req, err, msg);
		goto out;
	}
	store_eventf(ctx->st, "system", id, "%s (%s) enrolled from %s as client %lld", hostname,
		     uuid, http_req_peer(req), (long long)id);
	if (deployment)
		deploy_enrolled(ctx, ctx->caller_token, deployment, id, hostname);
	notify_kick(ctx->notify);
	http_respond_json(req, 201, json_pack("{sI ss sI sI ss sO}", "client", (json_int_t)id,
					      "secret", secret, "heartbeat_interval",
					      (json_int_t)ctx->cfg->heartbeat_interval,
					      "long_poll", (json_int_t)ctx->cfg->long_poll,
					      "package_key", updates_key(ctx->updates),
					      "frontends", ctx->frontends));
out:
	sodium_memzero(secret, sizeof(secret));
	json_decref(body);
}

void api_agent_heartbeat(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	int64_t id = strtoll(who, NULL, 10), version = 0;
	json_t *body = api_body_object(req);
	char msg[256], *status = NULL, *json = NULL;

	(void)args;
	if (!body)
		return;
	if (!status_valid(req, body))
		goto out;
	regroup(ctx, id, body);
	note_last_scan(ctx, id, body);
	status = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!status || store_agent_seen(ctx->st, id, status, (int64_t)time(NULL), msg,
					sizeof(msg)) != SERR_OK ||
	    store_agent_settings(ctx->st, id, &json, &version, msg, sizeof(msg)) != SERR_OK)
		http_respond_error(req, 500, "heartbeat: database failed");
	else
		http_respond_json(req, 200, json_pack("{sI sI}", "version", (json_int_t)version,
						      "heartbeat_interval",
						      (json_int_t)ctx->cfg->heartbeat_interval));
out:
	free(json);
	free(status);
	json_decref(body);
}

/* The event channel: {"version": N[, "status": {...}][, "wait": S]
 * [, "tasks_seen": ID]}. The agent sends its status (a heartbeat) with the
 * poll when its interval has passed, so one connection per agent carries
 * both; tasks_seen is the highest task id in the answers it got. */
void api_agent_events(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *body = api_body_object(req), *status = NULL;
	int64_t id = strtoll(who, NULL, 10);
	json_int_t version, wait = 0, seen = -1;
	char *text = NULL, msg[256];

	(void)args;
	if (!body)
		return;
	if (json_unpack(body, "{s:I, s?:o, s?:I, s?:I !}", "version", &version, "status",
			&status, "wait", &wait, "tasks_seen", &seen) != 0 ||
	    version < 0 || (status && !json_is_object(status)) ||
	    (json_object_get(body, "tasks_seen") && seen < 0)) {
		http_respond_error(req, 400, "events: expected {\"version\": N (the settings "
				   "version the agent has)[, \"status\": {...}][, \"wait\": "
				   "SECONDS][, \"tasks_seen\": ID (0 or more)]}");
		goto out;
	}
	if (!status_valid(req, status))
		goto out;
	if (status) {
		regroup(ctx, id, status);
		note_last_scan(ctx, id, status);
		text = json_dumps(status, JSON_COMPACT | JSON_SORT_KEYS);
	}
	if (store_agent_seen(ctx->st, id, text, (int64_t)time(NULL), msg, sizeof(msg)) !=
	    SERR_OK) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	if (seen >= 0 && store_tasks_seen(ctx->st, id, seen) != SERR_OK) {
		http_respond_error(req, 500, "events: the tasks could not be marked to go again");
		goto out;
	}
	notify_poll(ctx->notify, req, id, version, wait);
out:
	free(text);
	json_decref(body);
}

void api_agent_ack(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args)
{
	json_t *body = api_body_object(req);
	json_int_t version;

	(void)args;
	if (!body)
		return;
	if (json_unpack(body, "{s:I !}", "version", &version) != 0 || version < 0) {
		http_respond_error(req, 400, "ack: expected {\"version\": N}");
	} else {
		notify_ack(ctx->notify, strtoll(who, NULL, 10), version);
		http_respond_json(req, 200, json_pack("{sI}", "version", version));
	}
	json_decref(body);
}

/* Where an agent updates from: the first table entry holding the address
 * it connects from or one it reported; null means this server. */
void api_agent_source(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *addresses = json_pack("[s]", http_req_peer(req));
	const char *url;

	(void)args;
	if (!addresses) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	store_clients_each(ctx->st, strtoll(who, NULL, 10), api_clients_addresses, addresses);
	url = json_string_value(json_object_get(sources_match(ctx->sources, addresses), "url"));
	http_respond_json(req, 200, json_pack("{so}", "source", url ? json_string(url) :
					      json_null()));
	json_decref(addresses);
}

/* The domain the grouping rules give an agent with this status, created
 * when missing; 0 when no rule matches. */
static int64_t grouped_domain(struct api_ctx *ctx, const json_t *status)
{
	const char *path = status ? grouping_match(ctx->rules, status) : NULL;
	char msg[256];
	int64_t id;

	if (!path || store_domain_lookup(ctx->st, path, 1, &id, msg, sizeof(msg)) != SERR_OK)
		return 0;
	return id;
}

static int take_status(json_t *c, void *arg)
{
	json_t **out = arg;

	*out = json_incref(json_object_get(c, "status"));
	if (!*out)
		*out = json_null();
	return 1;
}

/* When an agent reports addresses other than before, the grouping rules
 * are applied again: a matching rule moves it to its domain. */
static void regroup(struct api_ctx *ctx, int64_t id, const json_t *status)
{
	json_t *old = NULL;
	int64_t domain;
	char msg[256];

	if (json_array_size(ctx->rules) == 0 ||
	    store_clients_each(ctx->st, id, take_status, &old) != SERR_OK || !old)
		return;
	if (!json_equal(json_object_get(old, "ipv4"), json_object_get(status, "ipv4")) ||
	    !json_equal(json_object_get(old, "ipv6"), json_object_get(status, "ipv6")) ||
	    !json_equal(json_object_get(old, "hostname"), json_object_get(status, "hostname"))) {
		domain = grouped_domain(ctx, status);
		if (domain && api_clients_move_licensed(ctx, id, domain, msg, sizeof(msg)) !=
		    SERR_OK) {
			store_eventf(ctx->st, "system", id, "not regrouped after an address "
				     "change: %s", msg);
		} else if (domain &&
			   store_client_move(ctx->st, id, domain, msg, sizeof(msg)) == SERR_OK) {
			log_msg(LOG_LVL_INFO, "grouping: client %lld regrouped after an address "
				"change", (long long)id);
			notify_kick(ctx->notify);
		}
	}
	json_decref(old);
}
