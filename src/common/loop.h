/* loop.h -- the event loop of Ward's programs: one thread waits in epoll
 * for file descriptors, timers, signals and work handed over by other
 * threads, and runs their callbacks.
 *
 * Every callback runs on the thread that calls loop_run() (the loop's
 * thread), one at a time, so the state they touch needs no locks. Only
 * loop_post() and loop_stop() may be called from other threads; every
 * other function belongs to the loop's thread (or to the thread that made
 * the loop, before loop_run()).
 *
 * Signals: loop_new() blocks SIGINT, SIGTERM and SIGHUP in the calling
 * thread and reads them through a signalfd, so it must be called before
 * the program starts other threads (they inherit the mask; a thread that
 * did not would take the signal's default action). SIGINT and SIGTERM stop
 * the loop; SIGHUP calls the function loop_on_hup() set, or is ignored.
 */
#ifndef WARD_LOOP_H
#define WARD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* Work for the loop's thread: a timer, a posted call, a SIGHUP. */
typedef void (*loop_fn)(void *arg);

/* Called when fd is ready: events are epoll's (EPOLLIN, EPOLLOUT, EPOLLHUP...). */
typedef void (*loop_fd_fn)(int fd, uint32_t events, void *arg);

/* Called after every pass of the loop (descriptors, timers and posted work
 * done). Returns the milliseconds within which it must be called again
 * (0: at once), or -1 when only another wake-up needs it. */
typedef int64_t (*loop_pass_fn)(void *arg);

/* Makes a loop and blocks SIGINT, SIGTERM and SIGHUP in the calling thread
 * (see above). Returns NULL with errbuf set on failure. The caller owns
 * the loop and frees it with loop_free(). */
struct loop *loop_new(char *errbuf, size_t errlen);

/* Runs the loop until loop_stop(), SIGINT or SIGTERM. Returns 0, or -1
 * when waiting itself failed (logged). Loop's thread only. */
int loop_run(struct loop *l);

/* Makes loop_run() return once the callback running now (if any) ends.
 * Any thread; async-signal-safe. */
void loop_stop(struct loop *l);

/* Whether the loop stopped (loop_stop(), a signal): for work that runs
 * long on the loop's thread and should give up. Any thread. */
bool loop_stopping(const struct loop *l);

/* Runs the work still posted (so that nothing handed over is leaked), then
 * frees the loop: descriptors are no longer watched (not closed), timers
 * are cancelled. Loop's thread, after loop_run() returned and the threads
 * that post to l have been joined. */
void loop_free(struct loop *l);

/* Watches fd for events (EPOLLIN, EPOLLOUT...), calling fn(fd, events,
 * arg) while it is ready (level-triggered). fd stays the caller's, and
 * must be removed with loop_fd_remove() before it is closed. Returns 0,
 * or -1 with errno set (EEXIST: fd is watched already). */
int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg);

/* Changes the events fd is watched for. Returns 0, or -1 with errno set. */
int loop_fd_modify(struct loop *l, int fd, uint32_t events);

/* Stops watching fd; its callback is not called again, even for events
 * of the pass under way. Does nothing when fd is not watched. */
void loop_fd_remove(struct loop *l, int fd);

/* Calls fn(arg) every interval_ms milliseconds (at least 1), the first
 * time one interval from now, at a fixed rate without catching up on runs
 * missed. Returns the timer's id (never 0) for loop_cancel(), or 0 when
 * out of memory. Timers due at the same time run in the order they were
 * set. */
uint64_t loop_every(struct loop *l, uint64_t interval_ms, loop_fn fn, void *arg);

/* Calls fn(arg) once, delay_ms milliseconds from now. Returns the timer's
 * id (never 0), or 0 when out of memory. */
uint64_t loop_after(struct loop *l, uint64_t delay_ms, loop_fn fn, void *arg);

/* Cancels the timer id: its function is not called again. Does nothing
 * when it is gone (a one-off timer that ran, a timer cancelled). */
void loop_cancel(struct loop *l, uint64_t id);

/* Has fn(arg) called after every pass of the loop, after the ones set
 * before it. Returns 0, or -1 when out of memory. */
int loop_on_pass(struct loop *l, loop_pass_fn fn, void *arg);

/* Stops calling the pass function fn with arg. */
void loop_off_pass(struct loop *l, loop_pass_fn fn, void *arg);

/* Has fn(arg) called on the loop's thread whenever SIGHUP arrives (NULL:
 * SIGHUP is ignored). */
void loop_on_hup(struct loop *l, loop_fn fn, void *arg);

/* Hands fn(arg) to the loop's thread, which runs it soon, in the order
 * posted; what is posted after the loop stopped runs in loop_free().
 * Any thread. Returns 0, or -1 when out of memory (fn will not run). */
int loop_post(struct loop *l, loop_fn fn, void *arg);

/* The loop's clock: milliseconds, monotonic. Any thread. */
uint64_t loop_now_ms(void);

#endif
