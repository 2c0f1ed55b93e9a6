/* fuzz_sdelta.c -- libFuzzer target for set deltas, which agents apply to
 * their installed signature files. The input's header is fixed up to name
 * the base set (a few lines, or prefix records, by the input's first byte),
 * so that the fuzzer spends its time past the base check, in the gaps,
 * counts and additions. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sdelta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char lines[] = "a:1:A\nb:2:B\nc:3:C\nd:4:D\n";
	static const char records[] = "\x01" "aaaa" "\x01" "bbbb" "\x03" "cccc";
	struct util_buf out = { 0 };
	const char *base;
	size_t blen, width;
	unsigned char *d;
	char msg[256];

	if (size < 9 + 32 || sodium_init() < 0)
		return 0;
	width = data[0] & 1 ? 5 : 0;
	base = width ? records : lines;
	blen = width ? sizeof(records) - 1 : sizeof(lines) - 1;
	d = malloc(size);
	if (!d)
		return 0;
	memcpy(d, data, size);
	memcpy(d, "WSDELTA2", 8);
	d[8] = (unsigned char)width;
	crypto_hash_sha256(d + 9, (const unsigned char *)base, blen);
	(void)sdelta_apply(base, blen, (const char *)d, size, &out, msg, sizeof(msg));
	util_buf_free(&out);
	free(d);
	return 0;
}
