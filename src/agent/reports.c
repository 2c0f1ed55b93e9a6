/* reports.c -- what the agent reports: its status, the detections kept
 * for the server, and the files smart scan left unverified, rescanned
 * once a smart protection source answers (see reports.h). */
#include "agent/reports.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/clamd.h"
#include "agent/protect.h"
#include "agent/threats.h"
#include "agent/upgrade.h"
#include "agent/vault.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/util.h"

/* Detections kept for the server at most; past it the oldest go (an
 * agent cut off from its server for long, on an infested machine). */
#define MAX_KEPT_DETECTIONS 10000

/* Detections a report carries at most: well under the server's request
 * size limit even with long paths. */
#define REPORT_BATCH 100

/* The operating system's name from /etc/os-release. */
static json_t *os_name(void)
{
	char *text = util_read_file("/etc/os-release", 1 << 16, NULL), *p, *end;
	json_t *name;

	p = text ? strstr(text, "PRETTY_NAME=") : NULL;
	if (!p) {
		free(text);
		return json_string("Linux");
	}
	p += 12;
	if (*p == '"')
		p++;
	end = p + strcspn(p, "\"\n");
	*end = '\0';
	name = json_string(p);
	free(text);
	return name;
}

/* The object kept in STATE/name (a new one), or a new JSON null. */
static json_t *kept_object(const struct agent *a, const char *name)
{
	char *path = astate_file(a, name);
	json_t *last = path ? json_load_file(path, 0, NULL) : NULL;

	free(path);
	if (!json_is_object(last)) {
		json_decref(last);
		last = json_null();
	}
	return last;
}

json_t *reports_last_scan(const struct agent *a)
{
	return kept_object(a, "last_scan.json");
}

json_t *reports_last_full_scan(const struct agent *a)
{
	return kept_object(a, "last_full_scan.json");
}

/* What a heartbeat reports. */
json_t *reports_status(struct agent *a)
{
	const struct components_handle *h;
	char host[256];
	json_t *s;

	util_host_name(host);
	s = json_pack("{ss so ss}", "hostname", host, "os", os_name(), "agent_version",
		      WARD_VERSION);
	if (!s)
		return NULL;
	astate_add_addresses(s);
	json_object_set_new(s, "settings_version", json_integer(a->version));
	json_object_set_new(s, "components", astate_installed(a));
	json_object_set_new(s, "update_error", a->update_error[0] ?
			    json_string(a->update_error) : json_null());
	json_object_set_new(s, "realtime", protect_status(a->protect));
	if (a->clamd)
		json_object_set_new(s, "clamd", clamd_status(a->clamd));
	/* The last scan of the server or the schedule (tasks.c keeps it). */
	json_object_set_new(s, "last_scan", reports_last_scan(a));
	json_object_set_new(s, "last_full_scan", reports_last_full_scan(a));
	json_object_set_new(s, "unresolved", threats_status(a));
	json_object_set(s, "scan_method", a->settings ?
			json_object_get(a->settings, "scan_method") : json_null());
	json_object_set_new(s, "networks",
			    json_string(astate_network_name(astate_network_family(a))));
	json_object_set_new(s, "unverified", json_integer((json_int_t)a->unverified));
	upgrade_status(a, s);
	h = components_acquire(a->comps);
	if (h && h->smart) {
		struct smart_stats st;

		smart_stats(h->smart, &st);
		json_object_set_new(s, "smart", json_pack("{sb sI sI}", "answering",
				    st.answering, "requests",
				    (json_int_t)st.requests, "failures", (json_int_t)st.failures));
	}
	components_release(a->comps, h);
	return s;
}

/* Opens (creating) the lock of the scan state (the unverified list and
 * the detections not yet reported) and takes it; with wait false, returns
 * -1 at once when another process holds it. */
int reports_lock(const struct agent *a, bool wait)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s.lock", a->unverified_path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The JSON list in the state file path (a new list; empty when none is
 * kept): the unverified files, or the detections to report. */
json_t *reports_load_list(const char *path)
{
	json_t *list = json_load_file(path, 0, NULL);

	if (!json_is_array(list)) {
		json_decref(list);
		list = json_array();
	}
	return list;
}

/* Returns a new list of the last MAX_KEPT_DETECTIONS of kept (whose
 * reference it takes) followed by found; NULL when out of memory. */
json_t *reports_keep_newest(json_t *kept, const json_t *found)
{
	size_t n = json_array_size(kept) + json_array_size(found), i;
	size_t skip = n > MAX_KEPT_DETECTIONS ? n - MAX_KEPT_DETECTIONS : 0;
	json_t *out = json_array();

	for (i = skip; out && i < n; i++)
		json_array_append(out, i < json_array_size(kept) ? json_array_get(kept, i) :
				  json_array_get(found, i - json_array_size(kept)));
	json_decref(kept);
	return out;
}

/* Scans paths with the generation h (and its smart protection), keeping
 * the unverified list and the detections to report up to date; the caller
 * has locked them. */
