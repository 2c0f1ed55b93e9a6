/* log.h -- one line per event on standard error, for daemons run under
 * systemd (which adds time stamps of its own to the journal) or by hand.
 *
 * Lines read "LEVEL message". Callers never log secrets: tokens, passwords
 * and keys are named, not shown. Thread-safe (one write per line).
 *
 * A daemon whose threads must never wait on the log's reader (the agent:
 * journald may itself wait for a real-time verdict, fapolicyd's deadlock)
 * queues its lines for a writer thread of their own (log_queue_start()). */
#ifndef WARD_LOG_H
#define WARD_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Sets the most verbose level written (default LOG_LVL_INFO). Call it before
 * threads start. */
void log_set_level(enum log_level level);

/* Writes one line at level, if that level is enabled. Once the queue is
 * started, never waits on standard error: the line is queued, or dropped
 * (and counted) when the queue is full. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts the queue: from now on this process's lines go to a writer
 * thread through a queue of at most max_bytes; lines past it are dropped,
 * and how many is logged once the reader takes lines again. A child
 * forked later writes its lines itself. Call once, from the thread that
 * starts the others, before them (the writer inherits its signal mask).
 * Returns 0, or -1 with errno set (lines are then written directly). */
int log_queue_start(size_t max_bytes);

/* Waits up to timeout_ms for the queued lines to be written and stops the
 * writer; lines logged afterwards are written directly. When the reader
 * does not take them in time, what is left is dropped and so are later
 * lines (exiting matters more than a stalled log). Call before exit. */
void log_queue_stop(int timeout_ms);

#endif
