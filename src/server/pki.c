/* pki.c -- the server CA and its certificates, with GnuTLS (see pki.h). */
#include "server/pki.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/* Certificates are valid from a little in the past, so that a peer whose
 * clock is slightly behind does not refuse a certificate made just now. */
#define BACKDATE_SECONDS 3600

/* Records GnuTLS's error for the step what; returns the matching code. */
static enum serr tls_fail(int rc, const char *what, char *errbuf, size_t errlen)
{
	util_set_msg(errbuf, errlen, "%s: %s", what, gnutls_strerror(rc));
	return rc == GNUTLS_E_MEMORY_ERROR ? SERR_NOMEM : SERR_CRYPTO;
}

/* Copies a GnuTLS datum into a NUL-terminated string and frees the datum. */
static char *datum_to_str(gnutls_datum_t *d)
{
	char *s = malloc(d->size + 1);

	if (s) {
		memcpy(s, d->data, d->size);
		s[d->size] = '\0';
	}
	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

static int new_key(gnutls_x509_privkey_t *key)
{
	int rc = gnutls_x509_privkey_init(key);

	if (rc < 0)
		return rc;
	rc = gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
					  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (rc < 0) {
		gnutls_x509_privkey_deinit(*key);
		*key = NULL;
	}
	return rc;
}

/* Sets what every certificate carries: version 3, a random 128-bit serial,
 * the validity period, the subject CN and the public key. */
static int base_fields(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn,
		       unsigned days)
{
	unsigned char serial[16];
	time_t now = time(NULL);
	int rc;

	rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f; /* a positive INTEGER */
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, now - BACKDATE_SECONDS);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						   (unsigned)strlen(cn));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key(crt, key);
	return rc;
}

static enum serr export_pair(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt,
			     char **key_pem, char **cert_pem, char *errbuf, size_t errlen)
{
	gnutls_datum_t k = { NULL, 0 }, c = { NULL, 0 };
	int rc;

	rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
	if (rc < 0)
		return tls_fail(rc, "exporting the key", errbuf, errlen);
	rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c);
	if (rc < 0) {
		gnutls_free(k.data);
		return tls_fail(rc, "exporting the certificate", errbuf, errlen);
	}
	*key_pem = datum_to_str(&k);
	*cert_pem = datum_to_str(&c);
	if (!*key_pem || !*cert_pem) {
		free(*key_pem);
		free(*cert_pem);
		*key_pem = *cert_pem = NULL;
		util_set_msg(errbuf, errlen, "out of memory");
		return SERR_NOMEM;
	}
	return SERR_OK;
}

enum serr pki_make_ca(const char *cn, unsigned days, char **key_pem, char **cert_pem,
		      char *errbuf, size_t errlen)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	unsigned char id[64];
	size_t idlen = sizeof(id);
	enum serr err;
	int rc;

	rc = new_key(&key);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = base_fields(crt, key, cn, days);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 1, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN |
						   GNUTLS_KEY_CRL_SIGN);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_key_id(crt, 0, id, &idlen);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_key_id(crt, id, idlen);
	if (rc >= 0)
		rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	err = rc < 0 ? tls_fail(rc, "making the CA", errbuf, errlen) :
	      export_pair(key, crt, key_pem, cert_pem, errbuf, errlen);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return err;
}

static int import_ca(const char *key_pem, const char *cert_pem, gnutls_x509_privkey_t *key,
		     gnutls_x509_crt_t *crt)
{
	gnutls_datum_t k = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	gnutls_datum_t c = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	int rc;

	rc = gnutls_x509_privkey_init(key);
	if (rc >= 0)
		rc = gnutls_x509_privkey_import(*key, &k, GNUTLS_X509_FMT_PEM);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(crt);
	if (rc >= 0)
		rc = gnutls_x509_crt_import(*crt, &c, GNUTLS_X509_FMT_PEM);
	return rc;
}

/* Adds name to the certificate's subjectAltName: an IP address when it
 * parses as one, a DNS name otherwise. */
static int add_san(gnutls_x509_crt_t crt, const char *name, bool *bad)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, name, addr) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, 4,
							    GNUTLS_FSAN_APPEND);
	if (inet_pton(AF_INET6, name, addr) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, 16,
							    GNUTLS_FSAN_APPEND);
	if (!*name || strlen(name) > 253 || strspn(name, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen(name)) {
		*bad = true;
		return GNUTLS_E_INVALID_REQUEST;
	}
	return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
						    (unsigned)strlen(name), GNUTLS_FSAN_APPEND);
}

