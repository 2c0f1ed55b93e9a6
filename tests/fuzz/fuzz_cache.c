/* fuzz_cache.c -- libFuzzer target for the scan cache table parser, which
 * reads a file any process of the user could have written or truncated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scache_table t;
	unsigned char id[32] = { 0 };
	uint64_t *aligned;
	size_t i;

	/* Tables are mapped page-aligned; give the parser the same. */
	aligned = malloc(size + 8);
	if (!aligned)
		return 0;
	memcpy(aligned, data, size);
	/* Take the identity from the input itself (where the header holds it,
	 * 40 bytes in: cache.c's struct table_header) so the fuzzer gets past
	 * the identity check into the records. */
	if (size >= 72)
		memcpy(id, data + 40, 32);
	if (!scache_parse((const unsigned char *)aligned, size, id, &t)) {
		volatile size_t sum = 0;

		/* Touch everything a lookup would read. */
		for (i = 0; i < t.n; i++)
			if (t.entries[i].names_len)
				sum += strlen(t.names + t.entries[i].names_off);
		(void)sum;
	}
	free(aligned);
	return 0;
}
