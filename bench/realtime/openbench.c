/* openbench.c -- the precise part of the real-time scanning benchmark
 * (bench/realtime/run.py): what one open costs an application while an
 * on-access scanner watches the filesystem. Each command prints one line
 * of JSON and exits 1 when a file could not be opened or read.
 *
 *   ward-openbench populate DIR COUNT SIZE
 *       creates DIR/f000000 ... COUNT files of SIZE bytes, each with
 *       different contents (a scanner that caches by contents, as clamd
 *       does, must still scan every one);
 *   ward-openbench reopen DIR ROUNDS
 *       opens and closes every file of DIR once (the scanner sees and
 *       scans them), then ROUNDS more times, timing each open+close:
 *       p50/p99 latency and operations per second of the timed rounds;
 *   ward-openbench uncached DIR THREADS
 *       opens and closes every file of DIR once, from THREADS threads
 *       taking files in turn: the files were made before the scanner
 *       started, so each open waits for a fresh verdict. Verdicts per
 *       second (files / wall time) and the p50/p99 of one open+close;
 *   ward-openbench readtree DIR PASSES
 *       reads every regular file under DIR whole, PASSES times over.
 *
 * A file the scanner denies (EPERM, EACCES) counts as "denied"; any other
 * error as "errors". Latencies are CLOCK_MONOTONIC around the two calls.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

struct files {
	char **paths;
	size_t n;
};

struct counts {
	uint64_t denied;
	uint64_t errors;
};

struct worker {
	const struct files *files;
	atomic_size_t *next;
	uint64_t *lat;      /* per file, indexed like files->paths */
	struct counts counts;
	pthread_t thread;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void count_failure(struct counts *c, const char *path, int err)
{
	if (err == EPERM || err == EACCES) {
		c->denied++;
		return;
	}
	if (c->errors++ == 0)
		fprintf(stderr, "openbench: %s: %s\n", path, strerror(err));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files directly in dir, sorted by name; 0 or -1 (message). */
static int list_files(const char *dir, struct files *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;
	char **grown;

	out->paths = NULL;
	out->n = 0;
	if (!d) {
		fprintf(stderr, "openbench: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_REG)
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 1024;
			grown = realloc(out->paths, cap * sizeof(*out->paths));
			if (!grown)
				goto fail;
			out->paths = grown;
		}
		if (asprintf(&out->paths[out->n], "%s/%s", dir, e->d_name) < 0)
			goto fail;
		out->n++;
	}
	closedir(d);
	if (out->n == 0) {
		fprintf(stderr, "openbench: %s: no files\n", dir);
		return -1;
	}
	qsort(out->paths, out->n, sizeof(*out->paths), by_name);
	return 0;
fail:
	fprintf(stderr, "openbench: out of memory\n");
	closedir(d);
	return -1;
}

static void free_files(struct files *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->paths[i]);
	free(f->paths);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q (0..1) of sorted v[0..n), in microseconds. */
static double pct_us(const uint64_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n + 0.999999);

	if (n == 0)
		return 0;
	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / 1000.0;
}

/* One open+close of path; its time in ns, or 0 when the open failed. */
static uint64_t open_close(const char *path, struct counts *c)
{
	uint64_t t0 = now_ns(), t1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		count_failure(c, path, errno);
		return 0;
	}
	close(fd);
	t1 = now_ns();
	return t1 - t0 ? t1 - t0 : 1;
}

static int cmd_populate(const char *dir, long count, long size)
{
	char path[4096], *buf;
	uint64_t x = 0x9e3779b97f4a7c15u;
	long i, j;
	int fd, n;

	if (count <= 0 || size < 64) {
		fprintf(stderr, "openbench: populate: COUNT > 0 and SIZE >= 64\n");
		return 1;
	}
	buf = malloc((size_t)size);
	if (!buf)
		return 1;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "openbench: %s: %s\n", dir, strerror(errno));
		free(buf);
		return 1;
	}
	for (i = 0; i < count; i++) {
		n = snprintf(buf, (size_t)size, "openbench file %ld of %ld\n", i, count);
		for (j = n; j < size; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = (char)('a' + x % 26);
		}
		snprintf(path, sizeof(path), "%s/f%06ld", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, (size_t)size) != size || close(fd) < 0) {
			fprintf(stderr, "openbench: %s: %s\n", path, strerror(errno));
			free(buf);
			return 1;
		}
	}
	free(buf);
	printf("{\"files\": %ld, \"size\": %ld}\n", count, size);
	return 0;
}

static int cmd_reopen(const char *dir, long rounds)
{
	struct files f;
	struct counts c = { 0, 0 };
	uint64_t *lat, t0, wall;
	size_t i, n = 0;
	long r;

	if (rounds <= 0 || list_files(dir, &f) < 0)
		return 1;
	lat = malloc(f.n * (size_t)rounds * sizeof(*lat));
	if (!lat) {
		free_files(&f);
		return 1;
	}
	for (i = 0; i < f.n; i++)
		open_close(f.paths[i], &c);
	t0 = now_ns();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < f.n; i++) {
			uint64_t t = open_close(f.paths[i], &c);

			if (t)
				lat[n++] = t;
		}
	wall = now_ns() - t0;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("{\"files\": %zu, \"ops\": %zu, \"seconds\": %.6f, \"ops_per_s\": %.0f, "
	       "\"p50_us\": %.3f, \"p99_us\": %.3f, \"denied\": %lu, \"errors\": %lu}\n",
	       f.n, n, (double)wall / 1e9, (double)n * 1e9 / (double)(wall ? wall : 1),
	       pct_us(lat, n, 0.50), pct_us(lat, n, 0.99), (unsigned long)c.denied,
	       (unsigned long)c.errors);
	free(lat);
	free_files(&f);
	return c.denied || c.errors;
}

