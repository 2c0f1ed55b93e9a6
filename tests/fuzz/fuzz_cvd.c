/* fuzz_cvd.c -- libFuzzer target for the CVD/CLD header parser: signature
 * source directories hold files anyone with write access there made. */
#include <stddef.h>
#include <stdint.h>

#include "server/cvd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvd_header h;
	char msg[256];

	(void)cvd_parse_header(data, size, &h, msg, sizeof(msg));
	return 0;
}
