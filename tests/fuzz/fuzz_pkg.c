/* fuzz_pkg.c -- libFuzzer target for package envelopes and key-rotation
 * records, which agents take from the network (or from an update source
 * anyone may run). */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pkg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char trusted[PKG_PK_BYTES] = { 1 };
	unsigned char next[PKG_PK_BYTES];
	json_t *m = NULL;
	char msg[256], *text;

	if (sodium_init() < 0)
		return 0;
	if (pkg_open((const char *)data, size, trusted, &m, msg, sizeof(msg)) == PKG_OK)
		json_decref(m);
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)pkg_rotate(text, trusted, next, msg, sizeof(msg));
	free(text);
	return 0;
}
