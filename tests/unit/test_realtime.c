/* test_realtime.c -- the real-time scanner (src/agent/realtime.h) with real
 * fanotify and the real engine, on a tmpfs the test mounts in a private
 * mount namespace of its own (never the machine's filesystems). Needs
 * root: exits 77 without it, or where fanotify cannot be used. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/realtime.h"
#include "agent/rtcache.h"
#include "agent/rtdirs.h"
#include "agent/rtwatch.h"
#include "check.h"
#include "common/util.h"
#include "engine/engine.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/* A marker the second engine's signature matches (in any file). */
static const char marker[] = "WARD-REALTIME-TEST-MARKER-7f3a9c";

/* ---- the in-test backend: a small thread pool over the real engine ---- */

enum backend_mode {
	BACKEND_SCAN,    /* scan and answer */
	BACKEND_HOLD,    /* keep the jobs until released (a backend that never answers) */
	BACKEND_STALL,   /* block in submit() until released (a stalled reader) */
};

struct item {
	struct realtime_job *job;
	int fd;
	char path[512];
	struct item *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond, released_cond;
	struct item *head, *tail, *held;
	const struct engine *engine;
	enum backend_mode mode;
	bool released, stop;
	unsigned submitted;
} be = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	 NULL, NULL, NULL, NULL, BACKEND_SCAN, false, false, 0 };

/* What the detection hook saw. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned count, rescans;
	char path[512];
	char name[128];
	bool denied;
	enum realtime_event event;
} det = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "", "", false, 0 };

static void scan_one(struct item *it)
{
	struct engine_result res = { 0 };
	char err[ENGINE_ERRLEN];
	const struct engine *e;

	pthread_mutex_lock(&be.lock);
	e = be.engine;
	pthread_mutex_unlock(&be.lock);
	if (engine_scan_fd(e, it->fd, it->path, 0, NULL, NULL, &res, err, sizeof(err)) != ENGINE_OK)
		realtime_done(it->job, REALTIME_ERROR, NULL, 0, err);
	else if (res.infected)
		realtime_done(it->job, REALTIME_INFECTED, (const char *const *)res.names,
			      res.nnames, NULL);
	else
		realtime_done(it->job, REALTIME_CLEAN, NULL, 0, NULL);
	engine_result_clear(&res);
	free(it);
}

static void *worker_main(void *arg)
{
	struct item *it;

	(void)arg;
	pthread_mutex_lock(&be.lock);
	for (;;) {
		while (!be.head && !be.stop)
			pthread_cond_wait(&be.cond, &be.lock);
		if (!be.head)
			break;
		it = be.head;
		be.head = it->next;
		if (!be.head)
			be.tail = NULL;
		pthread_mutex_unlock(&be.lock);
		scan_one(it);
		pthread_mutex_lock(&be.lock);
	}
	pthread_mutex_unlock(&be.lock);
	return NULL;
}

/* Appends it to the scan queue (be.lock held). */
static void be_queue(struct item *it)
{
	if (be.tail)
		be.tail->next = it;
	else
		be.head = it;
	be.tail = it;
}

static bool be_submit(void *arg, struct realtime_job *job, const struct realtime_request *req)
{
	struct item *it = calloc(1, sizeof(*it));

	(void)arg;
	if (!it)
		return false;
	it->job = job;
	it->fd = req->fd;
	snprintf(it->path, sizeof(it->path), "%s", req->path);
	pthread_mutex_lock(&be.lock);
	be.submitted++;
	if (be.mode == BACKEND_STALL)
		while (!be.released)
			pthread_cond_wait(&be.released_cond, &be.lock);
	if (be.mode == BACKEND_HOLD) {
		it->next = be.held;
		be.held = it;
	} else {
		be_queue(it);
		pthread_cond_signal(&be.cond);
	}
	pthread_mutex_unlock(&be.lock);
	return true;
}

static void be_set_mode(enum backend_mode mode)
{
	pthread_mutex_lock(&be.lock);
	be.mode = mode;
	be.released = false;
	pthread_mutex_unlock(&be.lock);
}

/* Back to scanning: the held jobs are scanned, a stalled submit returns. */
static void be_release(void)
{
	struct item *it;

	pthread_mutex_lock(&be.lock);
	be.mode = BACKEND_SCAN;
	be.released = true;
	pthread_cond_broadcast(&be.released_cond);
	while ((it = be.held) != NULL) {
		be.held = it->next;
		it->next = NULL;
		be_queue(it);
	}
	pthread_cond_broadcast(&be.cond);
	pthread_mutex_unlock(&be.lock);
}

