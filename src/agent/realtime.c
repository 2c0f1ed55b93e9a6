/* realtime.c -- real-time scanning with fanotify (realtime.h).
 *
 * Threads: the reader (reads events, answers what it can, submits the
 * rest), the timer (deadlines, the watchdog, the heartbeat of the watchdog
 * process in rtwatch.c) and the logger (writes the queued messages, so
 * that no thread that answers the kernel ever waits on a log). Jobs are
 * reference counted: one reference for the backend,
 * released by realtime_done(), one for the list of permission events
 * waiting for their answer, released by whoever answers. The kernel is
 * answered by whoever first claims a job's answer (an atomic exchange).
 * The scanner itself is reference counted too (the owner and every job),
 * so a backend may finish its jobs after realtime_free().
 */
#include "agent/realtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/rtcache.h"
#include "agent/rtdirs.h"
#include "agent/rtwatch.h"
#include "common/log.h"
#include "common/util.h"

#define PERM_MASK (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)
#define MARK_MASK (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_CLOSE_WRITE)
/* Directories whose path decisions the kernel caches, with those above
 * them, at most: each pins its inode with an inotify watch, taken from
 * root's fs.inotify.max_user_watches, of which a quarter at most. */
#define MAX_DIR_WATCHES 8192
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif
#define DIR_IGNORE (FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY)
/* Latency histogram: four buckets per power of two of nanoseconds. */
#define HIST_BUCKETS (41 * 4)
/* Processes and paths tracked for the top tables (space-saving counts). */
#define TOP_TRACKED 64
#define LOG_LINE 512
/* Bytes of events read at once, and the most events that makes. */
#define READ_BYTES 8192
#define READ_EVENTS (READ_BYTES / FAN_EVENT_METADATA_LEN + 1)

/* A policy as the reader uses it: immutable once published. */
struct policy {
	enum realtime_mode mode;
	char **paths;
	size_t npaths;
	char **excl;  /* exclude_paths and own_dirs */
	size_t nexcl;
	char **procs;
	size_t nprocs;
	dev_t *whole;  /* filesystems wholly inside the trees (set by apply_marks) */
	size_t nwhole;
	dev_t *dirmark;  /* those whose directories have one path each (dir_ignore()) */
	size_t ndirmark;
	uint64_t max_size;
	uint64_t timeout_ns;
	enum realtime_on_timeout on_timeout;
};

/* A filesystem (or, where refused, a mount) marked. */
struct mark {
	dev_t dev;
	bool mount;
	bool whole; /* its root is a policy path, or mounted inside one */
	bool one_path; /* each of its directories has one path here (wanted_marks()) */
	char *path;
};

struct realtime_job {
	struct realtime *rt;
	struct realtime_job *prev, *next; /* the waiting list (permission events) */
	bool listed;
	atomic_int refs;
	atomic_bool answered;
	enum realtime_mode mode;
	enum realtime_on_timeout on_timeout;
	struct rtcache_key key;
	uint64_t read_ns, submit_ns;
	struct realtime_request req;
	char exe[256];
	char path[];
};

struct logline {
	enum log_level level;
	char text[LOG_LINE];
};

/* row[i] holds what its name inherited when it took a full table's
 * smallest row (space-saving's overestimate) in inherited[i]. */
struct tops {
	size_t n;
	struct realtime_top row[TOP_TRACKED];
	struct realtime_top inherited[TOP_TRACKED];
};

struct realtime {
	atomic_int refs;
	struct realtime_callbacks cb;
	size_t max_pending;
	struct rtcache *cache;
	atomic_uint_fast64_t gen;

	/* The reader's policy, and the next one realtime_reconfigure() hands it. */
	struct policy *pol;
	pthread_mutex_t pol_lock;
	pthread_cond_t pol_cond;
	struct policy *next_pol;
	uint64_t pol_seq, pol_adopted;
	atomic_uint_fast64_t timeout_ns;

	int fan, wake;
	/* Readers: whoever writes a response or adds an ignore mark (after
	 * checking the generation); writer: a flush, and closing fan. */
	pthread_rwlock_t fan_lock;
	bool fan_closed;
	atomic_bool kernel_cache;  /* false: the kernel refused evictable marks */
	/* Path decisions cached on directories (the reader's own): NULL or
	 * folders false when they are not (no inotify, Linux before 6.0). */
	struct rtdirs *dirs;
	bool folders;
	bool watches_out;          /* inotify refused a watch (logged once) */
	char mntns[64];            /* the agent's mount namespace */
	dev_t root_dev;            /* and its root folder (agent_path()) */
	ino_t root_ino;
	atomic_int own[REALTIME_MAX_OWN_PIDS]; /* the agent's pids, 0 after the last */
	struct rtwatch *watch;     /* the watchdog process; NULL when it could not start */
	struct mark *marks;  /* the owner's thread's */
	size_t nmarks;
	atomic_uint nfs, nmounts;

	pthread_t reader, timer, logger;
	bool started, stopped;
	atomic_bool running;
	atomic_bool stop;
	atomic_uint_fast64_t busy_since;  /* 0 while the reader waits in poll() */
	/* The permission events of the batch the reader holds, -1 once
	 * answered or handed on: what the watchdog answers for it. */
	atomic_int held[READ_EVENTS];
	atomic_size_t nheld;

	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	struct realtime_job *head, *tail;
	uint64_t timer_wake;

	pthread_mutex_t log_lock;
	pthread_cond_t log_cond;
	struct logline *log;
	size_t log_size, log_head, log_count;
	bool log_stop;

	atomic_uint_fast64_t events, cache_hits, ignore_marks, scans, clean, detections,
		unverified, errors, denials, timeouts, excluded, oversize, not_regular, empty,
		dropped, overflows, watchdog, log_dropped, pending, pending_high, folder_marks,
		folder_resets;
	atomic_uint_fast64_t hist[HIST_BUCKETS];
	pthread_mutex_t top_lock;
	struct tops top_exe, top_path;
};

/* ---- the log queue ---- */

/* Queues a message for the logger thread; never waits on the log. */
__attribute__((format(printf, 3, 4)))
static void rlog(struct realtime *rt, enum log_level level, const char *fmt, ...)
{
	char text[LOG_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&rt->log_lock);
	if (rt->log_count == rt->log_size) {
		atomic_fetch_add(&rt->log_dropped, 1);
	} else {
		struct logline *l = &rt->log[(rt->log_head + rt->log_count) % rt->log_size];

		l->level = level;
		memcpy(l->text, text, sizeof(text));
		rt->log_count++;
		pthread_cond_signal(&rt->log_cond);
	}
	pthread_mutex_unlock(&rt->log_lock);
}

static void *logger_main(void *arg)
{
	struct realtime *rt = arg;
	struct logline line;
	uint64_t dropped_seen = 0, dropped;

	pthread_mutex_lock(&rt->log_lock);
	for (;;) {
		while (!rt->log_count && !rt->log_stop)
			pthread_cond_wait(&rt->log_cond, &rt->log_lock);
		if (!rt->log_count)
			break;
		line = rt->log[rt->log_head];
		rt->log_head = (rt->log_head + 1) % rt->log_size;
		rt->log_count--;
		pthread_mutex_unlock(&rt->log_lock);
		log_msg(line.level, "realtime: %s", line.text);
		dropped = atomic_load(&rt->log_dropped);
		if (dropped != dropped_seen) {
			log_msg(LOG_LVL_WARN, "realtime: %llu messages dropped (log queue full)",
				(unsigned long long)(dropped - dropped_seen));
			dropped_seen = dropped;
		}
		pthread_mutex_lock(&rt->log_lock);
	}
	pthread_mutex_unlock(&rt->log_lock);
	return NULL;
}

/* ---- policies ---- */

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void policy_free(struct policy *p)
{
	if (!p)
		return;
	strv_free(p->paths, p->npaths);
	strv_free(p->excl, p->nexcl);
	strv_free(p->procs, p->nprocs);
	free(p->whole);
	free(p->dirmark);
	free(p);
}

/* Whether s is an absolute path without "..", a doubled or a trailing slash
 * (but "/"), as the settings type "paths" makes them. */
static bool path_ok(const char *s)
{
	size_t n;

	if (!s || s[0] != '/' || strstr(s, "//") || strstr(s, "/../") ||
	    (n = strlen(s)) >= 4096)
		return false;
	if (n > 1 && s[n - 1] == '/')
		return false;
	return !(n >= 3 && strcmp(s + n - 3, "/..") == 0);
}

/* Appends copies of the n paths of v to *out (holding *nout), checking
 * each; what names the setting in messages. */
static enum aerr copy_paths(char ***out, size_t *nout, const char *const *v, size_t n,
				    const char *what, char *errbuf, size_t errlen)
{
	char **grown;
	size_t i;

	if (n && !v) {
		util_set_msg(errbuf, errlen, "realtime: %s: no array", what);
		return AERR_INVALID;
	}
	grown = realloc(*out, (*nout + n + 1) * sizeof(*grown));
	if (!grown)
		return AERR_NOMEM;
	*out = grown;
	for (i = 0; i < n; i++) {
		if (!path_ok(v[i])) {
			util_set_msg(errbuf, errlen, "realtime: %s[%zu]: '%s' is not an absolute "
				     "path without '..' and trailing slash", what, i,
				     v[i] ? v[i] : "(null)");
			return AERR_INVALID;
		}
		if (!(grown[*nout] = strdup(v[i])))
			return AERR_NOMEM;
		(*nout)++;
	}
	return AERR_OK;
}

