/* fuzz_pattern.c -- libFuzzer target for the Smart Scan Pattern file that
 * ward-sps and wardd load (hashes.wsp, from a package they verified, or
 * left in their state directory): the input is the file; once it loads,
 * a few lookups run over it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scratch.h"
#include "sps/pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct spsq_query queries[] = {
		{ 1, 0x44d88600, 24 }, { 2, 0, 32 }, { 3, 0x12345678, 32 }, { 3, 0x80000000, 32 },
	};
	struct util_buf out = { 0 };
	struct sps_pattern *p;
	char msg[512];
	size_t i;

	p = sps_pattern_load(scratch_file("hashes.wsp", data, size), 7, msg, sizeof(msg));
	for (i = 0; p && i < sizeof(queries) / sizeof(*queries); i++) {
		out.len = 0;
		/* -2 (past the caps) is an answer too; -1 is out of memory. */
		if (sps_pattern_lookup(p, &queries[i], 1000, 1 << 20, &out) == -1)
			abort();
	}
	util_buf_free(&out);
	sps_pattern_free(p);
	return 0;
}
