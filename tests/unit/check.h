/* check.h -- minimal assertions for Ward's unit tests.
 *
 * CHECK records a failure with its location and goes on, so one run shows
 * every broken expectation; check_finish() prints the tally and gives the
 * exit status for ctest. */
#ifndef WARD_TEST_CHECK_H
#define WARD_TEST_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_passed, check_failed;

/* Directories made by test_tmpdir(), removed by check_finish(). */
static char test_dirs[64][512];
static int test_ndirs;

#define CHECK(cond) do { \
	if (cond) { \
		check_passed++; \
	} else { \
		check_failed++; \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_STR_CONTAINS(hay, needle) do { \
	const char *h_ = (hay); \
	CHECK(h_ != NULL && strstr(h_, (needle)) != NULL); \
	if (!h_ || !strstr(h_, (needle))) \
		fprintf(stderr, "    '%s' does not contain '%s'\n", h_ ? h_ : "(null)", (needle)); \
} while (0)

#define CHECK_STR_EQ(got, want) do { \
	const char *g_ = (got); \
	CHECK(g_ != NULL && strcmp(g_, (want)) == 0); \
	if (!g_ || strcmp(g_, (want)) != 0) \
		fprintf(stderr, "    got '%s', want '%s'\n", g_ ? g_ : "(null)", (want)); \
} while (0)

/* Checks that validate (a validator of JSON taking an error buffer, as
 * grouping_validate() and sources_validate()) refuses the JSON text with a
 * message containing want. A macro: a failure names the caller's line, and
 * only the tests that use it need jansson. */
#define CHECK_REFUSED(validate, text, want) do { \
	json_t *j_ = json_loads((text), 0, NULL); \
	char m_[512] = ""; \
	CHECK(j_ != NULL && !validate(j_, m_, sizeof(m_))); \
	CHECK_STR_CONTAINS(m_, (want)); \
	json_decref(j_); \
} while (0)

/* How many entries of dir have names starting with prefix (0 when dir
 * cannot be read). */
static inline int test_count_prefixed(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

/* Exits with status 1 and a message naming path when the test fixture
 * path cannot be read: a missing fixture fails the test before anything
 * reads it, never as a crash further on. */
static inline void test_need(const char *path)
{
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "missing test fixture: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path
 * in static storage, which the next call overwrites. Aborts on failure. */
static inline const char *test_tmpdir(void)
{
	static char path[512];
	const char *base = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/ward-test-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	if (test_ndirs < 64)
		snprintf(test_dirs[test_ndirs++], sizeof(test_dirs[0]), "%s", path);
	return path;
}

/* Writes n bytes to dir/name and returns the path in a new allocation.
 * Aborts on failure. */
static inline char *test_write(const char *dir, const char *name, const void *data, size_t n)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *path = malloc(len);
	FILE *f;

	if (!path)
		abort();
	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

/* The value of field in /proc/PID/status (a process's credentials and
 * confinement), or "" when absent, in static storage the next call
 * overwrites. */
static inline const char *test_status_field(pid_t pid, const char *field)
{
	static char value[128];
	char path[64], line[256];
	size_t n = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	value[0] = 0;
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			snprintf(value, sizeof(value), "%s",
				 line + n + 1 + strspn(line + n + 1, " \t"));
			value[strcspn(value, "\n")] = 0;
		}
	if (f)
		fclose(f);
	return value;
}

/* nftw() callback: removes one entry, making it removable first. */
static inline int test_remove(const char *path, const struct stat *st, int flag,
			      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	remove(path);
	return 0;
}

/* Removes the test directories (and the "-cache" ones beside them), prints
 * "N passed, N failed" and returns the exit status. */
static inline int check_finish(void)
{
	char sibling[600];
	int i;

	for (i = 0; i < test_ndirs; i++) {
		snprintf(sibling, sizeof(sibling), "%.500s-cache", test_dirs[i]);
		nftw(sibling, test_remove, 16, FTW_DEPTH | FTW_PHYS);
		nftw(test_dirs[i], test_remove, 16, FTW_DEPTH | FTW_PHYS);
	}
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