static struct policy *policy_new(const struct realtime_config *cfg, enum aerr *err,
				 char *errbuf, size_t errlen)
{
	struct policy *p = calloc(1, sizeof(*p));
	enum aerr rc = AERR_NOMEM;

	if (!p)
		goto fail;
	if (cfg->mode != REALTIME_DETECT && cfg->mode != REALTIME_BLOCK) {
		util_set_msg(errbuf, errlen, "realtime: mode: neither detect nor block");
		rc = AERR_INVALID;
		goto fail;
	}
	if (cfg->on_timeout != REALTIME_TIMEOUT_ALLOW && cfg->on_timeout != REALTIME_TIMEOUT_DENY) {
		util_set_msg(errbuf, errlen, "realtime: on_timeout: neither allow nor deny");
		rc = AERR_INVALID;
		goto fail;
	}
	if (cfg->timeout_ms == 0 || cfg->timeout_ms > 600000) {
		util_set_msg(errbuf, errlen, "realtime: timeout: %u ms is not in 1..600000",
			     cfg->timeout_ms);
		rc = AERR_INVALID;
		goto fail;
	}
	if ((cfg->nown_pids && !cfg->own_pids) || cfg->nown_pids > REALTIME_MAX_OWN_PIDS) {
		util_set_msg(errbuf, errlen, "realtime: own_pids: %zu, not 0..%d in an array",
			     cfg->nown_pids, REALTIME_MAX_OWN_PIDS);
		rc = AERR_INVALID;
		goto fail;
	}
	p->mode = cfg->mode;
	p->max_size = cfg->max_size;
	p->timeout_ns = (uint64_t)cfg->timeout_ms * 1000000u;
	p->on_timeout = cfg->on_timeout;
	if ((rc = copy_paths(&p->paths, &p->npaths, cfg->paths, cfg->npaths, "paths", errbuf,
			     errlen)) ||
	    (rc = copy_paths(&p->excl, &p->nexcl, cfg->exclude_paths, cfg->nexclude_paths,
			     "exclude_paths", errbuf, errlen)) ||
	    (rc = copy_paths(&p->excl, &p->nexcl, cfg->own_dirs, cfg->nown_dirs, "own_dirs",
			     errbuf, errlen)) ||
	    (rc = copy_paths(&p->procs, &p->nprocs, cfg->exclude_processes,
			     cfg->nexclude_processes, "exclude_processes", errbuf, errlen)))
		goto fail;
	return p;
fail:
	if (rc == AERR_NOMEM)
		util_set_msg(errbuf, errlen, "realtime: out of memory");
	policy_free(p);
	*err = rc;
	return NULL;
}

/* Whether path is dir or inside it. */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool under_any(const char *path, char *const *dirs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (path_under(path, dirs[i]))
			return true;
	return false;
}

/* ---- counters ---- */

static void counter_max(atomic_uint_fast64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load(max);

	while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
		;
}

static size_t hist_index(uint64_t ns)
{
	unsigned e;
	size_t i;

	if (ns < 4)
		return (size_t)ns;
	e = 63u - (unsigned)__builtin_clzll(ns);
	i = (size_t)e * 4 + ((ns >> (e - 2)) & 3);
	return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The largest value of bucket i. */
static uint64_t hist_upper(size_t i)
{
	unsigned e = (unsigned)(i / 4);

	if (i < 8)
		return i < 4 ? i : 3; /* 4..7 stay empty */
	return ((uint64_t)(4 + i % 4 + 1) << (e - 2)) - 1;
}

static uint64_t hist_percentile(const uint64_t *h, uint64_t total, unsigned pct)
{
	uint64_t want = (total * pct + 99) / 100, sum = 0;
	size_t i;

	if (!total)
		return 0;
	for (i = 0; i < HIST_BUCKETS; i++) {
		sum += h[i];
		if (sum >= want)
			return hist_upper(i);
	}
	return hist_upper(HIST_BUCKETS - 1);
}

/* Adds one scan of ns to name's row (space-saving: a full table gives the
 * row of the smallest total to the newcomer, keeping that total, so that
 * a name scanned often cannot be crowded out by many scanned once). */
static void top_add(struct tops *t, const char *name, uint64_t ns)
{
	size_t i, min = 0;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->row[i].name, name) == 0)
			break;
		if (t->row[i].scan_ns < t->row[min].scan_ns)
			min = i;
	}
	if (i == t->n) {
		if (t->n < TOP_TRACKED) {
			t->row[i] = (struct realtime_top){ .scans = 0 };
			t->n++;
		} else {
			i = min;
		}
		t->inherited[i] = t->row[i];
		snprintf(t->row[i].name, sizeof(t->row[i].name), "%s", name);
	}
	t->row[i].scans++;
	t->row[i].scan_ns += ns;
}

static int top_cmp(const void *a, const void *b)
{
	const struct realtime_top *x = a, *y = b;

	return x->scan_ns < y->scan_ns ? 1 : x->scan_ns > y->scan_ns ? -1 : 0;
}

/* The costliest rows by what their own names cost (the inherited part
 * left out: a lower bound, never another name's count). */
static size_t top_copy(const struct tops *t, struct realtime_top *out)
{
	struct realtime_top all[TOP_TRACKED];
	size_t i, n = t->n < REALTIME_TOP ? t->n : REALTIME_TOP;

	memcpy(all, t->row, t->n * sizeof(all[0]));
	for (i = 0; i < t->n; i++) {
		all[i].scans -= t->inherited[i].scans;
		all[i].scan_ns -= t->inherited[i].scan_ns;
	}
	qsort(all, t->n, sizeof(all[0]), top_cmp);
	memcpy(out, all, n * sizeof(all[0]));
	return n;
}

/* ---- answers and marks ---- */

/* Tells the kernel the answer for the permission event of fd; read_ns is
 * when the event was read (for the latency histogram), 0 to leave it out. */
static void answer(struct realtime *rt, int fd, bool allow, uint64_t read_ns)
{
	struct fanotify_response r = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };
	ssize_t n = 0;
	int e = 0;

	pthread_rwlock_rdlock(&rt->fan_lock);
	if (!rt->fan_closed) {
		n = write(rt->fan, &r, sizeof(r));
		e = errno;
		rtwatch_release(rt->watch, fd);
	}
	pthread_rwlock_unlock(&rt->fan_lock);
	/* ENOENT: the watchdog or realtime_stop() answered first. */
	if (n < 0 && e != ENOENT)
		rlog(rt, LOG_LVL_ERROR, "answering the kernel: %s", strerror(e));
	if (read_ns)
		atomic_fetch_add(&rt->hist[hist_index(util_now_ns() - read_ns)], 1);
}

/* Adds an ignore mark for mask to the inode of fd. The caller holds
 * fan_lock for reading (so no flush comes between its check and this). */
static void ignore_locked(struct realtime *rt, int fd, uint64_t mask)
{
	if (rt->fan_closed || !atomic_load(&rt->kernel_cache))
		return;
	if (fanotify_mark(rt->fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE,
			  mask, fd, NULL) == 0) {
		atomic_fetch_add(&rt->ignore_marks, 1);
	} else if (errno == EINVAL && atomic_exchange(&rt->kernel_cache, false)) {
		rlog(rt, LOG_LVL_WARN, "the kernel refuses evictable ignore marks (before "
		     "Linux 5.19): the kernel cache is off, the agent's serves alone");
	}
}

static void unignore(struct realtime *rt, int fd)
{
	pthread_rwlock_rdlock(&rt->fan_lock);
	if (!rt->fan_closed)
		fanotify_mark(rt->fan, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, PERM_MASK, fd,
			      NULL);
	pthread_rwlock_unlock(&rt->fan_lock);
}

/* ---- jobs ---- */

static void rt_release(struct realtime *rt);

static void job_release(struct realtime_job *job)
{
	struct realtime *rt = job->rt;

	if (atomic_fetch_sub(&job->refs, 1) != 1)
		return;
	close(job->req.fd);
	free(job);
	atomic_fetch_sub(&rt->pending, 1);
	rt_release(rt);
}

/* Unlinks job from the waiting list; the caller holds jobs_lock. */
static void unlink_locked(struct realtime *rt, struct realtime_job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		rt->head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	else
		rt->tail = job->prev;
	job->prev = job->next = NULL;
	job->listed = false;
}

/* Takes job off the waiting list; returns whether it was on it (the
 * caller then owns the list's reference). */
static bool unlist(struct realtime *rt, struct realtime_job *job)
{
	bool was;

	pthread_mutex_lock(&rt->jobs_lock);
	was = job->listed;
	if (was)
		unlink_locked(rt, job);
	pthread_mutex_unlock(&rt->jobs_lock);
	return was;
}

static void file_of(const struct realtime_job *job, struct realtime_file *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = job->req.fd;
	f->path = job->path;
	f->dev = job->key.dev;
	f->ino = job->key.ino;
	f->size = job->key.size;
	f->pid = job->req.pid;
	f->exe = job->exe;
	f->event = job->req.event;
}

static const char *event_name(enum realtime_event ev)
{
	return ev == REALTIME_EV_EXEC ? "exec" : ev == REALTIME_EV_OPEN ? "open" : "close-write";
}

/* Whether fd still has the identity of key (no write since the event). */
static bool unchanged(int fd, const struct rtcache_key *key)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (uint64_t)st.st_size == key->size &&
	       st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec == key->mtime_ns &&
	       st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec == key->ctime_ns;
}

