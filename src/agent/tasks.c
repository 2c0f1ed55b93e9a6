/* tasks.c -- the agent's scans, each on a thread of its own (see tasks.h). */
#include "agent/tasks.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "agent/sandbox.h"
#include "agent/threats.h"
#include "agent/vault.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/state.h"
#include "common/util.h"

/* Seconds between two progress reports of a server's scan at most. */
#define PROGRESS_SECONDS 3

/* A scan's answer line waits this long at most for its client to take it
 * before the cancellation flag is looked at again. */
#define WRITE_POLL_MS 500

/* A scan, or a work of the loop's (tasks_run()): work set. */
struct scan {
	struct tasks *t;
	tasks_work_fn work;   /* NULL: a scan */
	tasks_done_fn done;
	void *work_arg;
	uint64_t after;       /* a scan: the works queued before it */
	uint64_t id;
	char **paths;
	size_t n;
	char **exclude;       /* scan.exclude_paths and the local exclusions */
	size_t nexclude;
	int fd;               /* the client of a manual scan; -1: none */
	enum quarantine_source source;
	int64_t task;         /* the server's task; 0: none */
	bool low;             /* scan.cpu=low */
	bool full;            /* of scan.paths: a full scan, for the posture */
	int64_t started;
	uint64_t last_progress; /* monotonic seconds */
	int64_t cancel_task;  /* the cancel task to report completed at the end */
	pthread_t thread;
	atomic_bool cancel;
	atomic_bool stopping; /* cancelled by tasks_stop() */
	bool joined;          /* by tasks_stop() */
	struct scan *next;
};

struct tasks {
	struct agent *a;
	struct loop *loop;
	unsigned max, running;
	uint64_t next_id;
	struct scan *scans;   /* the threads running: scans and the work */
	struct scan *queue;   /* works waiting for the one running, oldest first */
	bool working;         /* a work's thread runs */
	uint64_t works_queued;
	atomic_uint_fast64_t works_done;
	struct vault *vault;
	tasks_report_fn report;
	tasks_status_fn status;
	void *report_arg;
	json_t *settings;     /* a copy of those in effect */
	uint64_t timer;       /* the next scheduled scan; 0: none */
	char *last_scan_path;
};

struct tasks *tasks_new(struct agent *a, struct loop *loop, unsigned max_scans)
{
	struct tasks *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->a = a;
	t->loop = loop;
	t->max = max_scans;
	t->next_id = 1;
	t->last_scan_path = astate_file(a, "last_scan.json");
	/* The agent's own settings belong to the channel's thread: the
	 * defaults until tasks_configure() gives a copy. */
	t->settings = json_object();
	if (!t->last_scan_path || !t->settings) {
		free(t->last_scan_path);
		json_decref(t->settings);
		free(t);
		return NULL;
	}
	return t;
}

static void report_task(struct tasks *t, int64_t id, const char *state, int64_t started,
			const struct ascan_totals *tot, const char *error);

void tasks_attach(struct tasks *t, struct vault *v, tasks_report_fn report,
		  tasks_status_fn status, void *arg)
{
	json_t *last = json_load_file(t->last_scan_path, 0, NULL);
	json_int_t task = json_integer_value(json_object_get(last, "task"));
	const char *state = json_string_value(json_object_get(last, "state"));

	t->vault = v;
	t->report = report;
	t->status = status;
	t->report_arg = arg;
	/* The agent stopped (or was killed) during a scan of the server's: the
	 * server does not deliver a running task again, so it hears the scan
	 * ended. */
	if (state && strcmp(state, "running") == 0) {
		json_object_set_new(last, "state", json_string("cancelled"));
		json_object_set_new(last, "finished", json_integer((json_int_t)time(NULL)));
		if (!state_write_json(t->last_scan_path, last))
			log_msg(LOG_LVL_WARN, "%s: could not be rewritten", t->last_scan_path);
		if (task > 0 && report) {
			struct ascan_totals tot = { 0 };

			tot.files = (uint64_t)json_integer_value(json_object_get(last, "files"));
			tot.bytes = (uint64_t)json_integer_value(json_object_get(last, "bytes"));
			tot.infected = (uint64_t)json_integer_value(json_object_get(last,
										    "detections"));
			report_task(t, task, "cancelled", json_integer_value(json_object_get(last,
				    "started")), &tot, NULL);
		}
	}
	json_decref(last);
}

