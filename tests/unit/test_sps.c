/* test_sps.c -- the Smart Scan Pattern index and the lookup protocol: a
 * pattern answers every prefix with exactly the entries under it (checked
 * against a scan of all of them), a malformed or unsorted pattern is
 * refused naming its line, and answers are checked against their queries. */
#include <sodium.h>

#include "check.h"
#include "common/pset.h"
#include "common/spsq.h"
#include "sps/pattern.h"

static char msg[512];

static const char *write_pattern(const char *text)
{
	static char path[600];

	snprintf(path, sizeof(path), "%s/hashes.wsp", test_tmpdir());
	CHECK(util_write_file(path, text, strlen(text), 0600) == 0);
	return path;
}

static void test_lookups_match_a_scan(void)
{
	struct util_buf text = { 0 }, out = { 0 }, want = { 0 };
	unsigned char d[32];
	char hex[65];
	struct spsq_query q;
	struct spsq_entry e;
	struct sps_pattern *p;
	const char *line, *nl;
	size_t len;
	static const char *const names[] = { NULL, "md5", "sha1", "sha256" };
	unsigned type, i, bits, n;
	int got;

	/* Sorted: md5 lines, then sha1, then sha256; digests ascending. */
	for (type = 1; type <= 3; type++)
		for (i = 0; i < 2000; i++) {
			memset(d, 0, sizeof(d));
			d[0] = (unsigned char)(i >> 4);
			d[1] = (unsigned char)(i << 4);
			d[5] = (unsigned char)type;
			sodium_bin2hex(hex, sizeof(hex), d, spsq_digest_len(type));
			util_buf_printf(&text, "%s:%s:%u:block:T%u.%u\n", names[type], hex,
					i + 1, type, i);
		}
	p = sps_pattern_load(write_pattern(text.data), 7, msg, sizeof(msg));
	CHECK(p && sps_pattern_entries(p) == 6000 && sps_pattern_version(p) == 7);
	/* The agent pattern's width: 2,000 distinct prefixes of each type. */
	for (type = 1; p && type <= 3; type++)
		CHECK(sps_pattern_bits(p, type) == pset_width(2000));
	/* Past the caps on entries and bytes: -2, never a cut answer. */
	q = (struct spsq_query){ 1, 0, 8 };
	CHECK(p && sps_pattern_lookup(p, &q, 15, SIZE_MAX, &out) == -2);
	out.len = 0;
	CHECK(p && sps_pattern_lookup(p, &q, 16, SIZE_MAX, &out) == 16);
	out.len = 0;
	CHECK(p && sps_pattern_lookup(p, &q, 16, out.len + 100, &out) == -2);
	for (type = 1; p && type <= 3; type++)
		for (bits = 8; bits <= 32; bits += 4)
			for (i = 0; i < 300; i += 7) {
				q = (struct spsq_query){ type, (uint32_t)(i * 0x00100000u) &
							 (uint32_t)~(0xffffffffull >> bits), bits };
				out.len = want.len = 0;
				n = 0;
				got = sps_pattern_lookup(p, &q, SIZE_MAX, SIZE_MAX, &out);
				/* The same by looking at every line. */
				for (line = text.data; *line; line = nl + 1) {
					nl = strchr(line, '\n');
					len = (size_t)(nl - line);
					if (spsq_parse_entry(line, len, &e) == ERR_OK &&
					    spsq_matches(&q, &e) && n++ < SPSQ_MAX_ENTRIES)
						util_buf_append(&want, line, len + 1);
				}
				CHECK(got >= 0 && out.len == want.len &&
				      (out.len == 0 || memcmp(out.data, want.data, out.len) == 0));
			}
	sps_pattern_free(p);
	util_buf_free(&text);
	util_buf_free(&out);
	util_buf_free(&want);
}

static void test_bad_patterns(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "md5:44d88612fea8a8f36de82e1278abb02f:68:block:A\nmd5:00:1:block:B\n", "line 2" },
		{ "md5:44d88612fea8a8f36de82e1278abb02f:68:block:A\n"
		  "md5:04d88612fea8a8f36de82e1278abb02f:68:block:B\n", "line 2: out of order" },
		{ "sha1:44d88612fea8a8f36de82e1278abb02f44d88612:1:block:A\n"
		  "md5:44d88612fea8a8f36de82e1278abb02f:68:block:B\n", "line 2: out of order" },
		{ "md5:44d88612fea8a8f36de82e1278abb02f:68:deny:A\n", "line 1" },
		{ "md5:44d88612fea8a8f36de82e1278abb02f:068:block:A\n", "line 1" },
		{ "md5:44D88612fea8a8f36de82e1278abb02f:68:block:A\n", "line 1" },
		{ "md5:44d88612fea8a8f36de82e1278abb02f:68:block:A", "no newline" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(sps_pattern_load(write_pattern(cases[i].text), 1, msg, sizeof(msg)) == NULL);
		CHECK(strstr(msg, cases[i].want) != NULL);
	}
}

static int collect(size_t i, const struct spsq_entry *e, void *arg)
{
	(void)e;
	((int *)arg)[i]++;
	return 0;
}

static void test_answers(void)
{
	const struct spsq_query q[2] = { { 1, 0x44d88600, 24 }, { 3, 0x12345678, 32 } };
	const char *good = "ward-sps 1 3 60\nmd5:44d88600/24 1\n"
			   "md5:44d88612fea8a8f36de82e1278abb02f:68:block:Eicar\n"
			   "sha256:12345678/32 0\n";
	const char *bad[] = {
		"ward-sps 2 3 60\nmd5:44d88600/24 0\nsha256:12345678/32 0\n",
		"ward-sps 1 3 60\nsha256:12345678/32 0\nmd5:44d88600/24 0\n",
		/* An entry not under its query. */
		"ward-sps 1 3 60\nmd5:44d88600/24 1\n"
		"md5:54d88612fea8a8f36de82e1278abb02f:68:block:Eicar\nsha256:12345678/32 0\n",
		"ward-sps 1 3 60\nmd5:44d88600/24 0\nsha256:12345678/32 0\nextra\n",
		"ward-sps 1 3 60\nmd5:44d88600/24 2\n"
		"md5:44d88612fea8a8f36de82e1278abb02f:68:block:Eicar\nsha256:12345678/32 0\n",
	};
	int64_t version, ttl;
	int counts[2] = { 0, 0 };
	size_t i;

	CHECK(spsq_parse_answer(good, strlen(good), q, 2, &version, &ttl, collect, counts, msg,
				sizeof(msg)) == ERR_OK);
	CHECK(version == 3 && ttl == 60 && counts[0] == 1 && counts[1] == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(spsq_parse_answer(bad[i], strlen(bad[i]), q, 2, &version, &ttl, NULL, NULL,
					msg, sizeof(msg)) == ERR_FORMAT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_lookups_match_a_scan();
	test_bad_patterns();
	test_answers();
	return check_finish();
}