void realtime_done(struct realtime_job *job, enum realtime_verdict verdict,
		   const char *const *names, size_t nnames, const char *error)
{
	struct realtime *rt = job->rt;
	uint64_t now = util_now_ns();
	struct realtime_file f;
	bool perm = job->req.event != REALTIME_EV_CLOSE_WRITE;

	file_of(job, &f);
	if (perm) {
		if (unlist(rt, job))
			job_release(job); /* the list's reference; ours still holds it */
		if (!atomic_exchange(&job->answered, true)) {
			f.denied = verdict == REALTIME_INFECTED && job->mode == REALTIME_BLOCK;
			if (f.denied)
				atomic_fetch_add(&rt->denials, 1);
			answer(rt, job->req.fd, !f.denied, job->read_ns);
		} else {
			f.late = true;
		}
	}
	switch (verdict) {
	case REALTIME_CLEAN:
		atomic_fetch_add(&rt->clean, 1);
		if (!unchanged(job->req.fd, &job->key))
			break;
		pthread_rwlock_rdlock(&rt->fan_lock);
		if (job->key.gen == atomic_load(&rt->gen)) {
			rtcache_insert(rt->cache, &job->key);
			ignore_locked(rt, job->req.fd, PERM_MASK);
		}
		pthread_rwlock_unlock(&rt->fan_lock);
		break;
	case REALTIME_INFECTED:
		atomic_fetch_add(&rt->detections, 1);
		f.names = names;
		f.nnames = nnames;
		rlog(rt, LOG_LVL_WARN, "%s: %s (%s by pid %d %s)%s", job->path,
		     nnames && names ? names[0] : "infected", event_name(job->req.event),
		     (int)job->req.pid, job->exe, f.denied ? ": denied" : "");
		if (rt->cb.detection)
			rt->cb.detection(rt->cb.arg, &f);
		break;
	case REALTIME_UNVERIFIED:
		atomic_fetch_add(&rt->unverified, 1);
		if (rt->cb.rescan)
			rt->cb.rescan(rt->cb.arg, &f);
		break;
	case REALTIME_SKIPPED:
		atomic_fetch_add(&rt->cache_hits, 1);
		break;
	case REALTIME_ERROR:
		atomic_fetch_add(&rt->errors, 1);
		rlog(rt, LOG_LVL_WARN, "%s: not scanned: %s", job->path, error ? error : "error");
		if (f.late && rt->cb.rescan)
			rt->cb.rescan(rt->cb.arg, &f);
		break;
	}
	pthread_mutex_lock(&rt->top_lock);
	top_add(&rt->top_path, job->path, now - job->submit_ns);
	top_add(&rt->top_exe, job->exe[0] ? job->exe : "(unknown)", now - job->submit_ns);
	pthread_mutex_unlock(&rt->top_lock);
	job_release(job);
}

bool realtime_needed(struct realtime_job *job)
{
	struct realtime *rt = job->rt;
	bool cached;

	if (job->req.event != REALTIME_EV_CLOSE_WRITE)
		return true;
	pthread_rwlock_rdlock(&rt->fan_lock);
	cached = job->key.gen == atomic_load(&rt->gen) && rtcache_lookup(rt->cache, &job->key);
	pthread_rwlock_unlock(&rt->fan_lock);
	return !cached;
}

/* ---- the reader ---- */

static bool own_pid(struct realtime *rt, pid_t pid)
{
	size_t i;
	int v;

	for (i = 0; i < REALTIME_MAX_OWN_PIDS; i++) {
		v = atomic_load_explicit(&rt->own[i], memory_order_relaxed);
		if (v == pid)
			return true;
		if (v == 0)
			break;
	}
	return false;
}

void realtime_set_own_pids(struct realtime *rt, const pid_t *pids, size_t n)
{
	size_t i;

	for (i = 0; i < REALTIME_MAX_OWN_PIDS; i++)
		atomic_store(&rt->own[i], i < n ? (int)pids[i] : 0);
}

static bool whole_fs(const struct policy *p, dev_t dev)
{
	size_t i;

	for (i = 0; i < p->nwhole; i++)
		if (p->whole[i] == dev)
			return true;
	return false;
}

/* Reads the path of fd (procfs, never a watched file) into buf. */
static bool fd_path(int fd, const struct stat *st, char *buf, size_t len)
{
	static const char deleted[] = " (deleted)";
	char link[40];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (st->st_nlink == 0 && (size_t)n > sizeof(deleted) - 1 &&
	    strcmp(buf + n - (sizeof(deleted) - 1), deleted) == 0)
		buf[n - (sizeof(deleted) - 1)] = '\0';
	return buf[0] == '/';
}

static void exe_of(pid_t pid, char *buf, size_t len)
{
	char link[40];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static bool excluded_process(const struct policy *p, pid_t pid, char *exe, size_t len)
{
	size_t i;

	exe_of(pid, exe, len);
	for (i = 0; i < p->nprocs; i++)
		if (strcmp(exe, p->procs[i]) == 0)
			return true;
	return false;
}

/* Drops every mark the kernel holds, decisions by path and verdicts
 * alike (the agent's cache gives the verdicts back at the next open), and
 * starts watching directories over: a directory marked, or one above it,
 * moved. */
static void dir_reset(struct realtime *rt)
{
	pthread_rwlock_wrlock(&rt->fan_lock);
	if (!rt->fan_closed && fanotify_mark(rt->fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) != 0)
		rlog(rt, LOG_LVL_ERROR, "flushing the kernel's cache: %s", strerror(errno));
	pthread_rwlock_unlock(&rt->fan_lock);
	rtdirs_reset(rt->dirs);
	atomic_fetch_add(&rt->folder_resets, 1);
}

static bool in_devs(const dev_t *v, size_t n, dev_t dev)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == dev)
			return true;
	return false;
}

/* Splits path (absolute) into its folder, copied into dir (PATH_MAX), and
 * returns its last name. */
static const char *split(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == path ? 1 : (size_t)(slash - path);

	memcpy(dir, path, n);
	dir[n] = '\0';
	return slash + 1;
}

/* Opens, in the agent's namespace, the folder of path if the file of st is
 * in it under its name: the path names that file for the agent too.
 * Returns the folder's descriptor (read access: fanotify_mark() takes no
 * O_PATH one; a folder is no event, no FAN_ONDIR), or -1. */
static int folder_of(const char *path, const struct stat *st)
{
	char dir[PATH_MAX];
	const char *name = split(path, dir);
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS };
	struct stat cst;
	/* The path read for the descriptor has no symbolic link; one met now
	 * was put in its way since. */
	int dfd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

	if (dfd < 0 && errno == ENOSYS)  /* before Linux 5.6 */
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0 && (fstatat(dfd, name, &cst, AT_SYMLINK_NOFOLLOW) != 0 ||
			 cst.st_dev != st->st_dev || cst.st_ino != st->st_ino)) {
		close(dfd);
		dfd = -1;
	}
	return dfd;
}

/* Whether path, which the descriptor of a file opened by pid has, is the
 * file's path for the agent, so that the policy's paths may pass it over;
 * path may be shortened to the agent's. A process of another mount
 * namespace (a container, a service with private mounts) may reach a
 * folder of the trees through a bind mount elsewhere, and the descriptor
 * has the path it took: the agent must find the file there in its own
 * namespace, its only name (a second link may be the one the process
 * took). The kernel writes that path from the top of the opener's
 * namespace, not from its root: for an agent in a chroot (its root is not
 * the top of its namespace) and an opener with the same root folder, it
 * starts with that root's path there (/proc/PID/root), which the agent
 * has no name for; the rest, the path from the root they share, is
 * checked the same way. */
static bool agent_path(const struct realtime *rt, pid_t pid, char *path,
		       const struct stat *st)
{
	char link[48], ns[64], root[PATH_MAX];
	struct stat rst;
	ssize_t n;
	size_t k;
	int dfd;

	snprintf(link, sizeof(link), "/proc/%d/ns/mnt", (int)pid);
	n = readlink(link, ns, sizeof(ns) - 1);
	if (n > 0 && rt->mntns[0]) {
		ns[n] = '\0';
		if (strcmp(ns, rt->mntns) == 0)
			return true;
	}
	if (st->st_nlink != 1)
		return false;
	if ((dfd = folder_of(path, st)) >= 0) {
		close(dfd);
		return true;
	}
	snprintf(link, sizeof(link), "/proc/%d/root", (int)pid);
	n = readlink(link, root, sizeof(root) - 1);
	if (n <= 1 || root[0] != '/')
		return false;  /* none, or the top of its namespace: path is the one */
	k = (size_t)n;
	root[k] = '\0';
	if (strncmp(path, root, k) != 0 || path[k] != '/' || stat(link, &rst) != 0 ||
	    rst.st_dev != rt->root_dev || rst.st_ino != rt->root_ino ||
	    (dfd = folder_of(path + k, st)) < 0)
		return false;
	close(dfd);
	memmove(path, path + k, strlen(path + k) + 1);
	return true;
}

/* Lets the kernel pass over the opens (mask) of every file of the
 * directory of path, which the policy passes over because of its path (out
 * of the trees, or excluded: which says excluded; agent_path() held). The
 * mark is the directory's, never the file's: a file moved or linked into
 * the trees is reached through a directory of theirs, and asked about. It
 * is set only when the decision holds for every file of the directory,
 * the directory is the one the file is in, each directory of the
 * filesystem has one path (no bind mount of a subtree elsewhere), and the
 * directory and those above it are watched for moves (rtdirs.h).
 * Otherwise each open is decided anew. */
