/* loop.c -- the event loop (see loop.h): epoll over the watched
 * descriptors, a signalfd and an eventfd that other threads wake it with;
 * timers in a list ordered by due time. */
#include "common/loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* Events taken from epoll at once. */
#define MAX_EVENTS 64

struct watcher {
	int fd;
	loop_fd_fn fn;
	void *arg;
	bool removed;             /* taken out; freed at the end of the pass */
	struct watcher *next;     /* in the dead list */
};

struct timer {
	uint64_t id;
	uint64_t due;
	uint64_t interval;        /* 0: once */
	loop_fn fn;
	void *arg;
	struct timer *next;
};

struct posted {
	loop_fn fn;
	void *arg;
	struct posted *next;
};

struct pass_hook {
	loop_pass_fn fn;
	void *arg;
};

struct loop {
	int epfd, sigfd, wakefd;
	atomic_bool stop;
	struct watcher **watchers; /* by descriptor: a server watches thousands */
	size_t nwatchers;
	struct watcher *dead;      /* removed during a pass */
	struct timer *timers;      /* by due time, then by id */
	uint64_t next_id;
	struct pass_hook *hooks;
	size_t nhooks;
	loop_fn hup;
	void *hup_arg;
	pthread_mutex_t lock;      /* the posted queue */
	struct posted *head, *tail;
};

/* epoll_event.data.ptr of the loop's own descriptors: their addresses. */
#define SIG_TAG(l) ((void *)&(l)->sigfd)
#define WAKE_TAG(l) ((void *)&(l)->wakefd)

uint64_t loop_now_ms(void)
{
	return util_now_ns() / 1000000u;
}

struct loop *loop_new(char *errbuf, size_t errlen)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	if (!l) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	l->epfd = l->sigfd = l->wakefd = -1;
	l->next_id = 1;
	pthread_mutex_init(&l->lock, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (l->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		goto fail;
	ev.data.ptr = SIG_TAG(l);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev) != 0)
		goto fail;
	ev.data.ptr = WAKE_TAG(l);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0)
		goto fail;
	return l;
fail:
	snprintf(errbuf, errlen, "event loop: %s", strerror(errno));
	loop_free(l);
	return NULL;
}

static void wake(struct loop *l)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, so the loop is woken already. */
	(void)!write(l->wakefd, &one, sizeof(one));
}

void loop_stop(struct loop *l)
{
	atomic_store(&l->stop, true);
	wake(l);
}

bool loop_stopping(const struct loop *l)
{
	return atomic_load(&((struct loop *)l)->stop);
}

/* Runs what other threads posted until now, in order. */
static void run_posted(struct loop *l)
{
	struct posted *p, *next;

	pthread_mutex_lock(&l->lock);
	p = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->lock);
	for (; p; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

int loop_post(struct loop *l, loop_fn fn, void *arg)
{
	struct posted *p = malloc(sizeof(*p));

	if (!p)
		return -1;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 0;
}

static struct watcher *find_watcher(struct loop *l, int fd)
{
	return fd >= 0 && (size_t)fd < l->nwatchers ? l->watchers[fd] : NULL;
}

int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct watcher *w, **grown;
	size_t want;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (find_watcher(l, fd)) {
		errno = EEXIST;
		return -1;
	}
	if ((size_t)fd >= l->nwatchers) {
		for (want = l->nwatchers ? l->nwatchers : 64; want <= (size_t)fd; want *= 2)
			;
		grown = realloc(l->watchers, want * sizeof(*grown));
		if (!grown)
			return -1;
		memset(grown + l->nwatchers, 0, (want - l->nwatchers) * sizeof(*grown));
		l->watchers = grown;
		l->nwatchers = want;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(w);
		return -1;
	}
	l->watchers[fd] = w;
	return 0;
}

