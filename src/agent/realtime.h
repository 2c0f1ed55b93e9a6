/* realtime.h -- real-time (on-access) scanning with fanotify.
 *
 * One FAN_CLASS_CONTENT group marks every filesystem holding a policy
 * path (FAN_MARK_FILESYSTEM; a mount mark only where the kernel refuses
 * one), for FAN_OPEN_EXEC_PERM (no infected program runs, wherever it is
 * on those filesystems), FAN_OPEN_PERM (answered at once outside the
 * policy's trees) and FAN_CLOSE_WRITE (what was just written is scanned
 * behind). A reader thread that never blocks answers what it can itself
 * (exclusions, files that are no regular files or are over max_size,
 * cache hits) and hands the rest to a scan backend, asynchronously; the
 * kernel gets its answer when the verdict comes or at the deadline,
 * whichever is first, exactly once. Clean files are cached twice: in the
 * kernel (an evictable ignore mark on the inode, which a modification
 * clears) and in an in-memory cache keyed by file identity and signature
 * generation. A watchdog thread answers "allow" for everything waiting
 * when the reader stalls, and a watchdog process (rtwatch.h) when the
 * whole agent stops (SIGSTOP). Nothing on the decision path logs synchronously
 * (messages go through a bounded queue that a thread of the module writes
 * out), resolves names or opens a watched file.
 *
 * docs/architecture.md, "Real-time scanning", has the design.
 */
#ifndef WARD_AGENT_REALTIME_H
#define WARD_AGENT_REALTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/aerr.h"


enum realtime_mode {
	REALTIME_DETECT, /* log and allow */
	REALTIME_BLOCK,  /* deny access to infected files */
};

/* What the kernel is told when no verdict came by the deadline. */
enum realtime_on_timeout {
	REALTIME_TIMEOUT_ALLOW,
	REALTIME_TIMEOUT_DENY,
};

/* Defaults of the limits that are no client settings. */
#define REALTIME_DEFAULT_CACHE_ENTRIES 65536
#define REALTIME_DEFAULT_MAX_PENDING 8192
#define REALTIME_DEFAULT_LOG_QUEUE 256
#define REALTIME_MAX_OWN_PIDS 64

/* The policy. Strings and arrays are copied; absolute paths without a
 * trailing slash (but "/"), as the settings type "paths" guarantees. */
struct realtime_config {
	enum realtime_mode mode;
	const char *const *paths;             /* realtime.paths */
	size_t npaths;
	const char *const *exclude_paths;     /* realtime.exclude_paths */
	size_t nexclude_paths;
	const char *const *exclude_processes; /* realtime.exclude_processes: executables */
	size_t nexclude_processes;
	uint64_t max_size;                    /* realtime.max_size: larger files pass */
	unsigned timeout_ms;                  /* realtime.timeout, in milliseconds (> 0) */
	enum realtime_on_timeout on_timeout;  /* realtime.on_timeout */
	const char *const *own_dirs;          /* the agent's state, log, quarantine... */
	size_t nown_dirs;
	const pid_t *own_pids;                /* the agent and its workers (at most
					       * REALTIME_MAX_OWN_PIDS) */
	size_t nown_pids;
	size_t cache_entries; /* in-memory verdict cache; 0: the default */
	size_t max_pending;   /* files held by the backend at once; 0: the default */
	size_t log_queue;     /* messages waiting to be logged; 0: the default */
	bool kernel_cache_off; /* no ignore marks: every open reaches the agent
				* (for measurements and tests) */
};

/* Why a file was looked at. */
enum realtime_event {
	REALTIME_EV_OPEN,        /* FAN_OPEN_PERM: the opener waits */
	REALTIME_EV_EXEC,        /* FAN_OPEN_EXEC_PERM: the exec waits */
	REALTIME_EV_CLOSE_WRITE, /* FAN_CLOSE_WRITE: scanned behind, nobody waits */
};

enum realtime_verdict {
	REALTIME_CLEAN,
	REALTIME_INFECTED,
	REALTIME_UNVERIFIED, /* smart scan, no source answered: allowed, rescanned later */
	REALTIME_ERROR,      /* allowed; never acted on */
	REALTIME_SKIPPED,    /* not scanned: realtime_needed() said no */
};

/* A file to scan, valid until realtime_done() is called for its job. */
struct realtime_request {
	int fd;               /* the event's descriptor: scan through it, never
			       * reopen the path (read-only, no further events) */
	const char *path;     /* for messages only */
	pid_t pid;            /* the process that caused the event */
	uint64_t size;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC (util_now_ns()); 0 for close-write */
	enum realtime_event event;
};

/* What a detection or a rescan request carries; valid during the call. */
struct realtime_file {
	int fd;               /* the file scanned (dup() it to keep it) */
	const char *path;     /* as /proc/self/fd named it at the event */
	uint64_t dev, ino, size;
	pid_t pid;
	const char *exe;      /* the process's executable; "" when unknown */
	enum realtime_event event;
	const char *const *names; /* detection names (detections only) */
	size_t nnames;
	bool denied;          /* the kernel was told to deny the access */
	bool late;            /* the verdict came after the deadline */
};

struct realtime_job;

/* The scan backend and the agent's hooks. submit() is called on the reader
 * thread and must not block: it queues the job and returns true, or false
 * when it cannot take it (then the access is allowed and counted as
 * dropped). detection() (an infected file) and rescan() (unverified, or an
 * error or a late verdict: scan it again later) are called on the thread
 * that calls realtime_done(), after the kernel has its answer; they must
 * not block either (post to the agent's loop). */
