/* test_pkg.c -- signed packages: a good package opens; one flipped byte in
 * the manifest, the signature or a payload is refused; so are an older
 * version, another key, unsafe payload names; key rotation. */
#include <jansson.h>
#include <sodium.h>

#include "check.h"
#include "common/pkg.h"

static char msg[256];

/* Returns the envelope of a one-payload package for data. */
static char *package(const unsigned char *pk, const unsigned char *sk, int64_t version,
		     const char *name, const char *data, size_t n)
{
	unsigned char digest[32];
	char hexd[65], *manifest, *env;
	json_t *payloads;

	crypto_hash_sha256(digest, (const unsigned char *)data, n);
	sodium_bin2hex(hexd, sizeof(hexd), digest, sizeof(digest));
	payloads = json_pack("[{ss sI ss}]", "name", name, "size", (json_int_t)n, "sha256", hexd);
	manifest = pkg_manifest("virus-pattern", version, 0, payloads, NULL);
	env = manifest ? pkg_seal(manifest, pk, sk) : NULL;
	json_decref(payloads);
	free(manifest);
	return env;
}

/* Opens env (len bytes) with trusted; returns the error. */
static enum err try_open(const char *env, size_t len, const unsigned char *trusted)
{
	json_t *m = NULL;
	enum err err = pkg_open(env, len, trusted, &m, msg, sizeof(msg));

	json_decref(m);
	return err;
}

int main(void)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64], next[32];
	const char data[] = "signature database bytes\n";
	const char *dir = test_tmpdir();
	char *env, *copy, *rec, *payload, *p;
	json_t *m = NULL;
	size_t len;

	if (sodium_init() < 0)
		return 1;
	pkg_keygen(pk, sk);
	pkg_keygen(pk2, sk2);
	env = package(pk, sk, 7, "main.cvd", data, sizeof(data) - 1);
	CHECK(env != NULL);
	len = strlen(env);
	payload = test_write(dir, "main.cvd", data, sizeof(data) - 1);

	/* A good package: opens, is newer than 6, not than 7; its payload checks. */
	CHECK(pkg_open(env, len, pk, &m, msg, sizeof(msg)) == ERR_OK);
	CHECK(pkg_check_version(m, 6, msg, sizeof(msg)) == ERR_OK);
	CHECK(pkg_check_version(m, 7, msg, sizeof(msg)) == ERR_OLD);
	CHECK_STR_CONTAINS(msg, "virus-pattern version 7 is not newer than the installed 7");
	CHECK(pkg_check_payload(m, "main.cvd", payload, msg, sizeof(msg)) == ERR_OK);
	CHECK(pkg_check_payload(m, "daily.cld", payload, msg, sizeof(msg)) == ERR_FORMAT);

	/* One flipped byte in the payload, or a truncated one. */
	free(payload);
	payload = test_write(dir, "main.cvd", "Signature database bytes\n", sizeof(data) - 1);
	CHECK(pkg_check_payload(m, "main.cvd", payload, msg, sizeof(msg)) == ERR_HASH);
	free(payload);
	payload = test_write(dir, "main.cvd", data, sizeof(data) - 5);
	CHECK(pkg_check_payload(m, "main.cvd", payload, msg, sizeof(msg)) == ERR_HASH);
	json_decref(m);

	/* One flipped byte in the manifest (its version), and in the signature. */
	copy = strdup(env);
	p = strstr(copy, "\\\"version\\\":7");
	CHECK(p != NULL);
	if (p) {
		p[strlen("\\\"version\\\":")] = '8';
		CHECK(try_open(copy, len, pk) == ERR_SIG);
		CHECK_STR_CONTAINS(msg, "signature does not match");
	}
	memcpy(copy, env, strlen(env) + 1);
	p = strstr(copy, "\"signature\":\"") + strlen("\"signature\":\"");
	*p = *p == '0' ? '1' : '0';
	CHECK(try_open(copy, len, pk) == ERR_SIG);
	/* Another key, garbage, and a truncated envelope. */
	CHECK(try_open(env, len, pk2) == ERR_SIG);
	CHECK_STR_CONTAINS(msg, "not the trusted key");
	CHECK(try_open("{}", 2, pk) == ERR_FORMAT);
	CHECK(try_open(env, len / 2, pk) == ERR_FORMAT);
	free(copy);
	free(env);

	/* Payload names that could escape a directory are refused. */
	env = package(pk, sk, 8, "../etc/passwd", data, sizeof(data) - 1);
	CHECK(try_open(env, strlen(env), pk) == ERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "a payload is malformed");
	free(env);

	/* Rotation: the old key vouches for the new; a stranger cannot. */
	rec = pkg_rotation(pk2, sk);
	CHECK(rec && pkg_rotate(rec, pk, next, msg, sizeof(msg)) == ERR_OK);
	CHECK(memcmp(next, pk2, 32) == 0);
	free(rec);
	rec = pkg_rotation(pk2, sk2);
	CHECK(rec && pkg_rotate(rec, pk, next, msg, sizeof(msg)) == ERR_SIG);
	free(rec);
	env = package(pk2, sk2, 9, "main.cvd", data, sizeof(data) - 1);
	CHECK(try_open(env, strlen(env), next) == ERR_OK);
	free(env);
	free(payload);
	return check_finish();
}