static void dir_ignore(struct realtime *rt, const struct policy *p, const char *path,
		       const struct stat *st, uint64_t mask, bool excluded)
{
	char dir[PATH_MAX], now[PATH_MAX];
	struct stat cst;
	size_t i;
	int dfd, e;

	if (!rt->folders || !atomic_load(&rt->kernel_cache) ||
	    !in_devs(p->dirmark, p->ndirmark, st->st_dev))
		return;
	split(path, dir);
	if (excluded) {
		if (!under_any(dir, p->excl, p->nexcl))
			return;  /* an excluded file, not a whole excluded folder */
	} else {
		if (under_any(dir, p->paths, p->npaths))
			return;
		for (i = 0; i < p->npaths; i++)
			if (path_under(p->paths[i], dir))
				return;  /* a tree of the policy is inside it */
	}
	if ((dfd = folder_of(path, st)) < 0)
		return;
	if (!rtdirs_watch(rt->dirs, dfd)) {
		e = errno;
		if (rtdirs_full(rt->dirs)) {
			dir_reset(rt);
		} else if (e == ENOSPC && !rt->watches_out) {
			rt->watches_out = true;
			rlog(rt, LOG_LVL_WARN, "inotify: %s (fs.inotify.max_user_watches): folders "
			     "outside the trees are decided at each open meanwhile", strerror(e));
		}
		goto out;
	}
	/* Watched from now on; still where the decision put it? */
	if (fstat(dfd, &cst) != 0 || !fd_path(dfd, &cst, now, sizeof(now)) ||
	    strcmp(now, dir) != 0)
		goto out;
	pthread_rwlock_rdlock(&rt->fan_lock);
	if (rt->fan_closed) {
		/* stopping */
	} else if (fanotify_mark(rt->fan, FAN_MARK_ADD | DIR_IGNORE | FAN_MARK_EVICTABLE,
				 mask | FAN_EVENT_ON_CHILD, dfd, NULL) == 0) {
		atomic_fetch_add(&rt->folder_marks, 1);
	} else if (errno == EINVAL) {
		rt->folders = false;
		rlog(rt, LOG_LVL_WARN, "the kernel refuses ignore marks on folders (before "
		     "Linux 6.0): every open outside the trees or in an excluded one is "
		     "decided by the agent");
	}
	pthread_rwlock_unlock(&rt->fan_lock);
out:
	close(dfd);
}

/* Hands the file to the backend; takes fd. */
static void submit(struct realtime *rt, const struct policy *p, int fd, pid_t pid,
		   enum realtime_event ev, const struct rtcache_key *key, const char *path,
		   const char *exe, uint64_t read_ns)
{
	size_t plen = strlen(path) + 1;
	struct realtime_job *job;
	bool perm = ev != REALTIME_EV_CLOSE_WRITE;
	uint64_t pending = atomic_fetch_add(&rt->pending, 1) + 1;

	if (pending > rt->max_pending || !(job = calloc(1, sizeof(*job) + plen))) {
		atomic_fetch_sub(&rt->pending, 1);
		goto dropped;
	}
	counter_max(&rt->pending_high, pending);
	job->rt = rt;
	atomic_fetch_add(&rt->refs, 1);
	atomic_init(&job->refs, perm ? 2 : 1);
	job->mode = p->mode;
	job->on_timeout = p->on_timeout;
	job->key = *key;
	job->read_ns = read_ns;
	memcpy(job->path, path, plen);
	snprintf(job->exe, sizeof(job->exe), "%s", exe);
	job->req.fd = fd;
	job->req.path = job->path;
	job->req.pid = pid;
	job->req.size = key->size;
	job->req.event = ev;
	job->submit_ns = util_now_ns();
	if (perm) {
		job->req.deadline_ns = read_ns + p->timeout_ns;
		pthread_mutex_lock(&rt->jobs_lock);
		job->prev = rt->tail;
		if (rt->tail)
			rt->tail->next = job;
		else
			rt->head = job;
		rt->tail = job;
		job->listed = true;
		if (job->req.deadline_ns < rt->timer_wake)
			pthread_cond_signal(&rt->jobs_cond);
		pthread_mutex_unlock(&rt->jobs_lock);
	}
	atomic_fetch_add(&rt->scans, 1);
	if (rt->cb.submit(rt->cb.arg, job, &job->req))
		return;
	/* Refused: answered as dropped, the backend's reference released. */
	atomic_fetch_sub(&rt->scans, 1);
	atomic_fetch_add(&rt->dropped, 1);
	if (perm) {
		if (unlist(rt, job))
			job_release(job);
		if (!atomic_exchange(&job->answered, true))
			answer(rt, fd, p->on_timeout == REALTIME_TIMEOUT_ALLOW, read_ns);
	}
	job_release(job);
	return;
dropped:
	atomic_fetch_add(&rt->dropped, 1);
	rlog(rt, LOG_LVL_WARN, "%s: not scanned: %zu files wait for the backend already",
	     path, rt->max_pending);
	if (perm)
		answer(rt, fd, p->on_timeout == REALTIME_TIMEOUT_ALLOW, read_ns);
	close(fd);
}

/* Whether the policy passes over the file at path because of its path:
 * outside the trees (not a program run), or excluded. */
static bool passed_over(const struct policy *p, enum realtime_event ev, const char *path,
			dev_t dev)
{
	return (ev != REALTIME_EV_EXEC && !whole_fs(p, dev) &&
		!under_any(path, p->paths, p->npaths)) ||
	       under_any(path, p->excl, p->nexcl);
}

/* Decides one event; closes its fd or hands it on. */
static void handle(struct realtime *rt, const struct policy *p,
		   const struct fanotify_event_metadata *m, atomic_int *held, uint64_t read_ns)
{
	char path[4096] = "", exe[256] = "";
	struct rtcache_key key;
	struct stat st;
	enum realtime_event ev;
	bool perm = (m->mask & PERM_MASK) != 0, hit, named, foreign;
	int fd = m->fd;

	atomic_fetch_add(&rt->events, 1);
	if (m->mask & FAN_Q_OVERFLOW) {
		atomic_fetch_add(&rt->overflows, 1);
		rlog(rt, LOG_LVL_ERROR, "the kernel's event queue overflowed: files written "
		     "meanwhile were not scanned");
	}
	if (fd < 0)
		return;
	ev = m->mask & FAN_OPEN_EXEC_PERM ? REALTIME_EV_EXEC :
	     m->mask & FAN_OPEN_PERM ? REALTIME_EV_OPEN : REALTIME_EV_CLOSE_WRITE;
	if (own_pid(rt, m->pid) || fstat(fd, &st) != 0) {
		atomic_fetch_add(&rt->excluded, 1);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		atomic_fetch_add(&rt->not_regular, 1);
		goto done;
	}
	/* Nothing to read, nothing to scan: a file being made (creat(),
	 * tar) opens at once, its contents are scanned when written. */
	if (st.st_size == 0) {
		atomic_fetch_add(&rt->empty, 1);
		goto done;
	}
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	key.size = (uint64_t)st.st_size;
	key.mtime_ns = st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
	key.ctime_ns = st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec;
	/* A file found clean is clean by whatever path: no path needed. */
	pthread_rwlock_rdlock(&rt->fan_lock);
	key.gen = atomic_load(&rt->gen);
	hit = perm && rtcache_lookup(rt->cache, &key);
	if (hit)
		ignore_locked(rt, fd, PERM_MASK); /* the kernel evicted its mark */
	pthread_rwlock_unlock(&rt->fan_lock);
	if (hit) {
		atomic_fetch_add(&rt->cache_hits, 1);
		goto done;
	}
	named = fd_path(fd, &st, path, sizeof(path));
	/* The policy's paths pass a file over by the agent's path for it only
	 * (agent_path(), which may give the agent's in place of the opener's:
	 * the file is decided again by it); a file whose path is not the
	 * agent's is scanned. */
	foreign = named && passed_over(p, ev, path, st.st_dev) &&
		  !agent_path(rt, m->pid, path, &st);
	if (!named || (!foreign && !whole_fs(p, st.st_dev) &&
		       !under_any(path, p->paths, p->npaths))) {
		/* Programs run from anywhere on a marked filesystem are scanned. */
		if (ev != REALTIME_EV_EXEC) {
			atomic_fetch_add(&rt->excluded, 1);
			if (perm && named)
				dir_ignore(rt, p, path, &st, FAN_OPEN_PERM, false);
			goto done;
		}
		if (!named)
			snprintf(path, sizeof(path), "(fd %d)", fd);
	}
	if (named && !foreign && under_any(path, p->excl, p->nexcl)) {
		atomic_fetch_add(&rt->excluded, 1);
		if (perm)
			dir_ignore(rt, p, path, &st, FAN_OPEN_PERM, true);
		goto done;
	}
	/* Whoever runs a program, it is scanned. */
	if (p->nprocs && ev != REALTIME_EV_EXEC && excluded_process(p, m->pid, exe, sizeof(exe))) {
		atomic_fetch_add(&rt->excluded, 1);
		goto done;
	}
	if (ev == REALTIME_EV_CLOSE_WRITE) {
		/* Writes through mmap clear no ignore mark: drop both layers. */
		unignore(rt, fd);
		rtcache_forget(rt->cache, key.dev, key.ino);
	}
	if (key.size > p->max_size) {
		atomic_fetch_add(&rt->oversize, 1);
		goto done;
	}
	if (!exe[0])
		exe_of(m->pid, exe, sizeof(exe));
	atomic_store(held, -1); /* on the waiting list now, or answered */
	submit(rt, p, fd, m->pid, ev, &key, path, exe, read_ns);
	return;
done:
	if (perm)
		answer(rt, fd, true, read_ns);
	atomic_store(held, -1);
	close(fd);
}