static void *uncached_worker(void *arg)
{
	struct worker *w = arg;
	size_t i;

	while ((i = atomic_fetch_add(w->next, 1)) < w->files->n)
		w->lat[i] = open_close(w->files->paths[i], &w->counts);
	return NULL;
}

static int cmd_uncached(const char *dir, long threads)
{
	struct worker w[MAX_THREADS];
	struct counts c = { 0, 0 };
	struct files f;
	atomic_size_t next = 0;
	uint64_t *lat, t0, wall;
	size_t i, n = 0;
	long t, started = 0;

	if (threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "openbench: uncached: THREADS from 1 to %d\n", MAX_THREADS);
		return 1;
	}
	if (list_files(dir, &f) < 0)
		return 1;
	lat = calloc(f.n, sizeof(*lat));
	if (!lat) {
		free_files(&f);
		return 1;
	}
	t0 = now_ns();
	for (t = 0; t < threads; t++) {
		w[t] = (struct worker){ .files = &f, .next = &next, .lat = lat };
		if (pthread_create(&w[t].thread, NULL, uncached_worker, &w[t]) != 0)
			break;
		started++;
	}
	if (started == 0)
		uncached_worker(&(struct worker){ .files = &f, .next = &next, .lat = lat });
	for (t = 0; t < started; t++) {
		pthread_join(w[t].thread, NULL);
		c.denied += w[t].counts.denied;
		c.errors += w[t].counts.errors;
	}
	wall = now_ns() - t0;
	for (i = 0; i < f.n; i++)
		if (lat[i])
			lat[n++] = lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("{\"files\": %zu, \"threads\": %ld, \"seconds\": %.6f, "
	       "\"verdicts_per_s\": %.0f, \"p50_us\": %.3f, \"p99_us\": %.3f, "
	       "\"denied\": %lu, \"errors\": %lu}\n",
	       f.n, started ? started : 1, (double)wall / 1e9,
	       (double)n * 1e9 / (double)(wall ? wall : 1), pct_us(lat, n, 0.50),
	       pct_us(lat, n, 0.99), (unsigned long)c.denied, (unsigned long)c.errors);
	free(lat);
	free_files(&f);
	return c.denied || c.errors;
}

/* nftw() passes no context: the totals of readtree. */
static struct {
	uint64_t files;
	uint64_t bytes;
	struct counts counts;
	char buf[1 << 16];
} tree;

static int read_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	ssize_t got;
	int fd;

	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		count_failure(&tree.counts, path, errno);
		return 0;
	}
	while ((got = read(fd, tree.buf, sizeof(tree.buf))) > 0)
		tree.bytes += (uint64_t)got;
	if (got < 0)
		count_failure(&tree.counts, path, errno);
	close(fd);
	tree.files++;
	return 0;
}

static int cmd_readtree(const char *dir, long passes)
{
	uint64_t t0 = now_ns();
	long p;

	for (p = 0; p < passes; p++)
		if (nftw(dir, read_one, 64, FTW_PHYS) != 0) {
			fprintf(stderr, "openbench: %s: %s\n", dir, strerror(errno));
			return 1;
		}
	printf("{\"files\": %lu, \"bytes\": %lu, \"seconds\": %.6f, \"denied\": %lu, "
	       "\"errors\": %lu}\n", (unsigned long)tree.files, (unsigned long)tree.bytes,
	       (double)(now_ns() - t0) / 1e9, (unsigned long)tree.counts.denied,
	       (unsigned long)tree.counts.errors);
	return tree.counts.denied || tree.counts.errors;
}

static int usage(void)
{
	fprintf(stderr, "usage: ward-openbench populate DIR COUNT SIZE\n"
		"       ward-openbench reopen DIR ROUNDS\n"
		"       ward-openbench uncached DIR THREADS\n"
		"       ward-openbench readtree DIR PASSES\n");
	return 2;
}

/* A positive decimal argument, or -1. */
static long number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || end == s || v <= 0 ? -1 : v;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "populate") == 0)
		return cmd_populate(argv[2], number(argv[3]), number(argv[4]));
	if (argc != 4)
		return usage();
	if (number(argv[3]) < 0)
		return usage();
	if (strcmp(argv[1], "reopen") == 0)
		return cmd_reopen(argv[2], number(argv[3]));
	if (strcmp(argv[1], "uncached") == 0)
		return cmd_uncached(argv[2], number(argv[3]));
	if (strcmp(argv[1], "readtree") == 0)
		return cmd_readtree(argv[2], number(argv[3]));
	return usage();
}
