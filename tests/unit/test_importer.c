/* test_importer.c -- reading a signature source directory: ClamAV's test
 * CVDs and custom files are inventoried, other files skipped, a corrupt
 * container fails the import naming it, and the digest follows changes. */
#include <jansson.h>
#include <sodium.h>

#include "check.h"
#include "server/importer.h"

#ifndef UPSTREAM_CVD_DIR
#error UPSTREAM_CVD_DIR must name the upstream test CVDs
#endif

static char msg[512];

static void copy(const char *from, const char *dir, const char *name, size_t cut, int flip)
{
	static unsigned char buf[1 << 16];
	FILE *f = fopen(from, "rb");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

	if (f)
		fclose(f);
	if (flip)
		buf[n - 10] ^= 1;
	free(test_write(dir, name, buf, n - cut));
}

int main(void)
{
	json_t *inv = NULL, *skipped = NULL;
	char d1[65], d2[65], dir[600];
	size_t i, containers = 0;
	json_t *e;

	if (sodium_init() < 0)
		return 1;
	CHECK(import_scan(UPSTREAM_CVD_DIR, &inv, d1, &skipped, msg, sizeof(msg)) == IMPORT_OK);
	json_array_foreach(inv, i, e)
		containers += strcmp(json_string_value(json_object_get(e, "kind")),
				     "container") == 0;
	CHECK(containers == 6);
	CHECK(json_integer_value(json_object_get(json_array_get(inv, 5), "version")) == 6);
	CHECK(json_array_size(skipped) > 0); /* .cdiff, .sign, .tsv */
	json_decref(inv);
	json_decref(skipped);
	CHECK(import_scan(UPSTREAM_CVD_DIR, &inv, d2, &skipped, msg, sizeof(msg)) == IMPORT_OK);
	CHECK(strcmp(d1, d2) == 0);
	json_decref(inv);
	json_decref(skipped);

	/* Custom files; a change to one changes the digest. */
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	free(test_write(dir, "local.ndb", "Local.Test:0:*:414243\n", 22));
	free(test_write(dir, "local.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Local.Eicar\n", 49));
	copy(UPSTREAM_CVD_DIR "/test-6.cvd", dir, "main.cvd", 0, 0);
	CHECK(import_scan(dir, &inv, d1, &skipped, msg, sizeof(msg)) == IMPORT_OK);
	CHECK(json_array_size(inv) == 3 && json_array_size(skipped) == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(inv, 0), "kind")), "hdb") ==
	      0);
	json_decref(inv);
	json_decref(skipped);
	free(test_write(dir, "local.ndb", "Local.Test:0:*:414244\n", 22));
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == IMPORT_OK);
	CHECK(strcmp(d1, d2) != 0);
	json_decref(inv);
	json_decref(skipped);

	/* A corrupt or truncated container fails the whole import, naming it. */
	copy(UPSTREAM_CVD_DIR "/test-5.cvd", dir, "daily.cvd", 0, 1);
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == IMPORT_EBAD);
	CHECK_STR_CONTAINS(msg, "daily.cvd: the body's MD5");
	CHECK(inv == NULL);
	copy(UPSTREAM_CVD_DIR "/test-5.cvd", dir, "daily.cvd", 3000, 0);
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == IMPORT_EBAD);

	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	CHECK(import_scan(dir, &inv, d2, &skipped, msg, sizeof(msg)) == IMPORT_EEMPTY);
	CHECK_STR_CONTAINS(msg, "holds no signature file");
	CHECK(import_scan("/nonexistent/sigs", &inv, d2, &skipped, msg, sizeof(msg)) ==
	      IMPORT_EIO);
	return check_finish();
}
