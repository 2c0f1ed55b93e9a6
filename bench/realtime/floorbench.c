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
 * clean since is not scanned again. The scan is Ward's engine (the same
 * code and options as its scan workers), on THREADS threads (default 2).
 *
 * Left out, on purpose, because they are Ward's and not libclamav's: the
 * unprivileged worker processes and the descriptor passing to them, the
 * agent's verdict cache, paths and exclusions, deadlines, logging and
 * counters, actions. It is not a product: it runs as root with libclamav
 * in the process that holds fanotify. It refuses a MOUNTPOINT that is not
 * the root of a filesystem, so that it never marks the machine's own.
 * It prints "ready" once marked and runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"

#define MAX_THREADS 16
#define PERM (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)
/* Files found clean, by inode: a write's scan is skipped when an open's
 * came first. Collisions cost a scan, never a skipped one. */
#define SEEN_SLOTS (1u << 18)

struct job {
	int fd;
	bool perm;
	struct job *next;
};

struct seen {
	uint64_t ino;
	int64_t ctime_ns;
};

static struct engine *engine;
static int fan = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
/* Under lock: opens first, then writes; the clean files. */
static struct job *opens, *opens_tail, *writes, *writes_tail;
static struct seen *seen;

static int64_t ctime_ns(const struct stat *st)
{
	return st->st_ctim.tv_sec * 1000000000ll + st->st_ctim.tv_nsec;
}

static void answer(int fd, bool allow)
{
	struct fanotify_response r = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };

	if (write(fan, &r, sizeof(r)) != sizeof(r))
		perror("ward-floorbench: answering");
}

static bool seen_clean(const struct stat *st)
{
	const struct seen *s = &seen[st->st_ino % SEEN_SLOTS];

	return s->ino == st->st_ino && s->ctime_ns == ctime_ns(st);
}

static void scan_one(struct job *j)
{
	struct engine_result res;
	char err[ENGINE_ERRLEN];
	struct stat st;
	bool clean = true, skip = true;

	if (fstat(j->fd, &st) == 0) {
		pthread_mutex_lock(&lock);
		skip = !j->perm && seen_clean(&st);
		pthread_mutex_unlock(&lock);
	}
	if (!skip) {
		/* As Ward's worker: an error is not a detection. */
		clean = engine_scan_fd(engine, j->fd, "file", NULL, NULL, &res, err,
				       sizeof(err)) != ENGINE_OK || !res.infected;
		engine_result_clear(&res);
	}
	if (!skip && clean) {
		pthread_mutex_lock(&lock);
		seen[st.st_ino % SEEN_SLOTS] = (struct seen){ st.st_ino, ctime_ns(&st) };
		pthread_mutex_unlock(&lock);
		fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, PERM,
			      j->fd, NULL);
	}
	if (j->perm)
		answer(j->fd, clean);
	close(j->fd);
	free(j);
}

static void *scan_thread(void *arg)
{
	struct job *j;

	(void)arg;
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
		pthread_mutex_unlock(&lock);
		scan_one(j);
	}
	return NULL;
}

static void queue(int fd, bool perm)
{
	struct job *j = malloc(sizeof(*j));
	struct job **head = perm ? &opens : &writes, **tail = perm ? &opens_tail : &writes_tail;

	if (!j) {
		if (perm)
			answer(fd, true);
		close(fd);
		return;
	}
	*j = (struct job){ .fd = fd, .perm = perm };
	pthread_mutex_lock(&lock);
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

	if (m->fd < 0)
		return;
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
	queue(m->fd, perm);
}

static bool fs_root(const char *path)
{
	char parent[4096];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && S_ISDIR(a.st_mode) &&
	       (a.st_dev != b.st_dev || a.st_ino == b.st_ino);
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
	unsigned i;
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
	if (!fs_root(argv[2])) {
		fprintf(stderr, "ward-floorbench: %s is not the root of a filesystem\n", argv[2]);
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
	for (i = 0; i < threads; i++) {
		if (pthread_create(&t, NULL, scan_thread, NULL) != 0) {
			fprintf(stderr, "ward-floorbench: cannot start a scan thread\n");
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	/* Ends at a signal: the kernel allows what is left unanswered when
	 * the fanotify descriptor closes with the process. */
	while (!pfd[1].revents) {
		if (poll(pfd, 2, -1) < 0 || !pfd[0].revents)
			continue;
		n = read(fan, buf, sizeof(buf));
		for (m = (const void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n))
			handle(m);
	}
	return 0;
}