int reports_scan(struct agent *a, const struct components_handle *h,
		 const char *const *paths, size_t n, const struct ascan_opts *o,
		 struct ascan_totals *t)
{
	json_t *list = reports_load_list(a->unverified_path), *found = json_array(), *kept;
	char msg[512];
	int rc;

	rc = ascan_run(h, paths, n, o, list, found, t, msg, sizeof(msg));
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "scan: %s", msg);
	if (!state_write_json(a->unverified_path, list))
		rc = -1;
	a->unverified = json_array_size(list);
	json_decref(list);
	if (json_array_size(found)) {
		threats_note(a, found);
		kept = reports_keep_newest(reports_load_list(a->detections_path), found);
		if (!kept || !state_write_json(a->detections_path, kept)) {
			log_msg(LOG_LVL_ERROR, "scan: %s: the detections could not be kept for the "
				"server", a->detections_path);
			rc = -1;
		}
		json_decref(kept);
	}
	json_decref(found);
	return rc;
}

int reports_add_unverified(struct agent *a, const char *path, bool act)
{
	int lock = reports_lock(a, true), rc = -1;
	enum quarantine_source source;
	const char *p;
	json_t *list, *v, *entry = NULL;
	size_t i;

	if (lock < 0)
		return -1;
	list = reports_load_list(a->unverified_path);
	json_array_foreach(list, i, v)
		if ((p = ascan_unverified_path(v, &source)) != NULL && strcmp(p, path) == 0)
			break;
	if (list && i == json_array_size(list)) {
		entry = ascan_unverified_entry(path, QUARANTINE_SOURCE_REALTIME);
		if (!entry || (!act && json_object_set_new(entry, "act", json_false()) != 0) ||
		    json_array_append(list, entry) != 0) {
			json_decref(list);
			list = NULL;
		}
		json_decref(entry);
	}
	if (list && state_write_json(a->unverified_path, list))
		rc = 0;
	a->unverified = json_array_size(list);
	json_decref(list);
	close(lock);
	return rc;
}

/* The list of detections queued one at a time (real time), apart from
 * the scans' so that a long scan holding their lock does not hold up the
 * threads that queue; and the lock of that list. */
static char *live_path(const struct agent *a)
{
	return astate_file(a, "detections-live.json");
}

