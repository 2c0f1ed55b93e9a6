/* test_scanner.c -- scans through real scan workers (build/bin/ward-agent
 * worker): verdicts identical to the engine's in this process on ClamAV's
 * test files (libclamav's parsers work inside the sandbox); the worker's
 * confinement in /proc; a worker killed during a scan, a stopped one
 * (deadline), a retired generation; and workers that break the channel's
 * protocol, played by this program itself ("test_scanner worker ...").
 * "test_scanner unit-caps" runs it all as root with only the capabilities
 * of the agent's systemd unit (ctest label root). */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent/scanner.h"
#include "agent/wmsg.h"
#include "check.h"
#include "common/comp.h"
#include "common/pset.h"
#include "common/spsq.h"
#include "scan/job.h"
#include "unitcaps.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

#define TESTFILES "/usr/share/clamav-testfiles"

/* A worker that breaks the protocol the way mode says: it answers its
 * first request wrongly, then waits for the end. */
static int fake_worker(const char *mode)
{
	static unsigned char buf[400000];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct util_buf b = { 0 };
	struct wmsg m = { .type = WMSG_READY, .text = "" };
	struct iovec iov = { buf, WMSG_MAX };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;
	size_t i;
	int zero = 0;

	if (strcmp(mode, "noready") == 0)
		return 3;
	if (wmsg_encode(&m, &b) != 0 || send(3, b.data, b.len, 0) < 0)
		return 1;
	n = recv(3, buf, WMSG_MAX, 0);
	if (n <= 0 || wmsg_decode(buf, (size_t)n, &m, NULL, 0) != 0)
		return 1;
	if (strcmp(mode, "longwait") == 0) {
		/* A smart protection query for which it asks the longest wait
		 * the protocol allows, its answer awaited; then a clean result. */
		struct wmsg q = { .type = WMSG_QUERY, .id = 1, .text = "", .source = 0,
				  .timeout = 3600, .body = (const unsigned char *)"x\n",
				  .body_len = 2 };

		if (wmsg_encode(&q, &b) != 0 || send(3, b.data, b.len, 0) < 0 ||
		    recv(3, buf, WMSG_MAX, 0) <= 0)
			return 1;
	}
	m = (struct wmsg){ .type = WMSG_RESULT, .id = strcmp(mode, "unknown") == 0 ? 999 : m.id,
			   .text = "" };
	if (wmsg_encode(&m, &b) != 0)
		return 1;
	if (strcmp(mode, "badlen") == 0)
		b.data[4] ^= 1;
	else if (strcmp(mode, "badverdict") == 0)
		b.data[WMSG_HEADER] = 7;
	else if (strcmp(mode, "garbage") == 0)
		for (i = 0; i < b.len; i++)
			b.data[i] = (char)(i * 37 + 11);
	iov = (struct iovec){ b.data, b.len };
	if (strcmp(mode, "oversize") == 0) {
		memset(buf, 'A', sizeof(buf));
		iov = (struct iovec){ buf, sizeof(buf) };
	}
	if (strcmp(mode, "fds") == 0) {
		msg.msg_control = ctl.b;
		msg.msg_controllen = sizeof(ctl.b);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &zero, sizeof(int));
	}
	if (sendmsg(3, &msg, 0) < 0)
		perror("fake worker");
	util_buf_free(&b);
	while (recv(3, buf, WMSG_MAX, 0) > 0)
		;
	return 0;
}

static void base_config(struct scanner_config *cfg, const char *scratch)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->program = WARD_AGENT;
	cfg->component = SIGS_DIR;
	cfg->builtin = true;
	engine_limits_default(&cfg->limits);
	cfg->threads = 2;
	cfg->user = geteuid() == 0 ? "nobody" : NULL;
	cfg->scratch = scratch;
	cfg->start_timeout = 60;
	cfg->scan_timeout = 60;
}

/* Scans path through g; returns the scanner's code, the names joined. */
static enum aerr scan_path(struct scanner *g, const char *path, unsigned timeout,
				  char *names, size_t len, char *err, size_t errlen)
{
	struct engine_result res;
	struct smart_outcome out;
	enum aerr rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t i;

	names[0] = 0;
	err[0] = 0;
	rc = scanner_scan_fd(g, fd, path, 0, timeout, &res, &out, err, errlen);
	for (i = 0; rc == AERR_OK && i < res.nnames; i++)
		snprintf(names + strlen(names), len - strlen(names), "%s%s", i ? " " : "",
			 res.names[i]);
	if (rc == AERR_OK && !res.infected)
		snprintf(names, len, "clean");
	engine_result_clear(&res);
	close(fd);
	return rc;
}

