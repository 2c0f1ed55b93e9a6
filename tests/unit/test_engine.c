/* test_engine.c -- the engine interface on the real libclamav. */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/time.h>

#include "check.h"
#include "engine/engine.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

#define TESTFILES "/usr/share/clamav-testfiles"

static struct engine *new_engine(bool allmatch, bool hook)
{
	struct engine_config cfg = { .allmatch = allmatch, .layer_hook = hook };
	enum engine_err err;
	char msg[ENGINE_ERRLEN];
	struct engine *e;

	engine_limits_default(&cfg.limits);
	e = engine_new(&cfg, &err, msg, sizeof(msg));
	CHECK(e != NULL && err == ENGINE_OK);
	return e;
}

/* Scans path; returns the result code and fills *res. */
static enum engine_err scan_path(struct engine *e, const char *path, struct engine_result *res,
				 engine_layer_fn hook, void *arg)
{
	char msg[ENGINE_ERRLEN];
	enum engine_err rc;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	rc = engine_scan_fd(e, fd, path, 0, hook, arg, res, msg, sizeof(msg));
	close(fd);
	return rc;
}

static void test_builtin_eicar(const char *dir)
{
	struct engine *e = new_engine(false, false);
	struct engine_result res;
	char msg[ENGINE_ERRLEN], withnl[sizeof(eicar) + 1];
	char *plain = test_write(dir, "eicar.com", eicar, sizeof(eicar) - 1);
	char *nl, *clean = test_write(dir, "clean.txt", "hello\n", 6);

	snprintf(withnl, sizeof(withnl), "%s\n", eicar);
	nl = test_write(dir, "eicar-nl.com", withnl, sizeof(eicar));
	CHECK(engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_signatures(e) == 1);
	/* Scanning before compiling is refused, not undefined. */
	CHECK(scan_path(e, plain, &res, NULL, NULL) == ENGINE_ESTATE);
	engine_result_clear(&res);
	CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);

	CHECK(scan_path(e, plain, &res, NULL, NULL) == ENGINE_OK);
	CHECK(res.infected && res.nnames == 1);
	if (res.nnames)
		CHECK_STR_CONTAINS(res.names[0], "Eicar-Test-Signature");
	engine_result_clear(&res);
	CHECK(scan_path(e, nl, &res, NULL, NULL) == ENGINE_OK && res.infected);
	engine_result_clear(&res);
	CHECK(scan_path(e, clean, &res, NULL, NULL) == ENGINE_OK && !res.infected);
	CHECK(res.nnames == 0);
	engine_result_clear(&res);
	engine_free(e);
	free(plain);
	free(nl);
	free(clean);
}

static void test_hash_and_allmatch(const char *dir)
{
	char msg[ENGINE_ERRLEN];
	/* MD5 of the EICAR file, and a body signature on part of it. */
	const char hdb[] = "44d88612fea8a8f36de82e1278abb02f:68:Test.Eicar.Hash\n";
	const char ndb[] = "Test.Eicar.Body:0:*:4549434152{-4}5354414e44415244\n";
	char *hpath = test_write(dir, "t.hdb", hdb, sizeof(hdb) - 1);
	char *npath = test_write(dir, "t.ndb", ndb, sizeof(ndb) - 1);
	char *file = test_write(dir, "e.com", eicar, sizeof(eicar) - 1);
	struct engine_result res;
	struct engine *e;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		e = new_engine(pass == 1, false);
		CHECK(engine_load(e, hpath, msg, sizeof(msg)) == ENGINE_OK);
		CHECK(engine_load(e, npath, msg, sizeof(msg)) == ENGINE_OK);
		CHECK(engine_signatures(e) == 2);
		CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
		CHECK(scan_path(e, file, &res, NULL, NULL) == ENGINE_OK && res.infected);
		/* allmatch reports both signatures; otherwise the first. */
		CHECK(res.nnames == (pass == 1 ? 2u : 1u));
		engine_result_clear(&res);
		engine_free(e);
	}
	free(hpath);
	free(npath);
	free(file);
}

