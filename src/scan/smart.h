/* smart.h -- smart scan: the Smart Scan Agent Pattern's content signatures
 * scan locally, and whole-file hash signatures are asked of smart
 * protection servers (docs/protocol.md, "Smart protection lookups").
 *
 * For every layer of a scanned file (the file and each member libclamav
 * extracts) the digests of the types the prefix set holds are computed;
 * only a digest whose prefix is in the set is looked up: in the answer
 * cache, else by a query to a source. A scan runs once with what the cache
 * knows, collecting the prefixes it does not; those are asked in one
 * request (per SPSQ_MAX_QUERIES; a source that finds the answer too large,
 * 413, is asked for each half), and the file is scanned again with the
 * answers. The verdict follows libclamav's for hash signatures: the size
 * or "*", MD5/SHA-1/SHA-256, and allow-listed (.fp/.sfp) layers skipped
 * with everything in them. PUA entries count only where PUA detection is
 * on, which Ward's engine never turns on.
 *
 * When no source answers, a file whose verdict depends on the unanswered
 * prefixes is unverified: never reported clean. Answers are cached (hits
 * and misses) for the time the server gives, and dropped when a server
 * answers from a newer Smart Scan Pattern. A struct smart belongs to one
 * agent pattern: a new pattern gets a new one, and so an empty cache.
 *
 * Thread-safe: any number of scanning threads share one struct smart.
 */
#ifndef WARD_SCAN_SMART_H
#define WARD_SCAN_SMART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "scan/scan.h"

struct util_buf;

/* Posts a lookup request body (len bytes) to source i of the list
 * smart_new() kept and waits up to timeout seconds: the HTTP status goes
 * to *status and the answer's body to *answer (appended, at most max
 * bytes). Returns 0, or -1 with errbuf saying why no answer came. Called
 * from scanning threads, concurrently. */
typedef int (*smart_post_fn)(void *arg, size_t i, const char *body, size_t len, long timeout,
			     size_t max, long *status, struct util_buf *answer, char *errbuf,
			     size_t errlen);

/* What smart_config's timeout and retry_after of 0 stand for (seconds). */
#define SMART_DEFAULT_TIMEOUT 10
#define SMART_DEFAULT_RETRY_AFTER 30

/* Where the smart protection sources are and how they are reached. */
struct smart_config {
	const char *const *sources;  /* base URLs (https://host:port), in order */
	size_t nsources;
	const char *ca_file;   /* CA certificates the sources chain to; NULL: the system's */
	const char *pins;      /* keys the sources may have ("sha256//...;..."); NULL: any */
	const char *proxy;     /* HTTP proxy the sources are reached through; NULL: none */
	int family;            /* the address family this host can use: AF_INET,
				* AF_INET6, or AF_UNSPEC for both */
	long timeout;          /* seconds per query to one source */
	long retry_after;      /* seconds a failed source is passed over */
	smart_post_fn post;    /* how requests reach the sources; NULL:
				* HTTPS from this process (smart_post()) */
	void *post_arg;
};

/* What one file's scan needed beyond the engine. */
struct smart_outcome {
	bool asked;        /* some layer's prefix was in the set: the verdict
			    * rests on answers, which expire */
	bool unverified;   /* no source answered for a prefix the verdict
			    * depends on; the verdict is not "clean" */
};

/* Counters since smart_new(). */
struct smart_stats {
	uint64_t layers;      /* layers looked at */
	uint64_t prefix_hits; /* digests whose prefix is in the set */
	uint64_t cache_hits;  /* of those, answered from the cache */
	uint64_t requests;    /* requests sent (each up to SPSQ_MAX_QUERIES prefixes) */
	uint64_t failures;    /* requests a source did not answer */
	int64_t pattern;      /* the Smart Scan Pattern version of the last answer */
	bool answering;       /* the last request was answered */
};

struct smart;

/* Creates the smart-scan state for the agent pattern in dir (its prefix
 * file, comp.h COMP_PREFIX_FILE) and the sources of cfg (copied). Sources
 * whose address family this host cannot use (a literal address of the
 * other family, with no proxy) are logged and left out. dir NULL makes a
 * state that only posts (smart_post(): the privileged side of scan
 * workers, which relays their requests) and never scans. Returns NULL with
 * errbuf set when the prefix file is missing or malformed, or memory runs
 * out. The caller frees it with smart_free(). */
struct smart *smart_new(const char *dir, const struct smart_config *cfg, char *errbuf,
			size_t errlen);

/* Frees s (NULL is accepted). No scan may be running on it. */
void smart_free(struct smart *s);

/* Returns the engine configuration a smart scan needs: cfg with the layer
 * hook on, official names (the pattern is Ward's signed component) and
 * the compact content matcher (ac_depth 2). */
struct engine_config smart_engine_config(const struct engine_config *cfg);

/* Scans fd with e (configured by smart_engine_config() and loaded with the
 * agent pattern of s), asking sources as needed; like engine_scan_fd()
 * otherwise (flags as its). *out says what the verdict rests on. Thread-safe. */
enum engine_err smart_scan_fd(struct smart *s, const struct engine *e, int fd,
			      const char *name, unsigned flags, struct engine_result *res,
			      struct smart_outcome *out, char *errbuf, size_t errlen);

/* The HTTPS transport: posts to source i of s as smart_post_fn says
 * (the sources as smart_new() kept them, so the same configuration gives
 * the same indexes in every process). Thread-safe. */
int smart_post(struct smart *s, size_t i, const char *body, size_t len, long timeout,
	       size_t max, long *status, struct util_buf *answer, char *errbuf, size_t errlen);

/* Returns whether some source answered since the last call that found
 * none answering (a caller keeping unverified files rescans them then):
 * sends a request for one prefix when no source has answered since. On a
 * state without prefixes (a relay), the relayed requests count: the last
 * one not answered makes it ask. */
bool smart_reachable(struct smart *s);

/* Copies the counters into *st. */
void smart_stats(struct smart *s, struct smart_stats *st);

/* Returns the bytes the prefix set holds in memory, and its prefix count. */
size_t smart_memory(const struct smart *s, uint64_t *prefixes);

#endif
