/* pkg.h -- signed component packages: manifests, Ed25519 signatures
 * (libsodium), payload checks and signing-key rotation.
 *
 * A package is a manifest plus payload files. The manifest names the
 * component, its version, the version a delta applies to (if any) and
 * each payload's name, size and SHA-256. What travels is an envelope:
 *
 *     {"manifest": "<the manifest's exact JSON text>",
 *      "key": "<signer's public key, hex>",
 *      "signature": "<Ed25519 signature of the manifest text, hex>"}
 *
 * The manifest is signed as the exact bytes it travels as, so no JSON
 * canonicalisation is needed to verify it. An agent trusts the key it
 * pinned at enrollment, or a key that key signed (a rotation record).
 * Thread-safe: no state beyond libsodium's (sodium_init() first).
 */
#ifndef WARD_PKG_H
#define WARD_PKG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/err.h"


#define PKG_PK_BYTES 32
#define PKG_SK_BYTES 64

/* The longest component and payload names accepted. */
#define PKG_NAME_MAX 64

/* The longest name of a file of a component. */
#define PKG_FILE_NAME_MAX 128

/* Makes a new signing key pair. */
void pkg_keygen(unsigned char pk[PKG_PK_BYTES], unsigned char sk[PKG_SK_BYTES]);

/* Builds the manifest text of component at version (base: the version a
 * delta applies to, 0 for a full package) with payloads, a JSON list of
 * {"name", "size", "sha256"}, and files (NULL: none), the list of the
 * files the component is made of once installed, sorted by name, in the
 * same form. Returns a new string the caller frees, or NULL when out of
 * memory. */
char *pkg_manifest(const char *component, int64_t version, int64_t base, const json_t *payloads,
		   const json_t *files);

/* Signs manifest text with sk (whose public half is pk) and returns the
 * envelope as a new string the caller frees, or NULL when out of memory. */
char *pkg_seal(const char *manifest, const unsigned char pk[PKG_PK_BYTES],
	       const unsigned char sk[PKG_SK_BYTES]);

/* Opens an envelope: checks that it is signed by trusted (the pinned key,
 * or one a rotation made trusted) and that its manifest is well formed.
 * Stores the manifest in *manifest (a new reference). Errors name what
 * failed in errbuf. */
enum err pkg_open(const char *envelope, size_t len, const unsigned char trusted[PKG_PK_BYTES],
		  json_t **manifest, char *errbuf, size_t errlen);

/* Opens an envelope of any signed JSON object (an instruction to an agent
 * travels like a manifest: the same envelope, its text in "manifest"):
 * checks that it is signed by trusted and stores the object in *content
 * (a new reference). Errors name what failed in errbuf. */
enum err pkg_open_signed(const char *envelope, size_t len,
			 const unsigned char trusted[PKG_PK_BYTES], json_t **content,
			 char *errbuf, size_t errlen);

/* Refuses (ERR_OLD) a manifest whose version is not newer than installed. */
enum err pkg_check_version(const json_t *manifest, int64_t installed, char *errbuf,
			   size_t errlen);

/* Checks that the file at path is the manifest's payload name: the same
 * size and SHA-256. */
enum err pkg_check_payload(const json_t *manifest, const char *name, const char *path,
			   char *errbuf, size_t errlen);

/* Computes the SHA-256 of the file at path (as 64 hex digits in hex) and
 * its size. Returns false with errno set when it cannot be read. */
bool pkg_file_sha256(const char *path, char hex[65], uint64_t *size);

/* Signs a rotation to new_pk with the current key: returns the record
 * {"key": new hex, "signature": hex by the old key} as a new string. */
char *pkg_rotation(const unsigned char new_pk[PKG_PK_BYTES],
		   const unsigned char old_sk[PKG_SK_BYTES]);

/* Checks a rotation record against the trusted key; on success copies the
 * new key to next. */
enum err pkg_rotate(const char *record, const unsigned char trusted[PKG_PK_BYTES],
		    unsigned char next[PKG_PK_BYTES], char *errbuf, size_t errlen);

#endif
