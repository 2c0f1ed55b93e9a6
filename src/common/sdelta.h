/* sdelta.h -- set deltas: how one sorted set of elements becomes another,
 * as removals by position plus additions.
 *
 * A set is a byte string holding its elements in strictly ascending order:
 * either lines (each ended by '\n', width 0) or records of a fixed width.
 * Elements compare bytewise (memcmp over the shorter, then the shorter
 * first). Signature files are made into sets by sdelta_normalize(), which
 * is what lets a delta be small: a set changed by a few elements differs
 * from the old one by those elements only, wherever they sort.
 *
 * A delta is binary (formats.md, "Set deltas"): a magic, the width, the
 * SHA-256 of the set it applies to, the removed positions as gaps and the
 * added elements in order. Applying one checks everything: the base hash,
 * positions in range and ascending, additions ascending and new, no bytes
 * left over. The result's own hash is the caller's to check (the package
 * manifest lists it). Thread-safe: no state.
 */
#ifndef WARD_SDELTA_H
#define WARD_SDELTA_H

#include <stddef.h>

#include "common/util.h"
#include "common/err.h"


/* The longest record width; lines may be of any length. */
#define SDELTA_MAX_WIDTH 64

/* Makes the set of the n bytes at in into out (appended): for width 0 the
 * lines, with '\r' before '\n' and empty lines dropped and a final '\n'
 * added when missing; for width w, n must be a multiple of w. Elements
 * are sorted and duplicates dropped. */
enum err sdelta_normalize(const char *in, size_t n, size_t width, struct util_buf *out);

/* Appends to out the delta that turns set old into set new (both of the
 * given width, each strictly ascending: ERR_FORMAT otherwise). */
enum err sdelta_make(const char *old, size_t oldlen, const char *new_set, size_t newlen,
		     size_t width, struct util_buf *out);

/* Applies delta (dlen bytes) to set old and appends the resulting set to
 * out. ERR_BASE when old is not the set the delta was made from;
 * ERR_FORMAT, with the offset and reason in errbuf, when the delta is
 * malformed. */
enum err sdelta_apply(const char *old, size_t oldlen, const char *delta, size_t dlen,
		      struct util_buf *out, char *errbuf, size_t errlen);

#endif
