/* test_comp.c -- components from a ClamAV source: set deltas (random sets
 * round-trip, a delta refuses another base and any malformed byte), the
 * three components built from ClamAV's test CVD and custom files, full and
 * delta packages put together and checked file by file. */
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>

#include "check.h"
#include "common/comp.h"
#include "common/pkg.h"
#include "common/pset.h"
#include "common/sdelta.h"
#include "engine/engine.h"
#include "server/builder.h"
#include "server/importer.h"

#ifndef UPSTREAM_CVD_DIR
#error UPSTREAM_CVD_DIR must name the upstream test CVDs
#endif

static char msg[512];

/* A set of n random records of width w (or lines when w is 0). */
static void random_set(struct util_buf *out, size_t n, size_t w, uint32_t seed)
{
	struct util_buf raw = { 0 };
	unsigned char rec[16];
	size_t i;

	for (i = 0; i < n; i++) {
		randombytes_buf_deterministic(rec, sizeof(rec), (unsigned char[32]){
			(unsigned char)seed, (unsigned char)(seed >> 8), (unsigned char)i,
			(unsigned char)(i >> 8), (unsigned char)(i >> 16) });
		if (w)
			util_buf_append(&raw, rec, w);
		else
			util_buf_printf(&raw, "%02x%02x%02x:%u:Sig-%zu\n", rec[0], rec[1], rec[2],
					rec[3], i);
	}
	sdelta_normalize(raw.data, raw.len, w, out);
	util_buf_free(&raw);
}

/* Mixes b into a: keeps a's elements except every 7th, adds b's. */
static void mutate(const struct util_buf *a, const struct util_buf *b, size_t w,
		   struct util_buf *out)
{
	struct util_buf raw = { 0 };
	size_t i = 0, k = 0, len;
	const char *nl;

	while (i < a->len) {
		nl = w ? NULL : memchr(a->data + i, '\n', a->len - i);
		len = w ? w : (size_t)(nl - (a->data + i)) + 1;
		if (k++ % 7)
			util_buf_append(&raw, a->data + i, len);
		i += len;
	}
	util_buf_append(&raw, b->data, b->len);
	sdelta_normalize(raw.data, raw.len, w, out);
	util_buf_free(&raw);
}

static void check_round_trip(size_t w)
{
	struct util_buf a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, r = { 0 }, bad = { 0 };
	size_t i;

	random_set(&a, 5000, w, 1);
	random_set(&b, 300, w, 2);
	mutate(&a, &b, w, &c);
	CHECK(sdelta_make(a.data, a.len, c.data, c.len, w, &d) == ERR_OK);
	CHECK(d.len < c.len / 4);
	CHECK(sdelta_apply(a.data, a.len, d.data, d.len, &r, msg, sizeof(msg)) == ERR_OK);
	CHECK(r.len == c.len && memcmp(r.data, c.data, c.len) == 0);
	util_buf_free(&r);
	/* Applied to the new set instead of the old: refused as another base. */
	CHECK(sdelta_apply(c.data, c.len, d.data, d.len, &r, msg, sizeof(msg)) == ERR_BASE);
	util_buf_free(&r);
	/* Every truncation is refused, never half applied. */
	for (i = 41; i < d.len; i += d.len / 50 + 1) {
		CHECK(sdelta_apply(a.data, a.len, d.data, i, &r, msg, sizeof(msg)) ==
		      ERR_FORMAT);
		util_buf_free(&r);
	}
	/* An addition already present is refused. */
	{
		unsigned char hash[32], wb = (unsigned char)w;
		size_t first = w ? w : (size_t)((char *)memchr(a.data, '\n', a.len) - a.data) + 1;

		crypto_hash_sha256(hash, (const unsigned char *)a.data, a.len);
		util_buf_append(&bad, "WSDELTA2", 8);
		util_buf_append(&bad, &wb, 1);
		util_buf_append(&bad, hash, 32);
		util_buf_append(&bad, "\0\1", 2);
		if (w && w <= 8) {
			/* Records of up to 8 bytes travel as LEB128 numbers. */
			uint64_t v = 0;
			unsigned char byte;

			for (i = 0; i < w; i++)
				v = v << 8 | (unsigned char)a.data[i];
			do {
				byte = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
				util_buf_append(&bad, &byte, 1);
				v >>= 7;
			} while (v);
		} else {
			util_buf_append(&bad, a.data, first);
		}
		CHECK(sdelta_apply(a.data, a.len, bad.data, bad.len, &r, msg, sizeof(msg)) ==
		      ERR_FORMAT);
		CHECK_STR_CONTAINS(msg, "already in the set");
		util_buf_free(&r);
	}
	/* Identical sets: an empty delta. */
	util_buf_free(&d);
	CHECK(sdelta_make(a.data, a.len, a.data, a.len, w, &d) == ERR_OK);
	CHECK(sdelta_apply(a.data, a.len, d.data, d.len, &r, msg, sizeof(msg)) == ERR_OK);
	CHECK(r.len == a.len);
	util_buf_free(&a);
	util_buf_free(&b);
	util_buf_free(&c);
	util_buf_free(&d);
	util_buf_free(&r);
	util_buf_free(&bad);
}

