/* test_cvd.c -- CVD headers and checks on ClamAV's own signed test CVDs
 * (tests/data/clamav/cvd): every header as upstream
 * lists it; a flipped body byte, a truncated file, a forged header and a
 * header alone are refused with a message naming the file. */
#include <unistd.h>

#include "check.h"
#include "server/cvd.h"

#ifndef UPSTREAM_CVD_DIR
#error UPSTREAM_CVD_DIR must name the upstream test CVDs
#endif

static char msg[512];

static void test_upstream_headers(void)
{
	char path[1024], line[1024], file[64], stime[32], md5[40], builder[64];
	unsigned version, sigs, flevel;
	struct cvd_header h;
	FILE *f;
	int checked = 0;

	test_need(UPSTREAM_CVD_DIR "/EXPECTED_HEADERS.tsv");
	f = fopen(UPSTREAM_CVD_DIR "/EXPECTED_HEADERS.tsv", "r");
	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		/* file, build time (with spaces), version, sigs, flevel, md5, builder, stime */
		if (sscanf(line, "%63[^\t]\t%*[^\t]\t%u\t%u\t%u\t%39[^\t]\t%63[^\t]\t%31[^\t]",
			   file, &version, &sigs, &flevel, md5, builder, stime) != 7)
			continue;
		snprintf(path, sizeof(path), "%s/%s", UPSTREAM_CVD_DIR, file);
		test_need(path);
		CHECK(cvd_check_file(path, &h, msg, sizeof(msg)) == SERR_OK);
		CHECK(h.version == version && h.sigs == sigs && h.flevel == flevel);
		CHECK(strcmp(h.md5, md5) == 0 && strcmp(h.builder, builder) == 0);
		CHECK(h.stime == strtoull(stime, NULL, 10));
		checked++;
	}
	CHECK(checked == 6);
	if (f)
		fclose(f);
}

/* Copies the upstream test-3.cvd with bytes changed by fn. */
static char *altered(const char *dir, const char *name, void (*fn)(unsigned char *, size_t *))
{
	static unsigned char buf[1 << 16];
	FILE *f;
	size_t n;

	test_need(UPSTREAM_CVD_DIR "/test-3.cvd");
	f = fopen(UPSTREAM_CVD_DIR "/test-3.cvd", "rb");
	n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	fn(buf, &n);
	return test_write(dir, name, buf, n);
}

/* cvd_check_file() of altered(dir, name, fn): its answer, msg and *h. */
static enum serr check_altered(const char *dir, const char *name,
			       void (*fn)(unsigned char *, size_t *), struct cvd_header *h)
{
	char *p = altered(dir, name, fn);
	enum serr rc = cvd_check_file(p, h, msg, sizeof(msg));

	free(p);
	return rc;
}

static void flip_body(unsigned char *b, size_t *n)
{
	b[*n - 10] ^= 1;
}

static void truncate_half(unsigned char *b, size_t *n)
{
	(void)b;
	*n /= 2;
}

static void forge_version(unsigned char *b, size_t *n)
{
	(void)n;
	/* "ClamAV-VDB:22 Jun 2021 20-40 -0400:3:" -> version 4 */
	b[strlen("ClamAV-VDB:22 Jun 2021 20-40 -0400:")] = '4';
}

static void header_only(unsigned char *b, size_t *n)
{
	(void)b;
	*n = 512;
}

int main(void)
{
	const char *dir = test_tmpdir();
	struct cvd_header h;
	char *p;

	test_upstream_headers();

	CHECK(check_altered(dir, "flipped.cvd", flip_body, &h) == SERR_HASH);
	CHECK_STR_CONTAINS(msg, "flipped.cvd: the body's MD5");
	CHECK(check_altered(dir, "half.cvd", truncate_half, &h) == SERR_HASH);
	CHECK(check_altered(dir, "forged.cvd", forge_version, &h) == SERR_SIG);
	CHECK_STR_CONTAINS(msg, "digital signature does not verify");
	CHECK(check_altered(dir, "empty.cvd", header_only, &h) == SERR_HASH);
	/* A CLD's header is all that is checked. */
	CHECK(check_altered(dir, "daily.cld", flip_body, &h) == SERR_OK && h.version == 3);
	p = test_write(dir, "junk.cvd", "not a database", 14);
	CHECK(cvd_check_file(p, &h, msg, sizeof(msg)) == SERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "junk.cvd: not a CVD/CLD");
	free(p);
	CHECK(cvd_check_file("/nonexistent/x.cvd", &h, msg, sizeof(msg)) == SERR_IO);
	return check_finish();
}