static void on_detection(void *arg, const struct realtime_file *f)
{
	(void)arg;
	pthread_mutex_lock(&det.lock);
	det.count++;
	snprintf(det.path, sizeof(det.path), "%s", f->path);
	snprintf(det.name, sizeof(det.name), "%s", f->nnames ? f->names[0] : "");
	det.denied = f->denied;
	det.event = f->event;
	pthread_cond_broadcast(&det.cond);
	pthread_mutex_unlock(&det.lock);
}

static void on_rescan(void *arg, const struct realtime_file *f)
{
	(void)arg;
	(void)f;
	pthread_mutex_lock(&det.lock);
	det.rescans++;
	pthread_mutex_unlock(&det.lock);
}

static unsigned detections(void)
{
	unsigned n;

	pthread_mutex_lock(&det.lock);
	n = det.count;
	pthread_mutex_unlock(&det.lock);
	return n;
}

/* The last detection, as wait_detection() copied it. */
static struct {
	char name[128];
	bool denied;
	enum realtime_event event;
} last;

/* Waits (10 s at most) for the detection count to pass n; returns whether
 * it did, and whether the last one was of a path ending in suffix, which
 * it copies into last. */
static bool wait_detection(unsigned n, const char *suffix)
{
	struct timespec ts;
	bool ok;
	size_t pl, sl = strlen(suffix);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&det.lock);
	while (det.count <= n)
		if (pthread_cond_timedwait(&det.cond, &det.lock, &ts) == ETIMEDOUT)
			break;
	pl = strlen(det.path);
	ok = det.count > n && pl >= sl && strcmp(det.path + pl - sl, suffix) == 0;
	memcpy(last.name, det.name, sizeof(last.name));
	last.denied = det.denied;
	last.event = det.event;
	if (!ok)
		fprintf(stderr, "    no detection of *%s (count %u, last '%s')\n", suffix,
			det.count, det.path);
	pthread_mutex_unlock(&det.lock);
	return ok;
}

static int try_open(const char *path);

/* Waits (10 s at most) until the scanner has handed on and answered every
 * job: the scans counted equal clean + detections + errors + unverified
 * and nothing is pending. */
static void settle(struct realtime *rt)
{
	struct realtime_stats s;
	int i;

	for (i = 0; i < 1000; i++) {
		realtime_stats(rt, &s);
		if (s.pending == 0 &&
		    s.scans == s.clean + s.detections + s.errors + s.unverified)
			return;
		usleep(10000);
	}
	fprintf(stderr, "    the scanner did not settle\n");
}

/* The excluded directory, where barrier() makes its files. */
static char barrier_dir[600];

/* Returns once the reader has read every event made before the call and
 * the backend has answered every job: a file made without an open
 * (mknod) in the excluded directory is opened, an event the reader
 * answers itself, after those before it in the kernel's queue. */
static void barrier(struct realtime *rt)
{
	static unsigned seq;
	char path[700];

	snprintf(path, sizeof(path), "%s/barrier-%u", barrier_dir, seq++);
	if (mknod(path, S_IFREG | 0644, 0) != 0 || try_open(path) != 0) {
		perror(path);
		exit(1);
	}
	unlink(path);
	settle(rt);
}

static struct realtime_stats stats(struct realtime *rt)
{
	struct realtime_stats s;

	realtime_stats(rt, &s);
	return s;
}

/* Opens path for reading; returns 0 or the errno. */
static int try_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n || close(fd) != 0) {
		perror(path);
		exit(1);
	}
}

static void copy_file(const char *from, const char *to, const char *append)
{
	size_t n;
	char *data = util_read_file(from, 64 << 20, &n);
	char *all;

	if (!data) {
		perror(from);
		exit(1);
	}
	all = malloc(n + strlen(append));
	memcpy(all, data, n);
	memcpy(all + n, append, strlen(append));
	write_file(to, all, n + strlen(append), 0755);
	free(all);
	free(data);
}

/* Runs argv in a child (in a new mount namespace first when newns);
 * returns its exit status, or 200 + errno when execv failed. */
static int run(char *const argv[], bool newns)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 1);
		if (newns && (unshare(CLONE_NEWNS) != 0 ||
			      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0))
			_exit(199);
		execv(argv[0], argv);
		_exit(200 + errno);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* In a child that drops its privileges (as nobody, or in a user namespace
 * of its own: a container), realtime_start() says fanotify is unavailable
 * and why; returns whether the reason held want. */
