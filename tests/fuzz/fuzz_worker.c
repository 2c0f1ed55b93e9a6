/* fuzz_worker.c -- libFuzzer target for the scan worker channel's messages
 * (src/agent/wmsg.h), which the agent reads from workers that parse
 * hostile files and may have been taken over, and workers read from the
 * agent. A message decoded is encoded back to the same bytes: the format
 * has one spelling per message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/wmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct util_buf again = { 0 };
	struct wmsg m;
	char msg[256];
	size_t i;

	if (wmsg_decode(data, size, &m, msg, sizeof(msg)) != 0) {
		if (!msg[0])
			abort();  /* a refusal always says why */
		return 0;
	}
	for (i = 0; i < m.nnames; i++)
		if (!m.names[i][0] || strlen(m.names[i]) > WMSG_MAX_SIGNAME)
			abort();
	if (wmsg_encode(&m, &again) != 0 || again.len != size || memcmp(again.data, data, size))
		abort();
	util_buf_free(&again);
	return 0;
}