static void strings_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void scan_free(struct scan *s)
{
	strings_free(s->paths, s->n);
	strings_free(s->exclude, s->nexclude);
	free(s);
}

/* Appends the strings of list (a JSON array) to *v (*n of them). */
static int strings_add(char ***v, size_t *n, const json_t *list)
{
	size_t i, m = json_array_size(list);
	char **grown;
	const char *p;

	grown = realloc(*v, (*n + m + 1) * sizeof(**v));
	if (!grown)
		return -1;
	*v = grown;
	for (i = 0; i < m; i++) {
		p = json_string_value(json_array_get(list, i));
		if (p && !(grown[(*n)++] = strdup(p)))
			return -1;
	}
	return 0;
}

/* A task report for the server: {"id", "state", "started", "finished",
 * "progress"}, and "error" when failed. */
static void report_task(struct tasks *t, int64_t id, const char *state, int64_t started,
			const struct ascan_totals *tot, const char *error)
{
	json_t *r;

	if (!t->report || id <= 0)
		return;
	r = json_pack("{sI ss}", "id", (json_int_t)id, "state", state);
	if (!r)
		return;
	if (started)
		json_object_set_new(r, "started", json_integer(started));
	if (strcmp(state, "running") != 0)
		json_object_set_new(r, "finished", json_integer((json_int_t)time(NULL)));
	if (tot)
		json_object_set_new(r, "progress", json_pack("{sI sI sI}", "files",
				    (json_int_t)tot->files, "bytes", (json_int_t)tot->bytes,
				    "detections", (json_int_t)tot->infected));
	if (error)
		json_object_set_new(r, "error", json_string(error));
	t->report(r, t->report_arg);
}

/* A full scan completed: kept for the status's last_full_scan, and the
 * threats it covered and did not find again are forgotten, unless a file
 * was left unverified or could not be scanned (it may be the threat). */
static void keep_full(struct scan *s, const struct ascan_totals *tot)
{
	char *path = astate_file(s->t->a, "last_full_scan.json");
	json_t *full = json_pack("{sI ss so}", "finished", (json_int_t)time(NULL), "source",
				 quarantine_source_name(s->source), "task", s->task > 0 ?
				 json_integer(s->task) : json_null());

	if (!path || !full || !state_write_json(path, full))
		log_msg(LOG_LVL_WARN, "%s: the last full scan could not be kept",
			path ? path : "last_full_scan.json");
	if (!tot->unverified && !tot->errors)
		threats_full_scan(s->t->a, s->started, (const char *const *)s->paths, s->n,
				  (const char *const *)s->exclude, s->nexclude);
	json_decref(full);
	free(path);
}

/* Keeps the scan as the last one, for the status's last_scan, and has the
 * status sent. */
static void keep_last(struct scan *s, const char *state, const struct ascan_totals *tot)
{
	json_t *last = json_pack("{so ss sI ss sI sI sI}", "task", s->task > 0 ?
				 json_integer(s->task) : json_null(), "source",
				 quarantine_source_name(s->source), "started",
				 (json_int_t)s->started, "state", state, "files",
				 (json_int_t)tot->files, "bytes", (json_int_t)tot->bytes,
				 "detections", (json_int_t)tot->infected);

	if (last && strcmp(state, "running") != 0)
		json_object_set_new(last, "finished", json_integer((json_int_t)time(NULL)));
	if (!last || !state_write_json(s->t->last_scan_path, last))
		log_msg(LOG_LVL_WARN, "%s: the last scan could not be kept", s->t->last_scan_path);
	if (s->full && strcmp(state, "completed") == 0)
		keep_full(s, tot);
	if (s->t->status)
		s->t->status(s->t->report_arg);
	json_decref(last);
}

/* After each file: a server's scan reports its progress, and a server's or
 * scheduled scan rewrites last_scan with it, every few seconds (a clock
 * read per file; the state file and the server's status no more often). */
