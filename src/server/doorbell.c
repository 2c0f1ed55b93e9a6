/* doorbell.c -- hearing the other servers on one PostgreSQL database
 * (see doorbell.h). */
#include "server/doorbell.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "common/util.h"

/* How often the bell is looked at: asked for an answer, or (lost) opened
 * again. */
#define TICK_MS 1000

/* An answer awaited this long means the database is out of reach. */
#define SILENCE_MS 5000

struct doorbell {
	struct loop *loop;
	struct notify *notify;
	struct store *st;
	const char *target;
	int64_t frontend;
	struct store_bell *bell;   /* NULL while lost */
	int fd;
	bool lost_logged;
	uint64_t last_tick_ns;     /* when on_tick() last ran */
	/* Opening it again, on a thread of its own (a database out of reach
	 * holds the connecting thread for connect_timeout). */
	bool opening;
	pthread_t opener;
	atomic_bool opened;
	struct store_bell *fresh;
	char msg[512];
};

static void on_readable(int fd, uint32_t events, void *arg);

/* Watches bell; the queue is looked at once, for what rang while it was
 * closed. */
static bool watch(struct doorbell *d, struct store_bell *bell, char *errbuf, size_t errlen)
{
	d->bell = bell;
	d->fd = store_bell_fd(bell);
	if (loop_fd_add(d->loop, d->fd, EPOLLIN, on_readable, d) != 0) {
		util_set_msg(errbuf, errlen, "out of memory");
		store_bell_close(bell);
		d->bell = NULL;
		return false;
	}
	store_set_bell(d->st, bell);
	store_set_reachable(d->st, true);
	notify_rung(d->notify, STORE_RUNG_DELIVERIES | STORE_RUNG_TASKS);
	return true;
}

/* The bell is lost: until it is back, this server answers no one (what
 * it would answer could be stale), and its agents turn to the others. */
static void lose(struct doorbell *d, const char *why)
{
	log_msg(LOG_LVL_WARN, "doorbell: %s; this server answers 503 until it hears the other "
		"servers again (tried every %d ms)", why, TICK_MS);
	store_set_bell(d->st, NULL);
	loop_fd_remove(d->loop, d->fd);
	store_bell_close(d->bell);
	d->bell = NULL;
	store_set_reachable(d->st, false);
	notify_cut(d->notify);
}

/* Reads what the bell heard. Returns false when it was lost. */
static bool hear(struct doorbell *d)
{
	int rung = store_bell_read(d->bell);

	if (rung > 0)
		notify_rung(d->notify, rung);
	else if (rung < 0)
		lose(d, "the connection that hears the other servers was lost");
	return rung >= 0;
}

static void on_readable(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	hear(arg);
}

static void *open_again(void *arg)
{
	struct doorbell *d = arg;

	d->fresh = store_bell_open(d->target, d->frontend, d->msg, sizeof(d->msg));
	atomic_store(&d->opened, true);
	return NULL;
}

/* Every TICK_MS: a bell that heard nothing asks for an answer (one that
 * does not come within SILENCE_MS loses it); a lost one is opened again. */
static void on_tick(void *arg)
{
	struct doorbell *d = arg;
	char msg[512];
	uint64_t waited, now, held;

	now = util_now_ns();
	held = d->last_tick_ns ? (now - d->last_tick_ns) / 1000000 : 0;
	d->last_tick_ns = now;
	/* (A statement that waited long may have taken in the bell's data,
	 * asking whether the server lives: what rang is read here.) */
	if (d->bell && hear(d)) {
		waited = store_bell_ask(d->bell);
		if (waited >= SILENCE_MS) {
			snprintf(msg, sizeof(msg), "the database did not answer the connection "
				 "that hears the other servers in %llu ms (the last look was %llu "
				 "ms before)", (unsigned long long)waited,
				 (unsigned long long)held);
			lose(d, msg);
		}
		return;
	}
	if (!d->opening) {
		atomic_store(&d->opened, false);
		d->opening = pthread_create(&d->opener, NULL, open_again, d) == 0;
		return;
	}
	if (!atomic_load(&d->opened))
		return;
	pthread_join(d->opener, NULL);
	d->opening = false;
	if (d->fresh && watch(d, d->fresh, msg, sizeof(msg))) {
		log_msg(LOG_LVL_INFO, "doorbell: hearing the other servers again; answering again");
		d->lost_logged = false;
	} else if (!d->lost_logged) {
		log_msg(LOG_LVL_WARN, "doorbell: %s", d->fresh ? msg : d->msg);
		d->lost_logged = true;
	}
	d->fresh = NULL;
}

struct doorbell *doorbell_new(struct loop *loop, struct store *st, const char *target,
			      int64_t frontend, struct notify *notify, char *errbuf, size_t errlen)
{
	struct doorbell *d = calloc(1, sizeof(*d));
	struct store_bell *bell;

	if (errlen)
		errbuf[0] = '\0';
	if (!d) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	*d = (struct doorbell){ .loop = loop, .notify = notify, .st = st, .target = target,
				.frontend = frontend, .fd = -1 };
	/* (No bell and no message: a database no other server shares.) */
	bell = store_bell_open(target, frontend, errbuf, errlen);
	if (!bell || !watch(d, bell, errbuf, errlen)) {
		free(d);
		return NULL;
	}
	if (!loop_every(loop, TICK_MS, on_tick, d)) {
		util_set_msg(errbuf, errlen, "out of memory");
		doorbell_free(d);
		return NULL;
	}
	return d;
}

bool doorbell_cut_off(const struct doorbell *d)
{
	return d && !d->bell;
}

bool doorbell_answering(const struct doorbell *d)
{
	return !d || (d->bell && store_bell_waited(d->bell) <= TICK_MS * 3 / 2);
}

void doorbell_free(struct doorbell *d)
{
	if (!d)
		return;
	if (d->opening) {
		pthread_join(d->opener, NULL);
		store_bell_close(d->fresh);
	}
	if (d->bell) {
		store_set_bell(d->st, NULL);
		loop_fd_remove(d->loop, d->fd);
		store_bell_close(d->bell);
	}
	free(d);
}