/* The engine in this process, as the worker loads it. */
static struct engine *local_engine(void)
{
	struct engine_config cfg = { .official = true };
	enum engine_err e;
	char err[ENGINE_ERRLEN];
	struct engine *eng;

	engine_limits_default(&cfg.limits);
	eng = engine_new(&cfg, &e, err, sizeof(err));
	if (!eng || engine_load(eng, SIGS_DIR, err, sizeof(err)) != ENGINE_OK ||
	    engine_load_builtin(eng, err, sizeof(err)) != ENGINE_OK ||
	    engine_compile(eng, err, sizeof(err)) != ENGINE_OK) {
		fprintf(stderr, "engine: %s\n", err);
		abort();
	}
	return eng;
}

/* Every file of ClamAV's test files gets the same verdict from the worker
 * as from the engine here. */
static void same_verdicts(struct scanner *g)
{
	struct engine *e = local_engine();
	struct dirent *d;
	DIR *dir = opendir(TESTFILES);
	char path[512], names[512], err[512], want[512];
	int n = 0, infected = 0;

	test_need(TESTFILES "/clam.zip");
	while (dir && (d = readdir(dir))) {
		struct engine_result res;
		size_t i;
		int fd;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", TESTFILES, d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		want[0] = 0;
		if (engine_scan_fd(e, fd, path, 0, NULL, NULL, &res, err, sizeof(err)) != ENGINE_OK)
			snprintf(want, sizeof(want), "error");
		for (i = 0; i < res.nnames; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
				 i ? " " : "", res.names[i]);
		if (!want[0])
			snprintf(want, sizeof(want), "clean");
		infected += res.infected;
		engine_result_clear(&res);
		close(fd);
		if (scan_path(g, path, 0, names, sizeof(names), err, sizeof(err)) != AERR_OK)
			snprintf(names, sizeof(names), "error");
		if (strcmp(names, want) != 0)
			fprintf(stderr, "%s: worker: %s (%s); here: %s\n", path, names, err, want);
		CHECK_STR_EQ(names, want);
		n++;
	}
	if (dir)
		closedir(dir);
	CHECK(n > 40);
	CHECK(infected > 30);
	engine_free(e);
}

/* A scan on a thread of its own, with its own reference. */
struct bg {
	struct scanner *g;
	const char *path;
	enum aerr rc;
	char names[256], err[512];
	volatile int started;
	pthread_t t;
};

static void *bg_scan(void *arg)
{
	struct bg *b = arg;

	b->started = 1;
	b->rc = scan_path(b->g, b->path, 0, b->names, sizeof(b->names), b->err, sizeof(b->err));
	scanner_release(b->g);
	return NULL;
}

/* Waits until the worker has answered every request sent to it, a late
 * answer too (before it is stopped again). */
static void settle(struct scanner *g)
{
	int i;

	for (i = 0; i < 10000 && scanner_in_flight(g) != 0; i++)
		usleep(1000);
	CHECK(scanner_in_flight(g) == 0);
}

static void bg_start(struct bg *b, struct scanner *g, const char *path)
{
	int i;

	memset(b, 0, sizeof(*b));
	b->g = g;
	b->path = path;
	scanner_acquire(g);
	pthread_create(&b->t, NULL, bg_scan, b);
	while (!b->started)
		usleep(1000);
	/* Until the request is in the (stopped) worker's channel. */
	for (i = 0; i < 10000 && scanner_in_flight(g) == 0; i++)
		usleep(1000);
	CHECK(scanner_in_flight(g) == 1);
}

static void on_report(const struct sjob_report *r, void *arg)
{
	struct util_buf *b = arg;
	const char *base = strrchr(r->path, '/');

	util_buf_printf(b, "%s:%s;", base ? base + 1 : r->path,
			r->kind != SJOB_FILE ? "other" : r->infected ? r->names[0] : "clean");
}

