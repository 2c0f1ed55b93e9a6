/* license.c -- license files (see license.h). */
#include "common/license.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char sign_prefix[] = "ward-license:";

static const char *const service_names[LICENSE_NSERVICES] = {
	[LICENSE_ANTIVIRUS] = "antivirus",
	[LICENSE_SMART_SCAN] = "smart-scan",
	[LICENSE_REALTIME] = "realtime",
};

/* 2000-01-01 to 9999-12-31: a time outside is a mistake, not a term. */
#define TIME_MIN 946684800LL
#define TIME_MAX 253402300799LL

#define DAY 86400

const char *license_service_name(enum license_service s)
{
	return (unsigned)s < LICENSE_NSERVICES ? service_names[s] : "?";
}

int license_service_find(const char *name)
{
	int i;

	for (i = 0; i < LICENSE_NSERVICES; i++)
		if (strcmp(service_names[i], name) == 0)
			return i;
	return -1;
}

const char *license_phase_name(enum license_phase p)
{
	static const char *const names[] = { "pending", "active", "grace", "ended" };

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

static bool time_ok(json_int_t t)
{
	return t >= TIME_MIN && t <= TIME_MAX;
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= LICENSE_ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Printable: no control character (UTF-8 itself jansson checked). */
static bool customer_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > LICENSE_CUSTOMER_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Checks the claims object c and fills l (all but the key). */
static enum err claims(json_t *c, struct license *l, char *errbuf, size_t errlen)
{
	json_int_t format, seats, issued, start, expires, grace;
	const char *id, *customer;
	json_t *services, *s;
	int evaluation = 0, svc;
	json_error_t jerr;
	size_t i;

	if (json_unpack_ex(c, &jerr, JSON_STRICT, "{s:I, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, "
			   "s:b}", "format", &format, "id", &id, "customer", &customer,
			   "issued", &issued, "services", &services, "seats", &seats, "start",
			   &start, "expires", &expires, "grace_days", &grace, "evaluation",
			   &evaluation) != 0) {
		util_set_msg(errbuf, errlen, "license: the claims are not those of a format 1 "
			     "license: %s", jerr.text);
		return ERR_FORMAT;
	}
	if (format != 1) {
		util_set_msg(errbuf, errlen, "license: format %lld (this server reads format 1)",
			     (long long)format);
		return ERR_FORMAT;
	}
	if (!id_ok(id)) {
		util_set_msg(errbuf, errlen, "license: id: expected 1 to %d letters, digits, '.', "
			     "'_' or '-'", LICENSE_ID_MAX);
		return ERR_FORMAT;
	}
	if (!customer_ok(customer)) {
		util_set_msg(errbuf, errlen, "license: customer: expected 1 to %d bytes without "
			     "control characters", LICENSE_CUSTOMER_MAX);
		return ERR_FORMAT;
	}
	if (seats < 1 || seats > LICENSE_MAX_SEATS) {
		util_set_msg(errbuf, errlen, "license: seats: %lld is not from 1 to %d",
			     (long long)seats, LICENSE_MAX_SEATS);
		return ERR_FORMAT;
	}
	if (!time_ok(issued) || !time_ok(start) || !time_ok(expires)) {
		util_set_msg(errbuf, errlen, "license: issued, start and expires must be times "
			     "from 2000 to 9999 (seconds since the epoch)");
		return ERR_FORMAT;
	}
	if (expires <= start) {
		util_set_msg(errbuf, errlen, "license: expires is not after start");
		return ERR_FORMAT;
	}
	if (grace < 0 || grace > LICENSE_MAX_GRACE_DAYS) {
		util_set_msg(errbuf, errlen, "license: grace_days: %lld is not from 0 to %d",
			     (long long)grace, LICENSE_MAX_GRACE_DAYS);
		return ERR_FORMAT;
	}
	if (!json_is_array(services) || json_array_size(services) == 0) {
		util_set_msg(errbuf, errlen, "license: services: expected a list of at least one "
			     "service");
		return ERR_FORMAT;
	}
	l->services = 0;
	json_array_foreach(services, i, s) {
		svc = json_is_string(s) ? license_service_find(json_string_value(s)) : -1;
		if (svc < 0) {
			util_set_msg(errbuf, errlen, "license: services[%zu]: expected one of "
				     "antivirus, smart-scan, realtime", i);
			return ERR_FORMAT;
		}
		if (l->services & (1u << svc)) {
			util_set_msg(errbuf, errlen, "license: services[%zu]: %s twice", i,
				     service_names[svc]);
			return ERR_FORMAT;
		}
		l->services |= 1u << svc;
	}
	snprintf(l->id, sizeof(l->id), "%s", id);
	snprintf(l->customer, sizeof(l->customer), "%s", customer);
	l->seats = seats;
	l->issued = issued;
	l->start = start;
	l->expires = expires;
	l->grace_days = grace;
	l->evaluation = evaluation;
	return ERR_OK;
}

/* The bytes an issuer signs: the prefix, then the claims' text. */
static unsigned char *signed_bytes(const char *text, size_t n, size_t *len)
{
	unsigned char *m = malloc(sizeof(sign_prefix) - 1 + n);

	if (!m)
		return NULL;
	memcpy(m, sign_prefix, sizeof(sign_prefix) - 1);
	memcpy(m + sizeof(sign_prefix) - 1, text, n);
	*len = sizeof(sign_prefix) - 1 + n;
	return m;
}

static bool unhex(unsigned char *out, size_t n, const char *text)
{
	size_t got = 0;

	return strlen(text) == 2 * n &&
	       sodium_hex2bin(out, n, text, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

enum err license_open(const char *text, size_t n, struct license *out, char *errbuf,
		      size_t errlen)
{
	unsigned char sig[crypto_sign_BYTES], *m = NULL;
	const char *body, *key, *sighex;
	json_t *env = NULL, *c = NULL;
	enum err err = ERR_FORMAT;
	json_error_t jerr;
	size_t mlen;

	memset(out, 0, sizeof(*out));
	if (n > LICENSE_FILE_MAX) {
		util_set_msg(errbuf, errlen, "license: %zu bytes, more than a license file's %d",
			     n, LICENSE_FILE_MAX);
		return ERR_LIMIT;
	}
	env = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!env) {
		util_set_msg(errbuf, errlen, "license: not JSON: %s at line %d, column %d",
			     jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (json_unpack_ex(env, &jerr, JSON_STRICT, "{s:s, s:s, s:s}", "license", &body, "key",
			   &key, "signature", &sighex) != 0) {
		util_set_msg(errbuf, errlen, "license: expected {\"license\", \"key\", "
			     "\"signature\"}: %s", jerr.text);
		goto out;
	}
	if (!unhex(out->key, sizeof(out->key), key) || !unhex(sig, sizeof(sig), sighex)) {
		util_set_msg(errbuf, errlen, "license: key or signature: expected %d and %d hex "
			     "digits", 2 * LICENSE_PK_BYTES, 2 * crypto_sign_BYTES);
		goto out;
	}
	m = signed_bytes(body, strlen(body), &mlen);
	if (!m) {
		err = ERR_NOMEM;
		util_set_msg(errbuf, errlen, "license: out of memory");
		goto out;
	}
	if (crypto_sign_verify_detached(sig, m, mlen, out->key) != 0) {
		err = ERR_SIG;
		util_set_msg(errbuf, errlen, "license: the signature does not verify with the "
			     "key it names (the file was altered)");
		goto out;
	}
	c = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!c) {
		util_set_msg(errbuf, errlen, "license: the claims are not JSON: %s", jerr.text);
		goto out;
	}
	err = claims(c, out, errbuf, errlen);
out:
	free(m);
	json_decref(c);
	json_decref(env);
	return err;
}

char *license_seal(const struct license *l, const unsigned char pk[LICENSE_PK_BYTES],
		   const unsigned char sk[LICENSE_SK_BYTES])
{
	unsigned char sig[crypto_sign_BYTES], *m = NULL;
	char sighex[2 * crypto_sign_BYTES + 1], pkhex[2 * LICENSE_PK_BYTES + 1];
	char *body = NULL, *text = NULL, err[160];
	json_t *c, *services = json_array(), *env = NULL;
	struct license check;
	size_t mlen;
	int i;

	for (i = 0; services && i < LICENSE_NSERVICES; i++)
		if (l->services & (1u << i))
			json_array_append_new(services, json_string(service_names[i]));
	c = services ? json_pack("{si ss ss sI so sI sI sI sI sb}", "format", 1, "id", l->id,
				 "customer", l->customer, "issued", (json_int_t)l->issued,
				 "services", services, "seats", (json_int_t)l->seats, "start",
				 (json_int_t)l->start, "expires", (json_int_t)l->expires,
				 "grace_days", (json_int_t)l->grace_days, "evaluation",
				 l->evaluation) : NULL;
	if (!c || claims(c, &check, err, sizeof(err)) != ERR_OK)
		goto out;
	body = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	m = body ? signed_bytes(body, strlen(body), &mlen) : NULL;
	if (!m)
		goto out;
	crypto_sign_detached(sig, NULL, m, mlen, sk);
	sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, LICENSE_PK_BYTES);
	env = json_pack("{ss ss ss}", "license", body, "key", pkhex, "signature", sighex);
	text = env ? json_dumps(env, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
out:
	free(m);
	free(body);
	json_decref(env);
	json_decref(c);
	return text;
}

int64_t license_grace_end(const struct license *l)
{
	return l->expires + l->grace_days * DAY;
}

enum license_phase license_phase(const struct license *l, int64_t now)
{
	if (now < l->start)
		return LICENSE_PENDING;
	if (now < l->expires)
		return LICENSE_ACTIVE;
	return now < license_grace_end(l) ? LICENSE_GRACE : LICENSE_ENDED;
}