static void test_bad_databases(const char *dir)
{
	struct engine *e;
	char msg[ENGINE_ERRLEN], missing[600];
	const char bad2[] = "44d88612fea8a8f36de82e1278abb02f:68:Good\nnot:a:valid\n";
	char *bad = test_write(dir, "bad.hdb", "garbage line here\n", 18);
	char *badline2 = test_write(dir, "bad2.hdb", bad2, sizeof(bad2) - 1);
	char *empty = test_write(dir, "empty.hdb", "", 0);

	e = new_engine(false, false);
	CHECK(engine_load(e, bad, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "bad.hdb");
	CHECK_STR_CONTAINS(msg, "line 1");
	engine_free(e);

	e = new_engine(false, false);
	CHECK(engine_load(e, badline2, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "bad2.hdb");
	CHECK_STR_CONTAINS(msg, "size field");
	engine_free(e);

	e = new_engine(false, false);
	CHECK(engine_load(e, empty, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "Empty database file");
	engine_free(e);

	e = new_engine(false, false);
	snprintf(missing, sizeof(missing), "%s/nonexistent.cvd", dir);
	CHECK(engine_load(e, missing, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "nonexistent.cvd: No such file or directory");
	engine_free(e);

	e = new_engine(false, false);
	snprintf(missing, sizeof(missing), "%s/emptydir", dir);
	mkdir(missing, 0700);
	CHECK(engine_load(e, missing, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "No supported database files");
	engine_free(e);
	free(bad);
	free(badline2);
	free(empty);
}

struct layers_seen {
	unsigned count;
	unsigned max_depth;
	bool outer_zip;
	bool member_matches;
};

static enum engine_layer_action on_layer(const struct engine_layer *l, void *arg)
{
	struct layers_seen *seen = arg;
	static unsigned char clam[544];
	static bool loaded;

	if (!loaded) {
		FILE *f = fopen(TESTFILES "/clam.exe", "rb");

		loaded = f && fread(clam, 1, sizeof(clam), f) == sizeof(clam);
		if (f)
			fclose(f);
	}
	seen->count++;
	if (l->depth > seen->max_depth)
		seen->max_depth = l->depth;
	if (l->depth == 0 && l->type && strcmp(l->type, "CL_TYPE_ZIP") == 0)
		seen->outer_zip = true;
	if (l->depth == 1 && l->size == sizeof(clam) && loaded && l->data &&
	    memcmp(l->data, clam, sizeof(clam)) == 0)
		seen->member_matches = true;
	return ENGINE_LAYER_SCAN;
}

static void test_layer_hook(void)
{
	struct engine *e = new_engine(false, true);
	struct layers_seen seen = { 0 };
	struct engine_result res;
	char msg[ENGINE_ERRLEN];

	CHECK(engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(scan_path(e, TESTFILES "/clam.zip", &res, on_layer, &seen) == ENGINE_OK);
	/* The zip itself, then clam.exe extracted from it, bytes intact. */
	CHECK(seen.outer_zip);
	CHECK(seen.member_matches);
	CHECK(seen.count >= 2);
	CHECK(seen.max_depth >= 1);
	engine_result_clear(&res);
	engine_free(e);
}

/* A hook that decides by depth: what one scan of clam.zip should do. */
struct decide {
	uint32_t detect_depth, skip_depth;  /* UINT32_MAX: none */
	const char *names[2];
	unsigned layers;
};

static enum engine_layer_action on_decide(const struct engine_layer *l, void *arg)
{
	struct decide *d = arg;
	size_t i;

	d->layers++;
	if (l->depth == d->skip_depth)
		return ENGINE_LAYER_SKIP;
	for (i = 0; l->depth == d->detect_depth && i < 2 && d->names[i]; i++)
		CHECK(engine_layer_detect(l, d->names[i]) == 0);
	return ENGINE_LAYER_SCAN;
}

/* The hook's decisions stand in for hash signatures: a detection at a
 * member's layer, every name with allmatch and the first without; a
 * skipped layer hides what it holds; the same file scans again the same
 * way (libclamav's clean cache, off with a hook, would have skipped the
 * member the second time). */
static void test_layer_decisions(void)
{
	struct decide d = { 1, UINT32_MAX, { "Ward.Test.A", "Ward.Test.B" }, 0 };
	struct engine_result res;
	char msg[ENGINE_ERRLEN];
	struct engine *e;
	int pass, round;

	for (pass = 0; pass < 2; pass++) {
		e = new_engine(pass == 1, true);
		CHECK(engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK);
		CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
		for (round = 0; round < 2; round++) {
			d.detect_depth = round == 0 ? UINT32_MAX : 1;
			CHECK(scan_path(e, TESTFILES "/clam.zip", &res, on_decide, &d) ==
			      ENGINE_OK);
			CHECK(res.infected == (round == 1));
			CHECK(res.nnames == (round == 0 ? 0u : pass == 1 ? 2u : 1u));
			if (res.nnames >= 1)
				CHECK_STR_EQ(res.names[0], "Ward.Test.A");
			if (res.nnames == 2)
				CHECK_STR_EQ(res.names[1], "Ward.Test.B");
			engine_result_clear(&res);
		}
		/* Skipping the zip skips the member and its detection. */
		d.skip_depth = 0;
		d.layers = 0;
		CHECK(scan_path(e, TESTFILES "/clam.zip", &res, on_decide, &d) == ENGINE_OK);
		CHECK(!res.infected && d.layers == 1);
		engine_result_clear(&res);
		d.skip_depth = UINT32_MAX;
		engine_free(e);
	}
}

/* Ward's own components load as official: names without ".UNOFFICIAL". */
static void test_official(const char *dir)
{
	const char hdb[] = "44d88612fea8a8f36de82e1278abb02f:68:Test.Eicar.Hash\n";
	char *hpath = test_write(dir, "o.hdb", hdb, sizeof(hdb) - 1);
	char *file = test_write(dir, "o.com", eicar, sizeof(eicar) - 1);
	struct engine_config cfg = { 0 };
	struct engine_result res;
	char msg[ENGINE_ERRLEN];
	enum engine_err err;
	struct engine *e;
	int pass;

	engine_limits_default(&cfg.limits);
	for (pass = 0; pass < 2; pass++) {
		cfg.official = pass == 1;
		e = engine_new(&cfg, &err, msg, sizeof(msg));
		CHECK(e && engine_load(e, hpath, msg, sizeof(msg)) == ENGINE_OK &&
		      engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
		CHECK(scan_path(e, file, &res, NULL, NULL) == ENGINE_OK && res.nnames == 1);
		if (res.nnames == 1)
			CHECK_STR_EQ(res.names[0], pass == 1 ? "Test.Eicar.Hash" :
				     "Test.Eicar.Hash.UNOFFICIAL");
		engine_result_clear(&res);
		engine_free(e);
	}
	free(hpath);
	free(file);
}

static void test_limits(const char *dir)
{
	struct engine_config cfg = { 0 };
	struct engine_result res;
	enum engine_err err;
	char msg[ENGINE_ERRLEN], big[4096];
	char *path;
	struct engine *e;

	/* EICAR at offset 0 of a 4 KiB file: found by default, not when the
	 * file is over the size limit. */
	memset(big, ' ', sizeof(big));
	memcpy(big, eicar, sizeof(eicar) - 1);
	path = test_write(dir, "big.com", big, sizeof(big));
	engine_limits_default(&cfg.limits);
	cfg.limits.max_filesize = 1024;
	e = engine_new(&cfg, &err, msg, sizeof(msg));
	CHECK(e && engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(scan_path(e, path, &res, NULL, NULL) == ENGINE_OK && !res.infected);
	engine_result_clear(&res);
	engine_free(e);

	e = new_engine(false, false);
	CHECK(e && engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(scan_path(e, path, &res, NULL, NULL) == ENGINE_OK && res.infected);
	engine_result_clear(&res);
	engine_free(e);
	free(path);
}

/* Files up to 32 MiB are read through a map Ward builds, larger ones
 * through libclamav's own: a signature at the very end must be found on
 * both sides of that boundary, and nothing in a clean file of either size. */
static void test_map_paths(const char *dir)
{
	static const size_t sizes[] = { 1 << 20, (32 << 20) + 4096 };
	char msg[ENGINE_ERRLEN], ndb[256], hex[2 * sizeof(eicar)];
	struct engine_result res;
	struct engine *e = new_engine(false, false);
	char *db, *path, *buf;
	size_t i, n = 0;

	for (i = 0; i < sizeof(eicar) - 1; i++)
		n += (size_t)snprintf(hex + n, sizeof(hex) - n, "%02x", (unsigned char)eicar[i]);
	snprintf(ndb, sizeof(ndb), "Test.Tail:0:EOF-%zu:%s\n", sizeof(eicar) - 1, hex);
	db = test_write(dir, "tail.ndb", ndb, strlen(ndb));
	CHECK(engine_load(e, db, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
	buf = calloc(1, sizes[1]);
	CHECK(buf != NULL);
	for (i = 0; buf && i < 2; i++) {
		memset(buf, 'a', sizes[i]);
		path = test_write(dir, "tail.bin", buf, sizes[i]);
		CHECK(scan_path(e, path, &res, NULL, NULL) == ENGINE_OK && !res.infected);
		engine_result_clear(&res);
		free(path);
		memcpy(buf + sizes[i] - (sizeof(eicar) - 1), eicar, sizeof(eicar) - 1);
		path = test_write(dir, "tail.bin", buf, sizes[i]);
		CHECK(scan_path(e, path, &res, NULL, NULL) == ENGINE_OK && res.infected);
		if (res.nnames)
			CHECK_STR_CONTAINS(res.names[0], "Test.Tail");
		engine_result_clear(&res);
		free(path);
	}
	free(buf);
	free(db);
	engine_free(e);
}

static void test_sigset_id(const char *dir)
{
	struct engine_config cfg = { 0 };
	unsigned char a[32], b[32], c[32];
	char msg[ENGINE_ERRLEN], sub[600];
	const char *paths[1];
	char *db;
	struct timeval tv[2] = { { 1000000, 0 }, { 1000000, 0 } };

	snprintf(sub, sizeof(sub), "%s/db", dir);
	mkdir(sub, 0700);
	db = test_write(sub, "x.hdb", "44d88612fea8a8f36de82e1278abb02f:68:X\n", 38);
	paths[0] = sub;
	engine_limits_default(&cfg.limits);
	CHECK(engine_sigset_id(paths, 1, false, &cfg, a, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(engine_sigset_id(paths, 1, false, &cfg, b, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(memcmp(a, b, 32) == 0);
	/* Touching a database (even back to an old mtime) changes its ctime. */
	utimes(db, tv);
	CHECK(engine_sigset_id(paths, 1, false, &cfg, b, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(memcmp(a, b, 32) != 0);
	cfg.allmatch = true;
	CHECK(engine_sigset_id(paths, 1, false, &cfg, c, msg, sizeof(msg)) == ENGINE_OK);
	CHECK(memcmp(b, c, 32) != 0);
	paths[0] = "/nonexistent/db";
	CHECK(engine_sigset_id(paths, 1, false, &cfg, c, msg, sizeof(msg)) == ENGINE_EDB);
	CHECK_STR_CONTAINS(msg, "/nonexistent/db");
	free(db);
}

int main(void)
{
	const char *tmp = test_tmpdir();
	char dir[512];

	snprintf(dir, sizeof(dir), "%s", tmp);
	test_builtin_eicar(dir);
	test_hash_and_allmatch(dir);
	test_bad_databases(dir);
	test_layer_hook();
	test_layer_decisions();
	test_official(dir);
	test_limits(dir);
	test_map_paths(dir);
	test_sigset_id(dir);
	return check_finish();
}
