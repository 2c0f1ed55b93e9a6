/* protect.c -- the running agent's real-time protection (see protect.h). */
#include "agent/protect.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/channel.h"
#include "agent/components.h"
#include "agent/scanner.h"
#include "agent/realtime.h"
#include "agent/reports.h"
#include "agent/vault.h"
#include "common/log.h"
#include "common/util.h"

/* Detections and rescans waiting for the respond thread at most; past it
 * they are dropped (counted, logged), never waited for. */
#define PROTECT_FINDINGS 256

/* How often the component in use is compared with the one the caches
 * hold verdicts of, and the vault's local exclusions with those in the
 * policy (milliseconds). */
#define PROTECT_COMP_POLL_MS 500

/* A file the scanner handed over, in a scan worker until done. */
struct submitted {
	struct protect *p;
	const struct components_handle *h;
	struct realtime_job *job;
};

/* A detection or a rescan request, copied off the decision path. */
struct finding {
	struct finding *next;
	bool rescan;
	char *path, *exe;
	char **names;
	size_t nnames;
	pid_t pid;
	uint64_t dev, ino;
	bool denied;
};

struct protect {
	struct agent *a;
	struct loop *loop;
	struct channel *ch;
	struct vault *vault;   /* the policy's actions; NULL: none taken */
	/* Files in the scan workers (under lock). */
	pthread_mutex_t lock;
	pthread_cond_t idle;   /* the last of them is done */
	size_t submitted;
	bool stop;
	/* The respond thread's queue (under lock too). */
	pthread_cond_t found;
	struct finding *first, *last;
	size_t nfindings;
	uint64_t findings_dropped;
	pthread_t responder;
	bool responding;
	/* What protect_status() reports (under slock, apart from the pool's
	 * lock, which the scanner's reader takes). */
	pthread_mutex_t slock;
	struct realtime *rt;
	const char *state;     /* "on", "off", "unavailable", "degraded" */
	enum realtime_mode mode;
	char reason[256];
	/* The sums of the fault counters at the window's last two moves
	 * (recent_faults()), and when it last moved. */
	uint64_t fault_base, fault_prev, fault_moved_ns;
	/* The loop's thread's own. */
	json_t *settings;      /* the settings applied last */
	json_t *local;         /* the vault's local exclusions in the policy */
	char *exe;             /* the agent's executable */
	int mountinfo;
	const char *comp_name;
	int64_t comp_version;
	pid_t worker_pid;            /* the scan worker of the component in use */
	uint64_t comp_timer;
	bool stopped;          /* settings posted after the stop are ignored */
};

/* The pool's and the responder's threads. */

static void finding_free(struct finding *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->nnames; i++)
		free(f->names[i]);
	free(f->names);
	free(f->path);
	free(f->exe);
	free(f);
}