static void on_progress(const struct ascan_totals *tot, void *arg)
{
	struct scan *s = arg;
	uint64_t now = util_now_ns() / 1000000000u;

	if (s->source == QUARANTINE_SOURCE_MANUAL || now - s->last_progress < PROGRESS_SECONDS)
		return;
	s->last_progress = now;
	report_task(s->t, s->task, "running", s->started, tot, NULL);
	keep_last(s, "running", tot);
}

/* An infected file: the policy's actions through the directory the scan
 * opened it in, checked to be the file read (dev, ino). */
static json_t *on_found(const char *path, dev_t dev, ino_t ino, const char *const *names,
			size_t nnames, void *arg)
{
	struct scan *s = arg;
	struct vault_detection d = { .source = s->source, .path = path, .dev = dev, .ino = ino,
				     .names = names, .nnames = nnames, .task = s->task };

	return vault_respond_path(s->t->vault, &d);
}

/* scan.cpu=low: the scanning threads this one starts inherit both. */
static void lower_priority(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	if (setpriority(PRIO_PROCESS, (id_t)tid, 19) != 0)
		log_msg(LOG_LVL_WARN, "scan: nice 19: %s", strerror(errno));
	if (syscall(SYS_ioprio_set, SANDBOX_IOPRIO_WHO_PROCESS, tid, SANDBOX_IOPRIO_IDLE) != 0)
		log_msg(LOG_LVL_WARN, "scan: the idle I/O class: %s", strerror(errno));
}

/* Writes obj (a reference taken) as one line to the scan's client; a
 * client that is gone, or takes nothing while the scan is cancelled,
 * cancels the scan. */
