/* rtcache.h -- the real-time scanner's in-memory verdict cache: the file
 * identities found clean under one signature-set generation.
 *
 * Bounded: a fixed number of entries in 4-way sets (a new entry replaces
 * the oldest of its set), locked per group of sets, so the event reader and
 * the threads that deliver verdicts never wait on one global lock.
 * A file's identity includes its size, mtime and ctime (which no user can
 * set), so a modified file never matches. */
#ifndef WARD_AGENT_RTCACHE_H
#define WARD_AGENT_RTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A file's identity as fstat() gives it, with the generation of the
 * signature set it was found clean with. */
struct rtcache_key {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint64_t gen;
};

struct rtcache;

/* Creates a cache of at most max_entries entries (rounded up to a
 * multiple of 4, at least 64). Returns NULL when out of memory. The caller
 * owns it. */
struct rtcache *rtcache_new(size_t max_entries);

/* Returns whether key is cached (and marks it recently used). Thread-safe. */
bool rtcache_lookup(struct rtcache *c, const struct rtcache_key *key);

/* Adds key, replacing any entry of the same file and, in a full set, the
 * least recently used one. Thread-safe. */
void rtcache_insert(struct rtcache *c, const struct rtcache_key *key);

/* Drops the entry of the file (dev, ino), whatever its identity.
 * Thread-safe. */
void rtcache_forget(struct rtcache *c, uint64_t dev, uint64_t ino);

/* Drops every entry. Thread-safe. */
void rtcache_clear(struct rtcache *c);

/* Returns the number of entries held. Thread-safe (a snapshot). */
size_t rtcache_count(struct rtcache *c);

/* Frees the cache (NULL is ignored). Must not race with other calls. */
void rtcache_free(struct rtcache *c);

#endif
