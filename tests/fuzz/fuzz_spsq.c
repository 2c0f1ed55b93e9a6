/* fuzz_spsq.c -- libFuzzer target for the smart protection protocol: the
 * lookup requests a smart protection server parses from anyone, and the
 * answers an agent parses. The input's first byte picks which; an answer
 * is checked against a fixed set of queries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/spsq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_entry(size_t i, const struct spsq_entry *e, void *arg)
{
	(void)i;
	if (e->name_len == 0 || e->digest_len == 0)
		abort();
	++*(size_t *)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spsq_query queries[SPSQ_MAX_QUERIES];
	const struct spsq_query asked[2] = { { 1, 0x44d88600, 24 }, { 3, 0x12345678, 32 } };
	struct util_buf again = { 0 };
	int64_t version, ttl;
	size_t n, i, entries = 0;
	char msg[256];

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (spsq_parse_request((const char *)data + 1, size - 1, queries, SPSQ_MAX_QUERIES,
				       &n, msg, sizeof(msg)) == ERR_OK) {
			/* A query parsed is written back the one way it can be. */
			for (i = 0; i < n; i++)
				if (spsq_format_query(&queries[i], &again) != 0)
					abort();
			if (again.len != size - 1)
				abort();
		}
	} else {
		(void)spsq_parse_answer((const char *)data + 1, size - 1, asked, 2, &version, &ttl,
					count_entry, &entries, msg, sizeof(msg));
	}
	util_buf_free(&again);
	return 0;
}