/* A scan worker's verdict on a submitted file, to the scanner. */
static void on_scanned(void *arg, struct scanner_result *r)
{
	struct submitted *s = arg;
	struct protect *p = s->p;

	if (r->err == AERR_NOTNEEDED)
		realtime_done(s->job, REALTIME_SKIPPED, NULL, 0, NULL);
	else if (r->err != AERR_OK)
		realtime_done(s->job, REALTIME_ERROR, NULL, 0, r->error);
	else if (r->res.infected)
		realtime_done(s->job, REALTIME_INFECTED, (const char *const *)r->res.names,
			      r->res.nnames, NULL);
	else if (r->out.unverified)
		realtime_done(s->job, REALTIME_UNVERIFIED, NULL, 0, NULL);
	else
		realtime_done(s->job, REALTIME_CLEAN, NULL, 0, NULL);
	components_release(p->a->comps, s->h);
	free(s);
	pthread_mutex_lock(&p->lock);
	if (--p->submitted == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static bool needed(void *arg)
{
	const struct submitted *s = arg;

	return realtime_needed(s->job);
}

/* The scanner's submit(): hands the file to a scan worker, permission
 * events before writes; never blocks. */
static bool on_submit(void *arg, struct realtime_job *job, const struct realtime_request *req)
{
	struct protect *p = arg;
	const struct components_handle *h = components_acquire(p->a->comps);
	struct submitted *s = NULL;
	enum aerr err = AERR_NOMEM;
	char msg[512] = "out of memory";
	bool stopping;

	pthread_mutex_lock(&p->lock);
	stopping = p->stop;
	if (!stopping && h && (s = malloc(sizeof(*s))) != NULL)
		p->submitted++;
	pthread_mutex_unlock(&p->lock);
	if (s) {
		struct scanner_request rq = {
			.fd = req->fd, .name = req->path, .done = on_scanned, .needed = needed,
			.arg = s,
			.flags = req->event == REALTIME_EV_CLOSE_WRITE ? 0 : SCANNER_URGENT };

		*s = (struct submitted){ p, h, job };
		err = scanner_submit(h->scanner, &rq, msg, sizeof(msg));
		if (err == AERR_OK)
			return true;
		free(s);
		pthread_mutex_lock(&p->lock);
		if (--p->submitted == 0)
			pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->lock);
	}
	components_release(p->a->comps, h);
	if (err == AERR_FULL || stopping)
		return false;  /* dropped: counted, answered as on a timeout */
	realtime_done(job, REALTIME_ERROR, NULL, 0, h ? msg : "no component in use yet");
	return true;
}

/* Queues f for the respond thread (taking it), or drops it when full. */
static void queue_finding(struct protect *p, struct finding *f)
{
	pthread_mutex_lock(&p->lock);
	if (p->nfindings >= PROTECT_FINDINGS || !p->responding) {
		p->findings_dropped++;
		pthread_mutex_unlock(&p->lock);
		finding_free(f);
		return;
	}
	if (p->last)
		p->last->next = f;
	else
		p->first = f;
	p->last = f;
	p->nfindings++;
	pthread_cond_signal(&p->found);
	pthread_mutex_unlock(&p->lock);
}

/* A copy of file's members for the respond thread (NULL: out of memory). */
static struct finding *finding_new(const struct realtime_file *file, bool rescan)
{
	struct finding *f = calloc(1, sizeof(*f));
	size_t i;

	if (!f)
		return NULL;
	f->rescan = rescan;
	f->path = strdup(file->path);
	f->exe = strdup(file->exe ? file->exe : "");
	f->pid = file->pid;
	f->dev = file->dev;
	f->ino = file->ino;
	f->denied = file->denied;
	if (!f->path || !f->exe)
		goto fail;
	if (rescan)
		return f;
	f->names = calloc(file->nnames ? file->nnames : 1, sizeof(*f->names));
	if (!f->names)
		goto fail;
	for (i = 0; i < file->nnames; i++) {
		if (!(f->names[i] = strdup(file->names[i])))
			goto fail;
		f->nnames++;
	}
	return f;
fail:
	finding_free(f);
	return NULL;
}

/* The scanner's detection(): called after the kernel has its answer. */
static void on_detection(void *arg, const struct realtime_file *file)
{
	struct protect *p = arg;
	struct finding *f = finding_new(file, false);

	if (f)
		queue_finding(p, f);
	else
		log_msg(LOG_LVL_ERROR, "out of memory: the detection in %s is not reported",
			file->path);
}

/* The scanner's rescan(): the file is to be scanned again later. */
static void on_rescan(void *arg, const struct realtime_file *file)
{
	struct protect *p = arg;
	struct finding *f = finding_new(file, true);

	if (f)
		queue_finding(p, f);
}

/* Opens the directory holding path's last component, walking from "/"
 * without following a symbolic link anywhere (a path renamed or replaced
 * by a link since the event leads nowhere). Returns the directory
 * (O_PATH) with *name pointing into path, or -1. */
static int open_parent(const char *path, const char **name)
{
	char part[NAME_MAX + 1];
	const char *p = path + 1, *slash;
	size_t len;
	int dir, next;

	if (path[0] != '/')
		return -1;
	dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	while (dir >= 0 && (slash = strchr(p, '/')) != NULL) {
		len = (size_t)(slash - p);
		if (len == 0 || len > NAME_MAX)
			goto fail;
		memcpy(part, p, len);
		part[len] = '\0';
		if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0)
			goto fail;
		next = openat(dir, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dir);
		dir = next;
		p = slash + 1;
	}
	if (dir < 0 || !*p || strlen(p) > NAME_MAX || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
		goto fail;
	*name = p;
	return dir;
fail:
	if (dir >= 0)
		close(dir);
	return -1;
}

/* Block mode: the policy's actions on the file of f (vault_respond()),
 * once the directory entry its path names is still the file scanned.
 * Returns the report, or NULL when nothing could be acted on. */
static json_t *respond(struct protect *p, const struct finding *f)
{
	struct vault_detection d = { 0 };
	json_t *report;
	struct stat st;
	int dir = open_parent(f->path, &d.name);

	if (dir < 0 || fstatat(dir, d.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    (uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino ||
	    !(report = json_object())) {
		if (dir >= 0)
			close(dir);
		log_msg(LOG_LVL_WARN, "realtime: %s: moved or replaced since it was scanned; "
			"no action taken", f->path);
		return NULL;
	}
	d.source = QUARANTINE_SOURCE_REALTIME;
	d.dirfd = dir;
	d.path = f->path;
	d.dev = st.st_dev;
	d.ino = st.st_ino;
	d.names = (const char *const *)f->names;
	d.nnames = f->nnames;
	d.pid = f->pid;
	d.exe = f->exe[0] ? f->exe : NULL;
	d.denied = f->denied;
	vault_respond(p->vault, &d, report);
	close(dir);
	return report;
}

/* Adds the reports of f's detection to found and logs it: in block mode
 * with the policy's actions taken, else one report per name, with the
 * denial when there was one. */
static void report_detection(struct protect *p, const struct finding *f, json_t *found)
{
	const struct components_handle *h = components_acquire(p->a->comps);
	const char *method = h && h->smart ? "smart" : "conventional";
	json_t *d;
	bool block;
	size_t i;

	components_release(p->a->comps, h);
	pthread_mutex_lock(&p->slock);
	block = p->mode == REALTIME_BLOCK;
	pthread_mutex_unlock(&p->slock);
	for (i = 0; i < f->nnames; i++)
		log_msg(LOG_LVL_WARN, "realtime: %s: %s found (pid %d, %s)%s", f->path,
			f->names[i], (int)f->pid, f->exe[0] ? f->exe : "unknown executable",
			f->denied ? ", access denied" : "");
	if (found && block && p->vault && (d = respond(p, f)) != NULL) {
		json_array_append_new(found, d);
	} else {
		for (i = 0; found && i < f->nnames; i++) {
			d = json_pack("{sI so ss ss ss s{sI}}", "time", (json_int_t)time(NULL),
				      "path", util_json_bytes(f->path), "name", f->names[i],
				      "method", method, "source", "realtime", "process", "pid",
				      (json_int_t)f->pid);
			if (d && f->exe[0])
				json_object_set_new(json_object_get(d, "process"), "exe",
						    util_json_bytes(f->exe));
			if (d && f->denied)
				json_object_set_new(d, "action", json_string("deny"));
			if (d && f->denied)
				json_object_set_new(d, "action_result", json_string("ok"));
			if (d)
				json_array_append_new(found, d);
		}
	}
}

/* A rescan request: with smart scan, the file goes on the unverified list
 * the agent rescans once a source answers; a conventional verdict that
 * failed or came late is not tried again (the file was allowed). */
static void keep_for_rescan(struct protect *p, const struct finding *f)
{
	const struct components_handle *h = components_acquire(p->a->comps);
	bool smart = h && h->smart, block;

	components_release(p->a->comps, h);
	pthread_mutex_lock(&p->slock);
	block = p->mode == REALTIME_BLOCK;
	pthread_mutex_unlock(&p->slock);
	if (smart && reports_add_unverified(p->a, f->path, block) != 0)
		log_msg(LOG_LVL_ERROR, "realtime: %s: could not be kept for a rescan", f->path);
}

/* The respond thread: takes the findings in order, all those waiting at
 * a time, whose reports are kept in one write, until stopped and the
 * queue is empty. */
static void *respond_main(void *arg)
{
	struct protect *p = arg;
	struct finding *batch, *f;
	uint64_t dropped;
	json_t *found;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->responding && !p->first)
			pthread_cond_wait(&p->found, &p->lock);
		batch = p->first;
		p->first = p->last = NULL;
		p->nfindings = 0;
		dropped = p->findings_dropped;
		p->findings_dropped = 0;
		pthread_mutex_unlock(&p->lock);
		if (dropped)
			log_msg(LOG_LVL_ERROR, "realtime: %llu detections or rescans dropped "
				"(more than %d waiting)", (unsigned long long)dropped,
				PROTECT_FINDINGS);
		if (!batch)
			return NULL;
		found = json_array();
		while ((f = batch)) {
			batch = f->next;
			if (f->rescan)
				keep_for_rescan(p, f);
			else if (found)
				report_detection(p, f, found);
			else
				log_msg(LOG_LVL_ERROR, "out of memory: the detection in %s is not "
					"reported", f->path);
			finding_free(f);
		}
		if (json_array_size(found) && reports_queue_detections(p->a, found) == 0 && p->ch)
			channel_wake(p->ch);
		json_decref(found);
	}
}

/* The loop's side: policy, start, stop. */

/* The strings of a JSON array of strings (pointers into it); NULL with
 * *n 0 when empty, or out of memory (*ok false). */
static const char **strings_of(const json_t *list, size_t *n, bool *ok)
{
	const char **v;
	size_t i;

	*n = 0;
	if (!json_array_size(list))
		return NULL;
	v = calloc(json_array_size(list), sizeof(*v));
	if (!v) {
		*ok = false;
		return NULL;
	}
	for (i = 0; i < json_array_size(list); i++)
		if (json_is_string(json_array_get(list, i)))
			v[(*n)++] = json_string_value(json_array_get(list, i));
	return v;
}

/* The settings in p->settings as the scanner's policy. */
struct policy {
	struct realtime_config cfg;
	json_t *paths, *exclude_paths, *exclude_processes;
	const char *own_dirs[3];
	pid_t own_pids[2];
};

static void policy_free(struct policy *pol)
{
	free((void *)pol->cfg.paths);
	free((void *)pol->cfg.exclude_paths);
	free((void *)pol->cfg.exclude_processes);
	json_decref(pol->paths);
	json_decref(pol->exclude_paths);
	json_decref(pol->exclude_processes);
}

static json_int_t int_setting(struct protect *p, const char *key)
{
	json_t *v = astate_setting(p->a, p->settings, key);
	json_int_t i = json_integer_value(v);

	json_decref(v);
	return i;
}

static bool str_setting_is(struct protect *p, const char *key, const char *value)
{
	json_t *v = astate_setting(p->a, p->settings, key);
	bool is = json_is_string(v) && strcmp(json_string_value(v), value) == 0;

	json_decref(v);
	return is;
}

/* Fills pol from the settings applied; false when out of memory. The
 * agent's own files (its state, its executable) and process are never
 * scanned: the scan workers get their files as descriptors, opening
 * nothing. */
static bool policy_make(struct protect *p, struct policy *pol)
{
	json_int_t timeout = int_setting(p, "realtime.timeout");
	json_int_t max_size = int_setting(p, "realtime.max_size");
	bool ok = true;

	memset(pol, 0, sizeof(*pol));
	pol->paths = astate_setting(p->a, p->settings, "realtime.paths");
	pol->exclude_paths = astate_setting(p->a, p->settings, "realtime.exclude_paths");
	/* Files an administrator restored and excluded are left alone too. */
	json_decref(p->local);
	p->local = p->vault ? vault_exclusions(p->vault) : NULL;
	if (json_array_size(p->local) && json_is_array(pol->exclude_paths)) {
		json_t *all = json_deep_copy(pol->exclude_paths);

		json_decref(pol->exclude_paths);
		pol->exclude_paths = all;
		if (!all || json_array_extend(all, p->local) != 0)
			ok = false;
	}
	pol->exclude_processes = astate_setting(p->a, p->settings, "realtime.exclude_processes");
	pol->cfg.mode = str_setting_is(p, "realtime.mode", "detect") ? REALTIME_DETECT :
			REALTIME_BLOCK;
	pol->cfg.paths = strings_of(pol->paths, &pol->cfg.npaths, &ok);
	pol->cfg.exclude_paths = strings_of(pol->exclude_paths, &pol->cfg.nexclude_paths, &ok);
	pol->cfg.exclude_processes = strings_of(pol->exclude_processes,
						&pol->cfg.nexclude_processes, &ok);
	pol->cfg.max_size = max_size > 0 ? (uint64_t)max_size : 0;
	pol->cfg.timeout_ms = (unsigned)(timeout >= 1 && timeout <= 60 ? timeout : 3) * 1000u;
	pol->cfg.on_timeout = str_setting_is(p, "realtime.on_timeout", "deny") ?
			      REALTIME_TIMEOUT_DENY : REALTIME_TIMEOUT_ALLOW;
	pol->own_dirs[pol->cfg.nown_dirs++] = p->a->cfg.state_dir;
	/* libclamav's temporary files, which the workers write and read. */
	if (p->a->cfg.scratch_dir && p->a->cfg.scratch_dir[0])
		pol->own_dirs[pol->cfg.nown_dirs++] = p->a->cfg.scratch_dir;
	if (p->exe)
		pol->own_dirs[pol->cfg.nown_dirs++] = p->exe;
	pol->cfg.own_dirs = pol->own_dirs;
	pol->own_pids[pol->cfg.nown_pids++] = getpid();
	if (p->worker_pid > 0)
		pol->own_pids[pol->cfg.nown_pids++] = p->worker_pid;
	pol->cfg.own_pids = pol->own_pids;
	pol->cfg.max_pending = (size_t)p->a->cfg.rt_max_pending;
	pol->cfg.cache_entries = (size_t)p->a->cfg.rt_cache_entries;
	pol->cfg.log_queue = (size_t)p->a->cfg.rt_log_queue;
	if (!ok)
		policy_free(pol);
	return ok;
}

static void set_state(struct protect *p, const char *state, enum realtime_mode mode,
		      const char *reason)
{
	pthread_mutex_lock(&p->slock);
	p->state = state;
	p->mode = mode;
	snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
	pthread_mutex_unlock(&p->slock);
}

static void stop_scanner(struct protect *p)
{
	struct realtime *rt;

	pthread_mutex_lock(&p->slock);
	rt = p->rt;
	p->rt = NULL;
	pthread_mutex_unlock(&p->slock);
	if (rt) {
		realtime_stop(rt);
		realtime_free(rt);
		log_msg(LOG_LVL_INFO, "realtime: stopped");
	}
}

/* Starts the scanner, or gives it the policy; the state tells which
 * happened. */
static void run_policy(struct protect *p)
{
	struct realtime_callbacks cb = { on_submit, on_detection, on_rescan, p };
	struct policy pol;
	struct realtime *rt;
	enum aerr err;
	char msg[256];

	if (!policy_make(p, &pol)) {
		log_msg(LOG_LVL_ERROR, "out of memory: real-time scanning settings not applied");
		return;
	}
	if (p->rt) {
		if (realtime_reconfigure(p->rt, &pol.cfg, msg, sizeof(msg)) != AERR_OK) {
			log_msg(LOG_LVL_ERROR, "realtime: the new settings are not in use: %s",
				msg);
			/* Still on, by the settings before: what the server
			 * asked is not what protects the host. */
			set_state(p, "degraded", p->mode, msg);
		} else
			set_state(p, "on", pol.cfg.mode, NULL);
		goto out;
	}
	rt = realtime_new(&pol.cfg, &cb, &err, msg, sizeof(msg));
	if (rt && (err = realtime_start(rt, msg, sizeof(msg))) != AERR_OK) {
		realtime_free(rt);
		rt = NULL;
	}
	if (!rt) {
		log_msg(LOG_LVL_ERROR, "realtime: unavailable: %s", msg);
		set_state(p, "unavailable", pol.cfg.mode, msg);
		goto out;
	}
	pthread_mutex_lock(&p->slock);
	p->rt = rt;
	pthread_mutex_unlock(&p->slock);
	set_state(p, "on", pol.cfg.mode, NULL);
	log_msg(LOG_LVL_INFO, "realtime: on (%s mode, %zu path%s)",
		pol.cfg.mode == REALTIME_DETECT ? "detect" : "block", pol.cfg.npaths,
		pol.cfg.npaths == 1 ? "" : "s");
out:
	policy_free(&pol);
}

/* The mounts changed: the scanner marks what is new under its paths. */
static void on_mounts(int fd, uint32_t events, void *arg)
{
	struct protect *p = arg;
	char buf[4096];

	(void)events;
	/* Reading the table to its end is what clears the notice. */
	if (lseek(fd, 0, SEEK_SET) == 0)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	if (p->rt)
		run_policy(p);
}

/* A new component in use: verdicts of the old one are no longer cached.
 * New local exclusions (a restore): the policy again. */
static void check_component(void *arg)
{
	struct protect *p = arg;
	const struct components_handle *h = components_acquire(p->a->comps);
	json_t *local = p->vault && p->rt ? vault_exclusions(p->vault) : NULL;

	if (local && (p->local ? !json_equal(local, p->local) : json_array_size(local) > 0))
		run_policy(p);
	json_decref(local);

	if (h && (!p->comp_name || strcmp(h->name, p->comp_name) != 0 ||
		  h->version != p->comp_version)) {
		if (p->comp_name && p->rt) {
			realtime_flush(p->rt);
			log_msg(LOG_LVL_INFO, "realtime: %s version %lld in use: every file is "
				"scanned again", h->name, (long long)h->version);
		}
		p->comp_name = h->name;
		p->comp_version = h->version;
	}
	/* The worker's own opens (its temporary files) must not wait for a
	 * verdict only it can give; a new generation or a restarted worker
	 * has a new pid. */
	if (h && scanner_pid(h->scanner) != p->worker_pid) {
		p->worker_pid = scanner_pid(h->scanner);
		if (p->rt)
			realtime_set_own_pids(p->rt, (pid_t[]){ getpid(), p->worker_pid },
					      p->worker_pid > 0 ? 2 : 1);
	}
	components_release(p->a->comps, h);
}

struct protect *protect_new(struct agent *a, struct loop *loop, struct channel *ch)
{
	struct protect *p = calloc(1, sizeof(*p));
	char exe[PATH_MAX];
	ssize_t n;

	if (!p)
		return NULL;
	p->a = a;
	p->loop = loop;
	p->ch = ch;
	p->state = "off";
	p->mode = REALTIME_BLOCK;
	p->mountinfo = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->slock, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_cond_init(&p->found, NULL);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		p->exe = strdup(exe);
	}
	p->responding = true;
	if (pthread_create(&p->responder, NULL, respond_main, p) != 0) {
		p->responding = false;
		goto fail;
	}
	p->comp_timer = loop_every(loop, PROTECT_COMP_POLL_MS, check_component, p);
	check_component(p);
	p->mountinfo = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (p->mountinfo >= 0 &&
	    loop_fd_add(loop, p->mountinfo, EPOLLPRI, on_mounts, p) != 0) {
		close(p->mountinfo);
		p->mountinfo = -1;
	}
	if (p->mountinfo < 0)
		log_msg(LOG_LVL_WARN, "realtime: mount changes are not followed: %s",
			strerror(errno));
	return p;
fail:
	log_msg(LOG_LVL_ERROR, "realtime: the service could not start: %s", strerror(errno));
	protect_stop(p);
	protect_free(p);
	return NULL;
}

