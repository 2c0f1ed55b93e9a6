/* fuzz_pset.c -- libFuzzer target for the compact hash-prefix set, which
 * agents decode (to apply deltas) and load (to look digests up). Whatever
 * decodes must load, encode back to the same bytes, and answer lookups. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct util_buf set = { 0 }, again = { 0 };
	struct pset *ps;
	unsigned char digest[32];
	unsigned type;
	size_t i;
	char msg[256];

	if (pset_decode((const char *)data, size, &set, msg, sizeof(msg)) == ERR_OK) {
		if (pset_encode(set.data ? set.data : "", set.len, &again, msg, sizeof(msg)) !=
		    ERR_OK)
			abort();
		ps = pset_load((const char *)data, size, msg, sizeof(msg));
		if (!ps)
			abort();
		/* Every record of the set is found. */
		for (i = 0; i < set.len; i += PSET_RECORD) {
			type = (unsigned char)set.data[i];
			if (type > PSET_TYPES)
				continue;
			memset(digest, 0, sizeof(digest));
			memcpy(digest, set.data + i + 1, 4);
			if (!pset_has(ps, type, digest))
				abort();
		}
		pset_free(ps);
	}
	util_buf_free(&set);
	util_buf_free(&again);
	return 0;
}
