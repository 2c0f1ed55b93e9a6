/* pkg.c -- signed component packages (see pkg.h). */
#include "common/pkg.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest manifest accepted: a few hundred payloads at most. */
#define MANIFEST_MAX (1u << 20)

/* Domain separation: a rotation signature can never pass for a manifest
 * signature, whatever the bytes. */
static const char rotation_prefix[] = "ward-key-rotation:";

void pkg_keygen(unsigned char pk[PKG_PK_BYTES], unsigned char sk[PKG_SK_BYTES])
{
	crypto_sign_keypair(pk, sk);
}

char *pkg_manifest(const char *component, int64_t version, int64_t base, const json_t *payloads,
		   const json_t *files)
{
	json_t *m = json_pack("{si ss sI sI sO}", "format", 1, "component", component, "version",
			      (json_int_t)version, "base", (json_int_t)base, "payloads", payloads);
	char *text;

	if (m && files && json_object_set(m, "files", (json_t *)files) != 0) {
		json_decref(m);
		return NULL;
	}
	text = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(m);
	return text;
}

static void hex(char *out, const unsigned char *bin, size_t n)
{
	sodium_bin2hex(out, 2 * n + 1, bin, n);
}

/* Decodes exactly n bytes of hex. */
static bool unhex(unsigned char *out, size_t n, const char *text)
{
	size_t got = 0;

	return text && strlen(text) == 2 * n &&
	       sodium_hex2bin(out, n, text, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

char *pkg_seal(const char *manifest, const unsigned char pk[PKG_PK_BYTES],
	       const unsigned char sk[PKG_SK_BYTES])
{
	unsigned char sig[crypto_sign_BYTES];
	char sighex[2 * crypto_sign_BYTES + 1], pkhex[2 * PKG_PK_BYTES + 1], *text;
	json_t *env;

	crypto_sign_detached(sig, NULL, (const unsigned char *)manifest, strlen(manifest), sk);
	hex(sighex, sig, sizeof(sig));
	hex(pkhex, pk, PKG_PK_BYTES);
	env = json_pack("{ss ss ss}", "manifest", manifest, "key", pkhex, "signature", sighex);
	text = env ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(env);
	return text;
}

/* Checks a list of {name, size, sha256}: names of 1 to max characters
 * from allowed, not starting with '.', in ascending order when sorted. */
static bool entries_valid(const json_t *list, size_t max, const char *allowed, bool sorted)
{
	const char *name, *sha, *prev = NULL;
	json_int_t size;
	json_t *p;
	size_t i;

	if (!json_is_array(list))
		return false;
	json_array_foreach(list, i, p) {
		if (json_unpack(p, "{s:s, s:I, s:s !}", "name", &name, "size", &size, "sha256",
				&sha) != 0 || size < 0 || strlen(sha) != 64 ||
		    strspn(sha, "0123456789abcdef") != 64 || !*name || strlen(name) > max ||
		    name[0] == '.' || strspn(name, allowed) != strlen(name) ||
		    (sorted && prev && strcmp(prev, name) >= 0))
			return false;
		prev = name;
	}
	return true;
}

#define LOWER "abcdefghijklmnopqrstuvwxyz0123456789._-"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Checks a manifest's members: format 1, a component name, versions,
 * payloads with safe names, sizes and SHA-256 digests, and the optional
 * list of the component's files. */
static bool manifest_valid(json_t *m, char *errbuf, size_t errlen)
{
	const char *component;
	json_int_t format, version, base;
	json_t *payloads, *files = NULL;

	if (json_unpack(m, "{s:I, s:s, s:I, s:I, s:o, s?o !}", "format", &format, "component",
			&component, "version", &version, "base", &base, "payloads",
			&payloads, "files", &files) != 0 || format != 1) {
		snprintf(errbuf, errlen, "manifest: not a format 1 manifest");
		return false;
	}
	if (!*component || strlen(component) > PKG_NAME_MAX || version <= 0 || base < 0 ||
	    base >= version) {
		snprintf(errbuf, errlen, "manifest: bad component name or versions");
		return false;
	}
	if (!entries_valid(payloads, PKG_NAME_MAX, LOWER, false)) {
		snprintf(errbuf, errlen, "manifest: a payload is malformed (names are lowercase "
			 "letters, digits, '.', '_' and '-')");
		return false;
	}
	if (files && !entries_valid(files, PKG_FILE_NAME_MAX, LOWER UPPER, true)) {
		snprintf(errbuf, errlen, "manifest: the file list is malformed (sorted names of "
			 "letters, digits, '.', '_' and '-')");
		return false;
	}
	return true;
}

enum err pkg_open_signed(const char *envelope, size_t len,
			 const unsigned char trusted[PKG_PK_BYTES], json_t **content,
			 char *errbuf, size_t errlen)
{
	unsigned char pk[PKG_PK_BYTES], sig[crypto_sign_BYTES];
	const char *text, *key, *sighex;
	json_t *env;
	enum err err = ERR_FORMAT;
	json_error_t jerr;

	*content = NULL;
	if (len > MANIFEST_MAX) {
		snprintf(errbuf, errlen, "envelope: larger than %u bytes", MANIFEST_MAX);
		return ERR_FORMAT;
	}
	env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!env || json_unpack(env, "{s:s, s:s, s:s !}", "manifest", &text, "key", &key,
				"signature", &sighex) != 0 ||
	    !unhex(pk, sizeof(pk), key) || !unhex(sig, sizeof(sig), sighex)) {
		snprintf(errbuf, errlen, "envelope: malformed");
		goto out;
	}
	if (sodium_memcmp(pk, trusted, PKG_PK_BYTES) != 0) {
		snprintf(errbuf, errlen, "envelope: signed by key %.16s..., not the trusted key",
			 key);
		err = ERR_SIG;
		goto out;
	}
	if (crypto_sign_verify_detached(sig, (const unsigned char *)text, strlen(text), pk) != 0) {
		snprintf(errbuf, errlen, "envelope: the signature does not match the manifest");
		err = ERR_SIG;
		goto out;
	}
	*content = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!*content || !json_is_object(*content)) {
		snprintf(errbuf, errlen, "manifest: not a JSON object%s%s", *content ? "" : ": ",
			 *content ? "" : jerr.text);
		json_decref(*content);
		*content = NULL;
		goto out;
	}
	err = ERR_OK;
out:
	json_decref(env);
	return err;
}