static bool unavailable(const char *mnt, bool userns, const char *want)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct realtime_callbacks cb = { be_submit, NULL, NULL, NULL };
		struct realtime_config cfg = { 0 };
		const char *paths[] = { mnt };
		enum aerr err;
		struct realtime *rt;
		char msg[512] = "";

		/* No user namespace can be made in a chroot (check-fresh's):
		 * that half of the check cannot run there. */
		if (userns && unshare(CLONE_NEWUSER) != 0)
			_exit(errno == EPERM ? 77 : 2);
		if (!userns && setresuid(65534, 65534, 65534) != 0)
			_exit(2);
		cfg.paths = paths;
		cfg.npaths = 1;
		cfg.timeout_ms = 1000;
		rt = realtime_new(&cfg, &cb, &err, msg, sizeof(msg));
		if (!rt)
			_exit(3);
		err = realtime_start(rt, msg, sizeof(msg));
		fprintf(stderr, "    unavailable: %s\n", msg);
		realtime_free(rt);
		_exit(err == AERR_UNAVAILABLE && strstr(msg, want) ? 0 : 1);
	}
	if (pid <= 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return false;
	if (WEXITSTATUS(status) == 77)
		fprintf(stderr, "    skipped: no user namespace can be made here (a chroot?)\n");
	return WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77;
}

/* Whether process pid is stopped (state T in /proc/PID/stat). Uses only
 * async-signal-safe calls (a child of a threaded process calls it). */
static bool stopped(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'T';
}

/* A child stops this process (SIGSTOP), opens path, which waits until the
 * watchdog process answers, and lets this process go on (SIGCONT).
 * Returns 0, or the errno of the child's open (-1: no child). */
/* Whether this process's one child (the watchdog) holds no capability and
 * set no_new_privs: its /proc status, read as the test's own. */
static bool watchdog_unprivileged(void)
{
	char path[300], line[256];
	int children = 0, ok = 0;
	struct dirent *e;
	DIR *d = opendir("/proc");
	FILE *f;

	while (d && (e = readdir(d)) != NULL) {
		unsigned long long eff = ~0ull, prm = ~0ull;
		long ppid = 0, nnp = 0;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "PPid: %ld", &ppid) != 1 &&
			    sscanf(line, "CapEff: %llx", &eff) != 1 &&
			    sscanf(line, "CapPrm: %llx", &prm) != 1)
				sscanf(line, "NoNewPrivs: %ld", &nnp);
		fclose(f);
		if (ppid != (long)getpid())
			continue;
		children++;
		ok += eff == 0 && prm == 0 && nnp == 1;
		fprintf(stderr, "watchdog %s: CapEff %llx, CapPrm %llx, NoNewPrivs %ld\n",
			e->d_name, eff, prm, nnp);
	}
	if (d)
		closedir(d);
	return children == 1 && ok == 1;
}

static int open_while_stopped(const char *path)
{
	pid_t parent = getpid(), child = fork();
	int status, fd, i;

	if (child == 0) {
		kill(parent, SIGSTOP);
		for (i = 0; i < 1000 && !stopped(parent); i++)
			usleep(1000);
		usleep(50000);
		fd = open(path, O_RDONLY);
		kill(parent, SIGCONT);
		_exit(fd >= 0 ? 0 : errno);
	}
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static struct engine *make_engine(const char *ndb)
{
	struct engine_config cfg = { 0 };
	char err[ENGINE_ERRLEN];
	enum engine_err e;
	struct engine *eng;

	engine_limits_default(&cfg.limits);
	cfg.official = true; /* names as signed, without ".UNOFFICIAL" */
	eng = engine_new(&cfg, &e, err, sizeof(err));
	if (!eng || engine_load_builtin(eng, err, sizeof(err)) != ENGINE_OK ||
	    (ndb && engine_load(eng, ndb, err, sizeof(err)) != ENGINE_OK) ||
	    engine_compile(eng, err, sizeof(err)) != ENGINE_OK) {
		fprintf(stderr, "engine: %s\n", err);
		exit(1);
	}
	return eng;
}

struct opener {
	char path[600];
	atomic_int done; /* 1 opened, -1 failed */
};

static void *open_file(void *arg)
{
	struct opener *o = arg;
	int fd = open(o->path, O_RDONLY);

	if (fd >= 0)
		close(fd);
	atomic_store(&o->done, fd >= 0 ? 1 : -1);
	return NULL;
}

/* The watchdog process answers an event the agent read but had not marked
 * held when it stopped (a SIGSTOP lands between read() and
 * rtwatch_hold() as well as anywhere): the open waiting on it goes on. */
static void test_rtwatch_unmarked(const char *mnt)
{
	struct opener o = { .done = 0 };
	union {
		struct fanotify_event_metadata m;
		char bytes[4096];
	} buf;
	struct pollfd p;
	struct rtwatch *w;
	struct fanotify_response r;
	char msg[256];
	ssize_t n = -1;
	pthread_t t;
	int fan, i;

	snprintf(o.path, sizeof(o.path), "%s/unmarked.txt", mnt);
	write_file(o.path, "x", 1, 0600);
	fan = fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT | FAN_NONBLOCK,
			    O_RDONLY | O_LARGEFILE);
	CHECK(fan >= 0);
	if (fan < 0)
		return;
	CHECK(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM, AT_FDCWD,
			    mnt) == 0);
	w = rtwatch_start(fan, 200 * 1000000ull, msg, sizeof(msg));
	CHECK(w != NULL);
	if (!w)
		return;
	pthread_create(&t, NULL, open_file, &o);
	/* The agent reads the event, beating until then (else the watchdog
	 * takes it from the queue itself), and stops. */
	p = (struct pollfd){ .fd = fan, .events = POLLIN };
	for (i = 0; i < 200 && n < 0; i++) {
		rtwatch_beat(w);
		if (poll(&p, 1, 50) == 1)
			n = read(fan, buf.bytes, sizeof(buf.bytes));
	}
	CHECK(n >= (ssize_t)sizeof(buf.m) && (buf.m.mask & FAN_OPEN_PERM) && buf.m.fd >= 0);
	for (i = 0; i < 100 && !atomic_load(&o.done); i++)
		usleep(50000);
	CHECK(atomic_load(&o.done) == 1);
	/* (Counted after the answer: the open may go on first.) */
	for (i = 0; i < 100 && rtwatch_allowed(w) < 1; i++)
		usleep(10000);
	CHECK(rtwatch_allowed(w) >= 1);
	if (n > 0 && buf.m.fd >= 0) {
		/* (Without the watchdog's answer, the test's own, so that the
		 * thread ends.) */
		r = (struct fanotify_response){ .fd = buf.m.fd, .response = FAN_ALLOW };
		if (write(fan, &r, sizeof(r)) < 0 && errno != ENOENT)
			CHECK(!"answering the event");
		close(buf.m.fd);
	}
	pthread_join(t, NULL);
	rtwatch_stop(w);
	close(fan);
}

