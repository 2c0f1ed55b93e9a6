/* smart.c -- smart scan: local prefixes, cached answers, batched queries
 * (see smart.h). */
#include "scan/smart.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/comp.h"
#include "common/log.h"
#include "common/pset.h"
#include "common/rest.h"
#include "common/spsq.h"
#include "common/util.h"

/* The lookup route on every source, and the largest answer taken. */
#define LOOKUP_PATH "/sps/v1/lookup"
#define MAX_ANSWER ((size_t)SPSQ_MAX_QUERIES * SPSQ_MAX_ENTRIES * 400 + 4096)

/* Cached answers kept at most; past it, expired ones go, then all. */
#define CACHE_MAX 65536

/* One entry of an answer, owned by the cache. */
struct hit {
	unsigned char digest[32];
	unsigned type;
	int64_t size;
	enum spsq_state state;
	char *name;
};

/* The answer to one prefix. A slot with key 0 is empty (no query has key
 * 0: bits is at least 8). */
struct answer {
	uint64_t key;
	uint64_t expires_ns;
	struct hit *hits;
	size_t nhits;
};

/* Queries one source answers at once for this agent: each on a client
 * (and its kept-alive connection) of its own, so that one slow answer
 * holds no other query. */
#define SOURCE_CLIENTS 4

struct source {
	char *url;
	struct rest_client *rc[SOURCE_CLIENTS];  /* NULL: another transport */
	bool busy[SOURCE_CLIENTS];               /* guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t idle;                     /* a client was given back */
	_Atomic uint64_t down_until_ns;
};

struct smart {
	struct pset *prefixes;
	struct source *sources;
	size_t nsources;
	smart_post_fn post;
	void *post_arg;
	long timeout, retry_after;
	pthread_mutex_t lock;       /* guards the cache and pattern */
	struct answer *cache;       /* open addressing, cap a power of two */
	size_t cap, used;
	int64_t pattern;
	_Atomic bool answering;     /* the last request got an answer */
	_Atomic uint64_t layers, prefix_hits, cache_hits, requests, failures;
};

/* The state of one file's scan, handed to the layer hook. */
struct file_scan {
	struct smart *s;
	struct spsq_query *pending;  /* prefixes the cache did not know */
	size_t npending, cap;
	uint64_t at;   /* when answers were asked for: those stored since are
			* good for this file whatever their time to live */
	bool asked, nomem;
};

static const char *const digest_alg[PSET_TYPES + 1] = { NULL, "md5", "sha1", "sha256" };

static uint64_t query_key(const struct spsq_query *q)
{
	return (uint64_t)q->type << 40 | (uint64_t)q->bits << 32 | q->prefix;
}

static void answer_clear(struct answer *a)
{
	size_t i;

	for (i = 0; i < a->nhits; i++)
		free(a->hits[i].name);
	free(a->hits);
	memset(a, 0, sizeof(*a));
}

/* Empties the cache. Called with s->lock held. */
static void cache_flush(struct smart *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		answer_clear(&s->cache[i]);
	s->used = 0;
}

/* Returns the slot of key: its answer, or the empty slot it would take.
 * Called with s->lock held. */
static struct answer *cache_slot(struct smart *s, uint64_t key)
{
	size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 40) & (s->cap - 1);

	while (s->cache[i].key && s->cache[i].key != key)
		i = (i + 1) & (s->cap - 1);
	return &s->cache[i];
}

/* Makes room for one more answer, keeping the table at most half full:
 * drops expired answers (rebuilding the table), and every answer when
 * that is not enough. Called with s->lock held. */
static void cache_room(struct smart *s, uint64_t now)
{
	struct answer *old = s->cache, *slot;
	size_t i, cap = s->cap;

	if ((s->used + 1) * 2 <= s->cap)
		return;
	s->cache = calloc(cap, sizeof(*s->cache));
	if (!s->cache) {
		s->cache = old;
		cache_flush(s);
		return;
	}
	s->used = 0;
	for (i = 0; i < cap; i++) {
		if (!old[i].key)
			continue;
		if (old[i].expires_ns <= now) {
			answer_clear(&old[i]);
			continue;
		}
		slot = cache_slot(s, old[i].key);
		*slot = old[i];
		s->used++;
	}
	free(old);
	if ((s->used + 1) * 2 > s->cap)
		cache_flush(s);
}

static const char *family_name(int af)
{
	return af == AF_INET ? "IPv4" : "IPv6";
}

