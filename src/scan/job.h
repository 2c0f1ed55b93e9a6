/* job.h -- scanning files and trees in parallel with one shared engine.
 *
 * sjob_run() walks its paths on the calling thread (directory entries in
 * byte order of their names), hands regular files to a pool of worker
 * threads (largest waiting file first, so no worker idles at the end behind
 * one large file), and reports every outcome to one callback in traversal
 * order: the output of a run does not depend on the number of threads. Files
 * recorded in the scan cache are reported without being opened; the engine
 * is requested only when a file actually needs scanning, so a re-scan of an
 * unchanged tree never loads the signatures.
 */
#ifndef WARD_SCAN_JOB_H
#define WARD_SCAN_JOB_H

#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "scan/cache.h"
#include "scan/scan.h"
#include "scan/smart.h"

enum sjob_kind {
	SJOB_FILE,         /* a regular file, scanned or found in the cache */
	SJOB_EMPTY,        /* a regular file of size 0: nothing to scan */
	SJOB_EXCLUDED,     /* matched an exclude pattern; not opened */
	SJOB_LINK,         /* a symbolic link not followed (by configuration) */
	SJOB_SKIPPED,      /* never opened: a FIFO, socket or device found in a
			    * directory, a dangling or looping link, a directory
			    * loop or one beyond the depth limit (message says) */
	SJOB_UNSCANNABLE,  /* a path named by the caller that does not exist or
			    * is not a file or directory (message says why) */
	SJOB_ERROR,        /* could not be scanned (message says why) */
};

/* One outcome, valid only during the report call. */
struct sjob_report {
	const char *path;
	enum sjob_kind kind;
	const char *message;   /* SKIPPED, UNSCANNABLE, ERROR: the reason */
	int err;               /* ERROR: the errno behind it, 0 for an engine error;
				* UNSCANNABLE: the errno of a path that could not
				* be examined, 0 for one that is no file */
	bool is_dir;           /* ERROR: a directory could not be read */
	/* SJOB_FILE only: */
	bool infected;
	char *const *names;    /* matching signatures, in match order */
	size_t nnames;
	uint64_t size;
	uint64_t bytes_scanned;  /* as counted by the engine */
	bool cached;           /* verdict from the cache; not opened */
	bool unverified;       /* smart scan: no smart protection source answered
				* for a hash the verdict depends on */
	bool changed;          /* modified while it was scanned (not cached) */
	dev_t dev;             /* the file read (or the cache's entry) */
	ino_t ino;
};

/* Called once per outcome, in traversal order, never concurrently. */
typedef void (*sjob_report_fn)(const struct sjob_report *r, void *arg);

/* Returns the compiled engine, loading it on first need; called at most
 * once per run, from a worker thread. On failure returns NULL with errbuf
 * set, and the run stops. The engine stays owned by the caller. */
typedef const struct engine *(*sjob_engine_fn)(void *arg, char *errbuf, size_t errlen);

/* Scans the open file fd (name for messages) in place of the engine: in
 * another process, say (the agent's scan workers). Fills *res and *out as
 * engine_scan_fd() and smart_scan_fd() do; *res is cleared by the caller
 * in every case. Returns 0, or -1 with errbuf saying why the file was not
 * scanned. Called from the worker threads, concurrently. */
typedef int (*sjob_scan_fn)(void *arg, int fd, const char *name, struct engine_result *res,
			    struct smart_outcome *out, char *errbuf, size_t errlen);

/* An exclude pattern: a compiled POSIX extended regular expression. */
struct sjob_pattern {
	regex_t re;
	bool dir_suffix;  /* the pattern ends in '/' */
};

/* How symbolic links are followed (clamscan's --follow-*-symlinks). */
enum sjob_follow {
	SJOB_FOLLOW_NEVER = 0,
	SJOB_FOLLOW_ARGS = 1,    /* only links named on the command line */
	SJOB_FOLLOW_ALWAYS = 2,
};

struct sjob_config {
	unsigned jobs;            /* worker threads, >= 1 */
	bool recursive;           /* descend into subdirectories */
	unsigned max_depth;       /* directories deeper than this are skipped;
				   * a directory named by the caller is depth 1 */
	enum sjob_follow follow_dirs;
	enum sjob_follow follow_files;
	/* Files whose canonical path (symlinks resolved) matches an exclude
	 * pattern, and directories whose path as walked matches an exclude_dir
	 * pattern, are not scanned. A pattern compiled from text ending in '/'
	 * is tested against the path with a '/' appended. */
	const struct sjob_pattern *exclude;
	size_t nexclude;
	const struct sjob_pattern *exclude_dir;
	size_t nexclude_dir;
	struct scache *cache;     /* NULL: no cache */
	sjob_engine_fn get_engine;
	void *engine_arg;
	struct smart *smart;         /* smart scan (the engine configured for
				      * it); NULL: conventional scan */
	sjob_scan_fn scan;           /* non-NULL: scans every opened file, and
				      * get_engine, smart and layer_hook are
				      * not used */
	void *scan_arg;
	engine_layer_fn layer_hook;  /* NULL: none; not with smart */
	void *layer_arg;
	sjob_report_fn report;
	void *report_arg;
	/* Once *cancel is true (set from any thread), nothing more is
	 * queued, files waiting are dropped, and sjob_run() returns
	 * SCAN_EENGINE saying the scan was cancelled. NULL: never. */
	const atomic_bool *cancel;
};

/* Totals of a run that the reports alone do not show. */
struct sjob_stats {
	uint64_t dirs;  /* directories read */
};

/* Scans paths in order (a path's trailing slashes are dropped). Returns
 * SCAN_OK when every path was walked (even if some files had errors: see the
 * reports), SCAN_EENGINE when the
 * engine could not be prepared (the run stopped early), SCAN_ENOMEM, or
 * SCAN_EIO when the worker threads could not be started; errbuf says why. */
enum scan_err sjob_run(const struct sjob_config *cfg, const char *const *paths,
		       size_t npaths, struct sjob_stats *stats, char *errbuf,
		       size_t errlen);

#endif
