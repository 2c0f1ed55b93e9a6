/* clamd.h -- the running agent's clamd service: clamd's socket protocol
 * (cproto.h) on a UNIX socket and, when configured, TCP, so that mail,
 * web and file programs made for clamd scan through Ward unchanged
 * (docs/protocol.md, "The clamd protocol").
 *
 * Connections live on the loop's thread: commands are read and answered
 * there. Descriptors (FILDES) and streams (INSTREAM, kept in a memfd) go
 * straight to the scan workers of the component in use (scanner.h), whose
 * verdicts come back to the loop; path commands (SCAN and its kin) walk
 * their trees on a bounded pool of threads of the service's own, which
 * also queues what is found for the server with the client program
 * (SO_PEERCRED) beside it.
 *
 * Threads: every function belongs to the loop's thread, but clamd_status(),
 * which is thread-safe.
 */
#ifndef WARD_AGENT_CLAMD_H
#define WARD_AGENT_CLAMD_H

#include <jansson.h>
#include <stddef.h>

#include "common/loop.h"

struct agent;
struct channel;
struct clamd;
struct vault;

/* Starts the service of a (its options: clamd.*) on loop when
 * clamd.enabled, listening at once; ch (may be NULL) is woken when a
 * detection is kept; v (outliving the service) takes the policy's actions
 * on what path commands find when clamd.actions is on. Returns NULL with
 * errbuf saying why when a socket cannot be made or a thread started;
 * *off is set when the service is not enabled (NULL returned, nothing
 * wrong). The caller frees it with clamd_free(). */
struct clamd *clamd_new(struct agent *a, struct loop *loop, struct channel *ch,
			struct vault *v, bool *off, char *errbuf, size_t errlen);

/* What `ward-agent status` and the heartbeat say of the service: {state
 * ("on", or "stopped" after SHUTDOWN), requests, found, errors,
 * unverified, cached} (a new reference; NULL when d is NULL or memory runs
 * out). Thread-safe. */
json_t *clamd_status(struct clamd *d);

/* Closes the listeners and every connection, joins the threads and waits
 * for the scans sent to the workers. Loop's thread, before loop_free()
 * (which runs their answers); idempotent; NULL is ignored. */
void clamd_stop(struct clamd *d);

/* Frees the service (stopped if it was not), after loop_free(); the
 * detections still held are kept for the server. NULL is ignored. */
void clamd_free(struct clamd *d);

#endif