/* Adds the source at url unless this host cannot reach it (logged). */
static int add_source(struct smart *s, const char *url, const struct smart_config *cfg)
{
	struct source *src = &s->sources[s->nsources];
	int af = cidr_url_family(cfg->proxy ? cfg->proxy : url);
	bool failed = false;
	size_t k;

	if (cfg->family != AF_UNSPEC && af != AF_UNSPEC && af != cfg->family) {
		log_msg(LOG_LVL_WARN, "smart protection source %s%s%s is reachable over %s only "
			"and this host has %s only: not tried", url, cfg->proxy ? " (proxy " :
			"", cfg->proxy ? cfg->proxy : "", family_name(af),
			family_name(cfg->family));
		if (cfg->proxy)
			log_msg(LOG_LVL_WARN, "(the proxy is what this host must reach)");
		return 0;
	}
	src->url = strdup(url);
	/* Another transport reaches the sources: no client here. */
	for (k = 0; !cfg->post && k < SOURCE_CLIENTS; k++) {
		src->rc[k] = rest_new(url, cfg->ca_file);
		if (!src->rc[k] || rest_set_route(src->rc[k], cfg->proxy, cfg->family) != 0 ||
		    rest_set_pins(src->rc[k], cfg->pins) != 0)
			failed = true;
	}
	if (!src->url || failed) {
		free(src->url);
		for (k = 0; k < SOURCE_CLIENTS; k++)
			rest_free(src->rc[k]);
		memset(src, 0, sizeof(*src));
		return -1;
	}
	pthread_mutex_init(&src->lock, NULL);
	pthread_cond_init(&src->idle, NULL);
	src->down_until_ns = 0;
	s->nsources++;
	return 0;
}

int smart_post(struct smart *s, size_t i, const char *body, size_t len, long timeout,
	       size_t max, long *status, struct util_buf *answer, char *errbuf, size_t errlen)
{
	struct source *src;
	enum err rc;
	size_t k;

	if (i >= s->nsources || !s->sources[i].rc[0]) {
		util_set_msg(errbuf, errlen, "smart protection: no source %zu here", i);
		return -1;
	}
	src = &s->sources[i];
	pthread_mutex_lock(&src->lock);
	for (;;) {
		for (k = 0; k < SOURCE_CLIENTS && src->busy[k]; k++)
			;
		if (k < SOURCE_CLIENTS)
			break;
		pthread_cond_wait(&src->idle, &src->lock);
	}
	src->busy[k] = true;
	pthread_mutex_unlock(&src->lock);
	rc = rest_post_text(src->rc[k], LOOKUP_PATH, body, len, "text/plain", timeout, max,
			    status, answer, errbuf, errlen);
	pthread_mutex_lock(&src->lock);
	src->busy[k] = false;
	pthread_cond_signal(&src->idle);
	pthread_mutex_unlock(&src->lock);
	/* A relay's state sees the workers' requests only here: whether the
	 * last one was answered is what smart_reachable() goes by. */
	if (!s->prefixes)
		s->answering = rc == ERR_OK && *status == 200;
	return rc == ERR_OK ? 0 : -1;
}

static int default_post(void *arg, size_t i, const char *body, size_t len, long timeout,
			size_t max, long *status, struct util_buf *answer, char *errbuf,
			size_t errlen)
{
	return smart_post(arg, i, body, len, timeout, max, status, answer, errbuf, errlen);
}

struct smart *smart_new(const char *dir, const struct smart_config *cfg, char *errbuf,
			size_t errlen)
{
	struct smart *s = calloc(1, sizeof(*s));
	char *path = dir ? util_path_join(dir, COMP_PREFIX_FILE) : NULL, *data = NULL, msg[256];
	size_t len = 0, i;

	if (!s || (dir && !path))
		goto nomem;
	pthread_mutex_init(&s->lock, NULL);
	s->timeout = cfg->timeout > 0 ? cfg->timeout : SMART_DEFAULT_TIMEOUT;
	s->retry_after = cfg->retry_after > 0 ? cfg->retry_after : SMART_DEFAULT_RETRY_AFTER;
	s->post = cfg->post ? cfg->post : default_post;
	s->post_arg = cfg->post ? cfg->post_arg : s;
	s->cap = 1024;
	s->cache = calloc(s->cap, sizeof(*s->cache));
	s->sources = calloc(cfg->nsources + 1, sizeof(*s->sources));
	if (!s->cache || !s->sources)
		goto nomem;
	if (!dir)
		goto sources;
	data = util_read_file(path, 1u << 30, &len);
	if (!data) {
		util_set_msg(errbuf, errlen, "%s: cannot read the hash prefixes of the agent "
			     "pattern", path);
		goto fail;
	}
	s->prefixes = pset_load(data, len, msg, sizeof(msg));
	if (!s->prefixes) {
		util_set_msg(errbuf, errlen, "%s: %s", path, msg);
		goto fail;
	}
sources:
	for (i = 0; i < cfg->nsources; i++)
		if (add_source(s, cfg->sources[i], cfg) != 0)
			goto nomem;
	s->answering = true;
	free(data);
	free(path);
	return s;
nomem:
	util_set_msg(errbuf, errlen, "out of memory");
fail:
	free(data);
	free(path);
	smart_free(s);
	return NULL;
}

