/* test_pset.c -- the compact hash-prefix set: the file form decodes to
 * exactly the set it was made from, every digest put in is found, random
 * digests hit about as often as the width promises, 2M MD5 plus 2M SHA-256
 * prefixes fit in 12 bits each, and malformed files are refused, not
 * misread. */
#include <sodium.h>

#include "check.h"
#include "common/pset.h"
#include "common/sdelta.h"

static char msg[256];

/* A deterministic digest: n-th of stream seed. */
static void digest(unsigned char out[32], uint32_t seed, uint32_t n)
{
	unsigned char key[32] = { (unsigned char)seed, (unsigned char)(seed >> 8),
				  (unsigned char)n, (unsigned char)(n >> 8),
				  (unsigned char)(n >> 16), (unsigned char)(n >> 24) };

	randombytes_buf_deterministic(out, 32, key);
}

/* Builds the set of n[type] digests of each type (stream seed + type). */
static void make_set(struct util_buf *set, const uint32_t n[PSET_TYPES + 1], uint32_t seed)
{
	struct util_buf raw = { 0 };
	unsigned char d[32], rec[PSET_RECORD];
	unsigned type;
	uint32_t i;

	for (type = 1; type <= PSET_TYPES; type++) {
		if (!n[type])
			continue;
		for (i = 0; i < n[type]; i++) {
			digest(d, seed + type, i);
			pset_record(type, d, pset_width(n[type]), rec);
			util_buf_append(&raw, rec, sizeof(rec));
		}
		pset_param(type, pset_width(n[type]), rec);
		util_buf_append(&raw, rec, sizeof(rec));
	}
	sdelta_normalize(raw.data ? raw.data : "", raw.len, PSET_RECORD, set);
	util_buf_free(&raw);
}

static void test_round_trip_and_lookups(void)
{
	const uint32_t sizes[][PSET_TYPES + 1] = {
		{ 0, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 1000, 0, 10 }, { 0, 0, 300, 0 },
		{ 0, 20000, 5000, 70000 },
	};
	struct util_buf set, file, back;
	struct pset *ps;
	unsigned char d[32];
	uint32_t i, hits;
	size_t k;
	unsigned type;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		set = (struct util_buf){ 0 };
		file = (struct util_buf){ 0 };
		back = (struct util_buf){ 0 };
		make_set(&set, sizes[k], (uint32_t)k * 10);
		CHECK(pset_encode(set.data ? set.data : "", set.len, &file, msg, sizeof(msg)) ==
		      ERR_OK);
		CHECK(pset_decode(file.data, file.len, &back, msg, sizeof(msg)) == ERR_OK);
		CHECK(back.len == set.len && (set.len == 0 || memcmp(back.data, set.data,
								     set.len) == 0));
		ps = pset_load(file.data, file.len, msg, sizeof(msg));
		CHECK(ps != NULL);
		if (!ps)
			continue;
		for (type = 1; type <= PSET_TYPES; type++) {
			CHECK(pset_bits(ps, type) == (sizes[k][type] ?
						      pset_width(sizes[k][type]) : 0));
			for (i = 0; i < sizes[k][type]; i++) {
				digest(d, (uint32_t)k * 10 + type, i);
				if (!pset_has(ps, type, d)) {
					CHECK(!"a digest put in is not found");
					break;
				}
			}
			/* Digests never put in: about 1 in 2^(width - log2 n). */
			for (i = 0, hits = 0; i < 100000; i++) {
				digest(d, 999, i);
				hits += pset_has(ps, type, d);
			}
			CHECK(hits <= 100000 / 256);
		}
		pset_free(ps);
		util_buf_free(&set);
		util_buf_free(&file);
		util_buf_free(&back);
	}
}

static void test_bits_per_signature(void)
{
	const uint32_t n[PSET_TYPES + 1] = { 0, 2000000, 0, 2000000 };
	struct util_buf set = { 0 }, file = { 0 };
	struct pset *ps;
	double bits;

	make_set(&set, n, 77);
	CHECK(pset_encode(set.data, set.len, &file, msg, sizeof(msg)) == ERR_OK);
	ps = pset_load(file.data, file.len, msg, sizeof(msg));
	CHECK(ps != NULL);
	if (ps) {
		bits = 8.0 * (double)pset_memory(ps) / 4000000.0;
		fprintf(stderr, "pset: %.2f bits per prefix in memory, file %zu bytes\n", bits,
			file.len);
		CHECK(bits <= 12.0);
		CHECK(pset_count(ps) <= 4000000 && pset_count(ps) > 3990000);
	}
	pset_free(ps);
	util_buf_free(&set);
	util_buf_free(&file);
}

static void test_malformed(void)
{
	const uint32_t n[PSET_TYPES + 1] = { 0, 300, 20, 0 };
	struct util_buf set = { 0 }, file = { 0 }, out;
	struct pset *ps;
	unsigned char rec[PSET_RECORD];
	size_t i, refused = 0;
	char *bad;

	make_set(&set, n, 5);
	CHECK(pset_encode(set.data, set.len, &file, msg, sizeof(msg)) == ERR_OK);
	/* Every truncation is refused. */
	for (i = 0; i < file.len; i++) {
		out = (struct util_buf){ 0 };
		if (pset_decode(file.data, i, &out, msg, sizeof(msg)) != ERR_FORMAT) {
			CHECK(!"a truncated file decoded");
			break;
		}
		util_buf_free(&out);
	}
	/* A flipped bit is refused or decodes to another well-formed set:
	 * never a crash, never the same set. */
	bad = malloc(file.len);
	for (i = 0; bad && i < file.len * 8; i += 3) {
		memcpy(bad, file.data, file.len);
		bad[i / 8] ^= (char)(1 << (i % 8));
		out = (struct util_buf){ 0 };
		if (pset_decode(bad, file.len, &out, msg, sizeof(msg)) != ERR_OK)
			refused++;
		else
			CHECK(out.len != set.len || memcmp(out.data, set.data, set.len) != 0);
		util_buf_free(&out);
		ps = pset_load(bad, file.len, msg, sizeof(msg));
		pset_free(ps);
	}
	CHECK(refused > 0);
	free(bad);
	CHECK(pset_decode("WPX1\0", 5, &out, msg, sizeof(msg)) == ERR_FORMAT);
	CHECK(strstr(msg, "not a WPX2 file") != NULL);
	/* Sets that break the rules are not encoded. */
	out = (struct util_buf){ 0 };
	CHECK(pset_encode(set.data, set.len - 1, &out, msg, sizeof(msg)) == ERR_FORMAT);
	util_buf_free(&out);
	CHECK(pset_encode(set.data, set.len - PSET_RECORD, &out, msg, sizeof(msg)) ==
	      ERR_FORMAT);
	CHECK(strstr(msg, "no width for type 2") != NULL);
	util_buf_free(&out);
	memcpy(rec, set.data, PSET_RECORD);
	rec[4] |= 1; /* a bit beyond the width */
	memcpy(set.data, rec, PSET_RECORD);
	CHECK(pset_encode(set.data, set.len, &out, msg, sizeof(msg)) == ERR_FORMAT);
	CHECK(strstr(msg, "beyond the width") != NULL);
	util_buf_free(&out);
	util_buf_free(&set);
	util_buf_free(&file);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	CHECK(pset_width(1) == 10 && pset_width(2000000) == 31 && pset_width(2020000) == 31);
	test_round_trip_and_lookups();
	test_bits_per_signature();
	test_malformed();
	return check_finish();
}
