/* channel.h -- the agent's channel to its server: one long poll after
 * another, carrying the agent's status (its heartbeat), taking the
 * settings, update requests and moves the server delivers and
 * acknowledging them, scheduled updates between polls, the detections
 * report and the rescans of unverified files.
 *
 * Every blocking call (libcurl, loading an engine) runs on the channel's
 * own thread, which owns the server conversation in struct agent (the
 * credential, the settings in effect, the updater); what the loop's
 * thread asks of it (Update Now, the source list) is answered by a call posted to the
 * loop. channel_stop() aborts a poll in flight and joins the thread.
 *
 * channel_enroll(), channel_move(), channel_take_delivery() and
 * channel_plan_update() are the steps of the conversation, on the thread
 * that owns it (the channel's, or a command's).
 */
#ifndef WARD_AGENT_CHANNEL_H
#define WARD_AGENT_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"

struct agent;
struct channel;
struct vault;

/* What the loop's thread may ask of the channel. */
enum channel_ask {
	CHANNEL_UPDATE,    /* Update Now: {"component", "version"} or {"error"} */
	CHANNEL_SOURCES,   /* smart scan: take the server's source list now
			    * (before an on-demand scan): {"sources": true} */
};

/* Called on the loop's thread with the answer (a reference the callee
 * takes) to the request id of channel_ask(). */
typedef void (*channel_answer_fn)(uint64_t id, json_t *answer, void *arg);

/* A channel for a (enrolled, its state loaded) that answers through
 * answer on loop. Not started. Returns NULL when out of memory. The caller
 * frees it with channel_free(). */
struct channel *channel_new(struct agent *a, struct loop *loop, channel_answer_fn answer,
			    void *answer_arg);

/* Called on the loop's thread with a task the server delivered, checked
 * against docs/protocol.md (a reference the callee takes); each id once. */
typedef void (*channel_task_fn)(json_t *task, void *arg);

/* Called on the loop's thread with a copy of the settings in effect (a
 * reference the callee takes): at the start and after each delivery. */
typedef void (*channel_settings_fn)(json_t *settings, void *arg);

/* Gives the channel the vault whose inventory it reports (NULL: none) and
 * the loop's receivers of tasks and settings. Before channel_start(). */
void channel_attach(struct channel *ch, struct vault *v, channel_task_fn on_task,
		    channel_settings_fn on_settings, void *arg);

/* Queues report (a task report of docs/protocol.md; a reference taken)
 * for the server, sent by the channel's thread at once and again until
 * the server takes it; a newer "running" report of a task replaces the
 * one waiting. Any thread. */
void channel_report_task(struct channel *ch, json_t *report);

/* Cuts the poll in flight short, so that what waits for the server (the
 * detections kept, the quarantine's inventory, the status with a new
 * last_scan) goes now. Any thread. */
void channel_wake(struct channel *ch);

/* Starts the channel's thread: the component in use first, then the
 * polls. Returns false when the thread cannot start (logged). */
bool channel_start(struct channel *ch);

/* Asks the channel what (an update of the components now, the source
 * list): the poll in flight is cut short, and the answer comes back for
 * id. Loop's thread. */
void channel_ask(struct channel *ch, enum channel_ask what, uint64_t id);

/* Stops the channel: a poll or download in flight is aborted, and the
 * thread is joined (within a second or so). Loop's thread. */
void channel_stop(struct channel *ch);

/* Frees a stopped (or never started) channel. */
void channel_free(struct channel *ch);

/* Enrolls as uuid with server, trusting the CA in ca_file, into domain
 * (NULL: the server decides), for the deployment of that id (NULL: none),
 * and on success writes the credential. The caller makes the state
 * directory and puts the CA in place. */
bool channel_enroll(struct agent *a, const char *server, const char *ca_file,
		    const char *token, const char *uuid, const char *domain,
		    const char *deployment);

/* Moves to the server a signed instruction names (enrolling there); the
 * caller acknowledges and switches. Refused unless signed by the pinned
 * package key and naming this agent. */
bool channel_move(struct agent *a, const json_t *move);

/* Takes a delivery of settings (version), updating the components first
 * when the scan method changes or update is set; applied only once that
 * is done. Returns false when it is not (to be delivered again). */
bool channel_take_delivery(struct agent *a, json_int_t version, json_t *settings,
			   bool update);

/* Sets a->next_update from the settings in effect: the schedule's next
 * time plus a random part of update.window. */
void channel_plan_update(struct agent *a);

#endif