/* Takes the policy realtime_reconfigure() published, if any; returns
 * whether there was one. */
static bool adopt(struct realtime *rt)
{
	struct policy *old = NULL;

	pthread_mutex_lock(&rt->pol_lock);
	if (rt->next_pol) {
		old = rt->pol;
		rt->pol = rt->next_pol;
		rt->next_pol = NULL;
	}
	rt->pol_adopted = rt->pol_seq;
	pthread_cond_broadcast(&rt->pol_cond);
	pthread_mutex_unlock(&rt->pol_lock);
	policy_free(old);
	return old != NULL;
}

/* Allows the permission events of the batch not answered nor handed on
 * (none, unless the batch was cut short), so that none waits forever. */
static void unanswered(struct realtime *rt, size_t k)
{
	size_t i;
	int fd;

	for (i = 0; i < k; i++)
		if ((fd = atomic_exchange(&rt->held[i], -1)) >= 0) {
			answer(rt, fd, true, 0);
			close(fd);
		}
	atomic_store(&rt->nheld, 0);
}

static void *reader_main(void *arg)
{
	struct realtime *rt = arg;
	union {
		struct fanotify_event_metadata m;
		char bytes[READ_BYTES];
	} buf;
	struct pollfd pfd[3] = { { .fd = rt->fan, .events = POLLIN },
				 { .fd = rt->wake, .events = POLLIN },
				 { .fd = -1, .events = POLLIN } };
	const struct fanotify_event_metadata *m;
	uint64_t now, counter;
	size_t i, k;
	ssize_t n, left;

	for (;;) {
		atomic_store(&rt->busy_since, 0);
		/* Its descriptor changes when the watch starts over. */
		pfd[2].fd = rt->folders ? rtdirs_fd(rt->dirs) : -1;
		if (poll(pfd, 3, -1) < 0) {
			if (errno != EINTR)
				rlog(rt, LOG_LVL_ERROR, "poll: %s", strerror(errno));
			continue;
		}
		now = util_now_ns();
		atomic_store(&rt->busy_since, now);
		if (pfd[1].revents) {
			if (read(rt->wake, &counter, sizeof(counter)) < 0 && errno != EAGAIN)
				rlog(rt, LOG_LVL_ERROR, "eventfd: %s", strerror(errno));
			if (atomic_load(&rt->stop))
				break;
			/* Folders marked by the old policy's paths are
			 * dropped here, whenever realtime_reconfigure()'s own
			 * flush came. */
			if (adopt(rt) && rt->folders)
				dir_reset(rt);
		}
		/* A directory moved: before the next event is decided. */
		if (pfd[2].revents && rtdirs_moved(rt->dirs))
			dir_reset(rt);
		n = read(rt->fan, buf.bytes, sizeof(buf.bytes));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				rlog(rt, LOG_LVL_ERROR, "reading events: %s", strerror(errno));
			continue;
		}
		k = 0;
		left = n; /* FAN_EVENT_NEXT counts it down */
		for (m = &buf.m; FAN_EVENT_OK(m, left) && k < READ_EVENTS;
		     m = FAN_EVENT_NEXT(m, left)) {
			atomic_store(&rt->held[k++],
				     m->fd >= 0 && (m->mask & PERM_MASK) ? m->fd : -1);
			if (m->fd >= 0 && (m->mask & PERM_MASK))
				rtwatch_hold(rt->watch, m->fd);
		}
		atomic_store(&rt->nheld, k);
		i = 0;
		for (m = &buf.m; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n), i++) {
			if (m->vers != FANOTIFY_METADATA_VERSION) {
				rlog(rt, LOG_LVL_ERROR, "fanotify event version %u, not %u: "
				     "allowed unscanned", m->vers, FANOTIFY_METADATA_VERSION);
				break;
			}
			handle(rt, rt->pol, m, &rt->held[i], now);
			atomic_store(&rt->busy_since, util_now_ns());
		}
		unanswered(rt, k);
	}
	atomic_store(&rt->busy_since, 0);
	return NULL;
}

/* ---- the timer: deadlines and the watchdog ---- */

/* Reads and allows every event waiting in the kernel's queue, as the
 * watchdog and realtime_stop() do; the watchdog (count) counts the
 * permission events there (before answering, so that the counter is never
 * behind) and the writes left unscanned as dropped. */
static void drain(struct realtime *rt, atomic_uint_fast64_t *count)
{
	union {
		struct fanotify_event_metadata m;
		char bytes[READ_BYTES];
	} buf;
	const struct fanotify_event_metadata *m;
	ssize_t n;

	while ((n = read(rt->fan, buf.bytes, sizeof(buf.bytes))) > 0) {
		for (m = &buf.m; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			if (m->fd < 0)
				continue;
			if (m->mask & PERM_MASK) {
				if (count)
					atomic_fetch_add(count, 1);
				answer(rt, m->fd, true, 0);
			} else if (count) {
				atomic_fetch_add(&rt->dropped, 1);
			}
			close(m->fd);
		}
	}
}

/* Fails open when the reader has been busy with one batch of events for
 * longer than the timeout: allows the events it holds and every event
 * queued, until it makes progress again. */
static void watchdog(struct realtime *rt, uint64_t now, bool *stalled)
{
	uint64_t busy = atomic_load(&rt->busy_since);
	uint64_t timeout = atomic_load(&rt->timeout_ns);
	size_t i, n;
	int fd;

	if (!busy || now - busy <= timeout) {
		*stalled = false;
		return;
	}
	if (!*stalled)
		rlog(rt, LOG_LVL_ERROR, "watchdog: the event reader has been stuck for %llu ms: "
		     "allowing every access waiting (fail open)",
		     (unsigned long long)((now - busy) / 1000000));
	*stalled = true;
	n = atomic_load(&rt->nheld);
	for (i = 0; i < n; i++)
		if ((fd = atomic_exchange(&rt->held[i], -1)) >= 0) {
			atomic_fetch_add(&rt->watchdog, 1);
			answer(rt, fd, true, 0);
		}
	drain(rt, &rt->watchdog);
}

/* Answers job, off the waiting list, as its policy says for a timeout
 * (unless its verdict came first), and drops the list's reference. */
static void expire(struct realtime *rt, struct realtime_job *job)
{
	bool allow = job->on_timeout == REALTIME_TIMEOUT_ALLOW;

	if (!atomic_exchange(&job->answered, true)) {
		atomic_fetch_add(&rt->timeouts, 1);
		if (!allow)
			atomic_fetch_add(&rt->denials, 1);
		answer(rt, job->req.fd, allow, job->read_ns);
		rlog(rt, LOG_LVL_WARN, "%s: no verdict by the deadline (%s by pid %d %s): %s, "
		     "scanned on", job->path, event_name(job->req.event), (int)job->req.pid,
		     job->exe, allow ? "allowed" : "denied");
	}
	job_release(job);
}

static void *timer_main(void *arg)
{
	struct realtime *rt = arg;
	struct realtime_job *expired, *job, *next;
	struct timespec ts;
	uint64_t now, wake, tick;
	bool stalled = false;

	pthread_mutex_lock(&rt->jobs_lock);
	while (!atomic_load(&rt->stop)) {
		now = util_now_ns();
		expired = NULL;
		for (job = rt->head; job; job = next) {
			next = job->next;
			if (job->req.deadline_ns > now)
				continue;
			unlink_locked(rt, job);
			job->next = expired;
			expired = job;
		}
		if (expired) {
			pthread_mutex_unlock(&rt->jobs_lock);
			for (job = expired; job; job = next) {
				next = job->next;
				expire(rt, job);
			}
			pthread_mutex_lock(&rt->jobs_lock);
			continue;
		}
		tick = atomic_load(&rt->timeout_ns) / 4;
		if (tick > 100000000u)
			tick = 100000000u;
		wake = now + tick;
		for (job = rt->head; job; job = job->next)
			if (job->req.deadline_ns < wake)
				wake = job->req.deadline_ns;
		rt->timer_wake = wake;
		ts.tv_sec = (time_t)(wake / 1000000000u);
		ts.tv_nsec = (long)(wake % 1000000000u);
		pthread_cond_timedwait(&rt->jobs_cond, &rt->jobs_lock, &ts);
		pthread_mutex_unlock(&rt->jobs_lock);
		if (rt->watch)
			rtwatch_beat(rt->watch);
		watchdog(rt, util_now_ns(), &stalled);
		pthread_mutex_lock(&rt->jobs_lock);
	}
	pthread_mutex_unlock(&rt->jobs_lock);
	return NULL;
}

/* ---- marks ---- */

/* Whether a filesystem type holds no files worth watching (or would be
 * mounted by looking at it: autofs). */
static bool skipped_fstype(const char *type)
{
	static const char *const skip[] = {
		"proc", "sysfs", "devpts", "debugfs", "tracefs", "securityfs", "cgroup",
		"cgroup2", "bpf", "pstore", "efivarfs", "selinuxfs", "smackfs", "binfmt_misc",
		"nsfs", "autofs", "mqueue", "hugetlbfs", "configfs", "fusectl", "rpc_pipefs",
		"devtmpfs",
	};
	size_t i;

	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(type, skip[i]) == 0)
			return true;
	return false;
}

/* Decodes mountinfo's octal escapes (\040) in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

static void marks_free(struct mark *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* Adds the mount point (or policy path) dir to the set *v of *n, once per
 * device; whole: the filesystem's root is in the trees. */