struct realtime_callbacks {
	bool (*submit)(void *arg, struct realtime_job *job, const struct realtime_request *req);
	void (*detection)(void *arg, const struct realtime_file *file);
	void (*rescan)(void *arg, const struct realtime_file *file);
	void *arg;
};

/* A top table's row: a process (executable) or a path, by scan time. */
struct realtime_top {
	char name[256];
	uint64_t scans;
	uint64_t scan_ns;
};

#define REALTIME_TOP 10

/* Counters since start. Kernel cache hits cannot be counted (the kernel
 * drops those events without telling anyone); ignore_marks counts the
 * clean files the kernel was told to cache. */
struct realtime_stats {
	bool running;
	uint64_t events;          /* events read */
	uint64_t cache_hits;      /* answered from the in-memory cache */
	uint64_t ignore_marks;    /* kernel ignore marks set */
	uint64_t folder_marks;    /* folders whose files' opens the kernel passes over */
	uint64_t folder_resets;   /* every mark dropped: a folder moved (rtdirs.h) */
	uint64_t scans;           /* files handed to the backend */
	uint64_t clean, detections, unverified, errors;
	uint64_t denials;         /* accesses denied (infected, or on_timeout deny) */
	uint64_t timeouts;        /* answers given at the deadline */
	uint64_t excluded;        /* own, excluded paths and processes, outside the trees */
	uint64_t oversize;        /* over max_size: allowed unscanned */
	uint64_t not_regular;     /* directories, FIFOs, devices: allowed, never read */
	uint64_t empty;           /* empty files: allowed, nothing to scan */
	uint64_t dropped;         /* backend full or refused: allowed unscanned */
	uint64_t overflows;       /* kernel queue overflows */
	uint64_t watchdog;        /* accesses the watchdog allowed */
	uint64_t log_dropped;     /* log messages dropped (queue full) */
	uint64_t pending;         /* jobs with the backend now */
	uint64_t pending_high;    /* the high-water mark of pending */
	uint64_t latency_p50_ns;  /* permission decisions, from the read to the answer */
	uint64_t latency_p99_ns;
	unsigned filesystems;     /* filesystem marks */
	unsigned mounts;          /* mount marks (where a filesystem mark was refused) */
	size_t ntop_processes, ntop_paths;
	struct realtime_top top_processes[REALTIME_TOP];
	struct realtime_top top_paths[REALTIME_TOP];
};

struct realtime;

/* Checks and copies cfg into a new scanner, not yet started. Returns NULL
 * with *err and errbuf set on failure. The caller owns the scanner and
 * frees it with realtime_free(). */
struct realtime *realtime_new(const struct realtime_config *cfg,
			      const struct realtime_callbacks *cb, enum aerr *err,
			      char *errbuf, size_t errlen);

/* Makes the fanotify group, marks the filesystems and starts the threads.
 * AERR_UNAVAILABLE with the reason in errbuf when fanotify cannot be
 * used here (no CAP_SYS_ADMIN, a user namespace, a kernel without
 * permission events, no policy path on a filesystem that can be marked);
 * the scanner is then unchanged and may be freed. Call it once, from the
 * owner's thread, which must live as long as the scanner (the watchdog
 * process it forks is killed when that thread ends). Paths missing or on
 * pseudo filesystems are skipped (logged). */
enum aerr realtime_start(struct realtime *rt, char *errbuf, size_t errlen);

/* Replaces the policy (paths, exclusions, mode, limits, own pids), marks
 * filesystems new to it, unmarks those it no longer names, and flushes
 * both cache layers. On failure the old policy stays. Owner's thread,
 * after realtime_start(). */
enum aerr realtime_reconfigure(struct realtime *rt, const struct realtime_config *cfg,
				       char *errbuf, size_t errlen);

/* Replaces the agent's own process ids (a new generation of scan workers)
 * without flushing anything; n above REALTIME_MAX_OWN_PIDS are left out.
 * Thread-safe: the reader sees them from its next event on. */
void realtime_set_own_pids(struct realtime *rt, const pid_t *pids, size_t n);

/* The component in use changed: starts a new signature-set generation
 * and flushes both cache layers, so every file is scanned again. Verdicts
 * of scans submitted before are still answered but no longer cached.
 * Thread-safe. */
void realtime_flush(struct realtime *rt);

/* The backend's answer for job (from any thread, exactly once per job):
 * names (nnames) for REALTIME_INFECTED, a message for REALTIME_ERROR
 * (may be NULL). Answers the kernel unless the deadline did, caches a
 * clean file, calls the hooks, and releases the job (its request and fd
 * are gone after it). Safe after realtime_stop() and realtime_free(). */
void realtime_done(struct realtime_job *job, enum realtime_verdict verdict,
		   const char *const *names, size_t nnames, const char *error);

/* Whether job still needs its scan: false for a written file that has
 * been found clean since, as it is now (its scan after an open came
 * first); the backend then ends it with REALTIME_SKIPPED. Any thread, fast
 * (no system call). */
bool realtime_needed(struct realtime_job *job);

/* Removes every mark, allows every access waiting and stops the threads;
 * jobs still with the backend stay valid until their realtime_done().
 * Owner's thread; idempotent. */
void realtime_stop(struct realtime *rt);

/* Fills *out with the counters. Thread-safe. */
void realtime_stats(struct realtime *rt, struct realtime_stats *out);

/* Returns the counters as the status report's "counters" object
 * (docs/protocol.md): a new reference, or NULL when out of memory.
 * Thread-safe. */
json_t *realtime_stats_json(struct realtime *rt);

/* Stops the scanner if running and drops the owner's reference; the
 * memory goes when the last job is done. NULL is ignored. */
void realtime_free(struct realtime *rt);

#endif
