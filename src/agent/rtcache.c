/* rtcache.c -- the real-time scanner's in-memory verdict cache (rtcache.h). */
#include "agent/rtcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4
/* Locks, each guarding the sets whose index is equal modulo LOCKS. */
#define LOCKS 64

struct slot {
	struct rtcache_key key;
	uint64_t used;  /* last use, by the set's clock; 0 = empty */
};

struct rtcache {
	struct slot *slots;
	size_t nsets;  /* a power of two */
	uint64_t clock[LOCKS];
	size_t count[LOCKS];
	pthread_mutex_t lock[LOCKS];
};

/* Mixes the file's device and inode into a set index. */
static size_t set_of(const struct rtcache *c, uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ dev * 0xc2b2ae3d27d4eb4full;

	h ^= h >> 29;
	return (size_t)(h & (c->nsets - 1));
}

struct rtcache *rtcache_new(size_t max_entries)
{
	struct rtcache *c = calloc(1, sizeof(*c));
	size_t i;

	if (!c)
		return NULL;
	c->nsets = LOCKS / WAYS;
	while (c->nsets * WAYS < max_entries && c->nsets < ((size_t)1 << 40))
		c->nsets *= 2;
	c->slots = calloc(c->nsets * WAYS, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	for (i = 0; i < LOCKS; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	return c;
}

static bool same_file(const struct rtcache_key *a, uint64_t dev, uint64_t ino)
{
	return a->dev == dev && a->ino == ino;
}

bool rtcache_lookup(struct rtcache *c, const struct rtcache_key *key)
{
	size_t set = set_of(c, key->dev, key->ino), l = set % LOCKS, i;
	struct slot *s = c->slots + set * WAYS;
	bool hit = false;

	pthread_mutex_lock(&c->lock[l]);
	for (i = 0; i < WAYS; i++)
		if (s[i].used && memcmp(&s[i].key, key, sizeof(*key)) == 0) {
			s[i].used = ++c->clock[l];
			hit = true;
			break;
		}
	pthread_mutex_unlock(&c->lock[l]);
	return hit;
}

void rtcache_insert(struct rtcache *c, const struct rtcache_key *key)
{
	size_t set = set_of(c, key->dev, key->ino), l = set % LOCKS, i, victim = 0;
	struct slot *s = c->slots + set * WAYS;

	pthread_mutex_lock(&c->lock[l]);
	for (i = 0; i < WAYS; i++) {
		if (s[i].used && same_file(&s[i].key, key->dev, key->ino)) {
			victim = i;
			break;
		}
		if (s[i].used < s[victim].used)
			victim = i;
	}
	if (!s[victim].used)
		c->count[l]++;
	s[victim].key = *key;
	s[victim].used = ++c->clock[l];
	pthread_mutex_unlock(&c->lock[l]);
}

void rtcache_forget(struct rtcache *c, uint64_t dev, uint64_t ino)
{
	size_t set = set_of(c, dev, ino), l = set % LOCKS, i;
	struct slot *s = c->slots + set * WAYS;

	pthread_mutex_lock(&c->lock[l]);
	for (i = 0; i < WAYS; i++)
		if (s[i].used && same_file(&s[i].key, dev, ino)) {
			s[i].used = 0;
			c->count[l]--;
		}
	pthread_mutex_unlock(&c->lock[l]);
}

void rtcache_clear(struct rtcache *c)
{
	size_t set, l;

	for (l = 0; l < LOCKS; l++) {
		pthread_mutex_lock(&c->lock[l]);
		for (set = l; set < c->nsets; set += LOCKS)
			memset(c->slots + set * WAYS, 0, WAYS * sizeof(*c->slots));
		c->count[l] = 0;
		pthread_mutex_unlock(&c->lock[l]);
	}
}

size_t rtcache_count(struct rtcache *c)
{
	size_t l, n = 0;

	for (l = 0; l < LOCKS; l++) {
		pthread_mutex_lock(&c->lock[l]);
		n += c->count[l];
		pthread_mutex_unlock(&c->lock[l]);
	}
	return n;
}

void rtcache_free(struct rtcache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < LOCKS; i++)
		pthread_mutex_destroy(&c->lock[i]);
	free(c->slots);
	free(c);
}