void protect_attach(struct protect *p, struct vault *v)
{
	p->vault = v;
}

void protect_apply(struct protect *p, const json_t *settings)
{
	json_t *enabled;

	if (p->stopped)
		return;
	json_decref(p->settings);
	p->settings = json_deep_copy(settings);
	enabled = astate_setting(p->a, p->settings, "realtime.enabled");
	if (json_is_true(enabled)) {
		run_policy(p);
	} else {
		stop_scanner(p);
		set_state(p, "off", p->mode, NULL);
	}
	json_decref(enabled);
}

/* Accesses the scanner allowed unscanned because something failed (the
 * deadline passed, the backend was full, the kernel's queue overflowed,
 * the watchdog answered, the scan failed), counted over the last
 * FAULT_WINDOW_NS to twice that: the window moves on each FAULT_WINDOW_NS,
 * whoever asks and however often. Under slock. */
#define FAULT_WINDOW_NS (300ull * 1000000000ull)

static uint64_t recent_faults(struct protect *p, const json_t *counters)
{
	static const char *const faults[] = { "timeouts", "dropped", "overflows", "watchdog",
					      "errors" };
	uint64_t sum = 0, now = util_now_ns();
	size_t i;

	for (i = 0; i < sizeof(faults) / sizeof(*faults); i++)
		sum += (uint64_t)json_integer_value(json_object_get(counters, faults[i]));
	if (sum < p->fault_base) {   /* a new scanner, counting from 0 */
		p->fault_base = p->fault_prev = 0;
		p->fault_moved_ns = now;
	}
	if (!p->fault_moved_ns) {
		p->fault_moved_ns = now;
	} else if (now - p->fault_moved_ns >= FAULT_WINDOW_NS) {
		p->fault_prev = p->fault_base;
		p->fault_base = sum;
		p->fault_moved_ns = now;
	}
	return sum - p->fault_prev;
}

