/* rtwatch.h -- the real-time scanner's watchdog process: a child that
 * shares the fanotify group and, when the agent stops beating (stopped with
 * SIGSTOP, or its timer thread stuck), allows every permission event the
 * agent holds and every one queued, so that the host never hangs on a
 * stopped agent. The watchdog thread in realtime.c covers a stuck reader
 * in a running agent; this covers the agent as a whole.
 *
 * The child keeps only the fanotify descriptor (all others closed), uses
 * only async-signal-safe calls, and dies with the agent (PR_SET_PDEATHSIG,
 * and it checks its parent every tick). Shared memory: a heartbeat, the
 * timeout, a count of what it allowed, and one byte per descriptor number
 * below RTWATCH_FDS marking the permission events the agent has read and
 * not answered. */
#ifndef WARD_AGENT_RTWATCH_H
#define WARD_AGENT_RTWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Event descriptors at or above this number are not covered (the agent's
 * open-files limit stays below it unless raised further). */
#define RTWATCH_FDS 65536

struct rtwatch;

/* Forks the watchdog for the fanotify group fan, acting when no beat came
 * for timeout_ns (plus a tick). Returns NULL with errbuf set on failure.
 * The caller owns it; call from a thread that lives as long as the scanner
 * (the child's death signal follows the thread that forked it). */
struct rtwatch *rtwatch_start(int fan, uint64_t timeout_ns, char *errbuf, size_t errlen);

/* Says the agent is alive (the timer thread, every tick). Thread-safe. */
void rtwatch_beat(struct rtwatch *w);

/* Changes the timeout. Thread-safe. */
void rtwatch_set_timeout(struct rtwatch *w, uint64_t timeout_ns);

/* Marks the permission event of descriptor fd read (hold) or answered
 * (release). Thread-safe; NULL w is ignored. */
void rtwatch_hold(struct rtwatch *w, int fd);
void rtwatch_release(struct rtwatch *w, int fd);

/* Returns how many accesses the watchdog process allowed. Thread-safe. */
uint64_t rtwatch_allowed(struct rtwatch *w);

/* Returns the watchdog process's pid. */
pid_t rtwatch_pid(const struct rtwatch *w);

/* Kills and reaps the child and frees w (NULL is ignored). */
void rtwatch_stop(struct rtwatch *w);

#endif
