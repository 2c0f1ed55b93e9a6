/* fuzz_grouping.c -- libFuzzer target for grouping rules and the agent
 * status they are matched against: rules come from administrators (or an
 * imported export), statuses from every agent. The input is two JSON
 * documents separated by a NUL byte. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/grouping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t first = nul ? (size_t)(nul - data) : size;
	json_t *rules = json_loadb((const char *)data, first, JSON_DECODE_ANY, NULL);
	json_t *status = nul ? json_loadb((const char *)nul + 1, size - first - 1,
					  JSON_DECODE_ANY, NULL) : NULL;
	char msg[256];

	if (rules && grouping_validate(rules, msg, sizeof(msg)) && status)
		(void)grouping_match(rules, status);
	json_decref(rules);
	json_decref(status);
	return 0;
}
