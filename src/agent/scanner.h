/* scanner.h -- the privileged agent's side of the scan workers
 * (docs/architecture.md, "Scan workers").
 *
 * A struct scanner is one generation: one component's engine, loaded by a
 * worker process (worker.h) that the agent starts from its own program and
 * hands open files to. Requests are asynchronous: they wait in the
 * generation's queue (urgent ones first) until the worker has room, a
 * few per scan thread, and each ends in a callback on the thread of the
 * worker's channel, which sends the next: a verdict costs no hand-off
 * between the agent's threads (docs/architecture.md, "Scan workers"). A
 * worker that dies (killed, crashed, or breaking the channel's protocol)
 * fails the requests it held with an error naming what happened, and a
 * new worker of the generation, started off the submitting threads,
 * takes the queue. A generation is reference counted: a component update
 * makes a new one for new scans and releases the old, whose worker exits
 * once the last scan that holds it is answered.
 */
#ifndef WARD_AGENT_SCANNER_H
#define WARD_AGENT_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent/aerr.h"
#include "engine/engine.h"
#include "scan/smart.h"


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
	/* Frees relay_arg once the generation's last thread has ended (with
	 * a generation started, relay_arg is the generation's). */
	void (*relay_free)(void *arg);
	size_t max_queue;        /* requests waiting for the worker at most;
				  * 0: 8192 */
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

/* How a scan request ends, given to its done(). res.names belong to the
 * scanner, freed once done() returns: done() may take them (and set
 * res.names to NULL, res.nnames to 0). */
struct scanner_result {
	enum aerr err;
	const char *error;           /* err: what happened, naming the file */
	struct engine_result res;    /* AERR_OK: the verdict */
	struct smart_outcome out;
};

typedef void (*scanner_done_fn)(void *arg, struct scanner_result *r);

/* Request flags. */
#define SCANNER_URGENT 0x1  /* goes before every request without it (an
			     * application waits on the verdict) */
#define SCANNER_LOW 0x2     /* scanned by the worker's thread of the lowest
			     * CPU and the idle I/O priority (scan.cpu=low) */
#define SCANNER_ALLMATCH 0x4 /* every signature that matches is reported
			      * (clamd's ALLMATCHSCAN) */

/* A scan request. */
struct scanner_request {
	int fd;                  /* the open file; the caller's */
	const char *name;        /* for messages only */
	unsigned flags;          /* SCANNER_URGENT, SCANNER_LOW */
	unsigned timeout;        /* seconds from the submit; 0: scan_timeout */
	scanner_done_fn done;
	/* NULL, or asked just before the request is sent (under the
	 * generation's lock: fast, never calling the scanner): false ends it
	 * with AERR_NOTNEEDED (another scan of the same file answered
	 * meanwhile). */
	bool (*needed)(void *arg);
	void *arg;               /* for done() and needed() */
};

/* Queues the scan rq describes in g's worker, never waiting: when the
 * worker has room the request is sent at once from the calling thread,
 * else it waits in g's queue (at most cfg.max_queue requests), urgent ones
 * first. Returns AERR_OK, and then rq->done(rq->arg, result) is called
 * exactly once, with the verdict, or with an error when the worker dies
 * holding it, or AERR_TIMEOUT once the timeout has passed. done() runs
 * on a thread of the scanner (the calling one when the request fails at
 * once), with no lock held, and must not block. Any other return: nothing
 * was queued, done() is never called, errbuf says why. The file stays the
 * caller's and must stay open until done() is called; so must the
 * caller's reference on g (done() may release it). Thread-safe. */
enum aerr scanner_submit(struct scanner *g, const struct scanner_request *rq,
				char *errbuf, size_t errlen);

/* Ends every request of g that waits in its queue (not sent to the
 * worker yet) and has done as its callback, with AERR_CANCELLED: a
 * service that stops does not wait for its backlog. Thread-safe. */
void scanner_cancel(struct scanner *g, scanner_done_fn done);

/* scanner_submit(), then waits for done(): fills *res (names, bytes
 * scanned; the caller clears it in every case) and *out (whether the
 * verdict rests on smart answers, or is unverified). fd stays the
 * caller's. The caller holds a reference on g, or the scan holds one of
 * its own for as long as it waits. Blocking; thread-safe. */
enum aerr scanner_scan_fd(struct scanner *g, int fd, const char *name,
				 unsigned flags, unsigned timeout, struct engine_result *res,
				 struct smart_outcome *out, char *errbuf, size_t errlen);

/* scanner_scan_fd() as job.h's sjob_scan_fn (arg: the generation, held by
 * the caller for the whole run): tree scans through the worker. */
int scanner_sjob_scan(void *arg, int fd, const char *name, struct engine_result *res,
		      struct smart_outcome *out, char *errbuf, size_t errlen);

/* Returns how many requests of g are sent to its worker and not answered
 * yet (status, tests). Thread-safe. */
size_t scanner_in_flight(struct scanner *g);

/* Returns the process id of g's worker, or 0 when none runs now (status,
 * tests). Thread-safe. */
pid_t scanner_pid(struct scanner *g);

#endif