json_t *protect_status(struct protect *p)
{
	json_t *s, *counters;
	uint64_t faults;

	if (!p)
		return json_pack("{ss}", "state", "off");
	pthread_mutex_lock(&p->slock);
	counters = p->rt ? realtime_stats_json(p->rt) : NULL;
	faults = counters ? recent_faults(p, counters) : 0;
	s = json_pack("{ss ss}", "state", p->state, "mode",
		      p->mode == REALTIME_DETECT ? "detect" : "block");
	if (s && p->reason[0])
		json_object_set_new(s, "reason", json_string(p->reason));
	if (s && counters) {
		json_object_set_new(s, "unscanned_recent", json_integer((json_int_t)faults));
		json_object_set_new(s, "counters", counters);
		counters = NULL;
	}
	pthread_mutex_unlock(&p->slock);
	json_decref(counters);
	return s;
}

void protect_stop(struct protect *p)
{
	const struct components_handle *h;

	if (!p)
		return;
	p->stopped = true;
	if (p->mountinfo >= 0) {
		loop_fd_remove(p->loop, p->mountinfo);
		close(p->mountinfo);
		p->mountinfo = -1;
	}
	if (p->comp_timer)
		loop_cancel(p->loop, p->comp_timer);
	p->comp_timer = 0;
	/* The scanner first: every access waiting is allowed; then the
	 * backlog of writes is dropped unscanned, and what the workers hold
	 * is waited for (their verdicts reach the reports). */
	stop_scanner(p);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_mutex_unlock(&p->lock);
	h = components_acquire(p->a->comps);
	if (h)
		scanner_cancel(h->scanner, on_scanned);
	components_release(p->a->comps, h);
	pthread_mutex_lock(&p->lock);
	while (p->submitted)
		pthread_cond_wait(&p->idle, &p->lock);
	bool joining = p->responding;
	p->responding = false;
	pthread_cond_signal(&p->found);
	pthread_mutex_unlock(&p->lock);
	if (joining)
		pthread_join(p->responder, NULL);
}

void protect_free(struct protect *p)
{
	struct finding *f;

	if (!p)
		return;
	while ((f = p->first) != NULL) {
		p->first = f->next;
		finding_free(f);
	}
	json_decref(p->settings);
	json_decref(p->local);
	free(p->exe);
	pthread_cond_destroy(&p->found);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->slock);
	free(p);
}
