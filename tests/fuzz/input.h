/* input.h -- the shape of input the fuzz targets that take a selector
 * byte share: the first byte picks what to drive, the rest is text. */
#ifndef WARD_FUZZ_INPUT_H
#define WARD_FUZZ_INPUT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The size - 1 bytes after the selector, NUL-terminated, in a new
 * allocation the caller frees; NULL when size is 0 or memory runs out. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || !(text = malloc(size)))
		return NULL;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	return text;
}

/* The harness's Ed25519 key pair of targets that sign what they open
 * (pk 32 bytes, sk 64), made from seed the first time, the same in every
 * run; false when libsodium fails. Its callers link libsodium. */
static inline bool fuzz_harness_keys(const char *seed, unsigned char *pk, unsigned char *sk)
{
	unsigned char s[crypto_sign_SEEDBYTES] = { 0 };
	static bool done;

	if (!done) {
		memcpy(s, seed, strnlen(seed, sizeof(s)));
		if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, s) != 0)
			return false;
		done = true;
	}
	return true;
}

#endif
