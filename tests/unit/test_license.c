/* test_license.c -- license files: a sealed license opens to the same
 * claims; one changed byte of its claims, signature or key is refused;
 * every claim out of range is refused naming it; the phases of a term. */
#include <jansson.h>
#include <sodium.h>

#include "check.h"
#include "common/license.h"

static char msg[256];

/* The license file of l's claims with member name set to value (JSON
 * text), signed with sk as an issuer would. */
static char *with_claim(const struct license *l, const unsigned char *pk,
			const unsigned char *sk, const char *name, const char *value)
{
	static const char prefix[] = "ward-license:";
	char *file = license_seal(l, pk, sk), *claims, *out, sighex[129];
	json_t *env = json_loads(file, 0, NULL), *c;
	unsigned char sig[64];
	size_t n;
	char *m;

	c = json_loads(json_string_value(json_object_get(env, "license")), 0, NULL);
	if (value)
		json_object_set_new(c, name, json_loads(value, JSON_DECODE_ANY, NULL));
	else
		json_object_del(c, name);
	claims = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	n = strlen(claims);
	m = malloc(sizeof(prefix) - 1 + n);
	memcpy(m, prefix, sizeof(prefix) - 1);
	memcpy(m + sizeof(prefix) - 1, claims, n);
	crypto_sign_detached(sig, NULL, (unsigned char *)m, sizeof(prefix) - 1 + n, sk);
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	json_object_set_new(env, "license", json_string(claims));
	json_object_set_new(env, "signature", json_string(sighex));
	out = json_dumps(env, JSON_COMPACT);
	free(m);
	free(claims);
	free(file);
	json_decref(c);
	json_decref(env);
	return out;
}

/* file with its claims signed without the license prefix. */
static char *bare_signed(const char *file, const unsigned char *sk)
{
	json_t *env = json_loads(file, 0, NULL);
	const char *claims = json_string_value(json_object_get(env, "license"));
	unsigned char sig[64];
	char sighex[129], *out;

	crypto_sign_detached(sig, NULL, (const unsigned char *)claims, strlen(claims), sk);
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	json_object_set_new(env, "signature", json_string(sighex));
	out = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	return out;
}

static void refused(const struct license *l, const unsigned char *pk, const unsigned char *sk,
		    const char *name, const char *value, const char *why)
{
	struct license got;
	char *file = with_claim(l, pk, sk, name, value);

	CHECK(license_open(file, strlen(file), &got, msg, sizeof(msg)) == ERR_FORMAT);
	CHECK_STR_CONTAINS(msg, why);
	free(file);
}

