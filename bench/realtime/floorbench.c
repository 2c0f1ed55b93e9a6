/* floorbench.c -- the floor of the real-time scanning benchmark
 * (bench/realtime/run.py, mode "floor"): the least an on-access scanner
 * built on libclamav can cost on this machine, measured so that Ward's
 * own overhead can be told apart from libclamav's.
 *
 *   ward-floorbench DATABASE MOUNTPOINT [THREADS]
 *
 * It does what any scanner that blocks infected files must do, and
 * nothing else: fanotify marks on the filesystem mounted at MOUNTPOINT
 * (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM, FAN_CLOSE_WRITE); every file written
 * is scanned once; an open waits for its file's verdict; a clean file gets
 * an evictable ignore mark, so that opening it again costs nothing; opens
 * are scanned before writes, and a write whose file an open has found
 * clean since is not scanned again; an open of a file being scanned
 * waits for that scan. The scan is Ward's engine (the same code and
 * options as its scan workers), on THREADS threads (default 2).
 *
 * Left out, on purpose, because they are Ward's and not libclamav's: the
 * unprivileged worker processes and the descriptor passing to them, the
 * agent's verdict cache, paths and exclusions, deadlines, logging and
 * counters, actions. It is not a product: it runs as root with libclamav
 * in the process that holds fanotify. It marks only a filesystem a test
 * or benchmark mounted for it: MOUNTPOINT must be the root of a tmpfs or
 * of a filesystem on a loop device, and not that of /, /tmp, /var/tmp,
 * /run or /dev/shm.
 *
 * It prints "ready" once marked and runs until SIGTERM or SIGINT; then it
 * prints its counters as one line of JSON. "lost" counts the events it
 * could not take (a descriptor the kernel could not make, an overflow):
 * a run with any is no floor, since files went unscanned.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/engine.h"

#define MAX_THREADS 16
#define PERM (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)
/* Files found clean, by inode: a write's scan is skipped when an open's
 * came first. Collisions cost a scan, never a skipped one. */
#define SEEN_SLOTS (1u << 18)
#define LOOP_MAJOR 7
/* Every file waiting holds a descriptor. */
#define NOFILE (1u << 18)

/* What a verdict holds for: the file as it was when the event came. */
struct id {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns, ctime_ns;
};

struct job {
	int fd;
	bool perm;
	struct id id;
	struct job *next;
};

/* The file a scan thread scans, and the opens of it that wait for it. */
struct slot {
	bool busy;
	struct id id;
	struct job *waiting;
};

static struct engine *engine;
static int fan = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
/* Under lock: opens first, then writes; the scans in progress; the
 * clean files. */
static struct job *opens, *opens_tail, *writes, *writes_tail;
static struct slot slots[MAX_THREADS];
static unsigned nslots;
static struct id *seen;
static atomic_ulong n_events, n_scans, n_skipped, n_joined, n_errors, n_detections, n_lost;

static int64_t ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000ll + t->tv_nsec;
}

static struct id id_of(const struct stat *st)
{
	return (struct id){ st->st_dev, st->st_ino, st->st_size, ns(&st->st_mtim),
			    ns(&st->st_ctim) };
}

static bool same(const struct id *a, const struct id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void answer(int fd, bool allow)
{
	struct fanotify_response r = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };

	if (write(fan, &r, sizeof(r)) != sizeof(r))
		perror("ward-floorbench: answering");
}