static void check_normalize(void)
{
	struct util_buf out = { 0 }, d = { 0 };
	const char *in = "b:2:x\r\n\na:1:y\nb:2:x\nc:3:z";

	CHECK(sdelta_normalize(in, strlen(in), 0, &out) == ERR_OK);
	CHECK(out.len == 18 && memcmp(out.data, "a:1:y\nb:2:x\nc:3:z\n", 18) == 0);
	/* A set out of order is not a set. */
	CHECK(sdelta_make("b\na\n", 4, out.data, out.len, 0, &d) == ERR_FORMAT);
	CHECK(sdelta_normalize("abc", 3, 2, &d) == ERR_FORMAT);
	util_buf_free(&out);
	util_buf_free(&d);
}

static void copy_file(const char *from, const char *dir, const char *name)
{
	size_t n;
	char *data;

	test_need(from);
	data = util_read_file(from, 1 << 24, &n);
	CHECK(data != NULL);
	if (data)
		free(test_write(dir, name, data, n));
	free(data);
}

/* Imports src into a fresh tree and builds the components into out. */
static enum serr build_from(const char *src, char *out, size_t outlen)
{
	json_t *inv = NULL, *skipped = NULL;
	char digest[65], unpacked[600];
	enum serr err = SERR_IO;

	snprintf(out, outlen, "%s", test_tmpdir());
	snprintf(unpacked, sizeof(unpacked), "%s/unpacked", out);
	if (import_scan(src, &inv, digest, &skipped, msg, sizeof(msg)) == SERR_OK &&
	    import_unpack(src, inv, unpacked, 1 << 24, msg, sizeof(msg)) == SERR_OK) {
		err = build_contents(unpacked, out, msg, sizeof(msg));
	}
	json_decref(inv);
	json_decref(skipped);
	return err;
}

static bool has_file(const char *dir, const char *comp, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, comp, name);
	return access(path, F_OK) == 0;
}

/* Scans clam.exe with the component in dir; returns the signature name. */
static char *detect(const char *dir)
{
	struct engine_config cfg = { 0 };
	struct engine_result res = { 0 };
	enum engine_err err;
	struct engine *e;
	char m[ENGINE_ERRLEN], *name = NULL;
	int fd = open("/usr/share/clamav-testfiles/clam.exe", O_RDONLY);

	engine_limits_default(&cfg.limits);
	e = engine_new(&cfg, &err, m, sizeof(m));
	if (e && engine_load(e, dir, m, sizeof(m)) == ENGINE_OK &&
	    engine_compile(e, m, sizeof(m)) == ENGINE_OK &&
	    engine_scan_fd(e, fd, "clam.exe", 0, NULL, NULL, &res, m, sizeof(m)) == ENGINE_OK &&
	    res.infected)
		name = strdup(res.names[0]);
	engine_result_clear(&res);
	engine_free(e);
	if (fd >= 0)
		close(fd);
	return name;
}

/* Opens env with pk, checks the payload and puts the version together
 * into out from installed. */
