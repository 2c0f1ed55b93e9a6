/* fuzz_backup.c -- libFuzzer target for backup archives, which an
 * administrator may be handed from anywhere and which `wardd backup
 * verify` and `wardd restore` read before anything else. The input's
 * first byte picks what the rest is:
 *   even: a whole archive, read as it is (its header, the key derivation's
 *         parameters, records that do not authenticate);
 *   odd:  the plaintext records of an archive, each a flag byte (bit 0:
 *         the stream's final tag), a 16-bit length and that many bytes,
 *         which the harness encrypts under a valid header with the cheapest
 *         key derivation, so that the reading of parts, their names,
 *         sizes and SHA-256s and the manifest is reached.
 * Nothing is unpacked (no destination): the database part, when there is
 * one, is checked in the scratch directory. */
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scratch.h"
#include "server/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PASSPHRASE "fuzz passphrase"
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES

/* The archive's start with the cheapest parameters and the harness's
 * passphrase; the stream's state set to encrypt what follows. */
static bool start(struct util_buf *out, crypto_secretstream_xchacha20poly1305_state *ss,
		  unsigned char **ad, size_t *adlen)
{
	unsigned char salt[crypto_pwhash_SALTBYTES] = { 7 }, master[crypto_kdf_KEYBYTES];
	unsigned char stream[crypto_secretstream_xchacha20poly1305_KEYBYTES], check[16];
	unsigned char hs[crypto_secretstream_xchacha20poly1305_HEADERBYTES], len[4];
	static const unsigned char zero[crypto_hash_sha256_BYTES];
	char salt_hex[2 * sizeof(salt) + 1], check_hex[33], *text;
	size_t n, start_len = out->len;

	if (crypto_pwhash(master, sizeof(master), PASSPHRASE, strlen(PASSPHRASE), salt,
			  crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return false;
	crypto_kdf_derive_from_key(stream, sizeof(stream), 1, "wardbkup", master);
	crypto_kdf_derive_from_key(check, sizeof(check), 2, "wardbkup", master);
	sodium_bin2hex(salt_hex, sizeof(salt_hex), salt, sizeof(salt));
	sodium_bin2hex(check_hex, sizeof(check_hex), check, sizeof(check));
	text = util_printf("{\"created\":1,\"format\":1,\"host\":\"fuzz\",\"kdf\":{\"algorithm\":"
			   "\"argon2id13\",\"check\":\"%s\",\"memlimit\":%zu,\"opslimit\":%llu,"
			   "\"salt\":\"%s\"},\"schema\":10,\"ward_version\":\"0.1.0\"}", check_hex,
			   (size_t)crypto_pwhash_MEMLIMIT_MIN,
			   (unsigned long long)crypto_pwhash_OPSLIMIT_MIN, salt_hex);
	if (!text)
		return false;
	n = strlen(text);
	len[0] = (unsigned char)n;
	len[1] = (unsigned char)(n >> 8);
	len[2] = len[3] = 0;
	util_buf_append(out, "WARDBAK1", 8);
	util_buf_append(out, len, 4);
	util_buf_append(out, text, n);
	free(text);
	util_buf_append(out, zero, sizeof(zero));  /* room for the SHA-256, filled below */
	crypto_hash_sha256((unsigned char *)out->data + out->len - crypto_hash_sha256_BYTES,
			   (const unsigned char *)out->data + start_len,
			   out->len - start_len - crypto_hash_sha256_BYTES);
	*adlen = out->len - start_len;
	*ad = malloc(*adlen);
	if (!*ad)
		return false;
	memcpy(*ad, out->data + start_len, *adlen);
	crypto_secretstream_xchacha20poly1305_init_push(ss, hs, stream);
	return util_buf_append(out, hs, sizeof(hs)) == 0;
}

/* The odd inputs: records encrypted as a writer would. */
static bool build(const uint8_t *data, size_t size, struct util_buf *out)
{
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned char *ad = NULL, *cipher, len[4];
	unsigned long long clen;
	size_t adlen = 0, i = 0, n;
	bool ok = start(out, &ss, &ad, &adlen);

	while (ok && i + 3 <= size) {
		n = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
		if (n > size - i - 3)
			n = size - i - 3;
		cipher = malloc(n + ABYTES);
		if (!cipher)
			break;
		crypto_secretstream_xchacha20poly1305_push(&ss, cipher, &clen, data + i + 3, n,
				ad, adlen, (data[i] & 1) ?
				crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
		free(ad);
		ad = NULL;
		adlen = 0;
		len[0] = (unsigned char)clen;
		len[1] = (unsigned char)(clen >> 8);
		len[2] = (unsigned char)(clen >> 16);
		len[3] = 0;
		ok = util_buf_append(out, len, 4) == 0 &&
		     util_buf_append(out, cipher, (size_t)clen) == 0;
		free(cipher);
		i += 3 + n;
	}
	free(ad);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct util_buf archive = { 0 };
	json_t *manifest = NULL;
	const char *path;
	char msg[1024];

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		log_set_level(LOG_LVL_ERROR);
		ready = true;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (!build(data + 1, size - 1, &archive)) {
			util_buf_free(&archive);
			return 0;
		}
		path = scratch_file("in.wbk", archive.data, archive.len);
	} else {
		path = scratch_file("in.wbk", data + 1, size - 1);
	}
	if (backup_read(path, PASSPHRASE, NULL, &manifest, msg, sizeof(msg)) == SERR_OK &&
	    !json_is_object(manifest))
		abort();
	json_decref(manifest);
	util_buf_free(&archive);
	return 0;
}
