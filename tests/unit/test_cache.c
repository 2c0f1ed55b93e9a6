/* test_cache.c -- the persistent scan cache: lookups, saving and merging,
 * corrupt tables, pruning of old signature sets. */

#include "check.h"
#include "scan/cache.h"

static struct scache_key key(uint64_t ino, int64_t ctime_ns)
{
	struct scache_key k = { .dev = 2049, .ino = ino, .size = ino * 10,
				.mtime_ns = 1000, .ctime_ns = ctime_ns };
	return k;
}

/* Looks k up; returns -1 when absent, else the names length (0: clean). */
static long lookup(struct scache *c, const struct scache_key *k)
{
	const char *names;
	size_t len;

	return scache_lookup(c, k, &names, &len) ? (long)len : -1;
}

static struct scache *open_cache(const char *dir, unsigned char idbyte)
{
	unsigned char id[32];
	char warning[256], err[256];
	struct scache *c = NULL;

	memset(id, idbyte, sizeof(id));
	CHECK(scache_open(dir, id, &c, warning, sizeof(warning), err, sizeof(err)) == SCAN_OK);
	return c;
}

static void test_roundtrip(const char *dir)
{
	char *const infected[] = { "Sig.One", "Sig.Two" };
	const char *names;
	size_t len;
	struct scache *c = open_cache(dir, 1);
	struct scache_key k1 = key(1, 5), k2 = key(2, 5), k1_changed = key(1, 6);
	char err[256];

	CHECK(lookup(c, &k1) == -1);
	CHECK(scache_add(c, &k1, NULL, 0) == SCAN_OK);
	CHECK(scache_add(c, &k2, infected, 2) == SCAN_OK);
	scache_set_signatures(c, 1234);
	CHECK(scache_save(c, err, sizeof(err)) == SCAN_OK);
	scache_close(c);

	c = open_cache(dir, 1);
	CHECK(lookup(c, &k1) == 0);
	/* An infected verdict comes back with its names. */
	CHECK(scache_lookup(c, &k2, &names, &len));
	CHECK(len == 16 && memcmp(names, "Sig.One\0Sig.Two\0", 16) == 0);
	/* Same file, new ctime: a write happened, so it is not known clean. */
	CHECK(lookup(c, &k1_changed) == -1);
	CHECK(scache_signatures(c) == 1234);
	scache_close(c);

	/* Another signature set sees none of it. */
	c = open_cache(dir, 2);
	CHECK(lookup(c, &k1) == -1);
	scache_close(c);
}

static void test_concurrent_merge(const char *dir)
{
	struct scache *a = open_cache(dir, 3), *b = open_cache(dir, 3), *c;
	struct scache_key ka = key(10, 1), kb = key(20, 1), kb_new = key(20, 2);
	char err[256];

	/* Two runs open the same table, each adds, both save: the later save
	 * must keep the other's entries. */
	CHECK(scache_add(a, &ka, NULL, 0) == SCAN_OK);
	CHECK(scache_add(b, &kb, NULL, 0) == SCAN_OK);
	CHECK(scache_save(a, err, sizeof(err)) == SCAN_OK);
	CHECK(scache_save(b, err, sizeof(err)) == SCAN_OK);
	scache_close(a);
	scache_close(b);
	c = open_cache(dir, 3);
	CHECK(lookup(c, &ka) == 0);
	CHECK(lookup(c, &kb) == 0);
	/* A newer version of the same inode replaces the old entry. */
	CHECK(scache_add(c, &kb_new, NULL, 0) == SCAN_OK);
	CHECK(scache_save(c, err, sizeof(err)) == SCAN_OK);
	scache_close(c);
	c = open_cache(dir, 3);
	CHECK(lookup(c, &kb_new) == 0);
	CHECK(lookup(c, &kb) == -1);
	scache_close(c);
}

