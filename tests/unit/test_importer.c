/* test_importer.c -- reading a signature source directory: ClamAV's test
 * CVDs and custom files are inventoried, other files skipped, a corrupt
 * container fails the import naming it, and the digest follows changes. */
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>

#include <archive.h>
#include <archive_entry.h>

#include "check.h"
#include "engine/engine.h"
#include "server/importer.h"

#ifndef UPSTREAM_CVD_DIR
#error UPSTREAM_CVD_DIR must name the upstream test CVDs
#endif

static char msg[512];

static void copy(const char *from, const char *dir, const char *name, size_t cut, int flip)
{
	static unsigned char buf[1 << 16];
	FILE *f;
	size_t n;

	test_need(from);
	f = fopen(from, "rb");
	n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	CHECK(n > cut && n > 10);
	if (n <= cut || n <= 10)
		return;
	if (flip)
		buf[n - 10] ^= 1;
	free(test_write(dir, name, buf, n - cut));
}

/* Writes dir/name: test-3.cvd's header followed by a tar.gz holding one
 * member called member. */
static void forged_container(const char *dir, const char *name, const char *member)
{
	static unsigned char out[1 << 16];
	unsigned char head[512];
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	FILE *f = fopen(UPSTREAM_CVD_DIR "/test-3.cvd", "rb");
	size_t used = 0;

	CHECK(f && fread(head, 1, sizeof(head), f) == sizeof(head));
	if (f)
		fclose(f);
	memcpy(out, head, sizeof(head));
	archive_write_add_filter_gzip(a);
	archive_write_set_format_ustar(a);
	archive_write_open_memory(a, out + 512, sizeof(out) - 512, &used);
	archive_entry_set_pathname(e, member);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 5);
	archive_write_header(a, e);
	archive_write_data(a, "evil\n", 5);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	free(test_write(dir, name, out, 512 + used));
}

/* The unpacked test-6.cvd is a database libclamav loads: clam.exe is found
 * by the signature it holds. */
static void check_loads(const char *dir)
{
	struct engine_config cfg = { 0 };
	struct engine_result res;
	enum engine_err err;
	struct engine *e;
	char m[ENGINE_ERRLEN];
	int fd = open("/usr/share/clamav-testfiles/clam.exe", O_RDONLY);

	engine_limits_default(&cfg.limits);
	e = engine_new(&cfg, &err, m, sizeof(m));
	CHECK(e && engine_load(e, dir, m, sizeof(m)) == ENGINE_OK);
	CHECK(e && engine_compile(e, m, sizeof(m)) == ENGINE_OK);
	CHECK(fd >= 0 && e && engine_scan_fd(e, fd, "clam.exe", 0, NULL, NULL, &res, m,
					     sizeof(m)) == ENGINE_OK);
	CHECK(res.infected && res.nnames == 1);
	if (res.nnames)
		CHECK_STR_CONTAINS(res.names[0], "Clamav.Test.File-6");
	engine_result_clear(&res);
	engine_free(e);
	if (fd >= 0)
		close(fd);
}

static void test_unpack(void)
{
	char src[512], out[600], path[700];
	json_t *inv = NULL, *skipped = NULL, *bad;
	char d[65];
	struct stat sb;

	CHECK(import_scan(UPSTREAM_CVD_DIR, &inv, d, &skipped, msg, sizeof(msg)) == SERR_OK);
	snprintf(out, sizeof(out), "%s/unpacked", test_tmpdir());
	CHECK(import_unpack(UPSTREAM_CVD_DIR, inv, out, 1 << 20, msg, sizeof(msg)) == SERR_OK);
	snprintf(path, sizeof(path), "%s/test-3/test.hsb", out);
	CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode));
	snprintf(path, sizeof(path), "%s/test-6", out);
	check_loads(path);
	/* A member over the size limit fails the unpack. */
	snprintf(path, sizeof(path), "%s/small", test_tmpdir());
	CHECK(import_unpack(UPSTREAM_CVD_DIR, inv, path, 10, msg, sizeof(msg)) == SERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "larger than the limit");
	json_decref(inv);
	json_decref(skipped);

	/* A member that would escape its directory is refused. */
	snprintf(src, sizeof(src), "%s", test_tmpdir());
	forged_container(src, "bad.cvd", "../evil");
	bad = json_pack("[{ss ss}]", "name", "bad.cvd", "kind", "container");
	snprintf(out, sizeof(out), "%s/out", src);
	CHECK(import_unpack(src, bad, out, 1 << 20, msg, sizeof(msg)) == SERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "member '../evil' is not a plain file");
	snprintf(path, sizeof(path), "%s/evil", src);
	CHECK(stat(path, &sb) != 0);
	json_decref(bad);
}

int main(void)
{
	json_t *inv = NULL, *skipped = NULL;
	char d1[65], d2[65], dir[600];
	size_t i, containers = 0;
	json_t *e;

	for (i = 1; i <= 6; i++) {
		snprintf(dir, sizeof(dir), "%s/test-%zu.cvd", UPSTREAM_CVD_DIR, i);
		test_need(dir);
	}
	test_need("/usr/share/clamav-testfiles/clam.exe");
	if (sodium_init() < 0)
		return 1;
	CHECK(import_scan(UPSTREAM_CVD_DIR, &inv, d1, &skipped, msg, sizeof(msg)) == SERR_OK);
	json_array_foreach(inv, i, e)
		containers += strcmp(json_string_value(json_object_get(e, "kind")),
				     "container") == 0;
	CHECK(containers == 6);
	CHECK(json_integer_value(json_object_get(json_array_get(inv, 5), "version")) == 6);
	CHECK(json_array_size(skipped) > 0); /* EXPECTED_HEADERS.tsv */
	json_decref(inv);
	json_decref(skipped);
	CHECK(import_scan(UPSTREAM_CVD_DIR, &inv, d2, &skipped, msg, sizeof(msg)) == SERR_OK);
	CHECK(strcmp(d1, d2) == 0);
	json_decref(inv);
	json_decref(skipped);

	/* Custom files; a change to one changes the digest. */
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	free(test_write(dir, "local.ndb", "Local.Test:0:*:414243\n", 22));
	free(test_write(dir, "local.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Local.Eicar\n", 49));
	copy(UPSTREAM_CVD_DIR "/test-6.cvd", dir, "main.cvd", 0, 0);
	CHECK(import_scan(dir, &inv, d1, &skipped, msg, sizeof(msg)) == SERR_OK);
	CHECK(json_array_size(inv) == 3 && json_array_size(skipped) == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(inv, 0), "kind")), "hdb") ==
	      0);
	json_decref(inv);
	json_decref(skipped);
	free(test_write(dir, "local.ndb", "Local.Test:0:*:414244\n", 22));
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == SERR_OK);
	CHECK(strcmp(d1, d2) != 0);
	json_decref(inv);
	json_decref(skipped);

	/* A corrupt or truncated container fails the whole import, naming it. */
	copy(UPSTREAM_CVD_DIR "/test-5.cvd", dir, "daily.cvd", 0, 1);
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == SERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "daily.cvd: the body's MD5");
	CHECK(inv == NULL);
	copy(UPSTREAM_CVD_DIR "/test-5.cvd", dir, "daily.cvd", 3000, 0);
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == SERR_FORMAT);

	test_unpack();
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == SERR_EMPTY);
	CHECK_STR_CONTAINS(msg, "holds no signature file");
	CHECK(import_scan("/nonexistent/sigs", &inv, d2, &skipped, msg, sizeof(msg)) ==
	      SERR_IO);
	return check_finish();
}