/* The cache alone: identities, generations, replacement, bounds. */
static void test_rtcache(void)
{
	struct rtcache *c = rtcache_new(64);
	struct rtcache_key k = { 1, 2, 3, 4, 5, 1 }, k2;
	uint64_t i;

	CHECK(c != NULL);
	CHECK(!rtcache_lookup(c, &k));
	rtcache_insert(c, &k);
	CHECK(rtcache_lookup(c, &k));
	k2 = k;
	k2.ctime_ns++;
	CHECK(!rtcache_lookup(c, &k2));
	k2 = k;
	k2.gen++;
	CHECK(!rtcache_lookup(c, &k2));
	rtcache_insert(c, &k2); /* the same file: replaces the old entry */
	CHECK(rtcache_count(c) == 1);
	CHECK(!rtcache_lookup(c, &k));
	rtcache_forget(c, 1, 2);
	CHECK(!rtcache_lookup(c, &k2) && rtcache_count(c) == 0);
	for (i = 0; i < 10000; i++) {
		k2.ino = 100 + i;
		rtcache_insert(c, &k2);
	}
	CHECK(rtcache_count(c) <= 64);
	CHECK(rtcache_lookup(c, &k2)); /* the newest stays */
	rtcache_clear(c);
	CHECK(rtcache_count(c) == 0 && !rtcache_lookup(c, &k2));
	rtcache_free(c);
}

/* Whether the watch of d reports a move within a second. */
static bool moved_soon(struct rtdirs *d)
{
	struct pollfd pfd = { rtdirs_fd(d), POLLIN, 0 };

	return poll(&pfd, 1, 1000) == 1 && rtdirs_moved(d);
}

/* How many inotify watches the descriptor fd holds (its fdinfo). */
static int watches(int fd)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strncmp(line, "inotify wd:", 11) == 0;
	fclose(f);
	return n;
}

/* The watch of folders for moves: a folder watched with each one above
 * it, a move of any of them reported (and the set emptied), a deleted
 * folder not reported, the set's bound (a walk refused keeps no watch).
 * No root needed. */
