/* signin.h -- password work off the HTTP loop, each verification at its
 * turn while the global brake on wrong passwords is engaged.
 *
 * Argon2id takes a tenth of a second or more per password: done on the
 * loop it would hold every other request for that long. Here worker
 * threads take the verifications (and the hashing of new passwords) from
 * a bounded queue; the request waits parked, and the outcome is handed
 * back to the loop by a timer, as updates.c collects its imports. A name
 * with no administrator is verified against a dummy hash made with the
 * same parameters, so the answer's timing does not tell which names exist.
 *
 * Wrong passwords are counted in the database (store_guard_*() per
 * address, store_brake_*() of all addresses together), so that every
 * server on it brakes as one: while the global brake is engaged, each
 * verification gets a turn from the database (one per pace interval, for
 * all servers together) and waits for it here, while the queue bound
 * turns away the rest (503 with Retry-After).
 *
 * Everything but the workers runs on the loop's thread; not thread-safe.
 */
#ifndef WARD_SIGNIN_H
#define WARD_SIGNIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/http.h"
#include "common/loop.h"

/* The Argon2id parameters of every stored password (and of the dummy). */
#define SIGNIN_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define SIGNIN_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

/* Longest password accepted, in bytes: the hash's input is bounded. */
#define SIGNIN_MAX_PASSWORD 1024

struct signin_config {
	unsigned workers;          /* threads hashing passwords */
	unsigned queue;            /* verifications waiting or running, at most */
};

enum signin_outcome {
	SIGNIN_MATCH,      /* the password matched (or none was to be checked) */
	SIGNIN_MISMATCH,   /* wrong password, or no such administrator */
	SIGNIN_ENOMEM,     /* hashing failed (out of memory) */
};

/* Called on the loop's thread when a submitted job is done: req is NULL
 * when the request was dropped meanwhile (the server stopping). new_hash
 * is the hash of the new password asked for, when the outcome is
 * SIGNIN_MATCH (else ""). arg is the submitter's, which this call must
 * release. */
typedef void (*signin_done_fn)(struct http_req *req, void *arg, enum signin_outcome outcome,
			       const char *new_hash);

struct signin;

/* Starts cfg->workers threads, which hand their results back to loop (an
 * eventfd wakes it; NULL: to nothing, for a local server's requests, which
 * stay parked). Returns NULL when out of memory or when threads or the
 * eventfd cannot start. The caller frees it with signin_free() after
 * http_free() and before loop_free(). */
struct signin *signin_new(const struct signin_config *cfg, struct loop *loop);

/* Stops the workers and releases every job left (their done functions are
 * called with a NULL request). NULL is accepted. */
void signin_free(struct signin *s);

/* Queues a job for req and parks it: at turn (the clock; 0: at once),
 * verify password against hash (NULL: against the dummy, which never
 * matches; password NULL: nothing to verify), then, if that matched, hash
 * new_password (may be NULL). The strings are copied. Returns false,
 * leaving req unanswered and arg with the caller, when the queue is full
 * (logged at most once a minute) or memory is short. */
bool signin_submit(struct signin *s, struct http_req *req, const char *hash,
		   const char *password, const char *new_password, int64_t turn,
		   signin_done_fn done, void *arg);

/* Returns whether the queue has room for another job. */
bool signin_room(const struct signin *s);

/* Seconds a sign-in turned away for a full queue should wait: those
 * queued go first, one per pace seconds (0: the brake is not engaged). */
unsigned signin_retry_after(const struct signin *s, int64_t pace);

#endif
