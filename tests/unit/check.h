/* check.h -- minimal assertions for Ward's unit tests.
 *
 * CHECK records a failure with its location and goes on, so one run shows
 * every broken expectation; check_finish() prints the tally and gives the
 * exit status for ctest. */
#ifndef WARD_TEST_CHECK_H
#define WARD_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_passed, check_failed;

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
	return path;
}

/* Writes n bytes to dir/name and returns the path in a new allocation.
 * Aborts on failure. */
static inline char *test_write(const char *dir, const char *name, const void *data, size_t n)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	FILE *f;

	if (!path)
		abort();
	sprintf(path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

/* Prints "N passed, N failed" and returns the exit status. */
static inline int check_finish(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
