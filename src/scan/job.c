/* job.c -- parallel, ordered tree scans (see job.h).
 *
 * The walker (the calling thread) fills a window of slots in traversal
 * order. Workers take the largest file waiting in the window first, so the
 * run ends on small files rather than one worker scanning a large file while
 * the others idle. Whichever worker completes the oldest outstanding slot
 * reports it and every completed slot after it: output keeps traversal
 * order, the window bounds memory however large the tree, and a slow file
 * delays output, not the other workers.
 */
#include "scan/job.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/util.h"

#define WINDOW 4096u
#define MSGLEN 640

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_DONE };

struct slot {
	char *path;
	enum slot_state state;
	uint64_t size;   /* expected work: the file's size at walk time */
	bool nofollow;   /* open without following a final symlink */
	bool dropped;    /* the run stopped before it was done: not reported */
	struct sjob_report rep;
	struct engine_result res;
	char msg[MSGLEN];
};

/* A directory on the walk's current path, to catch loops through followed
 * symlinks and bind mounts. */
struct ancestor {
	dev_t dev;
	ino_t ino;
};

struct job {
	const struct sjob_config *cfg;
	struct sjob_stats stats;

	pthread_mutex_t lock;  /* guards everything below but the walk state */
	pthread_cond_t work;   /* a slot to claim, or the walk ended */
	pthread_cond_t space;  /* a slot was freed, or the run stopped */
	struct slot *slots;
	uint64_t pushed, reported;
	uint64_t *ready;       /* max-heap of waiting files' sequence numbers */
	size_t nready;
	bool walk_done;
	bool stopped;          /* the engine failed: drop everything left */
	char stop_msg[ENGINE_ERRLEN];

	pthread_mutex_t engine_lock;
	bool engine_tried;
	const struct engine *engine;

	/* Walk state, touched by the walker only. */
	struct ancestor *anc;
	size_t nanc, capanc;
};

/* Filesystems whose inode numbers and ctimes the kernel itself maintains.
 * On others (FUSE, network and removable-media filesystems) metadata can
 * be whatever the other side says, so cache entries could be forged. */
static bool fs_trusted(long type)
{
	static const long trusted[] = {
		0xEF53,      /* ext2/3/4 */
		0x58465342,  /* xfs */
		0x9123683E,  /* btrfs */
		0x01021994,  /* tmpfs */
		0x858458f6,  /* ramfs */
		0x2FC12FC1,  /* zfs */
		0xF2F52010,  /* f2fs */
		0x794c7630,  /* overlayfs */
		0xca451a4e,  /* bcachefs */
		0x3153464a,  /* jfs */
	};
	size_t i;

	for (i = 0; i < sizeof(trusted) / sizeof(trusted[0]); i++)
		if (type == trusted[i])
			return true;
	return false;
}

static struct slot *slot_at(struct job *j, uint64_t seq)
{
	return &j->slots[seq % WINDOW];
}

/* Reports every completed slot from the oldest outstanding one on.
 * Called with j->lock held. */
static void flush_locked(struct job *j)
{
	struct slot *s;
	bool freed = false;

	while (j->reported < j->pushed && (s = slot_at(j, j->reported))->state == SLOT_DONE) {
		if (!s->dropped) {
			s->rep.path = s->path;
			j->cfg->report(&s->rep, j->cfg->report_arg);
		}
		engine_result_clear(&s->res);
		free(s->path);
		memset(s, 0, sizeof(*s));
		j->reported++;
		freed = true;
	}
	if (freed)
		pthread_cond_signal(&j->space);
}

/* Stops the run: the walker pushes nothing more and workers drop what is
 * left. Called with j->lock held. */
static void stop_locked(struct job *j)
{
	j->stopped = true;
	pthread_cond_broadcast(&j->space);
	pthread_cond_broadcast(&j->work);
}

/* Stops the run once the caller's cancel flag is set: the walker (in
 * push()) and the workers look at it before each file. */
static void cancel_locked(struct job *j)
{
	if (j->cfg->cancel && atomic_load(j->cfg->cancel) && !j->stopped) {
		snprintf(j->stop_msg, sizeof(j->stop_msg), "the scan was cancelled");
		stop_locked(j);
	}
}

