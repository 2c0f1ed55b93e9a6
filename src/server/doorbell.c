/* doorbell.c -- hearing the other servers on one PostgreSQL database
 * (see doorbell.h). */
#include "server/doorbell.h"

#include <stdlib.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "common/util.h"

/* How often a lost bell is opened again. */
#define RETRY_MS 1000

struct doorbell {
	struct loop *loop;
	struct notify *notify;
	const char *target;
	int64_t frontend;
	struct store_bell *bell;   /* NULL while lost */
	int fd;
	bool lost_logged;
};

static void on_readable(int fd, uint32_t events, void *arg);

/* Opens the bell and watches it; the queue is looked at once, for what
 * rang while it was closed. */
static bool open_bell(struct doorbell *d, char *errbuf, size_t errlen)
{
	d->bell = store_bell_open(d->target, d->frontend, errbuf, errlen);
	if (!d->bell)
		return false;
	d->fd = store_bell_fd(d->bell);
	if (loop_fd_add(d->loop, d->fd, EPOLLIN, on_readable, d) != 0) {
		util_set_msg(errbuf, errlen, "out of memory");
		store_bell_close(d->bell);
		d->bell = NULL;
		return false;
	}
	notify_rung(d->notify, STORE_RUNG_DELIVERIES | STORE_RUNG_TASKS);
	return true;
}

static void close_bell(struct doorbell *d)
{
	if (!d->bell)
		return;
	loop_fd_remove(d->loop, d->fd);
	store_bell_close(d->bell);
	d->bell = NULL;
}

static void on_readable(int fd, uint32_t events, void *arg)
{
	struct doorbell *d = arg;
	int rung = store_bell_read(d->bell);

	(void)fd;
	(void)events;
	if (rung > 0) {
		notify_rung(d->notify, rung);
		return;
	}
	if (rung == 0)
		return;
	log_msg(LOG_LVL_WARN, "doorbell: the connection that hears the other servers was "
		"lost; opened again every %d ms meanwhile", RETRY_MS);
	close_bell(d);
}

/* While lost: another try. */
static void on_retry(void *arg)
{
	struct doorbell *d = arg;
	char msg[512];

	if (d->bell)
		return;
	if (open_bell(d, msg, sizeof(msg))) {
		log_msg(LOG_LVL_INFO, "doorbell: hearing the other servers again");
		d->lost_logged = false;
	} else if (!d->lost_logged) {
		log_msg(LOG_LVL_WARN, "doorbell: %s", msg);
		d->lost_logged = true;
	}
}

struct doorbell *doorbell_new(struct loop *loop, const char *target, int64_t frontend,
			      struct notify *notify, char *errbuf, size_t errlen)
{
	struct doorbell *d = calloc(1, sizeof(*d));

	if (errlen)
		errbuf[0] = '\0';
	if (!d) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	*d = (struct doorbell){ .loop = loop, .notify = notify, .target = target,
				.frontend = frontend, .fd = -1 };
	/* (No bell and no message: a database no other server shares.) */
	if (!open_bell(d, errbuf, errlen)) {
		doorbell_free(d);
		return NULL;
	}
	if (!loop_every(loop, RETRY_MS, on_retry, d)) {
		util_set_msg(errbuf, errlen, "out of memory");
		doorbell_free(d);
		return NULL;
	}
	return d;
}

void doorbell_free(struct doorbell *d)
{
	if (!d)
		return;
	close_bell(d);
	free(d);
}