/* Scans j on slot s; answers j and the opens that joined it. */
static void scan_one(struct slot *s, struct job *j)
{
	enum engine_err rc;
	struct engine_result res;
	char err[ENGINE_ERRLEN];
	struct job *w, *next;
	struct stat st;
	bool infected, clean;

	atomic_fetch_add(&n_scans, 1);
	rc = engine_scan_fd(engine, j->fd, "file", 0, NULL, NULL, &res, err, sizeof(err));
	infected = rc == ENGINE_OK && res.infected;
	engine_result_clear(&res);
	/* As Ward's worker: an error is not a detection, nor a clean verdict. */
	if (rc != ENGINE_OK)
		atomic_fetch_add(&n_errors, 1);
	else if (infected)
		atomic_fetch_add(&n_detections, 1);
	if (j->perm)
		answer(j->fd, !infected);
	/* Remembered only if nothing was written meanwhile. */
	clean = rc == ENGINE_OK && !infected && fstat(j->fd, &st) == 0;
	if (clean) {
		struct id now = id_of(&st);

		clean = same(&now, &j->id);
	}
	pthread_mutex_lock(&lock);
	w = s->waiting;
	s->waiting = NULL;
	s->busy = false;
	if (clean)
		seen[j->id.ino % SEEN_SLOTS] = j->id;
	pthread_mutex_unlock(&lock);
	for (; w; w = next) {
		next = w->next;
		answer(w->fd, !infected);
		close(w->fd);
		free(w);
	}
	if (clean)
		fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, PERM,
			      j->fd, NULL);
}

static void *scan_thread(void *arg)
{
	struct slot *s = arg;
	struct job *j;
	bool skip;

	for (;;) {
		pthread_mutex_lock(&lock);
		while (!opens && !writes)
			pthread_cond_wait(&cond, &lock);
		if (opens) {
			j = opens;
			if (!(opens = j->next))
				opens_tail = NULL;
		} else {
			j = writes;
			if (!(writes = j->next))
				writes_tail = NULL;
		}
		skip = !j->perm && same(&seen[j->id.ino % SEEN_SLOTS], &j->id);
		if (!skip) {
			s->busy = true;
			s->id = j->id;
		}
		pthread_mutex_unlock(&lock);
		if (skip)
			atomic_fetch_add(&n_skipped, 1);
		else
			scan_one(s, j);
		close(j->fd);
		free(j);
	}
	return NULL;
}

/* Queues the event's file, or joins an open to the scan of it in progress. */
static void queue(int fd, bool perm, const struct id *id)
{
	struct job *j = malloc(sizeof(*j));
	struct job **head = perm ? &opens : &writes, **tail = perm ? &opens_tail : &writes_tail;
	unsigned i;

	if (!j) {
		atomic_fetch_add(&n_lost, 1);
		if (perm)
			answer(fd, true);
		close(fd);
		return;
	}
	*j = (struct job){ .fd = fd, .perm = perm, .id = *id };
	pthread_mutex_lock(&lock);
	for (i = 0; perm && i < nslots; i++) {
		if (slots[i].busy && same(&slots[i].id, id)) {
			j->next = slots[i].waiting;
			slots[i].waiting = j;
			pthread_mutex_unlock(&lock);
			atomic_fetch_add(&n_joined, 1);
			return;
		}
	}
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static void handle(const struct fanotify_event_metadata *m)
{
	bool perm = (m->mask & PERM) != 0;
	struct stat st;
	struct id id;

	atomic_fetch_add(&n_events, 1);
	if (m->fd < 0 || (m->mask & FAN_Q_OVERFLOW)) {
		atomic_fetch_add(&n_lost, 1);
		return;
	}
	if (m->pid == getpid() || fstat(m->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size == 0) {
		if (perm)
			answer(m->fd, true);
		close(m->fd);
		return;
	}
	/* Written: the kernel's mark on it may be stale (writes through mmap). */
	if (m->mask & FAN_CLOSE_WRITE)
		fanotify_mark(fan, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, PERM, m->fd, NULL);
	id = id_of(&st);
	queue(m->fd, perm, &id);
}

/* NULL when path is the root of a filesystem made for the floor: a tmpfs
 * or on a loop device, none of the machine's usual ones; else why not. */
static const char *refusal(const char *path)
{
	static const char *const own[] = { "/", "/tmp", "/var/tmp", "/run", "/dev/shm" };
	struct statx sx;
	struct statfs fs;
	struct stat st;
	size_t i;

	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx) != 0 || !S_ISDIR(sx.stx_mode))
		return "is not a folder";
	if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
	    !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return "is not the root of a filesystem";
	if (statfs(path, &fs) != 0 ||
	    (fs.f_type != TMPFS_MAGIC && sx.stx_dev_major != LOOP_MAJOR))
		return "is neither a tmpfs nor on a loop device";
	for (i = 0; i < sizeof(own) / sizeof(*own); i++)
		if (stat(own[i], &st) == 0 && st.st_dev == makedev(sx.stx_dev_major,
								    sx.stx_dev_minor))
			return "is a filesystem of the machine's own";
	return NULL;
}