static const struct engine *job_engine(struct job *j)
{
	const struct engine *e;

	pthread_mutex_lock(&j->engine_lock);
	if (!j->engine_tried) {
		j->engine_tried = true;
		j->engine = j->cfg->get_engine(j->cfg->engine_arg, j->stop_msg,
					       sizeof(j->stop_msg));
	}
	e = j->engine;
	pthread_mutex_unlock(&j->engine_lock);
	if (!e) {
		pthread_mutex_lock(&j->lock);
		stop_locked(j);
		pthread_mutex_unlock(&j->lock);
	}
	return e;
}

static void set_outcome(struct slot *s, enum sjob_kind kind, int err, const char *msg)
{
	s->rep.kind = kind;
	s->rep.err = err;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	s->rep.message = s->msg;
}

static const char *file_type_name(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO; not opened";
	if (S_ISSOCK(mode))
		return "a socket; not opened";
	if (S_ISCHR(mode))
		return "a character device; not opened";
	if (S_ISBLK(mode))
		return "a block device; not opened";
	if (S_ISDIR(mode))
		return "now a directory; not scanned";
	return "not a regular file; not opened";
}

static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Fills res from cached signature names (NUL-terminated, one after
 * another, len bytes in all). Returns false when out of memory. */
static bool names_from_cache(struct engine_result *res, const char *names, size_t len)
{
	const char *p;
	size_t n = 0, i = 0;

	if (len == 0)
		return true;  /* clean */
	for (p = names; p < names + len; p += strlen(p) + 1)
		n++;
	res->names = calloc(n, sizeof(*res->names));
	if (!res->names)
		return false;
	for (p = names; p < names + len; p += strlen(p) + 1) {
		res->names[i] = strdup(p);
		if (!res->names[i])
			return false;
		res->nnames = ++i;
	}
	res->infected = true;
	return true;
}

