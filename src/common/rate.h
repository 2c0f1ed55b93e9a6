/* rate.h -- token-bucket rate limits per key (a peer address, a token's
 * id, a client), in a table of fixed size.
 *
 * Each key may spend burst requests at once, refilled at per_minute a
 * minute. The table never grows: when it is full, the key idle longest
 * gives its slot up, so a flood of new keys costs no memory and forgets
 * only keys that were quiet. Not thread-safe: one limiter per thread (the
 * HTTP loop's, in wardd).
 */
#ifndef WARD_RATE_H
#define WARD_RATE_H

#include <stdbool.h>
#include <stdint.h>

#define RATE_KEY_MAX 64

struct rate;

/* Returns a new limiter of slots keys (the caller frees it with
 * rate_free()), or NULL when out of memory. per_minute 0: no limit. */
struct rate *rate_new(unsigned slots, unsigned per_minute, unsigned burst);

/* Frees r (NULL is accepted). */
void rate_free(struct rate *r);

/* Spends one request of key at now_ms (a monotonic clock). Returns 0 when
 * it may go, else the seconds until it may (at least 1). *first_refusal
 * (may be NULL) is set when this refusal is the key's first since it was
 * last allowed, or since log_interval_s: refusals are logged once per
 * offender and interval, not per request. */
unsigned rate_take(struct rate *r, const char *key, uint64_t now_ms, unsigned log_interval_s,
		   bool *first_refusal);

/* The key of a peer address: an IPv6 address stands for its /64, which
 * one host commonly has in full, and the key names it so
 * ("2001:db8::/64"), fit for logs. key holds RATE_KEY_MAX bytes. */
void rate_peer_key(const char *peer, char key[RATE_KEY_MAX]);

#endif