int main(void)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64];
	struct license l = { .id = "acme-2027", .customer = "Acme Ltd", .seats = 500,
			     .issued = 1790000000, .start = 1790000000, .expires = 1800000000,
			     .grace_days = 30 }, got;
	char *file, *copy, *p, *stamp;
	size_t n;

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	l.services = 1u << LICENSE_ANTIVIRUS | 1u << LICENSE_SMART_SCAN;

	/* Sealed, it opens to the same license, with its issuer's key. */
	file = license_seal(&l, pk, sk);
	CHECK(file != NULL);
	CHECK(license_open(file, strlen(file), &got, msg, sizeof(msg)) == ERR_OK);
	CHECK_STR_EQ(got.id, "acme-2027");
	CHECK_STR_EQ(got.customer, "Acme Ltd");
	CHECK(got.services == l.services && got.seats == 500 && got.start == l.start &&
	      got.expires == l.expires && got.grace_days == 30 && !got.evaluation);
	CHECK(memcmp(got.key, pk, 32) == 0);

	/* One byte changed anywhere in the claims or signature: refused. */
	n = strlen(file);
	copy = strdup(file);
	p = strstr(copy, "500");
	p[0] = '9';
	CHECK(license_open(copy, n, &got, msg, sizeof(msg)) == ERR_SIG);
	CHECK_STR_CONTAINS(msg, "does not verify");
	free(copy);
	copy = strdup(file);
	p = strstr(copy, "\"signature\"");
	p = strchr(p + 12, '"') + 1;
	p[0] = p[0] == '0' ? '1' : '0';
	CHECK(license_open(copy, n, &got, msg, sizeof(msg)) == ERR_SIG);
	free(copy);
	/* Another key put in its place does not verify either. */
	copy = strdup(file);
	p = strstr(copy, "\"key\"");
	p = strchr(p + 5, '"') + 1;
	sodium_bin2hex(p, 65, pk2, 32);
	p[64] = '"';
	CHECK(license_open(copy, n, &got, msg, sizeof(msg)) == ERR_SIG);
	free(copy);
	/* A signature of the bare claims (as a package manifest is signed) is
	 * no license's: the prefix. */
	copy = bare_signed(file, sk);
	CHECK(license_open(copy, strlen(copy), &got, msg, sizeof(msg)) == ERR_SIG);
	free(copy);
	free(file);

	/* Each claim out of range, named. */
	refused(&l, pk, sk, "format", "2", "format 2");
	refused(&l, pk, sk, "id", "\"a/b\"", "id: expected");
	refused(&l, pk, sk, "id", "\"\"", "id: expected");
	refused(&l, pk, sk, "customer", "\"a\\u0007b\"", "customer: expected");
	refused(&l, pk, sk, "seats", "0", "seats: 0 is not");
	refused(&l, pk, sk, "seats", "10000001", "seats: 10000001");
	refused(&l, pk, sk, "expires", "1790000000", "expires is not after start");
	refused(&l, pk, sk, "start", "12", "must be times from 2000 to 9999");
	refused(&l, pk, sk, "grace_days", "366", "grace_days: 366");
	refused(&l, pk, sk, "services", "[]", "services: expected a list");
	refused(&l, pk, sk, "services", "[\"antivirus\",\"firewall\"]", "services[1]: expected");
	refused(&l, pk, sk, "services", "[\"realtime\",\"realtime\"]",
		"services[1]: realtime twice");
	refused(&l, pk, sk, "evaluation", NULL, "not those of a format 1 license");
	refused(&l, pk, sk, "note", "\"x\"", "not those of a format 1 license");
	CHECK(license_open("{\"license\": 1}", 14, &got, msg, sizeof(msg)) == ERR_FORMAT);
	CHECK(license_open("nonsense", 8, &got, msg, sizeof(msg)) == ERR_FORMAT);
	CHECK_STR_CONTAINS(msg, "not JSON");
	stamp = calloc(1, LICENSE_FILE_MAX + 2);
	memset(stamp, ' ', LICENSE_FILE_MAX + 1);
	CHECK(license_open(stamp, LICENSE_FILE_MAX + 1, &got, msg, sizeof(msg)) == ERR_LIMIT);
	free(stamp);
	/* Out-of-range claims are not sealed. */
	got = l;
	got.seats = 0;
	CHECK(license_seal(&got, pk, sk) == NULL);

	/* The term: pending, active, grace, ended. */
	CHECK(license_phase(&l, l.start - 1) == LICENSE_PENDING);
	CHECK(license_phase(&l, l.start) == LICENSE_ACTIVE);
	CHECK(license_phase(&l, l.expires - 1) == LICENSE_ACTIVE);
	CHECK(license_phase(&l, l.expires) == LICENSE_GRACE);
	CHECK(license_grace_end(&l) == l.expires + 30 * 86400);
	CHECK(license_phase(&l, license_grace_end(&l) - 1) == LICENSE_GRACE);
	CHECK(license_phase(&l, license_grace_end(&l)) == LICENSE_ENDED);
	l.grace_days = 0;
	CHECK(license_phase(&l, l.expires) == LICENSE_ENDED);
	CHECK(license_service_find("smart-scan") == LICENSE_SMART_SCAN);
	CHECK(license_service_find("firewall") == -1);
	return check_finish();
}