/* A tree scan (job.h) whose files are scanned by the worker. */
static void tree_scan(struct scanner *g, const char *dir)
{
	struct sjob_config cfg = { .jobs = 2, .recursive = true, .max_depth = 4,
				   .scan = scanner_sjob_scan, .scan_arg = g };
	struct util_buf out = { 0 };
	struct sjob_stats st;
	char err[256];

	cfg.report = on_report;
	cfg.report_arg = &out;
	CHECK(sjob_run(&cfg, &dir, 1, &st, err, sizeof(err)) == SCAN_OK);
	CHECK_STR_EQ(out.data, "clean.txt:clean;eicar.com:Eicar-Test-Signature;");
	util_buf_free(&out);
}

/* Checks that exactly one thread of pid is in the idle I/O class, at nice
 * 19, and the others keep this process's nice value and I/O class. */
static void low_thread(pid_t pid)
{
	char path[320], line[512], *p;
	int idle = 0, others = 0, field, nice, prio, base = getpriority(PRIO_PROCESS, 0);
	struct dirent *e;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	CHECK(d != NULL);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
		fclose(f);
		/* Field 19 is nice; the fields after ")" start at 3. */
		for (field = 3; p && field <= 19; field++)
			p = strchr(p + 1, ' ');
		CHECK(p != NULL);
		if (!p)
			continue;
		nice = (int)strtol(p + 1, NULL, 10);
		prio = (int)syscall(SYS_ioprio_get, 1, (int)strtol(e->d_name, NULL, 10));
		if (prio >= 0 && prio >> 13 == 3) {
			idle++;
			CHECK(nice == 19);
		} else {
			others++;
			CHECK(nice == base);
		}
	}
	if (d)
		closedir(d);
	CHECK(idle == 1);
	CHECK(others >= 2);
}

/* Whether every thread of pid is stopped (state T in its stat). */
static bool all_stopped(pid_t pid)
{
	char path[320], line[512], *state;
	struct dirent *e;
	bool all = true;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return false;
	while (all && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;  /* the thread ended */
		state = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
		all = state && state[1] == ' ' && (state[2] == 'T' || state[2] == 't');
		fclose(f);
	}
	closedir(d);
	return all;
}

/* Signals the worker pid; never anything else (kill(0, ...) would stop
 * this test's own process group). A stop takes effect when the process's
 * threads next run: it is waited for, so that no thread takes a request
 * meanwhile. */
static void signal_worker(pid_t pid, int sig)
{
	int i;

	CHECK(pid > 0);
	if (pid <= 0)
		return;
	kill(pid, sig);
	for (i = 0; sig == SIGSTOP && i < 5000 && !all_stopped(pid); i++)
		usleep(1000);
	CHECK(sig != SIGSTOP || all_stopped(pid));
}