void smart_free(struct smart *s)
{
	size_t i, k;

	if (!s)
		return;
	for (i = 0; i < s->nsources; i++) {
		free(s->sources[i].url);
		for (k = 0; k < SOURCE_CLIENTS; k++)
			rest_free(s->sources[i].rc[k]);
		pthread_mutex_destroy(&s->sources[i].lock);
		pthread_cond_destroy(&s->sources[i].idle);
	}
	free(s->sources);
	if (s->cache)
		cache_flush(s);
	free(s->cache);
	pset_free(s->prefixes);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct engine_config smart_engine_config(const struct engine_config *cfg)
{
	struct engine_config c = *cfg;

	c.layer_hook = true;
	c.official = true;
	/* A small agent is smart scan's point: the content matcher in about
	 * a third of its memory, for about a sixth more scan time. */
	c.ac_depth = 2;
	return c;
}

/* Remembers q as pending for this file (once). */
static void add_pending(struct file_scan *fs, const struct spsq_query *q)
{
	struct spsq_query *p;
	size_t i;

	for (i = 0; i < fs->npending; i++)
		if (query_key(&fs->pending[i]) == query_key(q))
			return;
	if (fs->npending == fs->cap) {
		p = realloc(fs->pending, (fs->cap * 2 + 8) * sizeof(*p));
		if (!p) {
			fs->nomem = true;
			return;
		}
		fs->pending = p;
		fs->cap = fs->cap * 2 + 8;
	}
	fs->pending[fs->npending++] = *q;
}

/* What the cached answer a says of the layer with digest d of type and
 * size: adds block names to names (up to max), and returns whether an
 * entry allows it. Like libclamav, one name for the sized entries, then
 * one for the "*" ones: libclamav keeps entries of equal digest and size
 * side by side and its search finds one of them; here, the first. */
static bool judge(const struct answer *a, unsigned type, const unsigned char *d, size_t size,
		  const char **names, size_t *n, size_t max)
{
	size_t i, pass;

	for (i = 0; i < a->nhits; i++)
		if (a->hits[i].type == type && a->hits[i].state == SPSQ_ALLOW &&
		    memcmp(a->hits[i].digest, d, spsq_digest_len(type)) == 0 &&
		    (a->hits[i].size < 0 || (uint64_t)a->hits[i].size == size))
			return true;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < a->nhits && *n < max; i++)
			if (a->hits[i].type == type && a->hits[i].state == SPSQ_BLOCK &&
			    (pass == 0 ? (a->hits[i].size >= 0 &&
					  (uint64_t)a->hits[i].size == size) :
			     a->hits[i].size < 0) &&
			    memcmp(a->hits[i].digest, d, spsq_digest_len(type)) == 0) {
				names[(*n)++] = a->hits[i].name;
				break;
			}
	return false;
}

/* The layer hook: digests and prefixes first, then, under the cache lock,
 * the cached answers (names are reported while it is held, since they
 * point into the cache). */
static enum engine_layer_action on_layer(const struct engine_layer *l, void *arg)
{
	struct file_scan *fs = arg;
	struct smart *s = fs->s;
	unsigned char digest[PSET_TYPES][32];
	struct spsq_query q[PSET_TYPES];
	const char *names[8];
	struct answer *a;
	uint64_t now;
	size_t nq = 0, n = 0, i;
	unsigned type;
	bool allow = false;