enum serr pki_issue_server(const char *ca_key_pem, const char *ca_cert_pem,
			   const char *const *names, size_t nnames, unsigned days,
			   char **key_pem, char **cert_pem, char *errbuf, size_t errlen)
{
	gnutls_x509_privkey_t cakey = NULL, key = NULL;
	gnutls_x509_crt_t cacrt = NULL, crt = NULL;
	unsigned char id[64];
	size_t i, idlen = sizeof(id);
	bool bad = false;
	enum serr err;
	int rc;

	if (nnames == 0) {
		util_set_msg(errbuf, errlen, "a server certificate needs at least one name");
		return SERR_INVAL;
	}
	rc = import_ca(ca_key_pem, ca_cert_pem, &cakey, &cacrt);
	if (rc < 0) {
		err = tls_fail(rc, "reading the CA", errbuf, errlen);
		goto out;
	}
	rc = new_key(&key);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = base_fields(crt, key, names[0], days);
	for (i = 0; rc >= 0 && i < nnames; i++)
		rc = add_san(crt, names[i], &bad);
	if (bad) {
		util_set_msg(errbuf, errlen, "'%s' is neither a host name nor an IP address",
			names[i - 1]);
		err = SERR_INVAL;
		goto out;
	}
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_key_id(crt, 0, id, &idlen);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_key_id(crt, id, idlen);
	idlen = sizeof(id);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_subject_key_id(cacrt, id, &idlen, NULL);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_authority_key_id(crt, id, idlen);
	if (rc >= 0)
		rc = gnutls_x509_crt_sign2(crt, cacrt, cakey, GNUTLS_DIG_SHA256, 0);
	err = rc < 0 ? tls_fail(rc, "issuing the server certificate", errbuf, errlen) :
	      export_pair(key, crt, key_pem, cert_pem, errbuf, errlen);
out:
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	gnutls_x509_crt_deinit(cacrt);
	gnutls_x509_privkey_deinit(cakey);
	return err;
}

/* Makes *crt the certificate in pem; returns GnuTLS's code (*crt is NULL
 * on failure). */
static int import_crt(const char *pem, gnutls_x509_crt_t *crt)
{
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };
	int rc = gnutls_x509_crt_init(crt);

	if (rc >= 0)
		rc = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		gnutls_x509_crt_deinit(*crt);
		*crt = NULL;
	}
	return rc;
}

enum serr pki_verify_server(const char *ca_cert_pem, const char *cert_pem, const char *host,
			    char *errbuf, size_t errlen)
{
	gnutls_x509_crt_t crt = NULL, ca = NULL;
	unsigned status = 0;
	enum serr err = SERR_OK;
	int rc;

	rc = import_crt(cert_pem, &crt);
	if (rc >= 0)
		rc = import_crt(ca_cert_pem, &ca);
	if (rc >= 0)
		rc = gnutls_x509_crt_verify(crt, &ca, 1, 0, &status);
	if (rc < 0)
		err = tls_fail(rc, "verifying the certificate", errbuf, errlen);
	else if (status) {
		util_set_msg(errbuf, errlen, "certificate not valid (status 0x%x)", status);
		err = SERR_CRYPTO;
	} else if (!gnutls_x509_crt_check_hostname(crt, host)) {
		util_set_msg(errbuf, errlen, "certificate does not name %s", host);
		err = SERR_CRYPTO;
	}
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(crt);
	return err;
}

enum serr pki_pin(const char *cert_pem, char out[PKI_PIN_LEN], char *errbuf, size_t errlen)
{
	gnutls_datum_t spki = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	unsigned char digest[32];
	enum serr err = SERR_OK;
	int rc;

	rc = import_crt(cert_pem, &crt);
	if (rc >= 0)
		rc = gnutls_pubkey_init(&pub);
	if (rc >= 0)
		rc = gnutls_pubkey_import_x509(pub, crt, 0);
	if (rc >= 0)
		rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki);
	if (rc >= 0)
		rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest);
	if (rc < 0) {
		err = tls_fail(rc, "reading the certificate's public key", errbuf, errlen);
	} else {
		gnutls_datum_t d = { digest, sizeof(digest) }, b64 = { NULL, 0 };

		/* curl's CURLOPT_PINNEDPUBLICKEY form: sha256//BASE64. */
		rc = gnutls_base64_encode2(&d, &b64);
		if (rc < 0 || b64.size != 44)
			err = tls_fail(rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR, "encoding the pin",
				       errbuf, errlen);
		else
			snprintf(out, PKI_PIN_LEN, "sha256//%.44s", (const char *)b64.data);
		gnutls_free(b64.data);
	}
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return err;
}

bool pki_names_overlap(const char *cert_pem, const char *const *names, size_t nnames,
		       const char **which)
{
	gnutls_x509_crt_t crt = NULL;
	bool hit = import_crt(cert_pem, &crt) < 0;
	size_t i;

	for (i = 0; !hit && i < nnames; i++) {
		/* Wildcards and case are the TLS clients' rules. */
		if (gnutls_x509_crt_check_hostname(crt, names[i])) {
			hit = true;
			*which = names[i];
		}
	}
	gnutls_x509_crt_deinit(crt);
	return hit;
}