/* Scans one regular file: the worker's part of a slot. */
static void scan_slot(struct job *j, struct slot *s)
{
	const struct sjob_config *cfg = j->cfg;
	const struct engine *e;
	struct scache_key key;
	struct stat st, st2;
	struct statfs sfs;
	struct smart_outcome smart = { 0 };
	bool cacheable = false;
	char err[ENGINE_ERRLEN];
	int fd;

	s->rep.kind = SJOB_FILE;
	if (cfg->cache) {
		int flags = s->nofollow ? AT_SYMLINK_NOFOLLOW : 0;

		if (fstatat(AT_FDCWD, s->path, &st, flags) == 0 && S_ISREG(st.st_mode) &&
		    statfs(s->path, &sfs) == 0 && fs_trusted((long)sfs.f_type)) {
			const char *names;
			size_t len;

			cacheable = true;
			scache_key_from_stat(&key, &st);
			if (scache_lookup(cfg->cache, &key, &names, &len)) {
				s->rep.cached = true;
				s->rep.size = (uint64_t)st.st_size;
				s->rep.dev = st.st_dev;
				s->rep.ino = st.st_ino;
				if (!names_from_cache(&s->res, names, len)) {
					set_outcome(s, SJOB_ERROR, ENOMEM, strerror(ENOMEM));
					return;
				}
				s->rep.infected = s->res.infected;
				s->rep.names = s->res.names;
				s->rep.nnames = s->res.nnames;
				return;
			}
		}
	}
	/* O_NONBLOCK: what was a file at walk time may be a FIFO by now.
	 * O_NOATIME: the scan's reading leaves the access time as it was (a
	 * quarantined file keeps its own); only the file's owner or a holder
	 * of CAP_FOWNER may ask, anyone else reads as usual. */
	fd = open(s->path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | O_NOATIME |
			   (s->nofollow ? O_NOFOLLOW : 0));
	if (fd < 0 && errno == EPERM)
		fd = open(s->path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK |
				   (s->nofollow ? O_NOFOLLOW : 0));
	if (fd < 0) {
		int saved = errno;

		if (saved == ELOOP && s->nofollow)
			set_outcome(s, SJOB_SKIPPED, 0,
				    "replaced by a symbolic link during the scan");
		else
			set_outcome(s, SJOB_ERROR, saved, saved == ENOENT ?
				    "vanished during the scan" : strerror(saved));
		return;
	}
	if (fstat(fd, &st) != 0) {
		set_outcome(s, SJOB_ERROR, errno, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_outcome(s, SJOB_SKIPPED, 0, file_type_name(st.st_mode));
		goto out;
	}
	s->rep.size = (uint64_t)st.st_size;
	s->rep.dev = st.st_dev;
	s->rep.ino = st.st_ino;
	if (cacheable) {
		/* Cache what was scanned: the identity of the open file. */
		scache_key_from_stat(&key, &st);
	}
	if (cfg->scan) {
		if (cfg->scan(cfg->scan_arg, fd, s->path, &s->res, &smart, err, sizeof(err)) != 0) {
			set_outcome(s, SJOB_ERROR, 0, err);
			goto out;
		}
	} else {
		e = job_engine(j);
		if (!e) {
			s->dropped = true;
			goto out;
		}
		if ((cfg->smart ? smart_scan_fd(cfg->smart, e, fd, s->path, 0, &s->res, &smart, err,
						sizeof(err)) :
		     engine_scan_fd(e, fd, s->path, 0, cfg->layer_hook, cfg->layer_arg, &s->res,
				    err, sizeof(err))) != ENGINE_OK) {
			set_outcome(s, SJOB_ERROR, 0, err);
			goto out;
		}
	}
	/* A verdict resting on answers expires with them: not cached. */
	s->rep.unverified = smart.unverified;
	cacheable = cacheable && !smart.asked;
	s->rep.infected = s->res.infected;
	s->rep.names = s->res.names;
	s->rep.nnames = s->res.nnames;
	s->rep.bytes_scanned = s->res.bytes_scanned;
	if (fstat(fd, &st2) != 0 || !same_version(&st, &st2))
		s->rep.changed = true;
	else if (cacheable)  /* out of memory costs only the cache entry */
		(void)scache_add(cfg->cache, &key, s->res.names, s->res.nnames);
out:
	close(fd);
}

/* True when waiting file a should be scanned before b: larger first, then
 * in traversal order. */
static bool ready_before(struct job *j, uint64_t a, uint64_t b)
{
	uint64_t sa = slot_at(j, a)->size, sb = slot_at(j, b)->size;

	return sa != sb ? sa > sb : a < b;
}

/* Adds seq to the ready heap (which has room: it holds at most WINDOW).
 * Called with j->lock held. */
static void ready_push(struct job *j, uint64_t seq)
{
	size_t i = j->nready++;

	while (i > 0 && ready_before(j, seq, j->ready[(i - 1) / 2])) {
		j->ready[i] = j->ready[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	j->ready[i] = seq;
}

/* Removes and returns the file to scan next. Called with j->lock held and
 * the heap not empty. */
static uint64_t ready_pop(struct job *j)
{
	uint64_t top = j->ready[0], last = j->ready[--j->nready];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= j->nready)
			break;
		if (c + 1 < j->nready && ready_before(j, j->ready[c + 1], j->ready[c]))
			c++;
		if (!ready_before(j, j->ready[c], last))
			break;
		j->ready[i] = j->ready[c];
		i = c;
	}
	if (j->nready)
		j->ready[i] = last;
	return top;
}

static void *worker(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		struct slot *s;

		while (j->nready == 0 && !j->walk_done)
			pthread_cond_wait(&j->work, &j->lock);
		if (j->nready == 0)
			break;
		s = slot_at(j, ready_pop(j));
		cancel_locked(j);
		if (j->stopped) {
			s->dropped = true;
		} else {
			pthread_mutex_unlock(&j->lock);
			scan_slot(j, s);
			pthread_mutex_lock(&j->lock);
		}
		s->state = SLOT_DONE;
		flush_locked(j);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

#define PUSH_RESOLVED 0x1  /* the walker decided the outcome */
#define PUSH_NOFOLLOW 0x2  /* open without following a final symlink */
#define PUSH_DIR      0x4  /* an error reading a directory */

/* Queues one item of size bytes; path is copied. A resolved item carries
 * its outcome (kind, message, err) already and is complete at once; any
 * other waits for a worker. Returns -1 when out of memory or the run has
 * stopped. */
static int push(struct job *j, const char *path, uint64_t size, unsigned flags,
		enum sjob_kind kind, const char *msg, int err)
{
	char *copy = strdup(path);
	struct slot *s;

	if (!copy)
		return -1;
	pthread_mutex_lock(&j->lock);
	cancel_locked(j);
	while (j->pushed - j->reported >= WINDOW && !j->stopped)
		pthread_cond_wait(&j->space, &j->lock);
	if (j->stopped) {
		pthread_mutex_unlock(&j->lock);
		free(copy);
		return -1;
	}
	s = slot_at(j, j->pushed);
	s->path = copy;
	s->size = size;
	s->nofollow = flags & PUSH_NOFOLLOW;
	s->rep.kind = kind;
	s->rep.err = err;
	s->rep.is_dir = flags & PUSH_DIR;
	if (msg) {
		snprintf(s->msg, sizeof(s->msg), "%s", msg);
		s->rep.message = s->msg;
	}
	if (flags & PUSH_RESOLVED) {
		s->state = SLOT_DONE;
		j->pushed++;
		flush_locked(j);
	} else {
		s->state = SLOT_READY;
		ready_push(j, j->pushed++);
		pthread_cond_signal(&j->work);
	}
	pthread_mutex_unlock(&j->lock);
	return 0;
}

static int push_file(struct job *j, const char *path, uint64_t size, bool nofollow)
{
	return push(j, path, size, nofollow ? PUSH_NOFOLLOW : 0, SJOB_FILE, NULL, 0);
}

/* Queues an outcome the walker decided. For SJOB_ERROR, err is the errno. */
static int push_outcome(struct job *j, const char *path, enum sjob_kind kind, const char *msg,
			int err)
{
	return push(j, path, 0, PUSH_RESOLVED, kind, msg, err);
}

/* Queues a directory that could not be read. */
static int push_dir_error(struct job *j, const char *path, int err)
{
	return push(j, path, 0, PUSH_RESOLVED | PUSH_DIR, SJOB_ERROR, strerror(err), err);
}

static bool matches(const struct sjob_pattern *pat, size_t n, const char *path)
{
	char *slashed = NULL;
	bool hit = false;
	size_t i;

	for (i = 0; i < n && !hit; i++) {
		const char *subject = path;

		if (pat[i].dir_suffix) {
			if (!slashed && asprintf(&slashed, "%s/", path) < 0) {
				slashed = NULL;
				continue;
			}
			subject = slashed;
		}
		hit = regexec(&pat[i].re, subject, 0, NULL, 0) == 0;
	}
	free(slashed);
	return hit;
}

/* File excludes test the canonical path, so a pattern names a file however
 * it was reached (clamscan's rule). */
static bool file_excluded(const struct sjob_config *cfg, const char *path)
{
	char *real;
	bool hit;

	if (cfg->nexclude == 0)
		return false;
	real = realpath(path, NULL);
	hit = matches(cfg->exclude, cfg->nexclude, real ? real : path);
	free(real);
	return hit;
}

/* Byte order of names: the walk's order on every machine and locale. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names in the directory open as fd (taken over), sorted.
 * Returns the count, or -1 with errno set. */
static int read_names(int fd, char ***out)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	char **names = NULL, **p;
	size_t n = 0, cap = 0;
	int saved;

	if (!d) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			p = realloc(names, cap * sizeof(*p));
			if (!p)
				goto fail;
			names = p;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto fail;
		n++;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return (int)n;
fail:
	saved = errno ? errno : ENOMEM;
	while (n > 0)
		free(names[--n]);
	free(names);
	closedir(d);
	errno = saved;
	return -1;
}

static int walk_dir(struct job *j, const char *path, unsigned depth);

/* Queues a regular file (st from stat or lstat) after the exclude and
 * empty checks. */
static int walk_file(struct job *j, const char *path, const struct stat *st, bool nofollow)
{
	if (file_excluded(j->cfg, path))
		return push_outcome(j, path, SJOB_EXCLUDED, NULL, 0);
	if (st->st_size == 0)
		return push_outcome(j, path, SJOB_EMPTY, NULL, 0);
	return push_file(j, path, (uint64_t)st->st_size, nofollow);
}

/* Enters a directory after the exclude check. */
static int walk_subdir(struct job *j, const char *path, unsigned depth)
{
	const struct sjob_config *cfg = j->cfg;

	if (matches(cfg->exclude_dir, cfg->nexclude_dir, path))
		return push_outcome(j, path, SJOB_EXCLUDED, NULL, 0);
	return walk_dir(j, path, depth);
}

/* Reports a link that stat() could not resolve. */
static int push_bad_link(struct job *j, const char *path, int err)
{
	const char *why = err == ELOOP ? "symbolic link loop; not followed" :
			  err == ENOENT ? "dangling symbolic link" : strerror(err);

	return push_outcome(j, path, SJOB_SKIPPED, why, 0);
}

/* Walks one entry of a directory at depth: a file to queue, a directory to
 * enter, a link to follow or not, or something that is never opened. */
static int walk_entry(struct job *j, const char *path, const struct stat *lst, unsigned depth)
{
	const struct sjob_config *cfg = j->cfg;
	struct stat st;

	if (S_ISLNK(lst->st_mode)) {
		if (cfg->follow_dirs != SJOB_FOLLOW_ALWAYS &&
		    cfg->follow_files != SJOB_FOLLOW_ALWAYS)
			return push_outcome(j, path, SJOB_LINK, NULL, 0);
		if (stat(path, &st) != 0)
			return push_bad_link(j, path, errno);
		if (S_ISDIR(st.st_mode) && cfg->follow_dirs == SJOB_FOLLOW_ALWAYS)
			return cfg->recursive ? walk_subdir(j, path, depth + 1) : 0;
		if (S_ISREG(st.st_mode) && cfg->follow_files == SJOB_FOLLOW_ALWAYS)
			return walk_file(j, path, &st, false);
		return push_outcome(j, path, SJOB_LINK, NULL, 0);
	}
	if (S_ISDIR(lst->st_mode))
		return cfg->recursive ? walk_subdir(j, path, depth + 1) : 0;
	if (S_ISREG(lst->st_mode))
		return walk_file(j, path, lst, true);
	return push_outcome(j, path, SJOB_SKIPPED, file_type_name(lst->st_mode), 0);
}

static int walk_dir(struct job *j, const char *path, unsigned depth)
{
	struct stat st;
	char **names = NULL;
	size_t i;
	int fd, n, rc = 0;

	if (depth > j->cfg->max_depth)
		return push_outcome(j, path, SJOB_SKIPPED,
				    "deeper than the directory depth limit; not scanned", 0);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		return push_dir_error(j, path, saved);
	}
	for (i = 0; i < j->nanc; i++) {
		if (j->anc[i].dev == st.st_dev && j->anc[i].ino == st.st_ino) {
			close(fd);
			return push_outcome(j, path, SJOB_SKIPPED,
					    "directory loop (already being scanned); not entered",
					    0);
		}
	}
	if (j->nanc == j->capanc) {
		size_t cap = j->capanc ? j->capanc * 2 : 32;
		struct ancestor *a = realloc(j->anc, cap * sizeof(*a));

		if (!a) {
			close(fd);
			return -1;
		}
		j->anc = a;
		j->capanc = cap;
	}
	j->anc[j->nanc].dev = st.st_dev;
	j->anc[j->nanc++].ino = st.st_ino;
	j->stats.dirs++;

	n = read_names(fd, &names);
	if (n < 0) {
		rc = push_dir_error(j, path, errno);
		goto out;
	}
	for (i = 0; i < (size_t)n; i++) {
		char *sub = rc == 0 ? util_path_join(path, names[i]) : NULL;
		struct stat lst;

		if (sub) {
			if (lstat(sub, &lst) != 0)
				rc = push_outcome(j, sub, SJOB_SKIPPED, errno == ENOENT ?
						  "vanished during the scan" : strerror(errno), 0);
			else
				rc = walk_entry(j, sub, &lst, depth);
		} else if (rc == 0) {
			rc = -1;
		}
		free(sub);
		free(names[i]);
	}
	free(names);
out:
	j->nanc--;
	return rc;
}

