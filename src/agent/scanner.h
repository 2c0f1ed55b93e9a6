/* scanner.h -- the privileged agent's side of the scan workers
 * (docs/architecture.md, "Scan workers").
 *
 * A struct scanner is one generation: one component's engine, loaded by a
 * worker process (worker.h) that the agent starts from its own program and
 * hands open files to. Any number of threads scan through one generation
 * at once; each request has an id, and one reader thread per worker
 * dispatches the answers. A worker that dies (killed, crashed, or breaking
 * the channel's protocol) fails the requests it held with an error naming
 * what happened, and the next scan starts a new worker of the generation.
 * A generation is reference counted: a component update makes a new one
 * for new scans and releases the old, whose worker exits once the last
 * scan that holds it is answered.
 */
#ifndef WARD_AGENT_SCANNER_H
#define WARD_AGENT_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "scan/smart.h"

enum scanner_err {
	SCANNER_OK = 0,
	SCANNER_ENOMEM,
	SCANNER_ESTART,    /* no worker could be started, or it did not get ready */
	SCANNER_EWORKER,   /* the worker died, broke the protocol or is not
			    * taking requests: the file was not scanned */
	SCANNER_ETIMEOUT,  /* no verdict within the request's deadline */
	SCANNER_ESCAN,     /* the worker could not scan the file (its message) */
};

struct scanner_config {
	const char *program;     /* the agent's program; NULL: /proc/self/exe */
	const char *component;   /* directory of the component version to load;
				  * NULL: none (with builtin) */
	bool builtin;            /* also Ward's built-in EICAR signature */
	bool smart;              /* smart scan: component is an agent pattern */
	struct engine_limits limits;
	unsigned threads;        /* scan threads in the worker, 1..64; 0: one
				  * per CPU */
	const char *user;        /* the workers' user (agent option
				  * scan.worker_user); NULL: the agent's own,
				  * which as root only drops capabilities */
	const char *scratch;     /* where each worker gets a private 0700
				  * directory (made if missing), its working
				  * directory, for libclamav's temporary
				  * files: on tmpfs they cost far less
				  * (docs/benchmarks.md, "Scan workers") */
	unsigned start_timeout;  /* seconds for a worker to load and get ready */
	unsigned scan_timeout;   /* seconds a request waits for its verdict by
				  * default */
	/* Smart scan: the sources as the agent's own struct smart has them
	 * (the same configuration gives the same indexes), and the relay
	 * that posts a worker's request to source i: smart_post() on that
	 * struct smart. */
	const char *const *sources;
	size_t nsources;
	const char *proxy;
	int family;
	long source_timeout, retry_after;
	smart_post_fn relay;
	void *relay_arg;
};

struct scanner;

/* Starts a generation: checks cfg (copied), resolves the user, starts its
 * worker and waits until it is ready. Returns it with one reference (the
 * caller's), or NULL with errbuf saying why (the worker's own reason is
 * in the log). Thread-safe. */
struct scanner *scanner_start(const struct scanner_config *cfg, char *errbuf,
			      size_t errlen);

/* Takes one more reference on g, for a scan that will use it. Thread-safe. */
void scanner_acquire(struct scanner *g);

/* Drops a reference. The last one closes the worker's channel, waits for
 * the worker to exit (killing it after a grace period), removes its
 * scratch directory and frees g. Retiring a generation is releasing the
 * reference its holder kept. Thread-safe. */
void scanner_release(struct scanner *g);

/* Scans the open file fd (name for messages only) in g's worker, waiting
 * at most timeout seconds (0: the generation's scan_timeout). Fills *res
 * (names, bytes scanned; the caller clears it in every case) and *out
 * (whether the verdict rests on smart answers, or is unverified). fd stays
 * the caller's. The caller holds a reference on g. Blocking; thread-safe. */
enum scanner_err scanner_scan_fd(struct scanner *g, int fd, const char *name,
				 unsigned timeout, struct engine_result *res,
				 struct smart_outcome *out, char *errbuf, size_t errlen);

/* scanner_scan_fd() as job.h's sjob_scan_fn (arg: the generation, held by
 * the caller for the whole run): tree scans through the worker. */
int scanner_sjob_scan(void *arg, int fd, const char *name, struct engine_result *res,
		      struct smart_outcome *out, char *errbuf, size_t errlen);

/* Returns the process id of g's worker, or 0 when none runs now (status,
 * tests). Thread-safe. */
pid_t scanner_pid(struct scanner *g);

#endif
