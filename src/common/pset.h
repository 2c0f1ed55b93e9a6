/* pset.h -- the hash-prefix set of the Smart Scan Agent Pattern: which
 * digest prefixes a smart protection server may know about, kept in about
 * 12 bits per hash signature.
 *
 * As a set (what deltas are made of, sdelta.h) it is a sorted run of
 * 5-byte records: a digest type (COMP_MD5, COMP_SHA1, COMP_SHA256) and
 * the first four bytes of a digest, of which only the first B bits count
 * (the rest are zero), plus one parameter record per type present,
 * (0x10 | type, B, 0, 0, 0), which sorts after every element. B is chosen
 * from the number of digests of the type (pset_width()), so that about one
 * lookup in 860 to 1,720 of a clean file's digests hits by chance.
 *
 * As a file it is Golomb-Rice coded: the gaps between successive prefixes
 * of each type (formats.md, "Hash prefixes"). pset_encode() and
 * pset_decode() turn one form into the other exactly. An agent keeps the
 * file form in memory and looks digests up in it with pset_has().
 * Thread-safe: a loaded set is read-only.
 */
#ifndef WARD_PSET_H
#define WARD_PSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "common/err.h"


/* The width of a set record, and the largest digest type. */
#define PSET_RECORD 5
#define PSET_TYPES 3

/* Returns the prefix width in bits for a type with n digests (n > 0). */
unsigned pset_width(uint64_t n);

/* Makes the record of digest (of type 1..PSET_TYPES) at prefix width bits
 * into rec. */
void pset_record(unsigned type, const unsigned char *digest, unsigned bits,
		 unsigned char rec[PSET_RECORD]);

/* Makes the parameter record of type with prefix width bits into rec. */
void pset_param(unsigned type, unsigned bits, unsigned char rec[PSET_RECORD]);

/* Appends the file form of set (n bytes of sorted records, as above) to
 * out. ERR_FORMAT when the set breaks a rule (errbuf says which). */
enum err pset_encode(const char *set, size_t n, struct util_buf *out, char *errbuf,
		     size_t errlen);

/* Appends the set form of the file at data (n bytes) to out. Every rule
 * is checked: ERR_FORMAT names the offset and what was wrong. */
enum err pset_decode(const char *data, size_t n, struct util_buf *out, char *errbuf,
		     size_t errlen);

struct pset;

/* Loads the file form (copied) for lookups, with an index of every 256th
 * prefix. Returns NULL with a message in errbuf when it is malformed or
 * memory runs out. The caller frees it with pset_free(). */
struct pset *pset_load(const char *data, size_t n, char *errbuf, size_t errlen);

/* Returns the prefix width of type in s, 0 when s has no digest of it. */
unsigned pset_bits(const struct pset *s, unsigned type);

/* Returns whether the prefix of digest (of type) is in s. */
bool pset_has(const struct pset *s, unsigned type, const unsigned char *digest);

/* Returns the number of prefixes in s, and the bytes it holds in memory. */
uint64_t pset_count(const struct pset *s);
size_t pset_memory(const struct pset *s);

/* Frees s (NULL is accepted). */
void pset_free(struct pset *s);

#endif