static enum aerr want(struct mark **v, size_t *n, const char *dir, bool whole)
{
	struct stat st;
	struct mark *grown;
	size_t i;

	if (stat(dir, &st) != 0 || util_pseudo_fs(dir))
		return AERR_OK;
	for (i = 0; i < *n; i++)
		if ((*v)[i].dev == st.st_dev) {
			(*v)[i].whole |= whole;
			return AERR_OK;
		}
	grown = realloc(*v, (*n + 1) * sizeof(*grown));
	if (!grown)
		return AERR_NOMEM;
	*v = grown;
	grown[*n].dev = st.st_dev;
	grown[*n].mount = false;
	grown[*n].whole = whole;
	grown[*n].one_path = false;
	if (!(grown[*n].path = strdup(dir)))
		return AERR_NOMEM;
	(*n)++;
	return AERR_OK;
}

/* A mount of mountinfo: the filesystem, the folder of it mounted, where. */
struct mount_rec {
	dev_t dev;
	char *root, *mnt;
};

/* Whether every folder of filesystem dev has one path here: it is
 * mounted whole once, and any other mount of it shows a folder at the
 * path it has in the whole (systemd's read-only /usr over itself does;
 * a bind of /srv/data at /mnt does not: a folder there has two paths). */
static bool one_path(const struct mount_rec *v, size_t n, dev_t dev)
{
	const char *top = NULL;
	size_t i, k;

	for (i = 0; i < n; i++)
		if (v[i].dev == dev && strcmp(v[i].root, "/") == 0) {
			if (top)
				return false;
			top = v[i].mnt;
		}
	if (!top)
		return false;
	k = strcmp(top, "/") == 0 ? 0 : strlen(top);
	for (i = 0; i < n; i++)
		if (v[i].dev == dev && strcmp(v[i].root, "/") != 0 &&
		    (strncmp(v[i].mnt, top, k) != 0 || strcmp(v[i].mnt + k, v[i].root) != 0))
			return false;
	return true;
}

/* The filesystems holding the policy's paths and those mounted inside
 * them (from /proc/self/mountinfo), one per device. */
static enum aerr wanted_marks(struct realtime *rt, const struct policy *p,
				      struct mark **out, size_t *nout)
{
	enum aerr rc = AERR_OK;
	char *line = NULL, *save, *f, *mnt, *root, *type;
	struct mount_rec *mounts = NULL, *grown;
	size_t cap = 0, i, nmounts = 0;
	unsigned maj = 0, min = 0;
	FILE *mi;
	int field;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < p->npaths && !rc; i++) {
		if (util_pseudo_fs(p->paths[i]))
			rlog(rt, LOG_LVL_INFO, "%s: a pseudo filesystem (%s), not watched",
			     p->paths[i], util_pseudo_fs(p->paths[i]));
		else if (access(p->paths[i], F_OK) != 0)
			rlog(rt, LOG_LVL_INFO, "%s: %s, not watched", p->paths[i], strerror(errno));
		rc = want(out, nout, p->paths[i], false);
	}
	mi = fopen("/proc/self/mountinfo", "re");
	while (!rc && mi && getline(&line, &cap, mi) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE ... */
		mnt = root = type = NULL;
		field = 0;
		for (f = strtok_r(line, " \n", &save); f; f = strtok_r(NULL, " \n", &save)) {
			if (++field == 3 && sscanf(f, "%u:%u", &maj, &min) != 2)
				break;
			if (field == 4)
				root = f;
			else if (field == 5)
				mnt = f;
			else if (field > 6 && strcmp(f, "-") == 0) {
				type = strtok_r(NULL, " \n", &save);
				break;
			}
		}
		if (!mnt || !root || !type || skipped_fstype(type))
			continue;
		unescape(mnt);
		unescape(root);
		if (!(grown = realloc(mounts, (nmounts + 1) * sizeof(*mounts)))) {
			rc = AERR_NOMEM;
			break;
		}
		mounts = grown;
		mounts[nmounts].dev = makedev(maj, min);
		mounts[nmounts].root = strdup(root);
		mounts[nmounts].mnt = strdup(mnt);
		if (!mounts[nmounts++].root || !mounts[nmounts - 1].mnt) {
			rc = AERR_NOMEM;
			break;
		}
		/* A filesystem whose root is mounted in the trees is in them
		 * whatever path an access takes (a bind mount, a container). */
		if (under_any(mnt, p->paths, p->npaths) && !under_any(mnt, p->excl, p->nexcl))
			rc = want(out, nout, mnt, strcmp(root, "/") == 0);
	}
	free(line);
	if (mi)
		fclose(mi);
	for (i = 0; i < *nout && !rc; i++)
		(*out)[i].one_path = one_path(mounts, nmounts, (*out)[i].dev);
	for (i = 0; i < nmounts; i++) {
		free(mounts[i].root);
		free(mounts[i].mnt);
	}
	free(mounts);
	return rc;
}

static bool has_dev(const struct mark *v, size_t n, dev_t dev)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].dev == dev)
			return true;
	return false;
}

/* Whether the agent runs in a user namespace other than the host's. */
static bool in_user_namespace(void)
{
	char *map = util_read_file("/proc/self/uid_map", 4096, NULL);
	unsigned long a, b, c;
	bool inside = true;

	if (map && sscanf(map, "%lu %lu %lu", &a, &b, &c) == 3)
		inside = !(a == 0 && b == 0 && c == 4294967295ul);
	free(map);
	return inside;
}

/* Marks m (a filesystem, or the mount where the kernel refuses that). */
static enum aerr add_mark(struct realtime *rt, struct mark *m, char *errbuf,
				  size_t errlen)
{
	int e;

	if (fanotify_mark(rt->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MARK_MASK, AT_FDCWD,
			  m->path) == 0)
		return AERR_OK;
	e = errno;
	if (e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENODEV) {
		/* A btrfs subvolume (EXDEV), or no filesystem marks here. */
		if (fanotify_mark(rt->fan, FAN_MARK_ADD | FAN_MARK_MOUNT, MARK_MASK, AT_FDCWD,
				  m->path) == 0) {
			m->mount = true;
			rlog(rt, LOG_LVL_WARN, "%s: the kernel refused a filesystem mark (%s): "
			     "watched through this mount only", m->path, strerror(e));
			return AERR_OK;
		}
		e = errno;
	}
	if (e == EINVAL) {
		util_set_msg(errbuf, errlen, "the kernel has no fanotify permission events "
			     "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS): marking %s: %s", m->path,
			     strerror(e));
		return AERR_UNAVAILABLE;
	}
	if (e == EPERM) {
		util_set_msg(errbuf, errlen, "no CAP_SYS_ADMIN: marking %s: %s", m->path,
			     strerror(e));
		return AERR_UNAVAILABLE;
	}
	util_set_msg(errbuf, errlen, "fanotify_mark %s: %s", m->path, strerror(e));
	return AERR_SYS;
}

/* Unmarks m, if its path still names its filesystem: once unmounted, its
 * marks went with it, and the path may name another one now. */
static void remove_mark(struct realtime *rt, const struct mark *m)
{
	struct stat st;

	if (stat(m->path, &st) != 0 || st.st_dev != m->dev)
		return;
	fanotify_mark(rt->fan, FAN_MARK_REMOVE | (m->mount ? FAN_MARK_MOUNT : FAN_MARK_FILESYSTEM),
		      MARK_MASK, AT_FDCWD, m->path);
}

/* Marks what p needs and not yet marked, unmarks what it no longer names,
 * and keeps the new set. On failure nothing of the old set is unmarked. */
static enum aerr apply_marks(struct realtime *rt, struct policy *p, char *errbuf,
				     size_t errlen)
{
	struct mark *v;
	size_t n, i, j;
	enum aerr rc = wanted_marks(rt, p, &v, &n);

	if (rc) {
		util_set_msg(errbuf, errlen, "realtime: out of memory");
		marks_free(v, n);
		return rc;
	}
	if (!n) {
		util_set_msg(errbuf, errlen, "no path of realtime.paths is on a filesystem that "
			     "can be watched");
		marks_free(v, n);
		return AERR_UNAVAILABLE;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < rt->nmarks; j++)
			if (rt->marks[j].dev == v[i].dev)
				break;
		if (j < rt->nmarks) {
			v[i].mount = rt->marks[j].mount;
			continue;
		}
		if ((rc = add_mark(rt, &v[i], errbuf, errlen)) != AERR_OK) {
			while (i--)
				if (!has_dev(rt->marks, rt->nmarks, v[i].dev))
					remove_mark(rt, &v[i]);
			marks_free(v, n);
			return rc;
		}
	}
	free(p->whole);
	free(p->dirmark);
	p->nwhole = p->ndirmark = 0;
	p->whole = malloc(n * sizeof(*p->whole));
	p->dirmark = malloc(n * sizeof(*p->dirmark));
	if (!p->whole || !p->dirmark) {
		util_set_msg(errbuf, errlen, "realtime: out of memory");
		marks_free(v, n);
		return AERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		if (v[i].whole)
			p->whole[p->nwhole++] = v[i].dev;
		/* A mount mark sees one mount: another one's path is no event. */
		if (v[i].one_path && !v[i].mount)
			p->dirmark[p->ndirmark++] = v[i].dev;
	}
	for (j = 0; j < rt->nmarks; j++)
		if (!has_dev(v, n, rt->marks[j].dev))
			remove_mark(rt, &rt->marks[j]);
	marks_free(rt->marks, rt->nmarks);
	rt->marks = v;
	rt->nmarks = n;
	for (i = j = 0; i < n; i++)
		j += v[i].mount;
	atomic_store(&rt->nmounts, (unsigned)j);
	atomic_store(&rt->nfs, (unsigned)(n - j));
	return AERR_OK;
}