static void test_rtdirs(void)
{
	const char *tmp = test_tmpdir();
	char c[600], x[600], moved[600], gone[600];
	struct rtdirs *d = rtdirs_new(64), *small = rtdirs_new(2);
	size_t n;
	int fd;

	snprintf(c, sizeof(c), "%s/a/b/c", tmp);
	snprintf(x, sizeof(x), "%s/x", tmp);
	snprintf(moved, sizeof(moved), "%s/x/b", tmp);
	snprintf(gone, sizeof(gone), "%s/x/gone", tmp);
	CHECK(d && small && util_mkdir_p(c, 0700) == 0 && mkdir(x, 0700) == 0);
	fd = open(c, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0 && rtdirs_watch(d, fd));
	n = rtdirs_count(d);
	CHECK(n >= 4);  /* c, b, a, the test's folder, and those above it */
	CHECK(rtdirs_watch(d, fd) && rtdirs_count(d) == n);
	CHECK(!rtdirs_moved(d));
	CHECK(watches(rtdirs_fd(d)) == (int)n);
	/* Too many folders for the set: refused, said so, nothing kept. */
	CHECK(!rtdirs_watch(small, fd) && rtdirs_full(small));
	CHECK(watches(rtdirs_fd(small)) == 0);
	rtdirs_reset(small);
	CHECK(!rtdirs_full(small) && rtdirs_count(small) == 0);
	close(fd);
	/* A folder deleted is forgotten, not reported. */
	CHECK(mkdir(gone, 0700) == 0);
	fd = open(gone, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0 && rtdirs_watch(d, fd));
	close(fd);
	CHECK(rmdir(gone) == 0);
	CHECK(!moved_soon(d));
	/* A folder above the one watched moves: reported, the set emptied. */
	snprintf(c, sizeof(c), "%s/a/b", tmp);
	CHECK(rename(c, moved) == 0);
	CHECK(moved_soon(d));
	CHECK(rtdirs_count(d) == 0);
	CHECK(!rtdirs_moved(d));
	rtdirs_free(d);
	rtdirs_free(small);
}