/* Walks one path named by the caller (trailing slashes already dropped;
 * lst is the lstat of the path as given). */
static int walk_arg(struct job *j, const char *path, const struct stat *lst)
{
	const struct sjob_config *cfg = j->cfg;
	struct stat st;

	if (S_ISLNK(lst->st_mode)) {
		if (cfg->follow_dirs == SJOB_FOLLOW_NEVER && cfg->follow_files == SJOB_FOLLOW_NEVER)
			return push_outcome(j, path, SJOB_LINK, NULL, 0);
		if (stat(path, &st) != 0)
			return push_bad_link(j, path, errno);
		if (S_ISDIR(st.st_mode) && cfg->follow_dirs != SJOB_FOLLOW_NEVER)
			return walk_subdir(j, path, 1);
		if (S_ISREG(st.st_mode) && cfg->follow_files != SJOB_FOLLOW_NEVER)
			return walk_file(j, path, &st, false);
		return push_outcome(j, path, SJOB_LINK, NULL, 0);
	}
	if (S_ISDIR(lst->st_mode))
		return walk_subdir(j, path, 1);
	if (S_ISREG(lst->st_mode))
		return walk_file(j, path, lst, true);
	return push_outcome(j, path, SJOB_UNSCANNABLE, file_type_name(lst->st_mode), 0);
}

