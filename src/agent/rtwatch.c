/* rtwatch.c -- the real-time scanner's watchdog process (rtwatch.h). */
#include "agent/rtwatch.h"

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* The longest the child sleeps between looks. */
#define TICK_NS 100000000ull

struct shared {
	atomic_uint_fast64_t beat;     /* CLOCK_MONOTONIC ns of the last beat */
	atomic_uint_fast64_t timeout;  /* ns */
	atomic_uint_fast64_t allowed;
	atomic_uchar waiting[RTWATCH_FDS];
};

struct rtwatch {
	struct shared *sh;
	pid_t pid;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Allows the permission event of descriptor number fd (in the reader's
 * table): whether there was one. */
static bool respond(int fan, int fd)
{
	struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };

	return write(fan, &r, sizeof(r)) == (ssize_t)sizeof(r);
}

static void allow(struct shared *sh, int fan, int fd)
{
	atomic_fetch_add(&sh->allowed, 1);
	respond(fan, fd); /* (ENOENT: answered meanwhile; nothing to tell anyone from here) */
}

/* The child's rights: none. Answering on the fanotify descriptor it holds
 * and reading its events need no capability (the kernel opens the events'
 * files with the rights the descriptor was made with), so it keeps none of
 * the agent's, and can gain none. Returns 0, or -1. */
static int drop_rights(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	int cap;

	/* Without CAP_SETPCAP the bounding set stays (EPERM); the empty sets
	 * and no_new_privs are what matter. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* The child: async-signal-safe calls only (it was forked from a process
 * that may have other threads). fan is descriptor 3. */
static _Noreturn void child_main(struct shared *sh, pid_t parent)
{
	union {
		struct fanotify_event_metadata m;
		char bytes[4096];
	} buf;
	const struct fanotify_event_metadata *m;
	uint64_t now, timeout, tick, swept = 0, beat;
	struct timespec ts;
	ssize_t n;
	int fd;

	for (;;) {
		timeout = atomic_load(&sh->timeout);
		tick = timeout / 4 < TICK_NS ? timeout / 4 : TICK_NS;
		ts.tv_sec = (time_t)(tick / 1000000000u);
		ts.tv_nsec = (long)(tick % 1000000000u);
		nanosleep(&ts, NULL);
		if (getppid() != parent)
			_exit(0);
		now = now_ns();
		beat = atomic_load(&sh->beat);
		/* The agent's timer beats every tick; a tick more is its slack. */
		if (now - beat <= timeout + TICK_NS)
			continue;
		/* Events the agent read but had not marked when it stopped (a
		 * stop lands between read() and rtwatch_hold() as readily as
		 * anywhere) are answered by number, once a stall: the kernel
		 * matches a response to its event by the descriptor number the
		 * reader was given, and a number with no event is refused
		 * (ENOENT). */
		if (beat != swept) {
			swept = beat;
			for (fd = 0; fd < RTWATCH_FDS; fd++)
				if (respond(3, fd)) {
					atomic_store(&sh->waiting[fd], 0);
					atomic_fetch_add(&sh->allowed, 1);
				}
		}
		for (fd = 0; fd < RTWATCH_FDS; fd++)
			if (atomic_exchange(&sh->waiting[fd], 0))
				allow(sh, 3, fd);
		while ((n = read(3, buf.bytes, sizeof(buf.bytes))) > 0)
			for (m = &buf.m; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
				if (m->fd < 0)
					continue;
				if (m->mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM))
					allow(sh, 3, m->fd);
				close(m->fd);
			}
	}
}

struct rtwatch *rtwatch_start(int fan, uint64_t timeout_ns, char *errbuf, size_t errlen)
{
	struct rtwatch *w = calloc(1, sizeof(*w));
	pid_t parent = getpid();

	if (!w) {
		util_set_msg(errbuf, errlen, "realtime: out of memory");
		return NULL;
	}
	w->sh = mmap(NULL, sizeof(*w->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (w->sh == MAP_FAILED) {
		util_set_msg(errbuf, errlen, "realtime: watchdog memory: %s", strerror(errno));
		free(w);
		return NULL;
	}
	atomic_store(&w->sh->timeout, timeout_ns);
	atomic_store(&w->sh->beat, now_ns());
	w->pid = fork();
	if (w->pid < 0) {
		util_set_msg(errbuf, errlen, "realtime: watchdog process: fork: %s",
			     strerror(errno));
		munmap(w->sh, sizeof(*w->sh));
		free(w);
		return NULL;
	}
	if (w->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent ||
		    (fan != 3 && dup2(fan, 3) != 3) || close_range(4, ~0u, 0) != 0 ||
		    drop_rights() != 0)
			_exit(1);
		child_main(w->sh, parent);
	}
	return w;
}

void rtwatch_beat(struct rtwatch *w)
{
	atomic_store(&w->sh->beat, now_ns());
}

void rtwatch_set_timeout(struct rtwatch *w, uint64_t timeout_ns)
{
	atomic_store(&w->sh->timeout, timeout_ns);
}

void rtwatch_hold(struct rtwatch *w, int fd)
{
	if (w && fd >= 0 && fd < RTWATCH_FDS)
		atomic_store(&w->sh->waiting[fd], 1);
}

void rtwatch_release(struct rtwatch *w, int fd)
{
	if (w && fd >= 0 && fd < RTWATCH_FDS)
		atomic_store(&w->sh->waiting[fd], 0);
}

uint64_t rtwatch_allowed(struct rtwatch *w)
{
	return atomic_load(&w->sh->allowed);
}

pid_t rtwatch_pid(const struct rtwatch *w)
{
	return w->pid;
}

void rtwatch_stop(struct rtwatch *w)
{
	if (!w)
		return;
	kill(w->pid, SIGKILL);
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	munmap(w->sh, sizeof(*w->sh));
	free(w);
}