int main(void)
{
	char mnt[520], bind[520], excl[560], bindir[560], ndb[560], p[700], p2[700];
	const char *tmp;
	const char *paths[1], *excls[1], *procs[1];
	struct realtime_config cfg;
	struct realtime_callbacks cb = { be_submit, on_detection, on_rescan, NULL };
	struct realtime *rt;
	struct realtime_stats s0, s1;
	struct engine *eng1, *eng2;
	enum aerr err;
	char msg[512], hex[2 * sizeof(marker) + 1];
	pthread_t workers[2];
	struct rlimit rl = { 65536, 65536 };
	unsigned n, i;
	int rc, waited;
	json_t *js;

	test_rtcache();
	test_rtdirs();
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root (fanotify, mounts)\n");
		return check_failed ? check_finish() : 77;
	}
	test_need("/bin/true");
	test_need("/bin/cat");
	alarm(300); /* a hang fails the test instead of holding ctest */
	setrlimit(RLIMIT_NOFILE, &rl);
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "skipped: no private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	tmp = test_tmpdir();
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	snprintf(bind, sizeof(bind), "%s/bind", tmp);
	snprintf(excl, sizeof(excl), "%s/excluded", mnt);
	snprintf(bindir, sizeof(bindir), "%s/bin", mnt);
	snprintf(barrier_dir, sizeof(barrier_dir), "%s", excl);
	snprintf(ndb, sizeof(ndb), "%s/marker.ndb", tmp);
	CHECK(mkdir(mnt, 0700) == 0 && mkdir(bind, 0700) == 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64m,mode=0755") != 0) {
		perror("mount tmpfs");
		return 1;
	}
	CHECK(mount(mnt, bind, NULL, MS_BIND, NULL) == 0);
	CHECK(mkdir(excl, 0755) == 0 && mkdir(bindir, 0755) == 0);

	/* Before any thread starts (a user namespace needs a single thread). */
	CHECK(unavailable(mnt, false, "no CAP_SYS_ADMIN"));
	CHECK(unavailable(mnt, true, "user namespace"));
	test_rtwatch_unmarked(mnt);

	for (i = 0; i < sizeof(marker) - 1; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)marker[i]);
	snprintf(msg, sizeof(msg), "Ward-Test-Marker:0:*:%s\n", hex);
	write_file(ndb, msg, strlen(msg), 0600);
	eng1 = make_engine(NULL);
	eng2 = make_engine(ndb);
	be.engine = eng1;
	for (i = 0; i < 2; i++)
		pthread_create(&workers[i], NULL, worker_main, NULL);

	memset(&cfg, 0, sizeof(cfg));
	paths[0] = mnt;
	excls[0] = excl;
	snprintf(p2, sizeof(p2), "%s/cat", bindir);
	procs[0] = p2;
	cfg.mode = REALTIME_DETECT;
	cfg.paths = paths;
	cfg.npaths = 1;
	cfg.exclude_paths = excls;
	cfg.nexclude_paths = 1;
	cfg.exclude_processes = procs;
	cfg.nexclude_processes = 1;
	cfg.max_size = 128 << 20;
	cfg.timeout_ms = 3000;
	cfg.on_timeout = REALTIME_TIMEOUT_ALLOW;

	/* Refused configurations name what is wrong. */
	paths[0] = "relative/path";
	rt = realtime_new(&cfg, &cb, &err, msg, sizeof(msg));
	CHECK(!rt && err == AERR_INVALID);
	CHECK_STR_CONTAINS(msg, "paths[0]");
	paths[0] = mnt;

	rt = realtime_new(&cfg, &cb, &err, msg, sizeof(msg));
	CHECK(rt != NULL);
	if (!rt)
		return check_finish();
	err = realtime_start(rt, msg, sizeof(msg));
	if (err == AERR_UNAVAILABLE) {
		fprintf(stderr, "skipped: fanotify unavailable: %s\n", msg);
		realtime_free(rt);
		umount2(bind, MNT_DETACH);
		umount2(mnt, MNT_DETACH);
		return 77;
	}
	CHECK(err == AERR_OK);
	if (err != AERR_OK) {
		fprintf(stderr, "start: %s\n", msg);
		return check_finish();
	}
	s0 = stats(rt);
	CHECK(s0.running && s0.filesystems == 1 && s0.mounts == 0);
	/* The watchdog, which can allow any access waiting, holds no right of
	 * the agent's (and still allows: "The agent stopped" below). It is a
	 * child of the agent and drops them as its first act: on a loaded
	 * machine that may come a moment after the start returns. */
	for (waited = 0; waited < 500 && !watchdog_unprivileged(); waited++)
		usleep(10000);
	CHECK(watchdog_unprivileged());

	/* Detect mode: EICAR is found when written (close-write) and opens
	 * are allowed. */
	n = detections();
	snprintf(p, sizeof(p), "%s/eicar.com", mnt);
	write_file(p, eicar, sizeof(eicar) - 1, 0644);
	CHECK(wait_detection(n, "/eicar.com"));
	CHECK(last.event == REALTIME_EV_CLOSE_WRITE);
	CHECK_STR_EQ(last.name, "Eicar-Test-Signature");
	barrier(rt);
	n = detections();
	CHECK(try_open(p) == 0);
	CHECK(wait_detection(n, "/eicar.com") && !last.denied && last.event == REALTIME_EV_OPEN);

	/* Block mode: its open is denied. */
	cfg.mode = REALTIME_BLOCK;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	n = detections();
	CHECK(try_open(p) == EPERM);
	CHECK(wait_detection(n, "/eicar.com") && last.denied);
	/* ... through a bind mount outside the trees too: a filesystem mark
	 * sees every mount of the filesystem. */
	snprintf(p2, sizeof(p2), "%s/eicar.com", bind);
	n = detections();
	CHECK(try_open(p2) == EPERM);
	CHECK(wait_detection(n, "/eicar.com") && last.denied);
	s0 = stats(rt);
	CHECK(s0.denials >= 2 && s0.detections >= 3);

	/* A clean file: after it was written and scanned, opening it again
	 * reaches neither the backend nor (kernel ignore mark) the agent. */
	barrier(rt);
	snprintf(p, sizeof(p), "%s/clean.txt", mnt);
	write_file(p, "hello\n", 6, 0644);
	barrier(rt);
	s0 = stats(rt);
	CHECK(try_open(p) == 0);
	CHECK(try_open(p) == 0);
	s1 = stats(rt);
	CHECK(s1.scans == s0.scans && s1.events == s0.events);
	CHECK(s1.ignore_marks > 0);

	/* Modified: rescanned; EICAR written into it is found and denied. */
	n = detections();
	write_file(p, eicar, sizeof(eicar) - 1, 0644);
	CHECK(wait_detection(n, "/clean.txt"));
	barrier(rt);
	CHECK(try_open(p) == EPERM);
	CHECK(stats(rt).scans > s1.scans);

	/* Excluded path: passes unscanned in block mode. */
	barrier(rt);
	s0 = stats(rt);
	snprintf(p, sizeof(p), "%s/eicar.com", excl);
	write_file(p, eicar, sizeof(eicar) - 1, 0644);
	CHECK(try_open(p) == 0);
	s1 = stats(rt);
	CHECK(s1.scans == s0.scans && s1.excluded > s0.excluded);

	/* Excluded process: a cat copied under bin/ reads EICAR, the test
	 * itself is denied. */
	snprintf(p2, sizeof(p2), "%s/cat", bindir);
	copy_file("/bin/cat", p2, "");
	barrier(rt);
	snprintf(p, sizeof(p), "%s/eicar.com", mnt);
	{
		char *argv[] = { p2, p, NULL };

		CHECK(try_open(p) == EPERM);
		rc = run(argv, false);
		CHECK(rc == 0);
		if (rc)
			fprintf(stderr, "    excluded cat exited %d\n", rc);
	}

	/* The agent's own processes pass, and the list changes without a
	 * flush. */
	{
		pid_t self = getpid();

		s0 = stats(rt);
		realtime_set_own_pids(rt, &self, 1);
		CHECK(try_open(p) == 0);
		realtime_set_own_pids(rt, NULL, 0);
		CHECK(try_open(p) == EPERM);
		s1 = stats(rt);
		CHECK(s1.excluded > s0.excluded);
	}

	/* An infected program is not run, here nor from another mount
	 * namespace, nor through the bind mount. */
	barrier(rt);
	snprintf(p2, sizeof(p2), "%s/true-clean", bindir);
	copy_file("/bin/true", p2, "");
	barrier(rt);
	{
		char *clean[] = { p2, NULL };

		CHECK(run(clean, false) == 0);
	}
	/* A signature update (the second engine) makes the marker file,
	 * clean before, infected: flush, and it is denied. */
	snprintf(p, sizeof(p), "%s/true-marker", bindir);
	copy_file("/bin/true", p, marker);
	snprintf(p2, sizeof(p2), "%s/true-marker", excl);
	copy_file("/bin/true", p2, marker);
	barrier(rt);
	{
		char *argv[] = { p, NULL }, *argv_excl[] = { p2, NULL };
		char bound[700];
		char *argv_bind[] = { bound, NULL };

		snprintf(bound, sizeof(bound), "%s/bin/true-marker", bind);
		CHECK(run(argv, false) == 0);
		pthread_mutex_lock(&be.lock);
		be.engine = eng2;
		pthread_mutex_unlock(&be.lock);
		realtime_flush(rt);
		n = detections();
		CHECK(run(argv, false) == 200 + EPERM);
		CHECK(wait_detection(n, "/true-marker") && last.denied &&
		      last.event == REALTIME_EV_EXEC);
		CHECK_STR_EQ(last.name, "Ward-Test-Marker");
		CHECK(run(argv, true) == 200 + EPERM);
		CHECK(run(argv_bind, true) == 200 + EPERM);
		CHECK(try_open(p) == EPERM);
		/* The same program under an excluded path runs, unscanned. */
		CHECK(run(argv_excl, false) == 0);
	}

	/* The agent's own cache: with the kernel's off, a clean file opened
	 * twice is a cache hit the second time. */
	barrier(rt);
	cfg.kernel_cache_off = true;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	snprintf(p, sizeof(p), "%s/cached.txt", mnt);
	write_file(p, "cache me\n", 9, 0644);
	barrier(rt);
	s0 = stats(rt);
	CHECK(try_open(p) == 0);
	CHECK(try_open(p) == 0);
	s1 = stats(rt);
	CHECK(s1.cache_hits == s0.cache_hits + 2 && s1.scans == s0.scans);
	/* Flush: scanned again, then cached again. */
	realtime_flush(rt);
	CHECK(try_open(p) == 0);
	barrier(rt);
	CHECK(try_open(p) == 0);
	s0 = stats(rt);
	CHECK(s0.scans == s1.scans + 1 && s0.cache_hits == s1.cache_hits + 1);
	/* Reconfigure flushes too. */
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	CHECK(try_open(p) == 0);
	barrier(rt);
	CHECK(stats(rt).scans == s0.scans + 1);
	cfg.kernel_cache_off = false;

	/* A filesystem mounted inside a tree is watched (on reconfiguring);
	 * a subdirectory as the tree leaves the rest of the filesystem's opens
	 * alone but still scans the programs run from it. */
	snprintf(p, sizeof(p), "%s/nested", mnt);
	CHECK(mkdir(p, 0755) == 0 && mount("tmpfs", p, "tmpfs", 0, "size=8m") == 0);
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	CHECK(stats(rt).filesystems == 2);
	snprintf(p2, sizeof(p2), "%s/nested/eicar.com", mnt);
	write_file(p2, eicar, sizeof(eicar) - 1, 0644);
	barrier(rt);
	CHECK(try_open(p2) == EPERM);
	barrier(rt); /* the jobs hold descriptors of files in it */
	CHECK(umount(p) == 0);
	paths[0] = bindir;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	CHECK(stats(rt).filesystems == 1);
	snprintf(p, sizeof(p), "%s/eicar.com", mnt);
	CHECK(try_open(p) == 0); /* outside the tree now */
	snprintf(p, sizeof(p), "%s/true-marker", bindir);
	{
		char *argv[] = { p, NULL };

		CHECK(run(argv, false) == 200 + EPERM);
	}
	paths[0] = mnt;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	snprintf(p, sizeof(p), "%s/eicar.com", mnt);
	CHECK(try_open(p) == EPERM);

	/* FIFOs and devices: never opened, never waited on. */
	snprintf(p, sizeof(p), "%s/fifo", mnt);
	CHECK(mkfifo(p, 0644) == 0);
	snprintf(p2, sizeof(p2), "%s/null", mnt);
	CHECK(mknod(p2, S_IFCHR | 0666, makedev(1, 3)) == 0);
	s0 = stats(rt);
	{
		int fd = open(p, O_RDONLY | O_NONBLOCK);

		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
		fd = open(p2, O_RDONLY);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
	s1 = stats(rt);
	CHECK(s1.scans == s0.scans);

	/* A backend that never answers: opens go on at the deadline... */
	cfg.timeout_ms = 300;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	snprintf(p, sizeof(p), "%s/slow.txt", mnt);
	write_file(p, "slow\n", 5, 0644);
	snprintf(p2, sizeof(p2), "%s/other.txt", mnt);
	write_file(p2, "other\n", 6, 0644);
	barrier(rt);
	realtime_flush(rt);
	be_set_mode(BACKEND_HOLD);
	s0 = stats(rt);
	{
		uint64_t t = util_now_ns();

		CHECK(try_open(p) == 0);
		CHECK(util_now_ns() - t >= 250000000u);
	}
	s1 = stats(rt);
	CHECK(s1.timeouts == s0.timeouts + 1);
	/* ... or are denied where the policy says so. */
	cfg.on_timeout = REALTIME_TIMEOUT_DENY;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);
	CHECK(try_open(p) == EPERM);
	CHECK(stats(rt).timeouts == s1.timeouts + 1);
	be_release(); /* the late verdicts: answered once, never twice */
	barrier(rt);
	cfg.on_timeout = REALTIME_TIMEOUT_ALLOW;
	CHECK(realtime_reconfigure(rt, &cfg, msg, sizeof(msg)) == AERR_OK);

	/* A stalled reader: the watchdog allows what waits. */
	be_set_mode(BACKEND_STALL);
	s0 = stats(rt);
	CHECK(try_open(p) == 0);  /* the reader stalls in submit(); deadline */
	CHECK(try_open(p2) == 0); /* queued behind it: the watchdog */
	s1 = stats(rt);
	CHECK(s1.watchdog > s0.watchdog);
	be_release();
	barrier(rt);

	/* The agent stopped (SIGSTOP): its watchdog process allows what waits. */
	snprintf(p, sizeof(p), "%s/stopped.txt", mnt);
	CHECK(mknod(p, S_IFREG | 0644, 0) == 0);
	s0 = stats(rt);
	CHECK(open_while_stopped(p) == 0);
	CHECK(stats(rt).watchdog > s0.watchdog);

	/* The costliest paths: a row counts its own path's scans only, even
	 * after many paths scanned once went through the table. */
	snprintf(p, sizeof(p), "%s/many", mnt);
	CHECK(mkdir(p, 0755) == 0);
	for (i = 0; i < 200; i++) {
		snprintf(p, sizeof(p), "%s/many/f%03u", mnt, i);
		write_file(p, "many\n", 5, 0644);
	}
	barrier(rt);
	s1 = stats(rt);
	CHECK(s1.ntop_paths == REALTIME_TOP);
	for (i = 0; i < s1.ntop_paths; i++)
		if (strstr(s1.top_paths[i].name, "/many/"))
			CHECK(s1.top_paths[i].scans <= 1);

	/* The counters, and their JSON. */
	s1 = stats(rt);
	CHECK(s1.latency_p50_ns > 0 && s1.latency_p99_ns >= s1.latency_p50_ns);
	CHECK(s1.pending_high >= 1 && s1.ntop_paths > 0 && s1.ntop_processes > 0);
	js = realtime_stats_json(rt);
	CHECK(js && json_object_get(js, "latency_p99_us") && json_object_get(js, "top_paths"));
	if (js) {
		char *dump = json_dumps(js, JSON_COMPACT);

		fprintf(stderr, "counters: %s\n", dump ? dump : "");
		free(dump);
		json_decref(js);
	}

	/* Stopped: nothing is watched any more. */
	realtime_stop(rt);
	CHECK(!stats(rt).running);
	snprintf(p, sizeof(p), "%s/eicar.com", mnt);
	CHECK(try_open(p) == 0);
	realtime_free(rt);

	pthread_mutex_lock(&be.lock);
	be.stop = true;
	pthread_cond_broadcast(&be.cond);
	pthread_mutex_unlock(&be.lock);
	for (i = 0; i < 2; i++)
		pthread_join(workers[i], NULL);
	engine_free(eng1);
	engine_free(eng2);
	CHECK(umount(bind) == 0);
	CHECK(umount(mnt) == 0);
	return check_finish();
}
