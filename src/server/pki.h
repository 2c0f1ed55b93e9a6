/* pki.h -- wardd's certificate authority: the server CA and the
 * certificates it issues, made with GnuTLS.
 *
 * Keys are ECDSA P-256, signatures SHA-256. Everything is exchanged as PEM
 * text in NUL-terminated strings the caller frees. Thread-safe (no shared
 * state beyond GnuTLS's own, initialised on first use).
 */
#ifndef WARD_PKI_H
#define WARD_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include "server/serr.h"


/* Makes a self-signed CA certificate named cn, valid for days from now.
 * Stores the new key and certificate (PEM, caller frees) in *key_pem and
 * *cert_pem. */
enum serr pki_make_ca(const char *cn, unsigned days, char **key_pem, char **cert_pem,
		      char *errbuf, size_t errlen);

/* Issues a TLS server certificate signed by the CA (ca_key_pem,
 * ca_cert_pem) for names: host names (DNS) and IPv4/IPv6 literals, the
 * first also being the subject's common name. Valid for days from now.
 * Stores the new key and certificate in *key_pem and *cert_pem. */
enum serr pki_issue_server(const char *ca_key_pem, const char *ca_cert_pem,
			   const char *const *names, size_t nnames, unsigned days,
			   char **key_pem, char **cert_pem, char *errbuf, size_t errlen);

/* Checks that cert_pem was issued by ca_cert_pem, is valid now and names
 * host (a DNS name or IP literal). Returns SERR_OK or SERR_CRYPTO with the
 * reason in errbuf. */
enum serr pki_verify_server(const char *ca_cert_pem, const char *cert_pem, const char *host,
			    char *errbuf, size_t errlen);

/* The length of a pin with its NUL: "sha256//" and 44 base64 characters. */
#define PKI_PIN_LEN 53

/* Writes the pin of cert_pem's public key to out: "sha256//" and the
 * base64 SHA-256 of its SubjectPublicKeyInfo, the form libcurl pins
 * (CURLOPT_PINNEDPUBLICKEY). */
enum serr pki_pin(const char *cert_pem, char out[PKI_PIN_LEN], char *errbuf, size_t errlen);

/* Returns true when the certificate cert_pem would be accepted by a TLS
 * client for one of names (host names or addresses; *which is set to it),
 * or when it cannot be read. A smart protection server's names must never
 * reach wardd's own. */
bool pki_names_overlap(const char *cert_pem, const char *const *names, size_t nnames,
		       const char **which);

#endif