static void real_workers(const char *dir)
{
	struct scanner_config cfg;
	struct scanner *g;
	struct bg b;
	char *bad, *clean, names[256], err[512], base[512];
	pid_t pid, pid2;

	bad = test_write(dir, "eicar.com", eicar, sizeof(eicar) - 1);
	clean = test_write(dir, "clean.txt", "nothing to see here\n", 20);
	snprintf(base, sizeof(base), "%s", test_tmpdir());
	base_config(&cfg, base);
	g = scanner_start(&cfg, err, sizeof(err));
	if (!g)
		fprintf(stderr, "scanner_start: %s\n", err);
	CHECK(g != NULL);
	if (!g)
		return;
	pid = scanner_pid(g);
	CHECK(pid > 0);

	CHECK(scan_path(g, bad, 0, names, sizeof(names), err, sizeof(err)) == AERR_OK);
	CHECK_STR_EQ(names, "Eicar-Test-Signature");
	CHECK(scan_path(g, clean, 0, names, sizeof(names), err, sizeof(err)) == AERR_OK);
	CHECK_STR_EQ(names, "clean");
	/* A descriptor that is not a file the worker can read: an error, and
	 * the worker stays. */
	{
		struct engine_result res;
		struct smart_outcome out;
		int p[2];

		CHECK(pipe(p) == 0);
		close(p[1]);
		(void)scanner_scan_fd(g, p[0], "a pipe", 0, 0, &res, &out, err, sizeof(err));
		engine_result_clear(&res);
		close(p[0]);
		CHECK(scanner_pid(g) == pid);
	}
	same_verdicts(g);
	tree_scan(g, dir);

	/* Confined: no capability, no_new_privs, seccomp, not root. */
	CHECK_STR_EQ(test_status_field(pid, "CapEff"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "CapPrm"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "NoNewPrivs"), "1");
	CHECK_STR_EQ(test_status_field(pid, "Seccomp"), "2");
	if (geteuid() == 0) {
		CHECK_STR_EQ(test_status_field(pid, "CapBnd"), "0000000000000000");
		CHECK(strncmp(test_status_field(pid, "Uid"), "0\t", 2) != 0);
		CHECK(test_status_field(pid, "Uid")[0] != 0);
	}

	/* scan.cpu=low: one thread of the worker, at nice 19 and in the idle
	 * I/O class, scans what is sent low; the others keep their priority. */
	low_thread(pid);
	{
		struct engine_result res;
		struct smart_outcome out;
		int fd = open(bad, O_RDONLY | O_CLOEXEC);

		CHECK(scanner_scan_fd(g, fd, bad, SCANNER_LOW, 0, &res, &out, err, sizeof(err)) ==
		      AERR_OK);
		CHECK(res.infected && res.nnames == 1);
		engine_result_clear(&res);
		close(fd);
	}

	/* Killed during a scan: that scan fails, saying so; the next one gets
	 * a new worker. */
	signal_worker(pid, SIGSTOP);
	bg_start(&b, g, clean);
	signal_worker(pid, SIGKILL);
	pthread_join(b.t, NULL);
	CHECK(b.rc == AERR_WORKER);
	CHECK_STR_CONTAINS(b.err, "killed by signal 9");
	CHECK_STR_CONTAINS(b.err, "not scanned");
	CHECK(scan_path(g, bad, 0, names, sizeof(names), err, sizeof(err)) == AERR_OK);
	CHECK_STR_EQ(names, "Eicar-Test-Signature");
	pid2 = scanner_pid(g);
	CHECK(pid2 > 0 && pid2 != pid);
	pid = pid2;

	/* Stuck: as many requests past their deadline as the worker has
	 * scan threads (2) kill it; the next scan gets a new worker. */
	signal_worker(pid, SIGSTOP);
	CHECK(scan_path(g, clean, 1, names, sizeof(names), err, sizeof(err)) ==
	      AERR_TIMEOUT);
	CHECK(scanner_pid(g) == pid);
	CHECK(scan_path(g, clean, 1, names, sizeof(names), err, sizeof(err)) ==
	      AERR_TIMEOUT);
	CHECK(scan_path(g, bad, 0, names, sizeof(names), err, sizeof(err)) == AERR_OK);
	CHECK_STR_EQ(names, "Eicar-Test-Signature");
	pid2 = scanner_pid(g);
	CHECK(pid2 > 0 && pid2 != pid);
	pid = pid2;

	/* A stopped worker: the request's deadline passes; its late answer
	 * is dropped and the worker goes on. */
	signal_worker(pid, SIGSTOP);
	CHECK(scan_path(g, clean, 1, names, sizeof(names), err, sizeof(err)) ==
	      AERR_TIMEOUT);
	CHECK_STR_CONTAINS(err, "no verdict");
	signal_worker(pid, SIGCONT);
	CHECK(scan_path(g, bad, 0, names, sizeof(names), err, sizeof(err)) == AERR_OK);
	CHECK_STR_EQ(names, "Eicar-Test-Signature");
	CHECK(scanner_pid(g) == pid);

	/* Retired with a scan in flight: the scan finishes, then the worker
	 * exits and its scratch directory goes. */
	CHECK(test_count_prefixed(base, "worker-") == 1); /* scratch directories */
	settle(g);
	signal_worker(pid, SIGSTOP);
	bg_start(&b, g, bad);
	scanner_release(g);
	CHECK(kill(pid, 0) == 0);
	signal_worker(pid, SIGCONT);
	pthread_join(b.t, NULL);
	CHECK(b.rc == AERR_OK);
	CHECK_STR_EQ(b.names, "Eicar-Test-Signature");
	CHECK(kill(pid, 0) != 0 && errno == ESRCH);
	CHECK(test_count_prefixed(base, "worker-") == 0);
	free(bad);
	free(clean);
}

/* Workers that break the protocol: each request fails with a message, the
 * agent's side goes on, and the next scan starts a worker again. */