/* Walks the caller's path as given: its lstat decides (so "link/" is the
 * directory behind a link), and its trailing slashes are dropped. */
static int walk_top(struct job *j, const char *given)
{
	struct stat lst;
	size_t len = strlen(given);
	char *path;
	int rc;

	if (lstat(given, &lst) != 0)
		return push_outcome(j, given, SJOB_UNSCANNABLE, strerror(errno), errno);
	while (len > 1 && given[len - 1] == '/')
		len--;
	path = strndup(given, len);
	if (!path)
		return -1;
	rc = walk_arg(j, path, &lst);
	free(path);
	return rc;
}
enum scan_err sjob_run(const struct sjob_config *cfg, const char *const *paths,
		       size_t npaths, struct sjob_stats *stats, char *errbuf, size_t errlen)
{
	struct job j;
	pthread_t *threads;
	unsigned i, started = 0;
	enum scan_err rc = SCAN_OK;
	size_t k;

	memset(&j, 0, sizeof(j));
	j.cfg = cfg;
	j.slots = calloc(WINDOW, sizeof(*j.slots));
	j.ready = calloc(WINDOW, sizeof(*j.ready));
	threads = calloc(cfg->jobs, sizeof(*threads));
	if (!j.slots || !j.ready || !threads) {
		free(j.slots);
		free(j.ready);
		free(threads);
		snprintf(errbuf, errlen, "out of memory starting the scan");
		return SCAN_ENOMEM;
	}
	pthread_mutex_init(&j.lock, NULL);
	pthread_mutex_init(&j.engine_lock, NULL);
	pthread_cond_init(&j.work, NULL);
	pthread_cond_init(&j.space, NULL);
	for (i = 0; i < cfg->jobs; i++) {
		if (pthread_create(&threads[i], NULL, worker, &j) != 0)
			break;
		started++;
	}
	if (started == 0) {
		snprintf(errbuf, errlen, "cannot start scanning threads: %s", strerror(errno));
		rc = SCAN_EIO;
	}
	for (k = 0; k < npaths && rc == SCAN_OK; k++) {
		if (walk_top(&j, paths[k]) != 0) {
			pthread_mutex_lock(&j.lock);
			if (!j.stopped) {
				snprintf(errbuf, errlen, "out of memory walking %s", paths[k]);
				rc = SCAN_ENOMEM;
				stop_locked(&j);
			}
			pthread_mutex_unlock(&j.lock);
		}
	}
	pthread_mutex_lock(&j.lock);
	j.walk_done = true;
	pthread_cond_broadcast(&j.work);
	pthread_mutex_unlock(&j.lock);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (j.stopped && rc == SCAN_OK) {
		snprintf(errbuf, errlen, "%s", j.stop_msg);
		rc = SCAN_EENGINE;
	}
	*stats = j.stats;
	pthread_cond_destroy(&j.work);
	pthread_cond_destroy(&j.space);
	pthread_mutex_destroy(&j.engine_lock);
	pthread_mutex_destroy(&j.lock);
	free(j.anc);
	free(j.ready);
	free(j.slots);
	free(threads);
	return rc;
}