	s->layers++;
	if (l->size == 0)
		return ENGINE_LAYER_SCAN;
	for (type = 1; type <= PSET_TYPES; type++) {
		q[nq].bits = pset_bits(s->prefixes, type);
		if (!q[nq].bits || !engine_hash(digest_alg[type], l->data, l->size, digest[nq]) ||
		    !pset_has(s->prefixes, type, digest[nq]))
			continue;
		q[nq].type = type;
		q[nq].prefix = (uint32_t)digest[nq][0] << 24 | (uint32_t)digest[nq][1] << 16 |
			       (uint32_t)digest[nq][2] << 8 | digest[nq][3];
		q[nq].prefix &= q[nq].bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> q[nq].bits);
		nq++;
	}
	if (!nq)
		return ENGINE_LAYER_SCAN;
	s->prefix_hits += nq;
	fs->asked = true;
	now = fs->at ? fs->at : util_now_ns();
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < nq && !allow; i++) {
		a = cache_slot(s, query_key(&q[i]));
		if (!a->key || a->expires_ns <= now) {
			add_pending(fs, &q[i]);
			continue;
		}
		s->cache_hits++;
		allow = judge(a, q[i].type, digest[i], l->size, names, &n,
			      sizeof(names) / sizeof(*names));
	}
	for (i = 0; !allow && i < n; i++)
		if (engine_layer_detect(l, names[i]) != 0)
			fs->nomem = true;
	pthread_mutex_unlock(&s->lock);
	return allow ? ENGINE_LAYER_SKIP : ENGINE_LAYER_SCAN;
}

/* Collects an answer's entries for the queries being stored. */
struct collect {
	struct answer *answers;
	bool nomem;
};

static int on_entry(size_t i, const struct spsq_entry *e, void *arg)
{
	struct collect *c = arg;
	struct answer *a = &c->answers[i];
	struct hit *h = realloc(a->hits, (a->nhits + 1) * sizeof(*h));

	if (!h) {
		c->nomem = true;
		return -1;
	}
	a->hits = h;
	h = &a->hits[a->nhits];
	memset(h, 0, sizeof(*h));
	memcpy(h->digest, e->digest, e->digest_len);
	h->type = e->type;
	h->size = e->size;
	h->state = e->state;
	h->name = strndup(e->name, e->name_len);
	if (!h->name) {
		c->nomem = true;
		return -1;
	}
	a->nhits++;
	return 0;
}

/* Stores the answers to q[0..n) (from pattern version, valid ttl seconds)
 * in the cache; an answer from a newer pattern empties it first. */
static void cache_store(struct smart *s, const struct spsq_query *q, struct answer *answers,
			size_t n, int64_t version, int64_t ttl)
{
	uint64_t now = util_now_ns();
	struct answer *slot;
	size_t i;

	pthread_mutex_lock(&s->lock);
	if (version > s->pattern) {
		if (s->pattern)
			log_msg(LOG_LVL_INFO, "smart protection: Smart Scan Pattern %lld answers "
				"now (was %lld): cached answers dropped", (long long)version,
				(long long)s->pattern);
		cache_flush(s);
		s->pattern = version;
	}
	for (i = 0; i < n; i++) {
		cache_room(s, now);
		slot = cache_slot(s, query_key(&q[i]));
		if (slot->key)
			answer_clear(slot);
		else
			s->used++;
		*slot = answers[i];
		slot->key = query_key(&q[i]);
		slot->expires_ns = now + (uint64_t)(ttl > 0 ? ttl : 0) * 1000000000u + 1;
		memset(&answers[i], 0, sizeof(answers[i]));
	}
	pthread_mutex_unlock(&s->lock);
}

/* Asks one source for q[0..n) and caches the answers. Returns true when it
 * answered; else why says what failed, and *too_big whether the source
 * refused the answer's size (413). */
static bool ask_source(struct smart *s, struct source *src, const struct spsq_query *q,
		       size_t n, const struct util_buf *body, bool *too_big, char *why,
		       size_t whylen)
{
	struct util_buf in = { 0 };
	struct collect c = { calloc(n, sizeof(struct answer)), false };
	int64_t version = 0, ttl = 0;
	char msg[256];
	bool ok = false;
	long status = 0;
	size_t i;

	*too_big = false;
	if (!c.answers) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	s->requests++;
	if (s->post(s->post_arg, (size_t)(src - s->sources), body->data, body->len, s->timeout,
		    MAX_ANSWER, &status, &in, why, whylen) != 0)
		goto out;
	if (status != 200) {
		*too_big = status == 413;
		while (in.len && (in.data[in.len - 1] == '\n' || in.data[in.len - 1] == '\r'))
			in.len--;
		snprintf(why, whylen, "%s: answered %ld %.*s", src->url, status,
			 (int)(in.len < 200 ? in.len : 200), in.len ? in.data : "");
		goto out;
	}
	if (spsq_parse_answer(in.data, in.len, q, n, &version, &ttl, on_entry, &c, msg,
			      sizeof(msg)) != ERR_OK || c.nomem) {
		snprintf(why, whylen, "%s: %s", src->url, c.nomem ? "out of memory" : msg);
		goto out;
	}
	cache_store(s, q, c.answers, n, version, ttl);
	ok = true;
out:
	for (i = 0; i < n; i++)
		answer_clear(&c.answers[i]);
	free(c.answers);
	util_buf_free(&in);
	return ok;
}