static void broken_workers(const char *dir)
{
	static const char *const modes[] = { "oversize", "badlen", "unknown", "badverdict",
					     "fds", "garbage" };
	struct scanner_config cfg;
	struct scanner *g;
	char *clean = test_write(dir, "clean2.txt", "clean\n", 6), names[256], err[512];
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
		base_config(&cfg, test_tmpdir());
		cfg.program = "/proc/self/exe";
		cfg.component = modes[i];
		cfg.user = NULL;
		g = scanner_start(&cfg, err, sizeof(err));
		CHECK(g != NULL);
		if (!g)
			continue;
		CHECK(scan_path(g, clean, 5, names, sizeof(names), err, sizeof(err)) ==
		      AERR_WORKER);
		fprintf(stderr, "%s: %s\n", modes[i], err);
		CHECK_STR_CONTAINS(err, "killed");
		CHECK(scan_path(g, clean, 5, names, sizeof(names), err, sizeof(err)) ==
		      AERR_WORKER);
		scanner_release(g);
	}
	base_config(&cfg, test_tmpdir());
	cfg.program = "/proc/self/exe";
	cfg.component = "noready";
	cfg.user = NULL;
	CHECK(scanner_start(&cfg, err, sizeof(err)) == NULL);
	CHECK_STR_CONTAINS(err, "exited with status 3");
	free(clean);
}

/* The smart protection source of the smart scan tests: it knows one
 * file, whose MD5 is smart_md5. */
static unsigned char smart_md5[16];
static int relay_calls;
static bool relay_down;
static long relay_timeout;  /* the wait the last call was given */

static int test_relay(void *arg, size_t i, const char *body, size_t len, long timeout,
		      size_t max, long *status, struct util_buf *answer, char *errbuf,
		      size_t errlen)
{
	struct spsq_query q[8];
	struct spsq_entry e = { .type = COMP_MD5, .digest_len = 16, .size = 25,
				.state = SPSQ_BLOCK, .name = "Test.Smart.Hit", .name_len = 14 };
	size_t n, k, d;
	char msg[256];

	(void)arg;
	(void)max;
	relay_timeout = timeout;
	relay_calls++;
	CHECK(i == 0);
	if (relay_down) {
		util_set_msg(errbuf, errlen, "test source down");
		return -1;
	}
	memcpy(e.digest, smart_md5, 16);
	CHECK(spsq_parse_request(body, len, q, 8, &n, msg, sizeof(msg)) == ERR_OK);
	util_buf_printf(answer, "ward-sps 1 7 3600\n");
	for (k = 0; k < n; k++) {
		bool hit = spsq_matches(&q[k], &e);

		spsq_format_query(&q[k], answer);
		answer->data[--answer->len] = 0;  /* its newline */
		util_buf_printf(answer, " %d\n", hit ? 1 : 0);
		if (hit) {
			util_buf_printf(answer, "md5:");
			for (d = 0; d < 16; d++)
				util_buf_printf(answer, "%02x", smart_md5[d]);
			util_buf_printf(answer, ":25:block:Test.Smart.Hit\n");
		}
	}
	*status = 200;
	return 0;
}

/* Smart scan in the worker: its requests reach the source through the
 * agent's relay, and it reads the answers itself. */
