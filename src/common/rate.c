/* rate.c -- token buckets per key in a fixed table (see rate.h). */
#include "common/rate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slots looked at for a key: its hash's and the next ones. */
#define PROBE 8

struct rate_slot {
	char key[RATE_KEY_MAX];
	uint64_t last_ms;      /* last refill; 0: free */
	uint64_t logged_ms;    /* last refusal logged; 0: none since allowed */
	double tokens;
};

struct rate {
	struct rate_slot *slots;
	unsigned nslots;
	double per_ms;
	double burst;
};

struct rate *rate_new(unsigned slots, unsigned per_minute, unsigned burst)
{
	struct rate *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->nslots = slots < PROBE ? PROBE : slots;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return NULL;
	}
	r->per_ms = per_minute / 60000.0;
	r->burst = burst ? burst : 1;
	return r;
}

void rate_free(struct rate *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

/* FNV-1a: keys are short and not chosen to collide in a table that
 * evicts the idlest slot anyway. */
static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct rate_slot *find(struct rate *r, const char *key, uint64_t now_ms)
{
	unsigned i, h = hash(key);
	struct rate_slot *s, *idlest = NULL;

	for (i = 0; i < PROBE; i++) {
		s = &r->slots[(h + i) % r->nslots];
		if (s->last_ms && strcmp(s->key, key) == 0)
			return s;
		if (!idlest || s->last_ms < idlest->last_ms)
			idlest = s;
	}
	snprintf(idlest->key, sizeof(idlest->key), "%s", key);
	idlest->last_ms = now_ms ? now_ms : 1;
	idlest->logged_ms = 0;
	idlest->tokens = r->burst;
	return idlest;
}

unsigned rate_take(struct rate *r, const char *key, uint64_t now_ms, unsigned log_interval_s,
		   bool *first_refusal)
{
	struct rate_slot *s;
	double wait_ms;

	if (first_refusal)
		*first_refusal = false;
	if (r->per_ms <= 0)
		return 0;
	s = find(r, key, now_ms);
	if (now_ms > s->last_ms) {
		s->tokens += (double)(now_ms - s->last_ms) * r->per_ms;
		if (s->tokens > r->burst)
			s->tokens = r->burst;
		s->last_ms = now_ms;
	}
	if (s->tokens >= 1) {
		s->tokens -= 1;
		s->logged_ms = 0;
		return 0;
	}
	if (first_refusal && (!s->logged_ms ||
			      now_ms - s->logged_ms >= (uint64_t)log_interval_s * 1000)) {
		*first_refusal = true;
		s->logged_ms = now_ms ? now_ms : 1;
	}
	wait_ms = (1 - s->tokens) / r->per_ms;
	return wait_ms < 1000 ? 1 : (unsigned)(wait_ms / 1000 + 0.999);
}

void rate_peer_key(const char *peer, char key[RATE_KEY_MAX])
{
	unsigned char a[16];
	char net[INET6_ADDRSTRLEN];

	if (strchr(peer, ':') && inet_pton(AF_INET6, peer, a) == 1) {
		memset(a + 8, 0, 8);
		/* Named as the /64 it is, in logs as well ("2001:db8:6::/64",
		 * not the address "2001:db8:6::"). */
		if (inet_ntop(AF_INET6, a, net, sizeof(net))) {
			snprintf(key, RATE_KEY_MAX, "%s/64", net);
			return;
		}
	}
	snprintf(key, RATE_KEY_MAX, "%s", peer);
}
