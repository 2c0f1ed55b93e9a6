/* session.c -- console cookies, CSRF tokens and the sign-in brake (see
 * session.h). */
#include "server/session.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rate.h"

/* Addresses the guard remembers; when full, the one whose last failure is
 * oldest is forgotten. */
#define GUARD_SLOTS 1024

/* Failures older than this no longer count. */
#define GUARD_WINDOW 900

#define GUARD_FIRST_WAIT 30
#define GUARD_MAX_WAIT 900

struct guard_slot {
	char key[RATE_KEY_MAX];   /* rate_peer_key(): an IPv6 address by its /64 */
	unsigned failures;
	int64_t last;      /* time of the last failure; 0: free slot */
	int64_t until;     /* no try before this */
};

struct session_guard {
	struct guard_slot slots[GUARD_SLOTS];
};

struct session_guard *session_guard_new(void)
{
	return calloc(1, sizeof(struct session_guard));
}

void session_guard_free(struct session_guard *g)
{
	free(g);
}

/* How much a slot is worth keeping at now: an address still waiting most
 * (by when its wait ends), then by its last failure; a free slot least. */
static int64_t guard_worth(const struct guard_slot *s, int64_t now)
{
	if (!s->last)
		return INT64_MIN;
	return s->until > now ? s->until + ((int64_t)1 << 40) : s->last;
}

/* Finds peer's slot; with take, makes one in place of the slot least worth
 * keeping, so that many addresses failing once cannot push out one that
 * must wait. */
static struct guard_slot *guard_find(const struct session_guard *g, const char *peer,
				     bool take, int64_t now)
{
	struct session_guard *mg = (struct session_guard *)g;
	struct guard_slot *least = &mg->slots[0];
	char key[RATE_KEY_MAX];
	size_t i;

	rate_peer_key(peer, key);
	for (i = 0; i < GUARD_SLOTS; i++) {
		if (mg->slots[i].last && strcmp(mg->slots[i].key, key) == 0)
			return &mg->slots[i];
		if (guard_worth(&mg->slots[i], now) < guard_worth(least, now))
			least = &mg->slots[i];
	}
	if (!take)
		return NULL;
	memset(least, 0, sizeof(*least));
	snprintf(least->key, sizeof(least->key), "%s", key);
	return least;
}

unsigned session_guard_wait(const struct session_guard *g, const char *peer, int64_t now)
{
	const struct guard_slot *s = guard_find(g, peer, false, now);

	return s && s->until > now ? (unsigned)(s->until - now) : 0;
}

unsigned session_guard_fail(struct session_guard *g, const char *peer, int64_t now)
{
	struct guard_slot *s = guard_find(g, peer, true, now);
	int64_t wait = GUARD_FIRST_WAIT;
	unsigned over;

	if (now - s->last > GUARD_WINDOW && s->until <= now)
		s->failures = 0;
	s->failures++;
	s->last = now;
	if (s->failures < SESSION_FREE_FAILURES)
		return 0;
	for (over = s->failures - SESSION_FREE_FAILURES; over > 0 && wait < GUARD_MAX_WAIT; over--)
		wait *= 2;
	if (wait > GUARD_MAX_WAIT)
		wait = GUARD_MAX_WAIT;
	s->until = now + wait;
	return (unsigned)wait;
}

void session_guard_clear(struct session_guard *g, const char *peer)
{
	struct guard_slot *s = guard_find(g, peer, false, 0);

	if (s)
		memset(s, 0, sizeof(*s));
}

bool session_token(const struct http_req *req, char token[65], bool *cookie)
{
	const char *h = http_req_header(req, "Authorization");

	*cookie = false;
	if (h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == 64) {
		memcpy(token, h + 7, 65);
		return true;
	}
	*cookie = !h && session_cookie(req, token);
	return *cookie;
}

bool session_cookie(const struct http_req *req, char token[65])
{
	return session_cookie_parse(http_req_header(req, "Cookie"), token);
}

bool session_cookie_parse(const char *h, char token[65])
{
	size_t n = strlen(SESSION_COOKIE), i;
	const char *p;

	/* Cookie: a=b; __Host-ward_session=HEX; c=d */
	for (p = h; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
		while (*p == ' ')
			p++;
		if (strncmp(p, SESSION_COOKIE, n) != 0 || p[n] != '=')
			continue;
		p += n + 1;
		for (i = 0; i < 64 && p[i] && strchr("0123456789abcdef", p[i]); i++)
			token[i] = p[i];
		if (i == 64 && (p[64] == '\0' || p[64] == ';' || p[64] == ' ')) {
			token[64] = '\0';
			return true;
		}
	}
	return false;
}

void session_csrf(const char *token, char out[65])
{
	static const unsigned char key[] = "ward console csrf token";
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), key,
			   sizeof(key) - 1);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

void session_set_cookie(struct http_req *req, const char *token, int64_t max_age)
{
	char v[256];

	snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; SameSite=Strict",
		 SESSION_COOKIE, token ? token : "", token ? (long long)max_age : 0LL);
	http_add_header(req, "Set-Cookie", v);
}