static void smart_workers(const char *dir)
{
	static const char data[] = "a file smart scan knows!";
	const char *sources[] = { "https://source.invalid:8443" };
	char pattern[512];
	unsigned char rec[2][PSET_RECORD];
	struct util_buf file = { 0 };
	struct scanner_config cfg;
	struct scanner *g;
	struct engine_result res;
	struct smart_outcome out;
	char *known = test_write(dir, "smart-known.bin", data, sizeof(data)),
	     *other = test_write(dir, "smart-other.bin", "something else", 14), err[512];
	char *wpx;
	int fd;

	snprintf(pattern, sizeof(pattern), "%s", test_tmpdir());
	CHECK(sizeof(data) == 25);
	CHECK(engine_hash("md5", data, sizeof(data), smart_md5));
	pset_record(COMP_MD5, smart_md5, pset_width(1), rec[0]);
	pset_param(COMP_MD5, pset_width(1), rec[1]);
	CHECK(pset_encode((const char *)rec, sizeof(rec), &file, err, sizeof(err)) == ERR_OK);
	wpx = test_write(pattern, COMP_PREFIX_FILE, file.data, file.len);
	util_buf_free(&file);

	base_config(&cfg, test_tmpdir());
	cfg.component = pattern;
	cfg.builtin = false;
	cfg.smart = true;
	cfg.sources = sources;
	cfg.nsources = 1;
	cfg.source_timeout = 5;
	cfg.relay = test_relay;
	g = scanner_start(&cfg, err, sizeof(err));
	CHECK(g != NULL);
	if (!g)
		goto out;
	fd = open(known, O_RDONLY | O_CLOEXEC);
	CHECK(scanner_scan_fd(g, fd, known, 0, 0, &res, &out, err, sizeof(err)) == AERR_OK);
	CHECK(res.infected && res.nnames == 1 && out.asked && !out.unverified);
	if (res.nnames)
		CHECK_STR_EQ(res.names[0], "Test.Smart.Hit");
	CHECK(relay_calls == 1);
	engine_result_clear(&res);
	close(fd);
	fd = open(other, O_RDONLY | O_CLOEXEC);
	CHECK(scanner_scan_fd(g, fd, other, 0, 0, &res, &out, err, sizeof(err)) == AERR_OK);
	CHECK(!res.infected && !out.asked && !out.unverified);
	engine_result_clear(&res);
	close(fd);
	scanner_release(g);

	/* No source answers: the file is unverified, never clean. */
	relay_down = true;
	g = scanner_start(&cfg, err, sizeof(err));
	CHECK(g != NULL);
	if (!g)
		goto out;
	fd = open(known, O_RDONLY | O_CLOEXEC);
	CHECK(scanner_scan_fd(g, fd, known, 0, 0, &res, &out, err, sizeof(err)) == AERR_OK);
	CHECK(!res.infected && out.unverified);
	CHECK(relay_calls > 1);
	engine_result_clear(&res);
	close(fd);
	scanner_release(g);

	/* The agent's side of the relay: a smart state with sources and no
	 * prefixes, posting with its HTTPS clients (nothing listens on port
	 * 1). */
	{
		const char *local[] = { "https://127.0.0.1:1" };
		struct smart_config sc = { .sources = local, .nsources = 1, .timeout = 5,
					   .family = AF_UNSPEC };
		struct smart *relay = smart_new(NULL, &sc, err, sizeof(err));
		struct util_buf ans = { 0 };
		long status = 0;

		CHECK(relay != NULL);
		if (relay) {
			CHECK(smart_post(relay, 0, "md5:44d88600/24\n", 16, 5, 4096, &status, &ans,
					 err, sizeof(err)) == -1);
			CHECK(err[0] != 0);
			CHECK(smart_post(relay, 1, "md5:44d88600/24\n", 16, 5, 4096, &status, &ans,
					 err, sizeof(err)) == -1);
			CHECK_STR_CONTAINS(err, "no source 1");
		}
		smart_free(relay);
		util_buf_free(&ans);
	}
out:
	free(wpx);
	free(known);
	free(other);
}

/* A worker cannot make the agent's relay wait longer for a source than
 * the agent's own timeout: it asks for the longest wait there is. */
static void relay_wait_bound(const char *dir)
{
	struct scanner_config cfg;
	struct scanner *g;
	char *clean = test_write(dir, "clean3.txt", "clean\n", 6), names[256], err[512];

	base_config(&cfg, test_tmpdir());
	cfg.program = "/proc/self/exe";
	cfg.component = "longwait";
	cfg.user = NULL;
	cfg.relay = test_relay;
	cfg.source_timeout = 5;
	relay_down = true;
	relay_timeout = 0;
	g = scanner_start(&cfg, err, sizeof(err));
	CHECK(g != NULL);
	if (g) {
		CHECK(scan_path(g, clean, 5, names, sizeof(names), err, sizeof(err)) == AERR_OK);
		CHECK(relay_timeout == 5);
		scanner_release(g);
	}
	relay_down = false;
	free(clean);
}

int main(int argc, char **argv)
{
	char dir[512];

	if (argc > 2 && strcmp(argv[1], "worker") == 0) {
		int i;

		for (i = 2; i < argc; i++)
			if (strncmp(argv[i], "--dir=", 6) == 0)
				return fake_worker(argv[i] + 6);
		return 2;
	}
	/* "test_scanner unit-caps": as root with the unit's capabilities. */
	if (argc > 1 && strcmp(argv[1], "unit-caps") == 0) {
		if (geteuid() != 0) {
			printf("not root: skipped\n");
			return 77;
		}
		unitcaps_apply(UNIT_FILE);
	}
	test_need(WARD_AGENT);
	signal(SIGPIPE, SIG_IGN);
	/* test_tmpdir() reuses its buffer. */
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	real_workers(dir);
	smart_workers(dir);
	relay_wait_bound(dir);
	broken_workers(dir);
	return check_finish();
}