/* ---- the scanner ---- */

struct realtime *realtime_new(const struct realtime_config *cfg,
			      const struct realtime_callbacks *cb, enum aerr *err,
			      char *errbuf, size_t errlen)
{
	struct realtime *rt;
	pthread_rwlockattr_t ra;

	if (!cb || !cb->submit) {
		util_set_msg(errbuf, errlen, "realtime: no scan backend");
		*err = AERR_INVALID;
		return NULL;
	}
	*err = AERR_NOMEM;
	rt = calloc(1, sizeof(*rt));
	if (!rt) {
		util_set_msg(errbuf, errlen, "realtime: out of memory");
		return NULL;
	}
	rt->fan = rt->wake = -1;
	if (!(rt->pol = policy_new(cfg, err, errbuf, errlen)))
		goto fail;
	rt->cb = *cb;
	rt->max_pending = cfg->max_pending ? cfg->max_pending : REALTIME_DEFAULT_MAX_PENDING;
	rt->log_size = cfg->log_queue ? cfg->log_queue : REALTIME_DEFAULT_LOG_QUEUE;
	rt->cache = rtcache_new(cfg->cache_entries ? cfg->cache_entries :
				REALTIME_DEFAULT_CACHE_ENTRIES);
	rt->log = calloc(rt->log_size, sizeof(*rt->log));
	if (!rt->cache || !rt->log) {
		util_set_msg(errbuf, errlen, "realtime: out of memory");
		goto fail;
	}
	atomic_init(&rt->refs, 1);
	atomic_init(&rt->gen, 1);
	atomic_init(&rt->timeout_ns, rt->pol->timeout_ns);
	atomic_init(&rt->kernel_cache, !cfg->kernel_cache_off);
	realtime_set_own_pids(rt, cfg->own_pids, cfg->nown_pids);
	pthread_mutex_init(&rt->pol_lock, NULL);
	pthread_cond_init(&rt->pol_cond, NULL);
	pthread_mutex_init(&rt->jobs_lock, NULL);
	util_cond_init_monotonic(&rt->jobs_cond);
	/* A flush must not wait behind a stream of answers. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&rt->fan_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&rt->log_lock, NULL);
	pthread_cond_init(&rt->log_cond, NULL);
	pthread_mutex_init(&rt->top_lock, NULL);
	*err = AERR_OK;
	return rt;
fail:
	policy_free(rt->pol);
	rtcache_free(rt->cache);
	free(rt->log);
	free(rt);
	return NULL;
}

/* Why fanotify_init() failed, for the status the agent reports. */
static enum aerr init_failed(int e, char *errbuf, size_t errlen)
{
	if (e == EPERM && in_user_namespace()) {
		util_set_msg(errbuf, errlen, "the agent runs in a user namespace (a container): "
			     "fanotify permission events need CAP_SYS_ADMIN in the host's");
		return AERR_UNAVAILABLE;
	}
	if (e == EPERM) {
		util_set_msg(errbuf, errlen, "no CAP_SYS_ADMIN: fanotify_init: %s", strerror(e));
		return AERR_UNAVAILABLE;
	}
	if (e == ENOSYS) {
		util_set_msg(errbuf, errlen, "the kernel has no fanotify (CONFIG_FANOTIFY)");
		return AERR_UNAVAILABLE;
	}
	if (e == EINVAL) {
		util_set_msg(errbuf, errlen, "the kernel has no fanotify permission events "
			     "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS): fanotify_init: %s",
			     strerror(e));
		return AERR_UNAVAILABLE;
	}
	util_set_msg(errbuf, errlen, "fanotify_init: %s", strerror(e));
	return AERR_SYS;
}

/* Every job holds a descriptor, and the kernel denies a permission event
 * it cannot open one for: makes room for max_pending jobs, a batch of
 * events and the agent's own, lowering max_pending where it cannot. */
static void fit_nofile(struct realtime *rt)
{
	rlim_t slack = READ_EVENTS + 256, need = rt->max_pending + slack;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= need)
		return;
	rt->max_pending = rl.rlim_cur > 2 * slack ? rl.rlim_cur - slack : rl.rlim_cur / 4;
	rlog(rt, LOG_LVL_WARN, "RLIMIT_NOFILE is %llu: at most %zu files wait for a verdict",
	     (unsigned long long)rl.rlim_cur, rt->max_pending);
}

/* Folders watched at most: MAX_DIR_WATCHES, or a quarter of the inotify
 * watches root may have, which systemd and others share. */
static size_t dir_budget(void)
{
	char buf[32] = "";
	unsigned long long limit = 0;
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_watches", "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			limit = strtoull(buf, NULL, 10);
		fclose(f);
	}
	return limit / 4 < MAX_DIR_WATCHES ? (size_t)(limit / 4) : MAX_DIR_WATCHES;
}

/* Path decisions are cached on directories when the watch of their moves
 * can run; else each open outside the trees is decided by the reader. */
static void start_dirs(struct realtime *rt)
{
	ssize_t n = readlink("/proc/self/ns/mnt", rt->mntns, sizeof(rt->mntns) - 1);
	size_t budget = dir_budget();
	struct stat st;

	rt->mntns[n > 0 ? n : 0] = '\0';
	if (stat("/", &st) == 0) {
		rt->root_dev = st.st_dev;
		rt->root_ino = st.st_ino;
	}
	if (budget < 64) {
		rlog(rt, LOG_LVL_WARN, "inotify: fs.inotify.max_user_watches leaves %zu watches: "
		     "every open outside the trees or in an excluded one is decided by the agent",
		     budget);
		return;
	}
	rt->dirs = rtdirs_new(budget);
	rt->folders = rt->dirs != NULL;
	if (!rt->dirs)
		rlog(rt, LOG_LVL_WARN, "inotify: %s: every open outside the trees or in an "
		     "excluded one is decided by the agent", strerror(errno));
}

enum aerr realtime_start(struct realtime *rt, char *errbuf, size_t errlen)
{
	char why[256];
	enum aerr rc;
	int e;

	if (rt->started) {
		util_set_msg(errbuf, errlen, "realtime: started already");
		return AERR_INVALID;
	}
	/* O_NONBLOCK: the kernel never waits opening a file for an event. */
	rt->fan = fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT | FAN_NONBLOCK |
				FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
				O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NONBLOCK);
	if (rt->fan < 0)
		return init_failed(errno, errbuf, errlen);
	rt->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rt->wake < 0) {
		util_set_msg(errbuf, errlen, "eventfd: %s", strerror(errno));
		rc = AERR_SYS;
		goto fail;
	}
	if ((rc = apply_marks(rt, rt->pol, errbuf, errlen)) != AERR_OK)
		goto fail;
	start_dirs(rt);
	fit_nofile(rt);
	rt->watch = rtwatch_start(rt->fan, rt->pol->timeout_ns, why, sizeof(why));
	if (!rt->watch)
		rlog(rt, LOG_LVL_WARN, "%s: a stopped agent would hold accesses", why);
	if ((e = pthread_create(&rt->logger, NULL, logger_main, rt)) != 0)
		goto threads;
	if ((e = pthread_create(&rt->timer, NULL, timer_main, rt)) != 0) {
		rt->log_stop = true;
		pthread_cond_signal(&rt->log_cond);
		pthread_join(rt->logger, NULL);
		goto threads;
	}
	if ((e = pthread_create(&rt->reader, NULL, reader_main, rt)) != 0) {
		atomic_store(&rt->stop, true);
		pthread_cond_signal(&rt->jobs_cond);
		pthread_join(rt->timer, NULL);
		rt->log_stop = true;
		pthread_cond_signal(&rt->log_cond);
		pthread_join(rt->logger, NULL);
		atomic_store(&rt->stop, false);
		goto threads;
	}
	rt->started = true;
	atomic_store(&rt->running, true);
	rlog(rt, LOG_LVL_INFO, "on, %s mode: %zu filesystem%s watched",
	     rt->pol->mode == REALTIME_BLOCK ? "block" : "detect", rt->nmarks,
	     rt->nmarks == 1 ? "" : "s");
	return AERR_OK;
threads:
	util_set_msg(errbuf, errlen, "realtime: pthread_create: %s", strerror(e));
	rc = AERR_SYS;
	rtwatch_stop(rt->watch);
	rt->watch = NULL;
fail:
	close(rt->fan);
	if (rt->wake >= 0)
		close(rt->wake);
	rt->fan = rt->wake = -1;
	marks_free(rt->marks, rt->nmarks);
	rt->marks = NULL;
	rt->nmarks = 0;
	return rc;
}

/* Starts a new generation and empties both caches, under the write side of
 * fan_lock, so that no verdict of an older generation is cached after. */
static void flush_caches(struct realtime *rt)
{
	pthread_rwlock_wrlock(&rt->fan_lock);
	atomic_fetch_add(&rt->gen, 1);
	if (rt->fan >= 0 && !rt->fan_closed &&
	    fanotify_mark(rt->fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) != 0)
		rlog(rt, LOG_LVL_ERROR, "flushing the kernel's cache: %s", strerror(errno));
	rtcache_clear(rt->cache);
	pthread_rwlock_unlock(&rt->fan_lock);
}

void realtime_flush(struct realtime *rt)
{
	flush_caches(rt);
}