int loop_fd_modify(struct loop *l, int fd, uint32_t events)
{
	struct watcher *w = find_watcher(l, fd);
	struct epoll_event ev = { .events = events };

	if (!w) {
		errno = ENOENT;
		return -1;
	}
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void loop_fd_remove(struct loop *l, int fd)
{
	struct watcher *w = find_watcher(l, fd);

	if (!w)
		return;
	l->watchers[fd] = NULL;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Events of this pass may still point at it. */
	w->removed = true;
	w->next = l->dead;
	l->dead = w;
}

/* Puts t into the list by due time; after those due at the same time. */
static void timer_insert(struct loop *l, struct timer *t)
{
	struct timer **pp;

	for (pp = &l->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
}

static uint64_t timer_add(struct loop *l, uint64_t delay_ms, uint64_t interval_ms, loop_fn fn,
			  void *arg)
{
	struct timer *t = calloc(1, sizeof(*t));

	if (!t)
		return 0;
	t->id = l->next_id++;
	t->due = loop_now_ms() + delay_ms;
	t->interval = interval_ms;
	t->fn = fn;
	t->arg = arg;
	timer_insert(l, t);
	return t->id;
}

uint64_t loop_every(struct loop *l, uint64_t interval_ms, loop_fn fn, void *arg)
{
	if (interval_ms == 0)
		interval_ms = 1;
	return timer_add(l, interval_ms, interval_ms, fn, arg);
}

uint64_t loop_after(struct loop *l, uint64_t delay_ms, loop_fn fn, void *arg)
{
	return timer_add(l, delay_ms, 0, fn, arg);
}

void loop_cancel(struct loop *l, uint64_t id)
{
	struct timer **pp, *t;

	for (pp = &l->timers; *pp && (*pp)->id != id; pp = &(*pp)->next)
		;
	if ((t = *pp) != NULL) {
		*pp = t->next;
		free(t);
	}
}

int loop_on_pass(struct loop *l, loop_pass_fn fn, void *arg)
{
	struct pass_hook *h = realloc(l->hooks, (l->nhooks + 1) * sizeof(*h));

	if (!h)
		return -1;
	l->hooks = h;
	h[l->nhooks].fn = fn;
	h[l->nhooks].arg = arg;
	l->nhooks++;
	return 0;
}

void loop_off_pass(struct loop *l, loop_pass_fn fn, void *arg)
{
	size_t i;

	for (i = 0; i < l->nhooks; i++)
		if (l->hooks[i].fn == fn && l->hooks[i].arg == arg) {
			memmove(&l->hooks[i], &l->hooks[i + 1],
				(l->nhooks - i - 1) * sizeof(*l->hooks));
			l->nhooks--;
			return;
		}
}

void loop_on_hup(struct loop *l, loop_fn fn, void *arg)
{
	l->hup = fn;
	l->hup_arg = arg;
}

/* Runs the timers due now. Each is taken off the list before it runs, so
 * that it may cancel itself or set others; a periodic one goes back in
 * only when it was not cancelled meanwhile. */
static void run_timers(struct loop *l)
{
	uint64_t now = loop_now_ms();
	struct timer *t;

	while (!atomic_load(&l->stop) && (t = l->timers) != NULL && t->due <= now) {
		l->timers = t->next;
		if (!t->interval) {
			t->fn(t->arg);
			free(t);
			continue;
		}
		/* Back in the list before it runs: it may cancel itself. */
		t->due = now + t->interval;
		timer_insert(l, t);
		t->fn(t->arg);
	}
}

static void read_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_msg(LOG_LVL_INFO, "signal %u%s", si.ssi_signo,
				l->hup ? "" : ": ignored");
			if (l->hup)
				l->hup(l->hup_arg);
			continue;
		}
		log_msg(LOG_LVL_INFO, "signal %u: stopping", si.ssi_signo);
		atomic_store(&l->stop, true);
	}
}

/* Milliseconds epoll may wait: until the next timer or what a pass hook
 * asks; -1 = no limit. */
static int next_wait(struct loop *l, int64_t hooks)
{
	uint64_t now = loop_now_ms(), wait = hooks < 0 ? UINT64_MAX : (uint64_t)hooks;

	if (l->timers)
		wait = l->timers->due <= now ? 0 : l->timers->due - now < wait ?
		       l->timers->due - now : wait;
	return wait == UINT64_MAX ? -1 : wait > 60000 ? 60000 : (int)wait;
}

static void free_dead(struct loop *l)
{
	struct watcher *w;

	while ((w = l->dead) != NULL) {
		l->dead = w->next;
		free(w);
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[MAX_EVENTS];
	int64_t hooks = 0, want; /* the first pass at once */
	uint64_t count;
	struct watcher *w;
	size_t h;
	int i, n;

	while (!atomic_load(&l->stop)) {
		n = epoll_wait(l->epfd, evs, MAX_EVENTS, next_wait(l, hooks));
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_LVL_ERROR, "event loop: %s", strerror(errno));
			return -1;
		}
		for (i = 0; i < n && !atomic_load(&l->stop); i++) {
			if (evs[i].data.ptr == SIG_TAG(l)) {
				read_signals(l);
			} else if (evs[i].data.ptr == WAKE_TAG(l)) {
				(void)!read(l->wakefd, &count, sizeof(count));
				run_posted(l);
			} else {
				w = evs[i].data.ptr;
				if (!w->removed)
					w->fn(w->fd, evs[i].events, w->arg);
			}
		}
		free_dead(l);
		run_timers(l);
		free_dead(l);
		hooks = -1;
		for (h = 0; h < l->nhooks && !atomic_load(&l->stop); h++) {
			want = l->hooks[h].fn(l->hooks[h].arg);
			if (want >= 0 && (hooks < 0 || want < hooks))
				hooks = want;
		}
		free_dead(l);
	}
	return 0;
}

void loop_free(struct loop *l)
{
	struct timer *t;
	size_t i;

	if (!l)
		return;
	run_posted(l);
	for (i = 0; i < l->nwatchers; i++)
		free(l->watchers[i]);
	free(l->watchers);
	free_dead(l);
	while ((t = l->timers) != NULL) {
		l->timers = t->next;
		free(t);
	}
	free(l->hooks);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