static void test_parse_defects(void)
{
	unsigned char id[32], other[32], *buf = NULL;
	struct scache_entry e[2] = { { key(1, 1), 0, 0 }, { key(2, 1), 0, 4 } };
	struct scache_table t = { e, 2, "Sig", 4, 99 }, out;
	size_t len;

	memset(id, 7, sizeof(id));
	memset(other, 8, sizeof(other));
	CHECK(scache_serialise(&t, id, &buf, &len) == SCAN_OK);
	CHECK(scache_parse(buf, len, id, &out) == NULL);
	CHECK(out.n == 2 && out.signatures == 99 && out.entries[1].key.ino == 2);
	CHECK(out.names_len == 4 && strcmp(out.names + out.entries[1].names_off, "Sig") == 0);
	CHECK_STR_CONTAINS(scache_parse(buf, 10, id, &out), "shorter");
	CHECK_STR_CONTAINS(scache_parse(buf, len, other, &out), "another signature set");
	/* Names must stay inside their area and end with NUL. */
	buf[len - 1] = 'x';
	CHECK_STR_CONTAINS(scache_parse(buf, len, id, &out), "malformed signature names");
	buf[len - 1] = '\0';
	memcpy(buf + 96 + 48 + 40, &(uint32_t){ 100 }, 4);
	CHECK_STR_CONTAINS(scache_parse(buf, len, id, &out), "outside the names area");
	/* Entries out of order would make lookups miss silently: refused. */
	memcpy(buf + 96, &e[1], sizeof(e[1]));
	memcpy(buf + 96 + sizeof(e[1]), &e[0], sizeof(e[0]));
	CHECK_STR_CONTAINS(scache_parse(buf, len, id, &out), "out of order");
	buf[0] = 'X';
	CHECK_STR_CONTAINS(scache_parse(buf, len, id, &out), "not a Ward");
	free(buf);
}

static void test_corrupt_table_is_replaced(const char *dir)
{
	const char *garbage = "garbage that is not a table at all, but long enough to have "
			      "a header's worth of bytes in it, and then some more bytes.";
	unsigned char id[32];
	char warning[256], err[256], name[128];
	struct scache *c = NULL;
	struct scache_key k = key(5, 5);
	int i;

	memset(id, 4, sizeof(id));
	snprintf(name, sizeof(name), "sigset-");
	for (i = 0; i < 16; i++)
		snprintf(name + 7 + 2 * i, 3, "%02x", id[i]);
	snprintf(name + 7 + 32, sizeof(name) - 7 - 32, ".wsc");
	free(test_write(dir, name, garbage, strlen(garbage)));
	CHECK(scache_open(dir, id, &c, warning, sizeof(warning), err, sizeof(err)) == SCAN_OK);
	CHECK_STR_CONTAINS(warning, "not a Ward scan cache table");
	CHECK(lookup(c, &k) == -1);
	CHECK(scache_add(c, &k, NULL, 0) == SCAN_OK);
	CHECK(scache_save(c, err, sizeof(err)) == SCAN_OK);
	scache_close(c);
	c = open_cache(dir, 4);
	CHECK(lookup(c, &k) == 0);
	scache_close(c);
}


static void test_prune(void)
{
	char dir[512], err[256];
	unsigned char b;

	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	for (b = 10; b < 15; b++) {
		struct scache *c = open_cache(dir, b);
		struct scache_key k = key(b, 1);

		CHECK(scache_add(c, &k, NULL, 0) == SCAN_OK);
		CHECK(scache_save(c, err, sizeof(err)) == SCAN_OK);
		scache_close(c);
	}
	/* The current set plus the two most recent others. */
	CHECK(test_count_prefixed(dir, "sigset-") == 3);
}

int main(void)
{
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/cache", test_tmpdir());
	test_roundtrip(dir);
	test_concurrent_merge(dir);
	test_parse_defects();
	test_corrupt_table_is_replaced(dir);
	test_prune();
	return check_finish();
}
