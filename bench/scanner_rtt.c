/* scanner_rtt.c -- what handing a file to a scan worker costs: the same
 * small file scanned N times by the engine in this process and through a
 * scan worker (ward-agent worker), one request at a time, and with T
 * threads at once. Prints the time per file for each, and the processor
 * time per file (of the worker too), which a busy machine disturbs less.
 *
 * usage: [TMPDIR=DIR] ward-bench-scanner WARD_AGENT FILE [N [T]]
 * (libclamav's temporary directories, one per scan, in DIR for both)
 * (docs/benchmarks.md, "Scan workers: the cost of a descriptor's round
 * trip"). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/scanner.h"
#include "common/util.h"

struct run {
	struct scanner *g;
	const struct engine *e;
	const char *path;
	long n;
};

static void *scan_loop(void *arg)
{
	struct run *r = arg;
	struct engine_result res;
	struct smart_outcome out;
	char err[512];
	long i;

	for (i = 0; i < r->n; i++) {
		int fd = open(r->path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || (r->g ? scanner_scan_fd(r->g, fd, r->path, 0, 0, &res, &out, err,
						      sizeof(err)) != AERR_OK :
			       engine_scan_fd(r->e, fd, r->path, 0, NULL, NULL, &res, err,
					      sizeof(err)) != ENGINE_OK)) {
			fprintf(stderr, "%s: %s\n", r->path, fd < 0 ? "cannot open" : err);
			exit(1);
		}
		engine_result_clear(&res);
		close(fd);
	}
	return NULL;
}

/* Processor time (user and system) of who, in microseconds. */
static double cpu_us(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Runs n scans on each of t threads and prints the time and this
 * process's processor time per file; with a worker, ends its generation
 * and adds the worker's processor time. */
static void timed(const char *what, struct run *r, long n, unsigned t)
{
	pthread_t th[64];
	uint64_t start = util_now_ns();
	double cpu = cpu_us(RUSAGE_SELF), children = cpu_us(RUSAGE_CHILDREN), wall;
	unsigned i;

	r->n = n;
	for (i = 0; i < t; i++)
		pthread_create(&th[i], NULL, scan_loop, r);
	for (i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	wall = (double)(util_now_ns() - start) / 1000.0;
	cpu = cpu_us(RUSAGE_SELF) - cpu;
	if (r->g) {
		scanner_release(r->g);
		cpu += cpu_us(RUSAGE_CHILDREN) - children;
	}
	printf("%-12s %2u thread%s %8.1f us/file, processor %8.1f us/file\n", what, t,
	       t == 1 ? ": " : "s:", wall / (double)(n * t), cpu / (double)(n * t));
}

static struct scanner *start(const struct scanner_config *cfg)
{
	char err[512];
	struct scanner *g = scanner_start(cfg, err, sizeof(err));

	if (!g) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return g;
}

int main(int argc, char **argv)
{
	struct scanner_config cfg = { 0 };
	struct engine_config ec = { .official = true };
	struct run r = { 0 };
	const char *tmp = getenv("TMPDIR");
	char err[512], scratch[512];
	enum engine_err rc;
	struct engine *e;
	long n = argc > 3 ? strtol(argv[3], NULL, 10) : 20000;
	unsigned t = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 2;

	if (argc < 3 || n < 1 || t < 1 || t > 64) {
		fprintf(stderr, "usage: ward-bench-scanner WARD_AGENT FILE [N [THREADS]]\n");
		return 2;
	}
	/* The worker's scratch directory where this process's libclamav
	 * writes too: the same file system for both. */
	snprintf(scratch, sizeof(scratch), "%s/ward-bench-scanner-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	engine_tune_allocator();
	engine_limits_default(&ec.limits);
	e = engine_new(&ec, &rc, err, sizeof(err));
	if (!e || engine_load_builtin(e, err, sizeof(err)) != ENGINE_OK ||
	    engine_compile(e, err, sizeof(err)) != ENGINE_OK || !mkdtemp(scratch)) {
		fprintf(stderr, "engine: %s\n", err);
		return 1;
	}
	cfg.program = argv[1];
	cfg.builtin = true;
	cfg.threads = t;
	cfg.limits = ec.limits;
	cfg.scratch = scratch;
	cfg.user = geteuid() == 0 ? "nobody" : NULL;
	r.path = argv[2];
	r.e = e;
	r.n = n / 10;
	scan_loop(&r);  /* warm-up */
	timed("in process", &r, n, 1);
	timed("in process", &r, n, t);
	r.g = start(&cfg);
	timed("worker", &r, n, 1);
	r.g = start(&cfg);
	timed("worker", &r, n, t);
	engine_free(e);
	rmdir(scratch);
	return 0;
}