static void send_line(struct scan *s, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	struct pollfd p = { .fd = s->fd, .events = POLLOUT };
	size_t len, off = 0;
	ssize_t w;

	json_decref(obj);
	if (s->fd < 0) {
		free(text);
		return;
	}
	if (!text) {
		atomic_store(&s->cancel, true);
		return;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: the length is known */
	while (off < len) {
		w = send(s->fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (atomic_load(&s->cancel))
			break;
		poll(&p, 1, WRITE_POLL_MS);
	}
	if (off < len)
		atomic_store(&s->cancel, true);
	free(text);
}

static void emit(const char *path, enum ascan_verdict v, const char *what, void *arg)
{
	static const char *const names[] = { "OK", "FOUND", "Unverified", "error" };
	json_t *line = json_pack("{so ss}", "file", util_json_bytes(path), "verdict", names[v]);

	if (line && v == ASCAN_FOUND)
		json_object_set_new(line, "name", json_string(what));
	if (line && v == ASCAN_ERROR)
		json_object_set_new(line, "error", json_string(what));
	send_line(arg, line);
}

/* Takes the lists' lock, waiting while another scan or a rescan holds it;
 * -1 when cancelled meanwhile, or it cannot be taken. */
static int take_lock(struct scan *s)
{
	int fd;

	while ((fd = reports_lock(s->t->a, false)) < 0 && !atomic_load(&s->cancel))
		usleep(100000);
	return fd;
}

static void next_work(struct tasks *t);

/* On the loop's thread: the thread of a scan or a work has ended. */
static void finished(void *arg)
{
	struct scan *s = arg, **pp;
	struct tasks *t = s->t;

	for (pp = &t->scans; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	if (!s->joined)
		pthread_join(s->thread, NULL);
	if (s->work) {
		t->working = false;
		s->done(s->work_arg, true);
		next_work(t);
	} else {
		t->running--;
	}
	scan_free(s);
}

/* Waits until the works queued before the scan have run (a restore that
 * excludes its file, then a scan: the scan leaves the file alone); false
 * when cancelled meanwhile. */
static bool wait_works(struct scan *s)
{
	while (atomic_load(&s->t->works_done) < s->after)
		if (atomic_load(&s->cancel))
			return false;
		else
			usleep(20000);
	return true;
}

/* Adds to the paths the scan leaves out the vault's local exclusions, the
 * vaults, and the agent's secrets (never handed to a scan worker). */
static int exclude_more(struct scan *s)
{
	struct tasks *t = s->t;
	json_t *local = t->vault ? vault_exclusions(t->vault) : NULL;
	json_t *vaults = t->vault ? vault_paths(t->vault) : NULL;
	char *cred = astate_file(t->a, "credential.json");
	char *key = astate_file(t->a, "quarantine.key");
	json_t *secrets = cred && key ? json_pack("[ss]", cred, key) : NULL;
	int rc = -1;

	if ((!t->vault || (local && vaults)) && secrets &&
	    strings_add(&s->exclude, &s->nexclude, local) == 0 &&
	    strings_add(&s->exclude, &s->nexclude, vaults) == 0 &&
	    strings_add(&s->exclude, &s->nexclude, secrets) == 0)
		rc = 0;
	free(cred);
	free(key);
	json_decref(local);
	json_decref(vaults);
	json_decref(secrets);
	return rc;
}

static void *run(void *arg)
{
	struct scan *s = arg;
	struct agent *a = s->t->a;
	const struct components_handle *h = components_acquire_wait(a, &s->cancel);
	struct ascan_totals tot = { 0 };
	struct ascan_opts o = { 0 };
	const char *error = NULL, *state;
	char why[1024];
	int lock = -1;

	if (s->low)
		lower_priority();
	if (s->source != QUARANTINE_SOURCE_MANUAL) {
		report_task(s->t, s->task, "running", s->started, &tot, NULL);
		keep_last(s, "running", &tot);
	}
	if (!h) {
		components_error(a->comps, why, sizeof(why));
		error = why[0] ? why : "no component in use yet: the agent has not received one "
			"from its server (ward-agent update)";
		goto out;
	}
	if (components_is_smart(h->name) && !h->smart) {
		error = "smart protection could not be set up (see the agent's log)";
		goto out;
	}
	if (!wait_works(s)) {
		error = "the scan was cancelled";
		goto out;
	}
	if (exclude_more(s) != 0) {
		error = "out of memory";
		goto out;
	}
	lock = take_lock(s);
	if (lock < 0) {
		error = "cancelled";
		goto out;
	}
	o.emit = s->fd >= 0 ? emit : NULL;
	o.emit_arg = s;
	o.act = on_found;
	o.act_arg = s;
	o.exclude = (const char *const *)s->exclude;
	o.nexclude = s->nexclude;
	o.jobs = s->low ? 1 : 0;
	o.low = s->low;
	o.cancel = &s->cancel;
	o.source = s->source;
	o.progress = on_progress;
	o.progress_arg = s;
	if (reports_scan(a, h, (const char *const *)s->paths, s->n, &o, &tot) != 0)
		error = atomic_load(&s->cancel) ? "the scan was cancelled" : "the scan failed "
			"(see the agent's log)";
	else if (atomic_load(&s->cancel))
		error = "the scan was cancelled";
	else
		send_line(s, json_pack("{sb ss sI sI sI sI}", "done", 1, "method", h->smart ?
				       "smart" : "conventional", "files", (json_int_t)tot.files,
				       "infected", (json_int_t)tot.infected, "unverified",
				       (json_int_t)tot.unverified, "errors",
				       (json_int_t)tot.errors));
out:
	if (error)
		send_line(s, json_pack("{ss}", "error", error));
	state = !error ? "completed" : atomic_load(&s->cancel) ? "cancelled" : "failed";
	/* Cancelled by the agent's stop: its report would not go out, so
	 * last_scan stays running and the next start reports the end. */
	if (s->source != QUARANTINE_SOURCE_MANUAL &&
	    !(s->stopping && strcmp(state, "cancelled") == 0)) {
		report_task(s->t, s->task, state, s->started, &tot,
			    strcmp(state, "failed") == 0 ? error : NULL);
		keep_last(s, state, &tot);
		log_msg(LOG_LVL_INFO, "scan (%s, task %lld): %s, %llu files, %llu infected",
			quarantine_source_name(s->source), (long long)s->task, state,
			(unsigned long long)tot.files, (unsigned long long)tot.infected);
	}
	if (s->cancel_task > 0)
		report_task(s->t, s->cancel_task, "completed", s->started, NULL, NULL);
	if (lock >= 0)
		close(lock);
	components_release(a->comps, h);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (loop_post(s->t->loop, finished, s) != 0)
		log_msg(LOG_LVL_ERROR, "out of memory: a finished scan is not collected");
	return NULL;
}

/* Starts the thread of s (a scan or a work) at fn and lists it. */
static int spawn(struct tasks *t, struct scan *s, void *(*fn)(void *))
{
	s->t = t;
	s->id = t->next_id++;
	if (pthread_create(&s->thread, NULL, fn, s) != 0)
		return -1;
	s->next = t->scans;
	t->scans = s;
	return 0;
}

/* Starts a scan of paths[0..n) (copied) leaving out the paths of exclude
 * (a JSON array; NULL: none), and, once the works queued before it have
 * run, the local exclusions and the vaults (exclude_more()). */
static int start(struct tasks *t, struct scan *s, const char *const *paths, size_t n,
		 const json_t *exclude, char *errbuf, size_t errlen)
{
	if (t->running >= t->max) {
		snprintf(errbuf, errlen, "%u scans run already (the most at once)", t->max);
		scan_free(s);
		return -1;
	}
	if (!(s->paths = calloc(n ? n : 1, sizeof(*s->paths))))
		goto nomem;
	for (s->n = 0; s->n < n; s->n++)
		if (!(s->paths[s->n] = strdup(paths[s->n])))
			goto nomem;
	if (strings_add(&s->exclude, &s->nexclude, exclude) != 0)
		goto nomem;
	s->after = t->works_queued;
	s->started = (int64_t)time(NULL);
	s->last_progress = util_now_ns() / 1000000000u;
	if (spawn(t, s, run) != 0) {
		snprintf(errbuf, errlen, "cannot start a scan: %s", strerror(errno));
		scan_free(s);
		return -1;
	}
	t->running++;
	return 0;
nomem:
	scan_free(s);
	snprintf(errbuf, errlen, "out of memory");
	return -1;
}

/* A work's thread. */
static void *work_main(void *arg)
{
	struct scan *s = arg;

	s->work(s->work_arg);
	atomic_fetch_add(&s->t->works_done, 1);
	if (loop_post(s->t->loop, finished, s) != 0)
		log_msg(LOG_LVL_ERROR, "out of memory: a finished work is not collected");
	return NULL;
}

/* Starts the oldest work waiting when none runs. A thread that cannot
 * start is tried again with the next work's end, or the next tasks_run(). */
static void next_work(struct tasks *t)
{
	struct scan *s = t->queue;

	if (t->working || !s)
		return;
	t->queue = s->next;
	if (spawn(t, s, work_main) != 0) {
		log_msg(LOG_LVL_ERROR, "cannot start a thread: %s; tried again later",
			strerror(errno));
		s->next = t->queue;
		t->queue = s;
		return;
	}
	t->working = true;
}

int tasks_run(struct tasks *t, tasks_work_fn work, tasks_done_fn done, void *arg)
{
	struct scan *s = calloc(1, sizeof(*s)), **pp;

	if (!s)
		return -1;
	s->fd = -1;
	s->work = work;
	s->done = done;
	s->work_arg = arg;
	for (pp = &t->queue; *pp; pp = &(*pp)->next)
		;
	*pp = s;
	t->works_queued++;
	next_work(t);
	return 0;
}

int tasks_scan(struct tasks *t, const char *const *paths, size_t n, int fd, char *errbuf,
	       size_t errlen)
{
	struct scan *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	s->fd = fd;
	s->source = QUARANTINE_SOURCE_MANUAL;
	/* Paths asked for by name are scanned: only the local exclusions
	 * (restored by an administrator) are left out. */
	return start(t, s, paths, n, NULL, errbuf, errlen);
}

int tasks_start(struct tasks *t, int64_t id, const char *const *paths, size_t n,
		const char *cpu, char *errbuf, size_t errlen)
{
	struct scan *s = calloc(1, sizeof(*s));
	json_t *list = NULL, *exclude, *cpu_set;
	const char **given = NULL;
	size_t i;
	int rc = -1;

	exclude = astate_setting(t->a, t->settings, "scan.exclude_paths");
	cpu_set = astate_setting(t->a, t->settings, "scan.cpu");
	if (!paths) {
		list = astate_setting(t->a, t->settings, "scan.paths");
		n = json_array_size(list);
		given = calloc(n ? n : 1, sizeof(*given));
		for (i = 0; given && i < n; i++)
			given[i] = json_string_value(json_array_get(list, i));
		paths = given;
	}
	if (!s || !paths) {
		snprintf(errbuf, errlen, "out of memory");
		free(s);
		goto out;
	}
	s->fd = -1;
	s->task = id;
	s->source = id > 0 ? QUARANTINE_SOURCE_SCAN_NOW : QUARANTINE_SOURCE_SCHEDULED;
	s->full = given != NULL && n > 0;
	cpu = cpu ? cpu : json_string_value(cpu_set);
	s->low = !cpu || strcmp(cpu, "normal") != 0;
	rc = start(t, s, paths, n, exclude, errbuf, errlen);
out:
	free(given);
	json_decref(list);
	json_decref(exclude);
	json_decref(cpu_set);
	return rc;
}

bool tasks_cancel(struct tasks *t, int64_t id, int64_t cancel_id)
{
	struct scan *s;

	for (s = t->scans; s; s = s->next)
		if (!s->work && s->task == id && id > 0 && !s->cancel_task) {
			s->cancel_task = cancel_id;
			atomic_store(&s->cancel, true);
			return true;
		}
	return false;
}

/* The loop's timer: a scheduled scan falls due. */
static void scheduled(void *arg)
{
	struct tasks *t = arg;
	struct scan *s;
	char msg[256];

	t->timer = 0;
	for (s = t->scans; s; s = s->next)
		if (!s->work && s->source == QUARANTINE_SOURCE_SCHEDULED)
			break;
	if (s)
		log_msg(LOG_LVL_WARN, "scheduled scan: the one before still runs; skipped");
	else if (tasks_start(t, 0, NULL, 0, NULL, msg, sizeof(msg)) != 0)
		log_msg(LOG_LVL_ERROR, "scheduled scan: %s", msg);
	tasks_configure(t, NULL);
}

void tasks_configure(struct tasks *t, const json_t *settings)
{
	struct settings_schedule sc;
	json_t *on, *when;
	time_t now = time(NULL), next;

	if (settings) {
		json_t *copy = json_deep_copy(settings);

		if (copy) {
			json_decref(t->settings);
			t->settings = copy;
		}
	}
	if (t->timer)
		loop_cancel(t->loop, t->timer);
	t->timer = 0;
	on = astate_setting(t->a, t->settings, "scan.scheduled");
	when = astate_setting(t->a, t->settings, "scan.schedule");
	if (json_is_true(on) && json_is_string(when) &&
	    settings_schedule_parse(json_string_value(when), &sc)) {
		next = settings_schedule_next(&sc, now);
		t->timer = loop_after(t->loop, (uint64_t)(next > now ? next - now : 1) * 1000,
				      scheduled, t);
	}
	json_decref(on);
	json_decref(when);
}

unsigned tasks_running(const struct tasks *t)
{
	return t->running;
}

void tasks_stop(struct tasks *t)
{
	struct scan *s;

	/* Works not started are dropped (a server's task is delivered again);
	 * the one running is finished. */
	while ((s = t->queue) != NULL) {
		t->queue = s->next;
		s->done(s->work_arg, false);
		scan_free(s);
	}
	for (s = t->scans; s; s = s->next) {
		atomic_store(&s->stopping, true);
		atomic_store(&s->cancel, true);
	}
	/* Each stays listed until its finished() runs (loop_free() runs it). */
	for (s = t->scans; s; s = s->next)
		if (!s->joined) {
			pthread_join(s->thread, NULL);
			s->joined = true;
		}
}

void tasks_free(struct tasks *t)
{
	struct scan *s;

	if (!t)
		return;
	while ((s = t->scans) != NULL) { /* their finished() never ran */
		t->scans = s->next;
		scan_free(s);
	}
	json_decref(t->settings);
	free(t->last_scan_path);
	free(t);
}
