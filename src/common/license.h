/* license.h -- license files: Ed25519-signed claims of what a customer
 * may use (services, seats, term, grace), as issuers make them and wardd
 * checks them (docs/formats.md, "License files").
 *
 * A license file is an envelope like a package's:
 *
 *     {"license": "<the claims' exact JSON text>",
 *      "key": "<issuer's public key, hex>",
 *      "signature": "<Ed25519 signature of \"ward-license:\" and the text, hex>"}
 *
 * The prefix keeps a license signature from ever passing for a package
 * manifest's or a key rotation's, should an issuer's key be one of those.
 * license_open() checks the envelope, the signature by the key it names
 * and every claim; whether that key is trusted is the caller's policy.
 * Thread-safe: no state beyond libsodium's (sodium_init() first).
 */
#ifndef WARD_LICENSE_H
#define WARD_LICENSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* What a license may cover. */
enum license_service {
	LICENSE_ANTIVIRUS,   /* scanning, the Virus Pattern's updates */
	LICENSE_SMART_SCAN,  /* smart scan: its patterns' updates, switching to it */
	LICENSE_REALTIME,    /* real-time scanning: switching it on */
	LICENSE_NSERVICES
};

#define LICENSE_PK_BYTES 32
#define LICENSE_SK_BYTES 64
#define LICENSE_ID_MAX 64
#define LICENSE_CUSTOMER_MAX 128
/* The largest license file accepted. */
#define LICENSE_FILE_MAX 16384
#define LICENSE_MAX_SEATS 10000000
#define LICENSE_MAX_GRACE_DAYS 365

struct license {
	char id[LICENSE_ID_MAX + 1];              /* letters, digits, '.', '_', '-' */
	char customer[LICENSE_CUSTOMER_MAX + 1];  /* printable, UTF-8 */
	unsigned services;                        /* 1 << enum license_service */
	int64_t seats;                            /* 1 to LICENSE_MAX_SEATS */
	int64_t issued, start, expires;           /* seconds since the epoch; start < expires */
	int64_t grace_days;                       /* after expires: updates go on */
	bool evaluation;
	unsigned char key[LICENSE_PK_BYTES];      /* the issuer's, that signed it */
};

/* Where a license is in its term at a moment. */
enum license_phase {
	LICENSE_PENDING,  /* before start */
	LICENSE_ACTIVE,   /* start to expires */
	LICENSE_GRACE,    /* expires to the end of the grace period */
	LICENSE_ENDED,    /* after the grace period */
};

/* The service's name ("antivirus", "smart-scan", "realtime"). */
const char *license_service_name(enum license_service s);

/* The service called name, or -1. */
int license_service_find(const char *name);

/* The phase's name ("pending", "active", "grace", "ended"). */
const char *license_phase_name(enum license_phase p);

/* Opens the license file text (n bytes): the envelope, the signature by
 * the key it names, and every claim (ERR_FORMAT, ERR_LIMIT or ERR_SIG,
 * errbuf naming what was wrong). Fills *out, key included; the caller
 * decides whether it trusts that key. */
enum err license_open(const char *text, size_t n, struct license *out, char *errbuf,
		      size_t errlen);

/* The license file of l's claims (its key member is ignored) signed with
 * sk, whose public half is pk: a new string the caller frees, or NULL when
 * out of memory or a claim is out of range (ERR_FORMAT's rules). */
char *license_seal(const struct license *l, const unsigned char pk[LICENSE_PK_BYTES],
		   const unsigned char sk[LICENSE_SK_BYTES]);

/* The end of l's grace period: updates stop then. */
int64_t license_grace_end(const struct license *l);

/* Where l is at now. */
enum license_phase license_phase(const struct license *l, int64_t now);

#endif