enum err pkg_open(const char *envelope, size_t len, const unsigned char trusted[PKG_PK_BYTES],
		  json_t **manifest, char *errbuf, size_t errlen)
{
	enum err err = pkg_open_signed(envelope, len, trusted, manifest, errbuf, errlen);

	if (err == ERR_OK && !manifest_valid(*manifest, errbuf, errlen)) {
		json_decref(*manifest);
		*manifest = NULL;
		err = ERR_FORMAT;
	}
	return err;
}

enum err pkg_check_version(const json_t *manifest, int64_t installed, char *errbuf,
			   size_t errlen)
{
	json_int_t v = json_integer_value(json_object_get(manifest, "version"));

	if (v <= installed) {
		snprintf(errbuf, errlen, "%s version %lld is not newer than the installed %lld",
			 json_string_value(json_object_get(manifest, "component")), (long long)v,
			 (long long)installed);
		return ERR_OLD;
	}
	return ERR_OK;
}

bool pkg_file_sha256(const char *path, char hex_out[65], uint64_t *size)
{
	unsigned char digest[crypto_hash_sha256_BYTES], buf[65536];
	crypto_hash_sha256_state st;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

	if (fd < 0)
		return false;
	*size = 0;
	crypto_hash_sha256_init(&st);
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (unsigned long long)got);
		*size += (uint64_t)got;
	}
	saved = errno;
	close(fd);
	if (got < 0) {
		errno = saved;
		return false;
	}
	crypto_hash_sha256_final(&st, digest);
	hex(hex_out, digest, sizeof(digest));
	return true;
}

enum err pkg_check_payload(const json_t *manifest, const char *name, const char *path,
			   char *errbuf, size_t errlen)
{
	const json_t *p = NULL, *item;
	char digest[65];
	uint64_t size;
	size_t i;

	json_array_foreach(json_object_get(manifest, "payloads"), i, item)
		if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0)
			p = item;
	if (!p) {
		snprintf(errbuf, errlen, "payload %s: not in the manifest", name);
		return ERR_FORMAT;
	}
	if (!pkg_file_sha256(path, digest, &size)) {
		snprintf(errbuf, errlen, "payload %s: %s", path, strerror(errno));
		return ERR_IO;
	}
	if (size != (uint64_t)json_integer_value(json_object_get(p, "size")) ||
	    strcmp(digest, json_string_value(json_object_get(p, "sha256"))) != 0) {
		snprintf(errbuf, errlen, "payload %s: size or SHA-256 differs from the manifest",
			 name);
		return ERR_HASH;
	}
	return ERR_OK;
}

char *pkg_rotation(const unsigned char new_pk[PKG_PK_BYTES],
		   const unsigned char old_sk[PKG_SK_BYTES])
{
	unsigned char msg[sizeof(rotation_prefix) - 1 + PKG_PK_BYTES], sig[crypto_sign_BYTES];
	char keyhex[2 * PKG_PK_BYTES + 1], sighex[2 * crypto_sign_BYTES + 1], *text;
	json_t *rec;

	memcpy(msg, rotation_prefix, sizeof(rotation_prefix) - 1);
	memcpy(msg + sizeof(rotation_prefix) - 1, new_pk, PKG_PK_BYTES);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), old_sk);
	hex(keyhex, new_pk, PKG_PK_BYTES);
	hex(sighex, sig, sizeof(sig));
	rec = json_pack("{ss ss}", "key", keyhex, "signature", sighex);
	text = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(rec);
	return text;
}

enum err pkg_rotate(const char *record, const unsigned char trusted[PKG_PK_BYTES],
		    unsigned char next[PKG_PK_BYTES], char *errbuf, size_t errlen)
{
	unsigned char msg[sizeof(rotation_prefix) - 1 + PKG_PK_BYTES], sig[crypto_sign_BYTES];
	unsigned char pk[PKG_PK_BYTES];
	json_t *rec = json_loads(record, JSON_REJECT_DUPLICATES, NULL);
	const char *key, *sighex;
	enum err err = ERR_FORMAT;

	if (!rec || json_unpack(rec, "{s:s, s:s !}", "key", &key, "signature", &sighex) != 0 ||
	    !unhex(pk, sizeof(pk), key) || !unhex(sig, sizeof(sig), sighex)) {
		snprintf(errbuf, errlen, "key rotation: malformed record");
		goto out;
	}
	memcpy(msg, rotation_prefix, sizeof(rotation_prefix) - 1);
	memcpy(msg + sizeof(rotation_prefix) - 1, pk, PKG_PK_BYTES);
	if (crypto_sign_verify_detached(sig, msg, sizeof(msg), trusted) != 0) {
		snprintf(errbuf, errlen, "key rotation: not signed by the trusted key");
		err = ERR_SIG;
		goto out;
	}
	memcpy(next, pk, PKG_PK_BYTES);
	err = ERR_OK;
out:
	json_decref(rec);
	return err;
}