static enum err install(const char *env, const unsigned char *pk, const char *payload,
			const char *installed, const char *out)
{
	json_t *m = NULL;
	char work[600];
	enum err err = ERR_FORMAT;

	snprintf(work, sizeof(work), "%s", test_tmpdir());
	if (pkg_open(env, strlen(env), pk, &m, msg, sizeof(msg)) == ERR_OK &&
	    pkg_check_payload(m, json_string_value(json_object_get(json_array_get(
		    json_object_get(m, "payloads"), 0), "name")), payload, msg, sizeof(msg)) ==
	    ERR_OK)
		err = comp_assemble(m, payload, installed, work, out, msg, sizeof(msg));
	json_decref(m);
	return err;
}

/* Whether the agent pattern's prefix file at path holds the prefix of
 * check_components()' custom SHA-256 hash (71e7b604...). */
static bool has_custom_prefix(const char *path)
{
	size_t n;
	char *text = util_read_file(path, 1 << 20, &n);
	struct pset *ps = text ? pset_load(text, n, msg, sizeof(msg)) : NULL;
	bool has = ps && pset_has(ps, COMP_SHA256, (const unsigned char *)"\x71\xe7\xb6\x04");

	pset_free(ps);
	free(text);
	return has;
}

static void check_components(void)
{
	unsigned char pk[PKG_PK_BYTES], sk[PKG_SK_BYTES];
	char v1[600], v2[600], src[600], path[1024], dir1[1024], dir2[1024], out[1024];
	char *env_full = NULL, *env_delta = NULL, *name;
	const char *hsb_line = "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495"
			       ":544:Custom.Test\n";
	int64_t full_size = 0, delta_size = 0;
	size_t n;
	char *text;

	pkg_keygen(pk, sk);
	snprintf(src, sizeof(src), "%s", test_tmpdir());
	copy_file(UPSTREAM_CVD_DIR "/test-5.cvd", src, "main.cvd");
	copy_file(UPSTREAM_CVD_DIR "/../sigs/Clamav-Unit-Test-Signature.ndb", src, "local.ndb");
	free(test_write(src, "local.fp", "0123456789abcdef0123456789abcdef:10:FP.Test\n", 44));
	CHECK(build_from(src, v1, sizeof(v1)) == SERR_OK);
	/* The hashes go to the smart pattern; the rest stays with the agent. */
	CHECK(has_file(v1, "virus-pattern", "test.hdb"));
	CHECK(has_file(v1, "virus-pattern", "local.ndb"));
	CHECK(has_file(v1, "virus-pattern", "local.fp"));
	CHECK(!has_file(v1, "smart-agent-pattern", "test.hdb"));
	CHECK(!has_file(v1, "smart-agent-pattern", "local.fp"));
	CHECK(has_file(v1, "smart-agent-pattern", "local.ndb"));
	CHECK(has_file(v1, "smart-agent-pattern", COMP_PREFIX_FILE));
	CHECK(!has_file(v1, "virus-pattern", "test.info"));
	snprintf(path, sizeof(path), "%s/smart-pattern/%s", v1, COMP_HASHES_FILE);
	text = util_read_file(path, 1 << 20, &n);
	CHECK_STR_CONTAINS(text, ":0123456789abcdef0123456789abcdef:10:allow:FP.Test\n");
	CHECK_STR_CONTAINS(text, "md5:aa15bcf478d165efd2065190eb473bcb:544:block:"
			   "Clamav.Test.File-6\n");
	CHECK_STR_CONTAINS(text, ":68:pua:Eicar-Test-Signature\n");
	free(text);
	snprintf(path, sizeof(path), "%s/smart-agent-pattern/%s", v1, COMP_PREFIX_FILE);
	text = util_read_file(path, 1 << 20, &n);
	{
		/* The compact file decodes to whole prefix records. */
		struct util_buf set = { 0 };

		CHECK(text && pset_decode(text, n, &set, msg, sizeof(msg)) == ERR_OK &&
		      set.len % COMP_PREFIX_WIDTH == 0 && set.len > 0);
		util_buf_free(&set);
	}
	free(text);
	snprintf(dir1, sizeof(dir1), "%s/virus-pattern", v1);
	name = detect(dir1);
	CHECK(name && strncmp(name, "Clamav.Test.File-6", 18) == 0);
	free(name);

	/* Version 2: test-6.cvd (one more body signature) instead of test-5,
	 * and a custom SHA-256 hash of clam.exe. */
	copy_file(UPSTREAM_CVD_DIR "/test-6.cvd", src, "main.cvd");
	free(test_write(src, "local.hsb", hsb_line, strlen(hsb_line)));
	CHECK(build_from(src, v2, sizeof(v2)) == SERR_OK);
	snprintf(dir2, sizeof(dir2), "%s/virus-pattern", v2);

	snprintf(path, sizeof(path), "%s/full.tar.zst", v2);
	CHECK(build_package("virus-pattern", 2, 0, NULL, dir2, path, "full.tar.zst", pk, sk,
			    &env_full, &full_size, msg, sizeof(msg)) == SERR_OK);
	snprintf(out, sizeof(out), "%s/installed-full", v2);
	CHECK(install(env_full, pk, path, NULL, out) == ERR_OK);
	name = detect(out);
	CHECK(name != NULL);
	free(name);
	snprintf(path, sizeof(path), "%s/smart-agent-pattern/%s", v2, COMP_PREFIX_FILE);
	CHECK(has_custom_prefix(path));
	snprintf(path, sizeof(path), "%s/full.tar.zst", v2);

	snprintf(path, sizeof(path), "%s/delta.tar.zst", v2);
	CHECK(build_package("virus-pattern", 2, 1, dir1, dir2, path, "delta.tar.zst", pk, sk,
			    &env_delta, &delta_size, msg, sizeof(msg)) == SERR_OK);
	CHECK(delta_size > 0 && delta_size < full_size);
	snprintf(out, sizeof(out), "%s/installed-delta", v2);
	CHECK(install(env_delta, pk, path, dir1, out) == ERR_OK);
	name = detect(out);
	CHECK(name != NULL);
	free(name);
	/* The delta does not fit version 2 itself: another base. */
	snprintf(out, sizeof(out), "%s/installed-wrong-base", v2);
	CHECK(install(env_delta, pk, path, dir2, out) != ERR_OK);
	/* Nor a version that lost a file the delta keeps. */
	snprintf(out, sizeof(out), "%s/installed-no-base", v2);
	CHECK(install(env_delta, pk, path, src, out) == ERR_BASE);
	free(env_full);
	free(env_delta);
	/* The agent pattern's prefix file travels as a set delta and is put
	 * together encoded again, byte for byte what the server built. */
	snprintf(dir1, sizeof(dir1), "%s/smart-agent-pattern", v1);
	snprintf(dir2, sizeof(dir2), "%s/smart-agent-pattern", v2);
	snprintf(path, sizeof(path), "%s/ssap-delta.tar.zst", v2);
	CHECK(build_package("smart-agent-pattern", 2, 1, dir1, dir2, path, "ssap-delta.tar.zst",
			    pk, sk, &env_delta, &delta_size, msg, sizeof(msg)) == SERR_OK);
	snprintf(out, sizeof(out), "%s/installed-ssap", v2);
	CHECK(install(env_delta, pk, path, dir1, out) == ERR_OK);
	snprintf(path, sizeof(path), "%.900s/%s", out, COMP_PREFIX_FILE);
	CHECK(has_custom_prefix(path));
	free(env_delta);
}

/* A malformed hash line fails the build naming the file and line. */
static void check_bad_source(void)
{
	char src[600], out[600];

	snprintf(src, sizeof(src), "%s", test_tmpdir());
	free(test_write(src, "a.hdb", "0123456789abcdef0123456789abcdef:10:Ok\nnot-a-hash\n", 50));
	CHECK(build_from(src, out, sizeof(out)) == SERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "a.hdb line 2");
}

int main(void)
{
	test_need("/usr/share/clamav-testfiles/clam.exe");
	if (sodium_init() < 0)
		return 1;
	check_normalize();
	check_round_trip(0);
	check_round_trip(COMP_PREFIX_WIDTH);
	check_round_trip(8);
	check_round_trip(12);
	check_components();
	check_bad_source();
	return check_finish();
}