static int live_lock(const struct agent *a, bool wait)
{
	char *path = astate_file(a, "detections-live.json.lock");
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;

	free(path);
	if (fd >= 0 && flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Queues one detection among those kept for the server. */
int reports_queue_detections(struct agent *a, const json_t *found)
{
	json_t *kept = NULL;
	char *path = live_path(a);
	int lock = live_lock(a, true), rc = -1;

	threats_note(a, found);
	if (path && lock >= 0) {
		kept = reports_keep_newest(reports_load_list(path), found);
		if (kept && state_write_json(path, kept))
			rc = 0;
	}
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "%s: %zu detections could not be kept for the server",
			path ? path : "detections-live.json", json_array_size(found));
	free(path);
	json_decref(kept);
	if (lock >= 0)
		close(lock);
	return rc;
}

static void send_list(struct agent *a, const char *path, int lock);

/* Reports the detections kept in the state directory to the server,
 * REPORT_BATCH a request, and forgets those it took. Skipped while a scan
 * holds the lock; what the server cannot be reached for, is busy for or
 * limits (429) is tried again later, what it refuses as malformed (it
 * would refuse it again) is dropped, logged. */
void reports_send_detections(struct agent *a)
{
	char *live = live_path(a);

	if (access(a->detections_path, F_OK) == 0)
		send_list(a, a->detections_path, reports_lock(a, false));
	if (live && access(live, F_OK) == 0)
		send_list(a, live, live_lock(a, false));
	free(live);
}

/* Sends a batch of the list at path, whose lock the caller took (lock;
 * -1: not taken, nothing done), and lets go of it. */
static void send_list(struct agent *a, const char *path, int lock)
{
	json_t *kept, *batch, *body = NULL, *answer = NULL, *rest;
	const char *why;
	char msg[256];
	long status = 0;
	size_t i, n;

	if (lock < 0)
		return;
	kept = reports_load_list(path);
	n = json_array_size(kept) < REPORT_BATCH ? json_array_size(kept) : REPORT_BATCH;
	batch = json_array();
	for (i = 0; batch && i < n; i++)
		json_array_append(batch, json_array_get(kept, i));
	body = batch ? json_pack("{sO}", "detections", batch) : NULL;
	if (n && body && rest_call(a->up.rc, "POST", "/api/v1/agent/detections", body, 30, &status,
				   &answer, msg, sizeof(msg)) == ERR_OK &&
	    (status == 200 || status == 400 || status == 413)) {
		why = json_string_value(json_object_get(answer, "error"));
		if (status == 200)
			log_msg(LOG_LVL_INFO, "reported %zu detection%s to the server", n,
				n == 1 ? "" : "s");
		else
			log_msg(LOG_LVL_ERROR, "the server refused %zu detection%s (%s); dropped",
				n, n == 1 ? "" : "s", why ? why : "too large");
		rest = json_array();
		for (i = n; rest && i < json_array_size(kept); i++)
			json_array_append(rest, json_array_get(kept, i));
		json_decref(kept);
		kept = rest;
	} else if (n) {
		/* 429: this agent's hourly or daily number is reached; they
		 * are kept like any other refusal that may pass later. */
		log_msg(LOG_LVL_WARN, "reporting detections failed (%s); tried again later",
			status == 429 ? "the server's limit for this agent is reached" :
			status ? "the server is busy or failing" : msg);
	}
	if (kept && json_array_size(kept) == 0)
		unlink(path);
	else if (n && (!kept || !state_write_json(path, kept)))
		log_msg(LOG_LVL_ERROR, "%s: could not be rewritten; reported detections may be "
			"sent again", path);
	json_decref(answer);
	json_decref(body);
	json_decref(batch);
	json_decref(kept);
	close(lock);
}

/* A rescan's infected file: the policy's actions, the detection with the
 * source that left it unverified. */
struct rescan {
	struct vault *v;
	enum quarantine_source source;
};

static json_t *rescan_found(const char *path, dev_t dev, ino_t ino, const char *const *names,
			    size_t nnames, void *arg)
{
	const struct rescan *r = arg;
	struct vault_detection d = { .source = r->source, .path = path, .dev = dev, .ino = ino,
				     .names = names, .nnames = nnames };

	return vault_respond_path(r->v, &d);
}

/* Rescans the unverified files of list that source left, with h: those
 * whose entry says "act": false (real time in detect mode) are reported
 * without action, the others get the policy's actions. */
static void rescan(struct agent *a, struct vault *v, const struct components_handle *h,
		   const json_t *list, enum quarantine_source source, bool act,
		   const atomic_bool *cancel)
{
	struct rescan r = { v, source };
	struct ascan_opts o = { .cancel = cancel, .act = act ? rescan_found : NULL,
				.act_arg = &r, .source = source };
	enum quarantine_source of;
	struct ascan_totals t;
	const char **paths = calloc(json_array_size(list) + 1, sizeof(*paths)), *p;
	const json_t *e;
	size_t i, n = 0;

	for (i = 0; paths && i < json_array_size(list); i++)
		if ((p = ascan_unverified_path(e = json_array_get(list, i), &of)) != NULL &&
		    of == source && act == !json_is_false(json_object_get(e, "act")))
			paths[n++] = p;
	if (n) {
		log_msg(LOG_LVL_INFO, "rescan: %zu unverified file%s (%s), now that a smart "
			"protection source answers", n, n == 1 ? "" : "s",
			quarantine_source_name(source));
		if (reports_scan(a, h, paths, n, &o, &t) == 0)
			log_msg(LOG_LVL_INFO, "rescan: %llu file%s scanned, %llu infected, %llu "
				"still unverified", (unsigned long long)t.files,
				t.files == 1 ? "" : "s", (unsigned long long)t.infected,
				(unsigned long long)t.unverified);
	}
	free(paths);
}

/* Rescans the unverified files once a smart protection source answers
 * again, trying at most every 10 seconds; skipped while a scan of
 * `ward-agent scan` holds the list. The source list is fetched again
 * every 5 minutes, and at each try while no source answers, so that an
 * administrator's new list takes over. The files are rescanned by what
 * left them unverified, whose name their detections carry, with the
 * policy's actions. */
void reports_rescan_unverified(struct agent *a, struct vault *v, const atomic_bool *cancel)
{
	uint64_t now = util_now_ns() / 1000000000u;
	const struct components_handle *h = components_acquire(a->comps);
	enum quarantine_source source;
	json_t *list = NULL;
	int lock = -1, act;

	if (!h || !h->smart || now - a->last_rescan < 10)
		goto out;
	a->last_rescan = now;
	if (now - a->last_sources >= 300) {
		components_refresh_sources(a);
		a->last_sources = now;
	}
	lock = reports_lock(a, false);
	if (lock < 0)
		goto out;
	list = reports_load_list(a->unverified_path);
	a->unverified = json_array_size(list);
	if (json_array_size(list) && !smart_reachable(h->smart)) {
		components_refresh_sources(a);
		a->last_sources = now;
	}
	/* The source list may have changed: the smart state now in use. */
	components_release(a->comps, h);
	h = components_acquire(a->comps);
	for (source = QUARANTINE_SOURCE_REALTIME; json_array_size(list) && h && h->smart &&
		    smart_reachable(h->smart) && source <= QUARANTINE_SOURCE_MANUAL; source++)
		for (act = 0; act < 2; act++)
			rescan(a, v, h, list, source, act, cancel);
out:
	components_release(a->comps, h);
	json_decref(list);
	if (lock >= 0)
		close(lock);
}