enum aerr realtime_reconfigure(struct realtime *rt, const struct realtime_config *cfg,
				       char *errbuf, size_t errlen)
{
	enum aerr rc;
	struct policy *p;
	struct timespec ts;
	uint64_t seq, one = 1;

	if (!rt->started || rt->stopped) {
		util_set_msg(errbuf, errlen, "realtime: not running");
		return AERR_INVALID;
	}
	if (!(p = policy_new(cfg, &rc, errbuf, errlen)))
		return rc;
	if ((rc = apply_marks(rt, p, errbuf, errlen)) != AERR_OK) {
		policy_free(p);
		return rc;
	}
	atomic_store(&rt->timeout_ns, p->timeout_ns);
	if (rt->watch)
		rtwatch_set_timeout(rt->watch, p->timeout_ns);
	realtime_set_own_pids(rt, cfg->own_pids, cfg->nown_pids);
	atomic_store(&rt->kernel_cache, !cfg->kernel_cache_off);
	pthread_mutex_lock(&rt->pol_lock);
	policy_free(rt->next_pol);
	rt->next_pol = p;
	seq = ++rt->pol_seq;
	pthread_mutex_unlock(&rt->pol_lock);
	if (write(rt->wake, &one, sizeof(one)) < 0)
		rlog(rt, LOG_LVL_ERROR, "eventfd: %s", strerror(errno));
	/* Flush once the reader decides by the new policy; a stalled reader
	 * (the watchdog's business) is waited for no longer than a second. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&rt->pol_lock);
	while (rt->pol_adopted < seq)
		if (pthread_cond_timedwait(&rt->pol_cond, &rt->pol_lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&rt->pol_lock);
	flush_caches(rt);
	rlog(rt, LOG_LVL_INFO, "new policy, %s mode: %zu filesystem%s watched",
	     cfg->mode == REALTIME_BLOCK ? "block" : "detect", rt->nmarks,
	     rt->nmarks == 1 ? "" : "s");
	return AERR_OK;
}

void realtime_stop(struct realtime *rt)
{
	struct realtime_job *job;
	struct rtwatch *watch;
	uint64_t one = 1;

	if (!rt->started || rt->stopped)
		return;
	rt->stopped = true;
	atomic_store(&rt->running, false);
	atomic_store(&rt->stop, true);
	if (write(rt->wake, &one, sizeof(one)) < 0)
		rlog(rt, LOG_LVL_ERROR, "eventfd: %s", strerror(errno));
	pthread_join(rt->reader, NULL);
	pthread_mutex_lock(&rt->jobs_lock);
	pthread_cond_signal(&rt->jobs_cond);
	pthread_mutex_unlock(&rt->jobs_lock);
	pthread_join(rt->timer, NULL);
	/* No new events, then allow what waits: queued, then held. */
	fanotify_mark(rt->fan, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, NULL);
	fanotify_mark(rt->fan, FAN_MARK_FLUSH | FAN_MARK_MOUNT, 0, AT_FDCWD, NULL);
	fanotify_mark(rt->fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
	atomic_store(&rt->nfs, 0);
	atomic_store(&rt->nmounts, 0);
	drain(rt, NULL);
	pthread_mutex_lock(&rt->jobs_lock);
	while ((job = rt->head) != NULL) {
		unlink_locked(rt, job);
		pthread_mutex_unlock(&rt->jobs_lock);
		if (!atomic_exchange(&job->answered, true))
			answer(rt, job->req.fd, true, 0);
		job_release(job);
		pthread_mutex_lock(&rt->jobs_lock);
	}
	pthread_mutex_unlock(&rt->jobs_lock);
	/* Closing the group (the watchdog process holds it too) allows
	 * whatever raced with the flush. */
	pthread_rwlock_wrlock(&rt->fan_lock);
	watch = rt->watch;
	rt->watch = NULL;
	if (watch)
		atomic_fetch_add(&rt->watchdog, rtwatch_allowed(watch));
	rt->fan_closed = true;
	close(rt->fan);
	rt->fan = -1;
	pthread_rwlock_unlock(&rt->fan_lock);
	rtwatch_stop(watch);
	rlog(rt, LOG_LVL_INFO, "off");
	pthread_mutex_lock(&rt->log_lock);
	rt->log_stop = true;
	pthread_cond_signal(&rt->log_cond);
	pthread_mutex_unlock(&rt->log_lock);
	pthread_join(rt->logger, NULL);
}

void realtime_stats(struct realtime *rt, struct realtime_stats *out)
{
	uint64_t h[HIST_BUCKETS], total = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->running = atomic_load(&rt->running);
	out->events = atomic_load(&rt->events);
	out->cache_hits = atomic_load(&rt->cache_hits);
	out->ignore_marks = atomic_load(&rt->ignore_marks);
	out->folder_marks = atomic_load(&rt->folder_marks);
	out->folder_resets = atomic_load(&rt->folder_resets);
	out->scans = atomic_load(&rt->scans);
	out->clean = atomic_load(&rt->clean);
	out->detections = atomic_load(&rt->detections);
	out->unverified = atomic_load(&rt->unverified);
	out->errors = atomic_load(&rt->errors);
	out->denials = atomic_load(&rt->denials);
	out->timeouts = atomic_load(&rt->timeouts);
	out->excluded = atomic_load(&rt->excluded);
	out->oversize = atomic_load(&rt->oversize);
	out->not_regular = atomic_load(&rt->not_regular);
	out->empty = atomic_load(&rt->empty);
	out->dropped = atomic_load(&rt->dropped);
	out->overflows = atomic_load(&rt->overflows);
	out->watchdog = atomic_load(&rt->watchdog);
	pthread_rwlock_rdlock(&rt->fan_lock);
	if (rt->watch)
		out->watchdog += rtwatch_allowed(rt->watch);
	pthread_rwlock_unlock(&rt->fan_lock);
	out->log_dropped = atomic_load(&rt->log_dropped);
	out->pending = atomic_load(&rt->pending);
	out->pending_high = atomic_load(&rt->pending_high);
	for (i = 0; i < HIST_BUCKETS; i++)
		total += h[i] = atomic_load(&rt->hist[i]);
	out->latency_p50_ns = hist_percentile(h, total, 50);
	out->latency_p99_ns = hist_percentile(h, total, 99);
	out->filesystems = atomic_load(&rt->nfs);
	out->mounts = atomic_load(&rt->nmounts);
	pthread_mutex_lock(&rt->top_lock);
	out->ntop_processes = top_copy(&rt->top_exe, out->top_processes);
	out->ntop_paths = top_copy(&rt->top_path, out->top_paths);
	pthread_mutex_unlock(&rt->top_lock);
}

static json_t *top_json(const struct realtime_top *t, size_t n, const char *key)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I, s:I}", key, t[i].name, "scans",
						   (json_int_t)t[i].scans, "scan_us",
						   (json_int_t)(t[i].scan_ns / 1000)));
	return a;
}

json_t *realtime_stats_json(struct realtime *rt)
{
	struct realtime_stats *s = malloc(sizeof(*s));
	json_t *o;

	if (!s)
		return NULL;
	realtime_stats(rt, s);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o, s:o}",
		      "events", (json_int_t)s->events, "cache_hits", (json_int_t)s->cache_hits,
		      "kernel_cache_marks", (json_int_t)s->ignore_marks,
		      "folder_marks", (json_int_t)s->folder_marks,
		      "folder_resets", (json_int_t)s->folder_resets,
		      "scans", (json_int_t)s->scans, "clean", (json_int_t)s->clean,
		      "detections", (json_int_t)s->detections,
		      "unverified", (json_int_t)s->unverified, "errors", (json_int_t)s->errors,
		      "denials", (json_int_t)s->denials, "timeouts", (json_int_t)s->timeouts,
		      "excluded", (json_int_t)s->excluded, "oversize", (json_int_t)s->oversize,
		      "not_regular", (json_int_t)s->not_regular, "empty", (json_int_t)s->empty,
		      "dropped", (json_int_t)s->dropped, "overflows", (json_int_t)s->overflows,
		      "watchdog", (json_int_t)s->watchdog,
		      "queue", (json_int_t)s->pending, "queue_high", (json_int_t)s->pending_high,
		      "latency_p50_us", (json_int_t)(s->latency_p50_ns / 1000),
		      "latency_p99_us", (json_int_t)(s->latency_p99_ns / 1000),
		      "filesystems", (int)s->filesystems, "mounts", (int)s->mounts,
		      "top_processes", top_json(s->top_processes, s->ntop_processes, "exe"),
		      "top_paths", top_json(s->top_paths, s->ntop_paths, "path"));
	free(s);
	return o;
}

static void rt_release(struct realtime *rt)
{
	if (atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	if (rt->fan >= 0)
		close(rt->fan);
	if (rt->wake >= 0)
		close(rt->wake);
	policy_free(rt->pol);
	policy_free(rt->next_pol);
	marks_free(rt->marks, rt->nmarks);
	rtcache_free(rt->cache);
	rtdirs_free(rt->dirs);
	free(rt->log);
	pthread_mutex_destroy(&rt->pol_lock);
	pthread_cond_destroy(&rt->pol_cond);
	pthread_mutex_destroy(&rt->jobs_lock);
	pthread_cond_destroy(&rt->jobs_cond);
	pthread_rwlock_destroy(&rt->fan_lock);
	pthread_mutex_destroy(&rt->log_lock);
	pthread_cond_destroy(&rt->log_cond);
	pthread_mutex_destroy(&rt->top_lock);
	free(rt);
}

void realtime_free(struct realtime *rt)
{
	if (!rt)
		return;
	realtime_stop(rt);
	rt_release(rt);
}