/* Room for a descriptor per file waiting: the backlog of a tar is thousands. */
static void raise_nofile(void)
{
	struct rlimit rl = { NOFILE, NOFILE };

	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static char buf[64 * 1024] __attribute__((aligned(8)));
	struct engine_config cfg = { .official = true };
	const struct fanotify_event_metadata *m;
	char err[ENGINE_ERRLEN];
	struct pollfd pfd[2];
	enum engine_err rc;
	unsigned long threads = 2;
	const char *why;
	char *end;
	pthread_t t;
	sigset_t sigs;
	ssize_t n;

	if (argc == 4) {
		errno = 0;
		threads = strtoul(argv[3], &end, 10);
		if (errno || end == argv[3] || *end)
			threads = 0;
	}
	if (argc < 3 || argc > 4 || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "usage: ward-floorbench DATABASE MOUNTPOINT [THREADS 1-%d]\n",
			MAX_THREADS);
		return 2;
	}
	if ((why = refusal(argv[2]))) {
		fprintf(stderr, "ward-floorbench: %s %s: it marks only a filesystem mounted "
			"for it\n", argv[2], why);
		return 2;
	}
	engine_limits_default(&cfg.limits);
	engine_tune_allocator();
	if (!(engine = engine_new(&cfg, &rc, err, sizeof(err))) ||
	    engine_load(engine, argv[1], err, sizeof(err)) != ENGINE_OK ||
	    engine_compile(engine, err, sizeof(err)) != ENGINE_OK) {
		fprintf(stderr, "ward-floorbench: %s\n", err);
		return 1;
	}
	if (!(seen = calloc(SEEN_SLOTS, sizeof(*seen)))) {
		fprintf(stderr, "ward-floorbench: out of memory\n");
		return 1;
	}
	raise_nofile();
	fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE |
			    FAN_UNLIMITED_MARKS, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
				     PERM | FAN_CLOSE_WRITE, AT_FDCWD, argv[2]) != 0) {
		fprintf(stderr, "ward-floorbench: fanotify on %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	pfd[0] = (struct pollfd){ .fd = fan, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = signalfd(-1, &sigs, SFD_CLOEXEC), .events = POLLIN };
	if (pfd[1].fd < 0) {
		fprintf(stderr, "ward-floorbench: signalfd: %s\n", strerror(errno));
		return 1;
	}
	for (nslots = 0; nslots < threads; nslots++) {
		if (pthread_create(&t, NULL, scan_thread, &slots[nslots]) != 0) {
			fprintf(stderr, "ward-floorbench: cannot start a scan thread\n");
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (!pfd[1].revents) {
		if (poll(pfd, 2, -1) < 0 || !pfd[0].revents)
			continue;
		n = read(fan, buf, sizeof(buf));
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			atomic_fetch_add(&n_lost, 1);  /* an event whose file could not be opened */
		for (m = (const void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n))
			handle(m);
	}
	printf("{\"events\": %lu, \"scans\": %lu, \"skipped\": %lu, \"joined\": %lu, "
	       "\"errors\": %lu, \"detections\": %lu, \"lost\": %lu}\n", atomic_load(&n_events),
	       atomic_load(&n_scans), atomic_load(&n_skipped), atomic_load(&n_joined),
	       atomic_load(&n_errors), atomic_load(&n_detections), atomic_load(&n_lost));
	fflush(stdout);
	/* Scan threads may be in libclamav: no exit handlers under them. The
	 * kernel allows what is left unanswered when fanotify's descriptor
	 * closes with the process. */
	_exit(0);
}