/* Asks the sources for q[0..n), in order, passing over those that failed
 * lately unless every one did; a source that finds the answer too large
 * is asked for each half. Returns true when one answered. */
static bool ask(struct smart *s, const struct spsq_query *q, size_t n)
{
	struct util_buf body = { 0 };
	char why[512];
	uint64_t now = util_now_ns();
	size_t i, round;
	bool ok = false, tried = false, too_big = false;

	for (i = 0; i < n; i++)
		if (spsq_format_query(&q[i], &body) != 0) {
			util_buf_free(&body);
			return false;
		}
	for (round = 0; round < 2 && !ok && !(round == 1 && tried); round++)
		for (i = 0; i < s->nsources && !ok; i++) {
			struct source *src = &s->sources[i];

			if (round == 0 && src->down_until_ns > now)
				continue;
			tried = true;
			ok = ask_source(s, src, q, n, &body, &too_big, why, sizeof(why));
			if (ok) {
				src->down_until_ns = 0;
				break;
			}
			if (too_big && n > 1) {
				util_buf_free(&body);
				return ask(s, q, n / 2) && ask(s, q + n / 2, n - n / 2);
			}
			s->failures++;
			log_msg(LOG_LVL_WARN, "smart protection: %s%s", why,
				i + 1 < s->nsources ? "; trying the next source" : "");
			src->down_until_ns = util_now_ns() +
					     (uint64_t)s->retry_after * 1000000000u;
		}
	if (!ok && !s->nsources)
		log_msg(LOG_LVL_WARN, "smart protection: no source this host can reach");
	if (s->answering && !ok)
		log_msg(LOG_LVL_ERROR, "smart protection: no source answers; files that need "
			"an answer are left unverified");
	else if (!s->answering && ok)
		log_msg(LOG_LVL_INFO, "smart protection: a source answers again");
	s->answering = ok;
	util_buf_free(&body);
	return ok;
}

/* Scans a file at most this many times: the answers a scan asked for may
 * (rarely) have left the cache again before the next one. */
#define MAX_PASSES 3

enum engine_err smart_scan_fd(struct smart *s, const struct engine *e, int fd,
			      const char *name, unsigned flags, struct engine_result *res,
			      struct smart_outcome *out, char *errbuf, size_t errlen)
{
	struct file_scan fs = { .s = s };
	enum engine_err err;
	size_t done, n;
	bool answered = true;
	int pass;

	memset(out, 0, sizeof(*out));
	err = engine_scan_fd(e, fd, name, flags, on_layer, &fs, res, errbuf, errlen);
	for (pass = 1; err == ENGINE_OK && fs.npending && answered && pass < MAX_PASSES;
	     pass++) {
		fs.at = util_now_ns();
		for (done = 0; answered && done < fs.npending; done += n) {
			n = fs.npending - done;
			n = n < SPSQ_MAX_QUERIES ? n : SPSQ_MAX_QUERIES;
			answered = ask(s, fs.pending + done, n);
		}
		if (!answered)
			break;
		/* Again, now that the cache knows this file's prefixes. */
		engine_result_clear(res);
		fs.npending = 0;
		err = engine_scan_fd(e, fd, name, flags, on_layer, &fs, res, errbuf, errlen);
	}
	if (err == ENGINE_OK && fs.nomem) {
		util_set_msg(errbuf, errlen, "%s: out of memory for smart scan", name);
		err = ENGINE_ENOMEM;
	}
	out->asked = fs.asked;
	out->unverified = err == ENGINE_OK && fs.npending && !res->infected;
	free(fs.pending);
	return err;
}

bool smart_reachable(struct smart *s)
{
	struct spsq_query q = { COMP_MD5, 0, 32 };

	if (s->answering)
		return true;
	return ask(s, &q, 1);
}

void smart_stats(struct smart *s, struct smart_stats *st)
{
	st->layers = s->layers;
	st->prefix_hits = s->prefix_hits;
	st->cache_hits = s->cache_hits;
	st->requests = s->requests;
	st->failures = s->failures;
	st->answering = s->answering;
	pthread_mutex_lock(&s->lock);
	st->pattern = s->pattern;
	pthread_mutex_unlock(&s->lock);
}

size_t smart_memory(const struct smart *s, uint64_t *prefixes)
{
	*prefixes = pset_count(s->prefixes);
	return pset_memory(s->prefixes);
}
