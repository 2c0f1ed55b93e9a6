/* rate.h -- the keys rate limits and brakes count by.
 *
 * The limits themselves are counted in wardd's database (store.h:
 * store_rate_take(), store_guard_*()), so that every server on one
 * database enforces them together. Thread-safe.
 */
#ifndef WARD_RATE_H
#define WARD_RATE_H

#define RATE_KEY_MAX 64

/* The key of a peer address: an IPv6 address stands for its /64, which
 * one host commonly has in full, and the key names it so
 * ("2001:db8::/64"), fit for logs. key holds RATE_KEY_MAX bytes. */
void rate_peer_key(const char *peer, char key[RATE_KEY_MAX]);

#endif
