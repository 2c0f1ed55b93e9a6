/* control.h -- the running agent's local control socket, through which
 * the ward-agent commands (status, scan, update) talk to it.
 *
 * A Unix stream socket at STATE_DIR/control.sock, mode 0600; a peer is
 * served only when SO_PEERCRED says it is root or the agent's own user.
 * A connection carries one request, a line of JSON {"cmd": NAME, ...} of
 * at most CONTROL_MAX_LINE bytes sent within CONTROL_TIMEOUT seconds, and
 * gets one answer line back (control_answer()), or is taken over by the
 * command that streams its answer (control_take(): a scan). At most
 * max_conns connections wait at once; more are closed at once. Everything
 * here runs on the loop's thread.
 */
#ifndef WARD_AGENT_CONTROL_H
#define WARD_AGENT_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

/* The longest request line: a scan of many paths fits. */
#define CONTROL_MAX_LINE 65536

/* Seconds a connection may take to send its request. */
#define CONTROL_TIMEOUT 10

struct control;

/* Called with a request: its connection's id, its command and the whole
 * request (borrowed for the call). The callee answers with
 * control_answer() now or later, or takes the connection. */
typedef void (*control_cmd_fn)(struct control *ctl, uint64_t id, const char *cmd,
			       const json_t *req, void *arg);

/* Listens at path on loop for fn, replacing a stale socket there (one no
 * agent answers on). Returns NULL with errbuf set when it cannot (another
 * agent answers there, the directory is not writable...). The caller frees
 * it with control_free(). */
struct control *control_new(struct loop *loop, const char *path, unsigned max_conns,
			    control_cmd_fn fn, void *arg, char *errbuf, size_t errlen);

/* Sends answer (a reference taken) as the answer line of connection id
 * and closes it; dropped when the connection is gone. */
void control_answer(struct control *ctl, uint64_t id, json_t *answer);

/* Takes connection id away from the control socket: the caller owns the
 * descriptor returned (blocking mode off) and closes it. -1 when gone. */
int control_take(struct control *ctl, uint64_t id);

/* Closes every connection, removes the socket file and frees ctl. */
void control_free(struct control *ctl);

#endif
