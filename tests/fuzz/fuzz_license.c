/* fuzz_license.c -- libFuzzer target for license files, which an
 * administrator hands wardd (and anyone could have written). The input's
 * first byte picks what the rest is: a license file opened as it is, or
 * the claims' text, which the harness signs with its own key pair (as an
 * issuer would) before opening the file it makes, so that the claim checks
 * behind the signature are reached too. Whatever opens must seal again
 * to a file that opens to the same license. */
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/license.h"
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's issuer key pair, the same in every run (a fixed seed). */
static unsigned char harness_pk[LICENSE_PK_BYTES], harness_sk[LICENSE_SK_BYTES];

/* The license file of claims text, signed by the harness's key. */
static char *signed_file(const char *text)
{
	static const char prefix[] = "ward-license:";
	unsigned char sig[crypto_sign_BYTES], *m;
	char sighex[2 * crypto_sign_BYTES + 1], pkhex[2 * LICENSE_PK_BYTES + 1];
	size_t n = strlen(text);
	json_t *env;
	char *out;

	m = malloc(sizeof(prefix) - 1 + n);
	if (!m)
		return NULL;
	memcpy(m, prefix, sizeof(prefix) - 1);
	memcpy(m + sizeof(prefix) - 1, text, n);
	crypto_sign_detached(sig, NULL, m, sizeof(prefix) - 1 + n, harness_sk);
	free(m);
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	sodium_bin2hex(pkhex, sizeof(pkhex), harness_pk, sizeof(harness_pk));
	env = json_pack("{ss ss ss}", "license", text, "key", pkhex, "signature", sighex);
	out = env ? json_dumps(env, JSON_COMPACT) : NULL;
	json_decref(env);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct license l, again;
	char msg[256], *text, *file = NULL, *sealed = NULL;
	enum err err;

	if (!fuzz_harness_keys("ward fuzz_license harness seed", harness_pk, harness_sk))
		return 0;
	text = fuzz_text(data, size);
	if (!text)
		return 0;
	if (data[0] % 2 == 0) {
		err = license_open(text, size - 1, &l, msg, sizeof(msg));
	} else {
		file = signed_file(text);
		err = file ? license_open(file, strlen(file), &l, msg, sizeof(msg)) : ERR_NOMEM;
	}
	if (err == ERR_OK) {
		(void)license_phase(&l, 1800000000);
		sealed = license_seal(&l, harness_pk, harness_sk);
		if (!sealed || license_open(sealed, strlen(sealed), &again, msg, sizeof(msg)) !=
		    ERR_OK || memcmp(&l.services, &again.services, sizeof(l.services)) != 0 ||
		    strcmp(l.id, again.id) != 0 || strcmp(l.customer, again.customer) != 0 ||
		    l.seats != again.seats || l.start != again.start ||
		    l.expires != again.expires || l.grace_days != again.grace_days)
			abort(); /* what opened must seal to the same license */
	}
	free(sealed);
	free(file);
	free(text);
	return 0;
}
