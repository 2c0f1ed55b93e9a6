/* fuzz_pkg.c -- libFuzzer target for package envelopes, manifests and
 * key-rotation records, which agents take from the network (or from an
 * update source anyone may run). The input's first byte picks what the
 * rest is: an envelope checked against a key nobody holds, a rotation
 * record, or a manifest text that the harness signs with its own key pair
 * before opening it, so that the manifest checks behind the signature are
 * reached too. */
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pkg.h"
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's signing key pair, the same in every run (a fixed seed). */
static unsigned char harness_pk[PKG_PK_BYTES], harness_sk[PKG_SK_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char nobody[PKG_PK_BYTES] = { 1 };
	unsigned char next[PKG_PK_BYTES];
	json_t *m = NULL;
	char msg[256], *text, *env;

	if (!fuzz_harness_keys("ward fuzz_pkg harness key seed", harness_pk, harness_sk))
		return 0;
	text = fuzz_text(data, size);
	if (!text)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (pkg_open(text, size - 1, nobody, &m, msg, sizeof(msg)) == ERR_OK)
			abort(); /* nobody holds that key: nothing may open */
		break;
	case 1:
		(void)pkg_rotate(text, nobody, next, msg, sizeof(msg));
		break;
	default:
		env = pkg_seal(text, harness_pk, harness_sk);
		if (env && pkg_open(env, strlen(env), harness_pk, &m, msg, sizeof(msg)) == ERR_OK) {
			(void)pkg_check_version(m, 1, msg, sizeof(msg));
			json_decref(m);
		}
		free(env);
	}
	free(text);
	return 0;
}
